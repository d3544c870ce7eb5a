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
            "pipeline.option_table",
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


def _import_cycles(package: str) -> list[list[str]]:
    """Import circles among the modules of `package` (TYPE_CHECKING and lazy imports count:
    a circle kept alive only for type checking is still one)."""
    folder = ROOT / Path(*package.split("."))
    modules = {_module_name(path): path for path in folder.rglob("*.py")}

    def module_of(imported: str) -> str | None:
        while imported and imported not in modules:
            imported = imported.rpartition(".")[0]
        return imported or None

    graph = {
        name: sorted({m for _, i in _imports(path) if (m := module_of(i)) not in (None, name)})
        for name, path in modules.items()
    }
    cycles, done = [], set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return
        if name in done:
            return
        for target in graph[name]:
            visit(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    return cycles


def test_the_engine_has_no_import_circle():
    assert _import_cycles("pipeline.engine") == []


def test_the_circle_check_would_catch_one_kept_for_type_checking():
    probes = [ROOT / "pipeline" / "engine" / f"_circle_probe_{x}.py" for x in "ab"]
    probes[0].write_text("from pipeline.engine._circle_probe_b import B\n", encoding="utf-8")
    probes[1].write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from pipeline.engine._circle_probe_a import A\n",
        encoding="utf-8",
    )
    try:
        assert _import_cycles("pipeline.engine") == [
            ["pipeline.engine._circle_probe_a", "pipeline.engine._circle_probe_b",
             "pipeline.engine._circle_probe_a"]
        ]  # fmt: skip
    finally:
        for probe in probes:
            probe.unlink()


def test_the_parsers_adapter_choices_are_the_adapters():
    from pipeline.apps.cli.parser import ADAPTER_CHOICES
    from pipeline.models.adapters import ADAPTER_NAMES

    assert ADAPTER_CHOICES == ADAPTER_NAMES


def test_the_option_tables_choices_are_the_engines():
    from pipeline import option_table as opt
    from pipeline.engine.frame_queue import QueuePolicy
    from pipeline.engine.service_classes import ServiceClass

    assert opt.POLICY.choices == tuple(p.value for p in QueuePolicy)
    assert opt.SERVICE_CLASS.choices == tuple(c.value for c in ServiceClass)


def test_every_option_has_one_default_in_the_parser_the_config_and_the_engine():
    """The command line's defaults, the TOML tables' and the engine's are the table's."""
    import dataclasses

    from pipeline import DetectorOptions, LiveOptions
    from pipeline import option_table as opt
    from pipeline.apps.cli.parser import build_parser
    from pipeline.apps.serve.config import CameraConfig, ModelConfig
    from pipeline.engine.motion_options import MotionOptions

    parser = build_parser()
    args = vars(parser.parse_args(["run", "x.mp4", "--model", "m.xml"]))
    run = parser._subparsers._group_actions[0].choices["run"]
    built = {
        a.dest for a in run._actions if a.help in {o.help_text() for o in opt.OPTIONS.values()}
    }
    fields = [f for c in (CameraConfig, ModelConfig) for f in dataclasses.fields(c)]
    assert len(built) > 25 and len([f for f in fields if "option" in f.metadata]) > 25
    for name in built:
        assert args[name] == opt.OPTIONS[name].default, name
    for f in fields:
        if "option" in f.metadata:
            assert f.default == f.metadata["option"].default, f.name
    defaults = DetectorOptions()
    assert (defaults.iou, defaults.device, defaults.adapter) == (0.7, "AUTO", "auto")
    assert LiveOptions().open_timeout == opt.OPEN_TIMEOUT.default == args["open_timeout"]
    assert MotionOptions().keepalive == opt.MOTION_KEEPALIVE.fallback


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


def test_the_local_and_the_cluster_pipeline_both_are_running_pipelines():
    """Each method of `RunningPipeline`, with its parameters, on both (no stand-in objects)."""
    import inspect

    from pipeline.apps.cluster.serve import ClusterPipeline
    from pipeline.engine.pipeline import Pipeline
    from pipeline.engine.running import RunningPipeline

    methods = [n for n, v in vars(RunningPipeline).items() if inspect.isfunction(v) and n[0] != "_"]
    assert {"inference", "request_load", "add_stream", "remove_stream", "run"} <= set(methods)
    for cls in (Pipeline, ClusterPipeline):
        for name in methods:
            wanted = inspect.signature(getattr(RunningPipeline, name)).parameters
            given = inspect.signature(getattr(cls, name)).parameters
            takes_any = any(p.kind is p.VAR_KEYWORD for p in given.values())
            missing = [p for p in wanted if p not in given and not takes_any]
            assert missing == [], f"{cls.__name__}.{name} lacks {missing}"
