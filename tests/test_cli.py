"""The command line as a new user meets it: config errors, options, exit codes, quiet stderr."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import build_parser
from tests.conftest import NO_REFERENCE, ROOT, SEED
from tests.test_serve import start

BROKEN_PDF = b"%PDF-1.7\n this is not really a pdf"


def bot(*args: str, cwd: Path = ROOT, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    if "BOT_CONFIG" not in (env or {}):
        environ.pop("BOT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120, env=environ)


def write_config(tmp_path: Path, knowledge: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[knowledge]\ndir = "{knowledge}"\n[model]\nname = "hashing"\n'
                      f'[querylog]\npath = "q.sqlite3"\n{NO_REFERENCE}{extra}',
                      encoding="utf-8")
    return config


def test_missing_config_is_an_error_not_defaults(tmp_path: Path) -> None:
    done = bot("ask", "文号是多少", cwd=tmp_path)  # no config.toml here
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: config file config.toml not found")
    done = bot("ask", "文号是多少", cwd=tmp_path, env={"BOT_CONFIG": str(tmp_path / "nope.toml")})
    assert done.returncode == 2 and "nope.toml not found (from BOT_CONFIG)" in done.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "index").exists()


def test_no_config_is_the_explicit_choice_of_defaults(tmp_path: Path) -> None:
    (tmp_path / "notice.txt").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    done = bot("--no-config", "index", "--check", "notice.txt", cwd=tmp_path)
    assert done.returncode == 0 and "文号: 云工通〔2023〕7号" in done.stdout


def test_config_before_or_after_the_command(tmp_path: Path, knowledge_dir: Path) -> None:
    config = write_config(tmp_path, knowledge_dir)
    for args in (("--config", str(config), "ask", "文号是多少"),
                 ("ask", "--config", str(config), "文号是多少"),
                 ("ask", "文号是多少", "--config", str(config))):
        done = bot(*args, cwd=tmp_path)
        assert done.returncode == 0 and "云工通〔2023〕7号" in done.stdout, (args, done.stderr)


def test_ask_is_quiet_on_stderr_unless_verbose(tmp_path: Path, knowledge_dir: Path) -> None:
    config = write_config(tmp_path, knowledge_dir)
    quiet = bot("ask", "--config", str(config), "文号是多少", cwd=tmp_path)  # builds the index
    assert quiet.returncode == 0 and quiet.stderr == ""
    config = write_config(tmp_path, knowledge_dir, '[index]\ndir = "index2"\n')
    loud = bot("ask", "-v", "--config", str(config), "文号是多少", cwd=tmp_path)
    assert loud.returncode == 0 and "index" in loud.stderr


def test_cli_reply_does_not_claim_the_question_was_recorded(tmp_path: Path,
                                                            knowledge_dir: Path) -> None:
    config = write_config(tmp_path, knowledge_dir)
    done = bot("ask", "--config", str(config), "明天会下雨吗", cwd=tmp_path)
    assert done.returncode == 0
    assert "已记录" not in done.stdout and "不记入查询日志" in done.stdout
    assert not (tmp_path / "q.sqlite3").exists()


def test_index_check_takes_several_files(tmp_path: Path) -> None:
    other = tmp_path / "copy.txt"
    other.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    done = bot("--no-config", "index", "--check", str(SEED), str(other), cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.count("文号: 云工通〔2023〕7号") == 2
    assert f"== {other}" in done.stdout
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(BROKEN_PDF)
    done = bot("--no-config", "index", "--check", str(other), str(broken), cwd=tmp_path)
    assert done.returncode == 1 and "文号: 云工通〔2023〕7号" in done.stdout
    assert "broken.pdf" in done.stderr


def test_index_check_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`bot index --check … | head`: the reader stops early; no traceback on stderr."""
    laws = sorted(str(p) for p in (ROOT / "bot" / "data" / "reference").rglob("*.md"))
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--no-config", "index", "--check",
                             *laws], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environ)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"== ")  # the first file's name
    proc.stdout.close()  # hundreds of KB still to come: the next write hits a closed pipe
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_index_exit_codes_and_failed_files(tmp_path: Path, knowledge_dir: Path) -> None:
    (knowledge_dir / "坏文件.pdf").write_bytes(BROKEN_PDF)
    config = write_config(tmp_path, knowledge_dir)
    done = bot("index", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # built, although one file failed
    [line] = [x for x in done.stdout.splitlines() if "failed: 坏文件.pdf: " in x]
    assert len(line.split("failed: 坏文件.pdf: ", 1)[1]) > 3  # the reason is given

    only_broken = tmp_path / "only-broken"
    only_broken.mkdir()
    (only_broken / "坏文件.pdf").write_bytes(BROKEN_PDF)
    config = write_config(tmp_path, only_broken, '[index]\ndir = "index2"\n')
    done = bot("index", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 3 and "failed: 坏文件.pdf: " in done.stdout
    assert "nothing usable" in done.stderr


def _actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {n}", a) for n, a in _actions(sub)]
        elif not isinstance(action, argparse._HelpAction):
            found.append((parser.prog, action))
    return found


def test_help_is_a_sentence_and_every_argument_has_help() -> None:
    text = build_parser().format_help()
    assert "``" not in text and "{index,ask" not in text
    assert "original wording of the union's notices" in text and "exit codes" in text
    missing = [f"{where}: {a.dest}" for where, a in _actions(build_parser()) if not a.help]
    assert missing == []


def test_serve_busy_port_is_one_line(tmp_path: Path, knowledge_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, knowledge_dir, f"[server]\nport = {port}\n")
        done = bot("serve", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(set [server] host and port)"
    ]


def test_serve_says_what_it_does(tmp_path: Path, knowledge_dir: Path) -> None:
    config = (f'[knowledge]\ndir = "{knowledge_dir}"\nwatch = false\n[model]\nname = "hashing"\n'
              f'[querylog]\npath = "q.sqlite3"\n{NO_REFERENCE}')
    proc, base = start(tmp_path, config, ["-m", "bot", "--config", "{config}", "serve"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    log = (tmp_path / "serve.log").read_text()
    assert f"listening on {base}/wechat" in log
    assert "[admin] token (ADMIN_TOKEN) is empty: the admin pages are off" in log
    assert log.rstrip().endswith("stopped") and "stopping: finishing replies" in log


@pytest.mark.parametrize("secret", ["WECHAT_TOKEN", "WECHAT_AES_KEY"])
def test_serve_warns_about_empty_wechat_secrets(secret: str) -> None:
    from bot.config import load_config
    from bot.serve import startup_warnings

    cfg = load_config(ROOT / "config.toml")
    assert not cfg.wechat.token  # the shipped config leaves secrets to the environment
    warnings = " ".join(startup_warnings(cfg))
    assert secret in warnings and "refused" in warnings
