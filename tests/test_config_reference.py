"""The settings, config.toml and docs/config.md tell the same story.

Generic over ``settings_help()``: a new setting is checked the moment it is declared.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, settings_help
from bot.config_doc import render_markdown, setting_meta

ROOT = Path(__file__).resolve().parent.parent
CONFIG_TOML = ROOT / "config.toml"
REFERENCE = ROOT / "docs" / "config.md"

_HEADER = re.compile(r"^\s*\[([A-Za-z0-9_.-]+)\]\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*(#\s*)?([A-Za-z0-9_-]+)\s*=")


def _known() -> dict[str, dict[str, object]]:
    sections: dict[str, dict[str, object]] = {}
    for section, key, default, _ in settings_help():
        sections.setdefault(section, {})[key] = default
    return sections


def _raw_sections(text: str) -> dict[str, list[tuple[int, str]]]:
    """Header name -> its (line number, line) pairs, lines inside multi-line strings left out."""
    sections: dict[str, list[tuple[int, str]]] = {"": []}
    current, in_string = "", False
    for number, line in enumerate(text.splitlines()):
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        header = _HEADER.match(line)
        if header:
            current = header.group(1)
            sections.setdefault(current, [])
        sections[current].append((number, line))
        in_string = quotes % 2 == 1
    return sections


def test_reference_is_current() -> None:
    assert REFERENCE.is_file(), "docs/config.md missing: python -m bot.config_doc > docs/config.md"
    assert REFERENCE.read_text(encoding="utf-8") == render_markdown(), (
        "docs/config.md differs from the settings in bot/config.py; regenerate it with\n"
        "    python -m bot.config_doc > docs/config.md"
    )


def test_reference_lists_every_setting() -> None:
    text = render_markdown()
    for section, key, _, help_text in settings_help():
        assert help_text.strip(), f"[{section}] {key} has no help text"
        block = text.split(f"\n## [{section}]\n", 1)[-1].split("\n## ", 1)[0]
        assert f"| `{key}` |" in block, f"[{section}] {key} missing from the reference"
    for (section, key), meta in setting_meta().items():
        if meta.get("env"):
            assert f"`{meta['env']}`" in text, f"[{section}] {key}: {meta['env']} not shown"


def test_config_toml_shows_every_setting_with_a_comment() -> None:
    """Each setting is a key (or a commented ``# key =`` line) in its section, under a comment."""
    lines = CONFIG_TOML.read_text(encoding="utf-8").splitlines()
    raw = _raw_sections("\n".join(lines))
    known = _known()
    problems = []
    for section, keys in known.items():
        if section not in raw:
            problems.append(f"[{section}] section missing")
            continue
        for key in keys:
            found = [n for n, line in raw[section]
                     if (m := _ASSIGN.match(line)) and m.group(2) == key]
            found += [n for n, _ in raw.get(f"{section}.{key}", [])[:1]]  # a [section.key] table
            if not found:
                problems.append(f"[{section}] {key}: neither `{key} =` nor `# {key} =`")
                continue
            above = lines[found[0] - 1] if found[0] else ""
            assign = _ASSIGN.match(above)
            if not above.lstrip().startswith("#") or (assign and assign.group(2) in keys):
                problems.append(f"[{section}] {key}: no comment line directly above it")
    assert not problems, "config.toml (fix there, or in bot/config.py):\n  " + "\n  ".join(
        problems
    )


def test_config_toml_has_only_known_settings() -> None:
    data = tomllib.loads(CONFIG_TOML.read_text(encoding="utf-8"))
    known = _known()
    unknown = [f"[{name}]" for name in data if name not in known]
    for name, table in data.items():
        for key, value in table.items() if name in known else ():
            default = known[name].get(key, KeyError)
            if default is KeyError:
                unknown.append(f"[{name}] {key}")
            elif isinstance(value, dict) != isinstance(default, dict):
                unknown.append(f"[{name}] {key} (table where a value belongs, or the reverse)")
    assert not unknown, f"config.toml has settings bot/config.py does not know: {unknown}"
    load_config(CONFIG_TOML)  # and the loader agrees


def test_load_config_refuses_unknown_keys(tmp_path: Path) -> None:
    """What makes the check above matter: a misspelt key is an error, never silently ignored."""
    section, key, _, _ = settings_help()[0]
    bad = tmp_path / "config.toml"
    bad.write_text(f"[{section}]\n{key}_typo = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{key}_typo"):
        load_config(bad)
    bad.write_text("[no_such_section]\nx = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no_such_section"):
        load_config(bad)


def test_shipped_config_shows_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """config.toml documents the real defaults: loading it changes nothing."""
    for meta in setting_meta().values():
        if meta.get("env"):
            monkeypatch.delenv(meta["env"], raising=False)
    cfg = load_config(CONFIG_TOML)
    base = CONFIG_TOML.resolve().parent
    differ = []
    for section, key, default, _ in settings_help():
        value = getattr(getattr(cfg, section), key)
        expected = (base / default).resolve() if isinstance(default, Path) else default
        if value != expected:
            differ.append(f"[{section}] {key} = {value!r}, default {expected!r}")
    assert not differ, "config.toml differs from the defaults in bot/config.py:\n  " + (
        "\n  ".join(differ)
    )


def test_a_config_elsewhere_keeps_the_shipped_data(tmp_path: Path) -> None:
    """A config file copied to another folder (the container's /etc/bot/config.toml) still
    means the shipped reference laws, adapter and synonyms by ``bot/data/…``; its other relative
    paths are its own folder's. A minimal file gets the same defaults, the reference included."""
    data = ROOT / "bot" / "data"
    copied = tmp_path / "etc" / "config.toml"
    copied.parent.mkdir()
    copied.write_text(CONFIG_TOML.read_text(encoding="utf-8"), encoding="utf-8")
    cfg = load_config(copied)
    assert cfg.retrieval.reference == data / "reference"
    assert cfg.retrieval.adapter == data / "adapter-multilingual-e5-small.npz"
    assert cfg.retrieval.synonyms == data / "synonyms.txt"
    assert cfg.knowledge.dir == tmp_path / "etc" / "knowledge"
    minimal = tmp_path / "minimal.toml"
    minimal.write_text('[knowledge]\ndir = "/data/knowledge"\n', encoding="utf-8")
    assert load_config(minimal).retrieval.reference == data / "reference"
    minimal.write_text('[retrieval]\nreference = ""\n', encoding="utf-8")
    assert load_config(minimal).retrieval.reference is None


def test_env_variables_are_named_in_config_toml() -> None:
    text = CONFIG_TOML.read_text(encoding="utf-8")
    missing = [f"[{s}] {k}: {m['env']}" for (s, k), m in setting_meta().items()
               if m.get("env") and m["env"] not in text]
    assert not missing, f"config.toml does not mention these environment variables: {missing}"
