"""The package layout: lower layers never import higher ones, and the light entry points stay
light (`vapipe --help` loads neither OpenVINO nor OpenCV)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# Lowest first. A module may import its own layer and those below it, never one above.
LAYERS = [
    ("sources", ["sources"]),
    (
        "data",
        [
            "pipeline.errors",
            "pipeline.attributes",
            "pipeline.detections",
            "pipeline.summary",
            "pipeline.atomic",
            "pipeline.thread_priority",
            "pipeline.counting_defaults",
        ],
    ),
    ("models", ["pipeline.models"]),
    ("analytics", ["pipeline.analytics"]),
    ("outputs", ["pipeline.outputs", "pipeline.recording"]),
    ("engine", ["pipeline.engine"]),
    ("apps", ["pipeline.apps", "pipeline.__main__"]),
]


def _layer(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at any depth (lazy imports in functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _modules() -> list[Path]:
    return sorted([*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "sources").rglob("*.py")])


def _violations(lower: str, higher: str | None = None) -> list[str]:
    """Imports from a module of layer `lower` (or above it) into a higher layer."""
    names = [name for name, _ in LAYERS]
    bad = []
    for path in _modules():
        rank = _layer(_module_name(path))
        if rank is None or names[rank] != lower:
            continue
        for line, imported in _imports(path):
            target = _layer(imported)
            above = target is not None and target > rank
            if above and (higher is None or names[target] == higher):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return bad


def test_every_module_belongs_to_a_layer():
    package_roots = {"pipeline/__init__.py"}  # the public API re-exports every layer lazily
    unplaced = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if _layer(_module_name(path)) is None and str(path.relative_to(ROOT)) not in package_roots
    ]
    assert unplaced == []


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_no_layer_imports_a_higher_one(layer):
    assert _violations(layer) == []


def test_the_engine_never_imports_an_application():
    assert _violations("engine", "apps") == []


def test_the_layer_check_would_catch_an_engine_module_importing_the_cli(tmp_path):
    fake = ROOT / "pipeline" / "engine" / "_layout_probe.py"
    fake.write_text("from pipeline.apps.cli.main import main\n", encoding="utf-8")
    try:
        assert _violations("engine", "apps") == [
            "pipeline/engine/_layout_probe.py:1 imports pipeline.apps.cli.main.main"
        ]
    finally:
        fake.unlink()


def test_the_parsers_adapter_choices_are_the_adapters():
    from pipeline.apps.cli.parser import ADAPTER_CHOICES
    from pipeline.models.adapters import ADAPTER_NAMES

    assert ADAPTER_CHOICES == ADAPTER_NAMES


def test_help_loads_neither_openvino_nor_opencv():
    probe = (
        "import sys, contextlib, io\n"
        "from pipeline.apps.cli.parser import build_parser\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    build_parser().parse_args(['--help'])\n"
        "import pipeline.apps.cli.main\n"
        "print(sorted(m for m in ('openvino', 'cv2', 'numpy', 'tqdm') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_public_api_resolves_every_name():
    import pipeline

    missing = [name for name in pipeline.__all__ if getattr(pipeline, name, None) is None]
    assert missing == []
    assert {"Pipeline", "BatchJob", "JsonlSink", "Demo", "QueuePolicy"} <= set(pipeline.__all__)
