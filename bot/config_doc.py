"""The configuration reference (docs/config.md), rendered from the settings' own declarations.

Regenerate after adding or changing a setting::

    python -m bot.config_doc > docs/config.md

tests/test_config_reference.py fails while the file and the declarations differ.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.config import Config, settings_help

# A default that points into the package (a shipped data file) is shown relative to the
# checkout, so the reference reads the same on every machine.
_REPO = Path(__file__).resolve().parent.parent

_INTRO = """\
# Configuration reference

<!-- Generated from bot/config.py by `python -m bot.config_doc > docs/config.md`; do not edit
by hand: tests/test_config_reference.py fails when this file and the settings differ. -->

The bot reads one TOML file: `--config PATH`, else `$BOT_CONFIG`, else `./config.toml`
(a missing `./config.toml` means all defaults). The shipped [`config.toml`](../config.toml)
lists every setting with its default and a comment; the Docker image has its own
`/etc/bot/config.toml` (see [deploy.md](deploy.md)). An unknown section or key is an error,
so a typo cannot go unnoticed.

- **Paths** (marked *path*) are relative to the folder of the config file.
- **Environment**: where a variable is named, a non-empty value in the environment wins over
  the file; keep secrets there rather than in the file.
"""


def setting_meta() -> dict[tuple[str, str], Mapping[str, Any]]:
    """(section, key) -> the field's metadata (help, and ``env``/``path`` where declared)."""
    meta: dict[tuple[str, str], Mapping[str, Any]] = {}
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory):  # type: ignore[arg-type]
            meta[(section.name, f.name)] = f.metadata
    return meta


def _literal(value: Any) -> str:
    """A default as it would be written in config.toml."""
    if isinstance(value, Path):
        return json.dumps(value.as_posix())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_literal(v)}" for k, v in value.items()) + " }" \
            if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _cell(text: str) -> str:
    """Table-cell safe: no pipes or line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """docs/config.md: one table per section, every setting with default, variable and help."""
    meta = setting_meta()
    out = [_INTRO]
    current = None
    for section, key, default, help_text in settings_help():
        if section != current:
            current = section
            out.append(f"\n## [{section}]\n\n| Key | Default | Environment | Meaning |\n"
                       "|---|---|---|---|\n")
        info = meta.get((section, key), {})
        if isinstance(default, Path) and default.is_absolute() and default.is_relative_to(_REPO):
            shown = f"the shipped `{default.relative_to(_REPO).as_posix()}`"
        else:
            shown = f"`{_cell(_literal(default))}`"
        if info.get("path"):
            shown += " *path*"
        env = f"`{info['env']}`" if info.get("env") else ""
        out.append(f"| `{key}` | {shown} | {env} | {_cell(help_text)} |\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.buffer.write(render_markdown().encode("utf-8"))
