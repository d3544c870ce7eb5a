"""MkDocs hook: the reference pages' tables, generated from the code at build time.

`<!-- vapipe:readme -->` becomes README.md (the home page, one source for both);
`<!-- vapipe:cli -->` becomes every `vapipe` command's options, read from the argparse parser
(pipeline/apps/cli/parser.py); `<!-- vapipe:config -->` every key of `vapipe serve`'s config
file, read from the typed tables in pipeline/apps/serve/config.py. So these pages cannot
drift from the code: a new option or key appears at the next build.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLI_MARK = "<!-- vapipe:cli -->"
CONFIG_MARK = "<!-- vapipe:config -->"
README_MARK = "<!-- vapipe:readme -->"


def _cell(text: object) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    shown = ", ".join(f"`{flag}`" for flag in action.option_strings)
    if action.nargs == 0:
        return shown
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
    )
    if action.nargs == "?":
        metavar = f"[{metavar}]"
    return f"{shown} `{metavar}`"


def _default(action: argparse.Action) -> str:
    default = action.default
    if action.nargs == 0 or default in (None, [], argparse.SUPPRESS):
        return ""
    if isinstance(default, tuple):
        return "`" + "x".join(map(str, default)) + "`"
    return f"`{default}`"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name (`run`, `batch`, ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    from pipeline.apps.cli.parser import build_parser

    parser = build_parser()
    out = []
    for name, command in subcommands(parser).items():
        out += [f"## `vapipe {name}`", "", "```text", command.format_usage().strip(), "```", ""]
        for group in command._action_groups:
            actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
            if not actions:
                continue
            title = {"positional arguments": "arguments", "options": "options"}.get(
                group.title, group.title
            )
            out += [
                f"**{title}**",
                "",
                "| option | default | what it does |",
                "| --- | --- | --- |",
            ]
            for action in actions:
                help_text = (action.help or "") % {"default": action.default}
                out.append(f"| {_flags(action)} | {_default(action)} | {_cell(help_text)} |")
            out.append("")
    return "\n".join(out)


def _value_kind(parse) -> str:
    """What a config key's parser accepts, from the parser itself."""
    name = parse.__qualname__.split(".")[0]
    cells = dict(zip(parse.__code__.co_freevars, parse.__closure__ or (), strict=True))
    if name == "_choice":
        return "one of " + ", ".join(f"`{v}`" for v in cells["allowed"].cell_contents)
    if name == "_int_at_least":
        return f"integer ≥ {cells['low'].cell_contents}"
    return {
        "_string": "string",
        "_boolean": "boolean",
        "_number": "number",
        "_positive_float": "positive number",
        "_unit_interval": "number 0..1",
        "_port": "port (1-65535)",
        "_strings": "array of strings",
        "_labels": "array of names, a file, or `a,b,c`",
        "_bind": "`HOST:PORT`",
        "_lines": "table: name = [x1, y1, x2, y2] (fractions)",
        "_zones": "table: name = [x1, y1, x2, y2, x3, y3, ...] (fractions)",
        "_cluster_address": "`local`, `auto`, `HOST:PORT` or `ray://HOST:PORT`",
    }.get(name, name.lstrip("_"))


def _config_default(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING:
        return "required"
    value = f.default
    if value is None or value == ():
        return ""
    if isinstance(value, tuple):  # [http] bind
        return "`" + ":".join(map(str, value)) + "`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{json.dumps(value)}`" if isinstance(value, str) else f"`{value}`"


def config_reference() -> str:
    from pipeline.apps.serve import config

    tables = [
        ("[model]", config.ModelConfig),
        ("[http]", config.HttpConfig),
        ("[mqtt]", config.MqttConfig),
        ("[output]", config.OutputConfig),
        ("[recording]", config.RecordingConfig),
        ("[cluster]", config.ClusterConfig),
        ("[cameras.NAME]", config.CameraConfig),
    ]
    out = []
    for title, cls in tables:
        out += [f"## `{title}`", "", "| key | value | default |", "| --- | --- | --- |"]
        for f in dataclasses.fields(cls):
            if "parse" not in f.metadata:
                continue
            key = f.metadata["key"] or f.name
            kind = _value_kind(f.metadata["parse"])
            out.append(f"| `{key}` | {kind} | {_config_default(f)} |")
        out.append("")
    return "\n".join(out)


def readme() -> str:
    """README.md as the site's home page: its links to `docs/...` made relative to docs/."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.replace("](docs/", "](")


def on_page_markdown(markdown: str, page, config, files) -> str:
    if README_MARK in markdown:
        markdown = markdown.replace(README_MARK, readme())
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if CONFIG_MARK in markdown:
        markdown = markdown.replace(CONFIG_MARK, config_reference())
    return markdown
