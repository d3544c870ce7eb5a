"""The documentation: the site builds strictly, and the README's commands are real."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from pipeline.apps.cli.parser import build_parser

README = ROOT / "README.md"
SHELL_BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.S | re.M)


def _shell_blocks(path: Path) -> list[str]:
    return SHELL_BLOCK.findall(path.read_text(encoding="utf-8"))


def _commands(blocks: list[str]) -> list[list[str]]:
    """Each simple command of the blocks as words: continuations joined, heredocs and
    comments left out, `NAME=value` assignments expanded in the later commands."""
    variables: dict[str, str] = {}
    commands = []
    for block in blocks:
        text = block.replace("\\\n", " ")
        text = re.sub(r"<<'(\w+)'\n.*?^\1\n", "\n", text, flags=re.S | re.M)  # heredocs
        for line in text.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words, current = list(lexer), []
            for word in [*words, ";"]:
                if word in (";", "&&", "||", "|", "&"):
                    if current:
                        commands.append(current)
                    current = []
                    continue
                if not current and re.fullmatch(r"[A-Z_]+=.*", word):
                    name, value = word.split("=", 1)
                    variables[name] = value
                    continue
                current.append(re.sub(r"\$(\w+)", lambda m: variables.get(m[1], m[0]), word))
    return commands


def _vapipe_commands(path: Path) -> list[list[str]]:
    return [c[1:] for c in _commands(_shell_blocks(path)) if c[0] == "vapipe"]


def test_the_readme_has_vapipe_commands_to_check():
    commands = _vapipe_commands(README)
    assert {c[0] for c in commands} >= {"run", "demo", "batch", "serve"}, commands


@pytest.mark.parametrize("argv", _vapipe_commands(README), ids=lambda a: " ".join(a)[:60])
def test_every_readme_vapipe_command_parses_with_the_real_command_line(argv, capsys):
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"vapipe {shlex.join(argv)}: {capsys.readouterr().err.strip()}")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_vapipe_option_in_the_docs_exists_in_the_parser(page):
    commands = _subcommands()
    for argv in _vapipe_commands(page):
        assert argv and argv[0] in commands, f"{page.name}: no command vapipe {argv[:1]}"
        known = set(commands[argv[0]]._option_string_actions)
        for word in argv[1:]:
            option = word.strip("[]").split("=", 1)[0]
            if option.startswith("--"):
                assert option in known, f"{page.name}: vapipe {argv[0]} has no option {option}"


def test_files_the_readme_names_exist_in_the_repository():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    named = re.findall(r"`((?:samples|benchmarks|docs|tests|pipeline|sources|\.ci)/[^`\s]*)`", text)
    paths = [p for p in links if "://" not in p] + named
    assert len(paths) > 20, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"the README names files that do not exist: {missing}"


def test_the_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci.startswith(".ci/system-packages")
    assert [b.strip() for b in _shell_blocks(README)].count(ci) == 1, ci
    assert "'.[test,ray,docs]'" in ci


def test_the_documentation_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--fast" in cli and "--classify-min-size" in cli, "the CLI reference is generated"
    config = (site / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    assert "skip_nonref" in config and "topic_prefix" in config
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Quick start" in home and 'src="images/annotated-frame.jpg"' in home


def test_the_readme_service_config_is_valid_and_names_files_that_exist():
    from pipeline.apps.serve.config import parse_config, parse_toml

    text = README.read_text(encoding="utf-8")
    toml = re.search(r"cat > vapipe.toml <<'EOF'\n(.*?)^EOF\n", text, re.S | re.M)
    assert toml, "the README's quick start writes vapipe.toml"
    config = parse_config(parse_toml(toml.group(1), "vapipe.toml"), base_dir=ROOT)
    assert config.resolve(config.model.path).is_file()
    (camera,) = config.cameras.values()
    assert Path(config.source_of(camera)).is_file() and camera.realtime and camera.loop
    assert [line.name for line in camera.lines] == ["entry"]
