"""The Dockerfile, checked by reading it (no Docker engine is needed to run these tests).

A small parser joins continuation lines, drops comments, splits the instructions per stage
and expands build arguments; each test asserts one property the deployment guide relies on.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from bot.config import load_config
from bot.search.model_convert import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cmake", "cc")


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # continuation lines joined, build arguments expanded


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instr in self.all("ENV"):
            values.update(_env_pairs(instr.args))
        return values


def _logical_lines(text: str) -> list[str]:
    """Comment lines dropped (also inside a continuation), continuation lines joined."""
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def expand(text: str, values: dict[str, str]) -> str:
    """Docker's variable forms: $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}."""

    def sub(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bare")
        value = values.get(name, "")
        op, word = match.group("op"), match.group("word") or ""
        if op == ":-":
            return value or expand(word, values)
        if op == ":+":
            return expand(word, values) if value else ""
        return value

    pattern = r"\$(?:\{(?P<name>\w+)(?:(?P<op>:[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
    return re.sub(pattern, sub, text)


def _env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy form: ENV NAME value
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile, with build arguments and environment variables expanded."""
    global_args: dict[str, str] = {}  # ARGs before the first FROM: usable in FROM lines
    stages: list[Stage] = []
    scope: dict[str, str] = {}  # ARGs of the current stage
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "ARG":
            name, has_default, default = args.partition("=")
            table = scope if stages else global_args
            if has_default:
                table[name] = expand(default.strip().strip('"'), scope if stages else global_args)
            elif stages and name in global_args:
                table[name] = global_args[name]
        if keyword == "FROM":
            words = expand(args, global_args).split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
            scope = {}
            continue
        if not stages:
            continue
        # Docker expands most instructions itself, RUN's shell expands its command: either
        # way ARG and ENV values are seen, ENV winning over an ARG of the same name.
        args = expand(args, {**scope, **stages[-1].env()})
        stages[-1].instructions.append(Instruction(keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _stage(stages: list[Stage], ref: str) -> Stage:
    named = {s.name: s for s in stages if s.name}
    return named[ref] if ref in named else stages[int(ref)]


def _copy_paths(instr: Instruction) -> tuple[str | None, list[str], str]:
    """(--from stage or None, sources, destination) of a COPY/ADD."""
    args = instr.args
    words = json.loads(args.split(" ", 1)[-1]) if args.rstrip().endswith("]") else args.split()
    options = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    origin = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
    return origin, paths[:-1], paths[-1]


def _copies(stage: Stage) -> list[tuple[str | None, list[str], str]]:
    return [_copy_paths(i) for i in stage.instructions if i.keyword in ("COPY", "ADD")]


def _commands(run: str) -> list[list[str]]:
    """A RUN's shell commands as word lists, split at &&, ||, ; and | (quotes respected)."""
    lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in ("&&", "||", ";", "|"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _project_install(stages: list[Stage]) -> tuple[Stage, Instruction]:
    """The stage and RUN that pip-installs the folder pyproject.toml was copied to."""
    for stage in stages:
        workdir, project = PurePosixPath("/"), None
        for instr in stage.instructions:
            if instr.keyword == "WORKDIR":
                workdir = workdir / instr.args
            elif instr.keyword == "COPY" and "pyproject.toml" in _copy_paths(instr)[1]:
                dest = _copy_paths(instr)[2]
                project = workdir / dest if dest.endswith("/") else (workdir / dest).parent
            elif instr.keyword == "RUN" and project is not None:
                for words in _commands(instr.args):
                    pip = words[0] in ("pip", "pip3") or words[1:3] == ["-m", "pip"]
                    if pip and "install" in words:
                        targets = [w for w in words[words.index("install") + 1 :]
                                   if not w.startswith("-")]
                        if any(workdir / t.split("[")[0] == project for t in targets):
                            return stage, instr
    raise AssertionError("no stage copies pyproject.toml and pip-installs that folder")


def _exec_form(args: str) -> list[str]:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        value = None
    assert isinstance(value, list), f"shell form (a shell would swallow SIGTERM): {args}"
    return value


def _config_writer(stages: list[Stage], path: str) -> tuple[Stage, str]:
    """The stage that writes ``path`` with printf, and the file's text."""
    for stage in stages:
        for instr in stage.all("RUN"):
            for words in _commands(instr.args):
                if words[:2] == ["printf", "%s\\n"] and words[-2:] == [">", path]:
                    return stage, "\n".join(words[2:-2]) + "\n"
    raise AssertionError(f"no RUN writes {path} (expected printf '%s\\n' ... > {path})")


@pytest.fixture(scope="module")
def container_config(stages: list[Stage], final: Stage, tmp_path_factory: pytest.TempPathFactory):
    """The config the container runs with: $BOT_CONFIG of the final stage, loaded for real."""
    path = final.env().get("BOT_CONFIG")
    assert path, "the final stage sets no BOT_CONFIG"
    writer, text = _config_writer(stages, path)
    if writer is not final:
        sources = [(o, s) for o, srcs, d in _copies(final) for s in srcs if d == path]
        assert sources and _stage(stages, sources[0][0] or "-1") is writer, (
            f"{path} is written in another stage but not copied into the final one"
        )
    tomllib.loads(text)  # a syntax error fails here with the TOML message
    file = tmp_path_factory.mktemp("container") / "config.toml"
    file.write_text(text, encoding="utf-8")
    return load_config(file)  # unknown keys or wrong types fail here


def _under(path: str, folder: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(folder))


def _volumes(stage: Stage) -> list[str]:
    found: list[str] = []
    for instr in stage.all("VOLUME"):
        args = instr.args.strip()
        found += json.loads(args) if args.startswith("[") else args.split()
    return found


def test_parser_joins_continuations_and_expands_arguments() -> None:
    text = ("ARG BASE=python:3.11-slim\nFROM ${BASE} AS one\n# comment\nARG X=1\n"
            "RUN echo a \\\n  # inside\n  && echo $X\nFROM one\nCOPY --from=one /a /b\n")
    first, second = parse(text)
    assert (first.base, first.name, second.base) == ("python:3.11-slim", "one", "one")
    assert " ".join(first.all("RUN")[0].args.split()) == "echo a && echo 1"
    assert _copies(second) == [("one", ["/a"], "/b")]


def test_multi_stage(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "build in one stage and copy the result into a clean final stage"


def test_final_stage_is_slim_python(stages: list[Stage], final: Stage) -> None:
    assert re.fullmatch(r"(.*/)?python:3\.11(\.\d+)?-slim(-\w+)?", final.base), final.base
    assert final.base not in {s.name for s in stages[:-1]}, "final stage inherits a build stage"


def test_torch_is_pinned_cpu_only_and_installed_first(stages: list[Stage]) -> None:
    project_stage, project = _project_install(stages)
    torch = [(s, i, words) for s in stages for i in s.all("RUN") for words in _commands(i.args)
             if "install" in words and any(w.startswith("torch==") for w in words)]
    assert torch, "no RUN installs torch"
    stage, instr, words = torch[0]
    assert "torch==2.13.0" in words, words
    index = words[words.index("--index-url") + 1] if "--index-url" in words else ""
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cpu/?", index), (
        f"torch must come from the CPU-only index, not {index or 'PyPI (CUDA)'}"
    )
    assert stage is project_stage and (
        stage.instructions.index(instr) < stage.instructions.index(project)
    ), "torch must be installed before the project in the same environment, or pip pulls CUDA"


def test_project_is_installed_and_reaches_the_final_stage(stages: list[Stage], final: Stage):
    stage, _ = _project_install(stages)
    venv = stage.env()["PATH"].split(":")[0].removesuffix("/bin")
    assert venv.startswith("/") and venv not in ("/usr", "/usr/local"), "install into a venv"
    assert any(o is not None and _stage(stages, o) is stage and venv in srcs
               for o, srcs, _ in _copies(final)), f"{venv} is not copied into the final stage"
    assert final.env()["PATH"].startswith(f"{venv}/bin:"), "the final PATH misses the venv"


def test_model_is_converted_at_build_time(stages: list[Stage], final: Stage,
                                          container_config) -> None:
    cfg = container_config
    assert cfg.model.name == DEFAULT_MODEL
    cache = cfg.model.cache_dir.as_posix()
    converter = next((s for s in stages for i in s.all("RUN")
                      if re.search(r"\bbot( --config \S+)? convert-model\b", i.args)), None)
    assert converter is not None, "no RUN bot convert-model"
    assert converter.env().get("BOT_CONFIG") == final.env()["BOT_CONFIG"], (
        "convert-model must run with the container's config (same [model] cache_dir)"
    )
    if converter is not final:
        assert any(o is not None and _stage(stages, o) is converter
                   and any(_under(cache, s) for s in srcs) for o, srcs, _ in _copies(final)), (
            f"the converted model ({cache}) is not copied into the final stage"
        )
    assert not any(_under(cache, v) for v in _volumes(final)), "a volume would hide the model"
    assert final.env().get("HF_HUB_OFFLINE") == "1", "the container must never try a model hub"


def test_the_built_index_reaches_the_final_image(stages: list[Stage], final: Stage,
                                                 container_config) -> None:
    """The builder's smoke test embeds the reference laws; the final image keeps that index
    (owned by the bot user), so a new volume starts with it instead of embedding them again."""
    index = container_config.index.dir.as_posix()
    builder = next((s for s in stages for i in s.all("RUN") if re.search(r"\bbot index\b", i.args)),
                   None)
    assert builder is not None and builder is not final, "no bot index in a build stage"
    copy = next((i for i in final.all("COPY") if (p := _copy_paths(i))[0] is not None
                 and _stage(stages, p[0]) is builder and index in p[1]), None)
    assert copy is not None, f"the built index ({index}) is not copied into the final stage"
    assert "--chown=bot:bot" in copy.args, "the bot user must be able to update the index"


def test_data_lives_in_volumes(final: Stage, container_config) -> None:
    volumes = _volumes(final)
    cfg = container_config
    for what, path in (("knowledge", cfg.knowledge.dir), ("index", cfg.index.dir),
                       ("query log", cfg.querylog.path.parent)):
        assert any(_under(path.as_posix(), v) for v in volumes), f"{what} ({path}) not a VOLUME"


def test_runs_as_a_created_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage has no USER (would run as root)"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0", ""), f"USER {user}"
    created = any(re.search(rf"(useradd|adduser)\b.*\b{re.escape(user)}\s*($|&&|;)", i.args)
                  for i in final.all("RUN"))
    assert user.isdigit() or created, f"user {user} is never created in the final stage"
    last = max(n for n, i in enumerate(final.instructions) if i.keyword in ("CMD", "ENTRYPOINT"))
    assert final.instructions.index(users[-1]) < last, "USER must come before the command"


def test_healthcheck_uses_healthz_without_curl(final: Stage, container_config) -> None:
    checks = final.all("HEALTHCHECK")
    assert checks and checks[-1].args.upper() != "NONE", "no HEALTHCHECK"
    command = checks[-1].args.split(" CMD ", 1)[-1]
    url = f"127.0.0.1:{container_config.server.port}/healthz"
    assert url in command, f"the health check does not ask {url}: {command}"
    assert "urllib" in command and not re.search(r"\b(curl|wget)\b", command), (
        f"use Python's urllib (the slim image has no curl): {command}"
    )


def test_command_is_bot_serve_in_exec_form(final: Stage) -> None:
    entry = final.all("ENTRYPOINT")
    cmd = final.all("CMD")
    argv = (_exec_form(entry[-1].args) if entry else []) + (_exec_form(cmd[-1].args) if cmd
                                                             else [])
    # Exec form: bot is PID 1 and gets SIGTERM itself (a shell would swallow it).
    assert argv in (["bot", "serve"], ["python", "-m", "bot", "serve"]), argv


def test_no_compilers_in_the_final_stage(final: Stage) -> None:
    for instr in final.all("RUN"):
        for words in _commands(instr.args):
            if "install" in words and any(w in ("apt-get", "apt", "apk", "yum") for w in words):
                assert not set(words) & set(COMPILERS), f"compiler installed: {instr.args}"


def test_listens_on_all_interfaces_and_exposes_the_port(final: Stage, container_config) -> None:
    assert container_config.server.host == "0.0.0.0", "unreachable from outside the container"
    exposed = {p.split("/")[0] for i in final.all("EXPOSE") for p in i.args.split()}
    assert str(container_config.server.port) in exposed, f"EXPOSE {container_config.server.port}"


def test_dockerignore_keeps_data_and_caches_out() -> None:
    patterns = {line.strip().strip("/") for line in
                (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")}
    for name in ("index", "models", "data", ".git", "__pycache__"):
        assert name in patterns or f"**/{name}" in patterns, f"{name} not in .dockerignore"
    assert "knowledge" not in patterns and "bot" not in patterns, "the build needs these"
