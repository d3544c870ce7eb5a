"""The service's TOML config: typed, frozen, checked key by key.

    [model]           path, device, adapter, conf, iou, nireq, labels, classify ...
    [http]            bind, token, media_root, mjpeg_clients_per_camera
    [mqtt]            host, port, topic_prefix, username, password, tls ... (optional)
    [output]          dir, save_video (optional)
    [cluster]         address, workers, expose_ray_ports: the cameras run on a Ray cluster
    [cameras.NAME]    source and every stream option of `vapipe run`, plus realtime, loop,
                      track, lines, zones, classify, class, motion, motion_threshold,
                      motion_min_area, motion_mask, motion_keepalive

Read with the standard library's tomllib (tomli on Python 3.10). The checks are written here
rather than with a schema library: each field carries its own parser, so every error is one
line with the key's path (`cameras.gate.max_fps: must be a positive number, got -1`), an
unknown key names its table and the nearest valid key, and a TOML syntax error its line and
column. Relative paths (model, output folder, file sources, TLS files) are relative to the
config file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.analytics.options import (
    AnalyticsError,
    AnalyticsOptions,
    LineSpec,
    ZoneSpec,
)
from pipeline.analytics.tracker import TrackerOptions
from pipeline.counting_defaults import CONFIRM_SECONDS, MAX_SECONDS, ZONE_MIN_SECONDS
from pipeline.engine.motion_options import MotionOptions, motion_masks
from pipeline.errors import VapipeError
from pipeline.models.adapters import ADAPTER_NAMES
from sources import DecoderOptions, SourceError, is_live_uri

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CAMERA_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # used with fullmatch: no newline, no "/"
MAX_NAME = 64


def valid_name(name: str) -> bool:
    """A camera, line or zone name: letters, digits, _ . - (at most 64), not only dots (so it
    never names `.` or `..` as a file name under `[output] dir`)."""
    return CAMERA_NAME.fullmatch(name) is not None and name.strip(".") != ""


class ConfigError(VapipeError):
    """The config (a file or an API request body) is not valid; the message names the key."""


# -- value parsers: (path, value) -> value, raising ConfigError ---------------------------------

Parser = Callable[[str, Any], Any]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, Mapping)):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def _string(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: must be a non-empty string, got {_kind(value)}")
    return value


def _topic_prefix(path: str, value: Any) -> str:
    """An MQTT topic to publish under: no wildcard (+ #), no NUL, not only slashes."""
    text = _string(path, value)
    if any(c in text for c in "+#\0") or not text.strip("/"):
        raise ConfigError(
            f"{path}: {text!r} cannot be published to (no + or #, not empty); e.g. site/vapipe"
        )
    return text


def _boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: must be true or false, got {_kind(value)}")
    return value


def _number(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{path}: must be a number, got {_kind(value)}")
    return float(value)


def _integer(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: must be an integer, got {_kind(value)}")
    return value


def _positive_float(path: str, value: Any) -> float:
    number = _number(path, value)
    if number <= 0:
        raise ConfigError(f"{path}: must be a positive number, got {value}")
    return number


def _seconds(path: str, value: Any) -> float:
    number = _number(path, value)
    if not 0 <= number < MAX_SECONDS:
        raise ConfigError(
            f"{path}: must be a number of seconds from 0 to {MAX_SECONDS}, got {value}"
        )
    return number


def _unit_interval(path: str, value: Any) -> float:
    number = _number(path, value)
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{path}: must be between 0 and 1, got {value}")
    return number


def _int_at_least(low: int) -> Parser:
    def parse(path: str, value: Any) -> int:
        number = _integer(path, value)
        if number < low:
            raise ConfigError(f"{path}: must be {low} or more, got {value}")
        return number

    return parse


def _port(path: str, value: Any) -> int:
    number = _integer(path, value)
    if not 0 < number < 65536:
        raise ConfigError(f"{path}: must be a port number (1-65535), got {value}")
    return number


def _choice(*allowed: str) -> Parser:
    def parse(path: str, value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"{path}: must be one of {', '.join(allowed)}, got {_kind(value)}")
        return value

    return parse


def _strings(path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: must be an array of strings, got {_kind(value)}")
    return tuple(_string(f"{path}[{i}]", item) for i, item in enumerate(value))


def _labels(path: str, value: Any) -> str:
    """An array of class names, or a string (a labels file, or names separated by commas)."""
    if isinstance(value, list):
        names = _strings(path, value)
        if any("," in name for name in names):
            raise ConfigError(f"{path}: a class name cannot contain a comma")
        return ",".join(names)
    return _string(path, value)


def _bind(path: str, value: Any) -> tuple[str, int]:
    text = _string(path, value)
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise ConfigError(f"{path}: expected HOST:PORT (e.g. 127.0.0.1:8080), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _table(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: must be a table, got {_kind(value)}")
    return value


@dataclass(frozen=True)
class Line:
    """A counting segment, its ends as fractions (0..1) of the frame's width and height."""

    name: str
    points: tuple[float, float, float, float]

    def spec(self) -> LineSpec:
        x1, y1, x2, y2 = self.points
        return LineSpec(self.name, (x1, y1), (x2, y2))


@dataclass(frozen=True)
class Zone:
    """A polygon, its corners as fractions (0..1) of the frame's width and height."""

    name: str
    points: tuple[float, ...]  # x1, y1, x2, y2, ... (at least 3 corners)

    def spec(self) -> ZoneSpec:
        corners = zip(self.points[::2], self.points[1::2], strict=True)
        return ZoneSpec(self.name, tuple(corners))


def _named(path: str, value: Any) -> list[tuple[str, str, Any]]:
    items = []
    for name, points in _table(path, value).items():
        if not valid_name(name):
            raise ConfigError(
                f"{path}.{name!r}: a name may hold only letters, digits, _ . - (at most "
                f"{MAX_NAME}, not only dots)"
            )
        if not isinstance(points, list):
            raise ConfigError(f"{path}.{name}: must be an array of numbers, got {_kind(points)}")
        numbers = tuple(_unit_interval(f"{path}.{name}[{i}]", p) for i, p in enumerate(points))
        items.append((f"{path}.{name}", name, numbers))
    return items


def _fraction(path: str, value: Any) -> float:
    number = _number(path, value)
    if not 0.0 < number <= 1.0:
        raise ConfigError(f"{path}: must be a fraction in (0, 1], got {value}")
    return number


def _masks(path: str, value: Any) -> tuple[tuple[float, ...], ...]:
    """Motion masks: `[[x1, y1, x2, y2, x3, y3, ...], ...]`, fractions of the frame."""
    if not isinstance(value, list):
        raise ConfigError(f"{path}: must be an array of polygons, got {_kind(value)}")
    masks = []
    for i, polygon in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(polygon, list):
            raise ConfigError(f"{where}: must be an array of numbers, got {_kind(polygon)}")
        numbers = tuple(_unit_interval(f"{where}[{j}]", p) for j, p in enumerate(polygon))
        if len(numbers) < 6 or len(numbers) % 2:
            raise ConfigError(
                f"{where}: expected at least 3 corners [x1, y1, x2, y2, x3, y3, ...], "
                f"got {len(numbers)} numbers"
            )
        masks.append(numbers)
    return tuple(masks)


def _lines(path: str, value: Any) -> tuple[Line, ...]:
    lines = []
    for where, name, numbers in _named(path, value):
        if len(numbers) != 4:
            raise ConfigError(f"{where}: expected [x1, y1, x2, y2], got {len(numbers)} numbers")
        if numbers[:2] == numbers[2:]:
            raise ConfigError(f"{where}: the two ends are the same point")
        lines.append(Line(name, numbers))
        _checked(where, lines[-1].spec)
    return tuple(lines)


def _zones(path: str, value: Any) -> tuple[Zone, ...]:
    zones = []
    for where, name, numbers in _named(path, value):
        if len(numbers) < 6 or len(numbers) % 2:
            raise ConfigError(
                f"{where}: expected at least 3 corners [x1, y1, x2, y2, x3, y3, ...], "
                f"got {len(numbers)} numbers"
            )
        zones.append(Zone(name, numbers))
        _checked(where, zones[-1].spec)  # crossing edges, no area
    return tuple(zones)


def _checked(where: str, make: Callable[[], object]) -> None:
    """Run the tracking layer's own checks of a line or zone, as a ConfigError at `where`."""
    try:
        make()
    except AnalyticsError as error:
        raise ConfigError(f"{where}: {str(error).split(': ', 1)[-1]}") from None


def _key(parse: Parser, key: str | None = None) -> dict:
    """Field metadata: the value's parser, and its TOML key when it is not the field's name."""
    return {"parse": parse, "key": key}


# -- the tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    path: str = field(metadata=_key(_string))
    device: str = field(default="AUTO", metadata=_key(_string))
    adapter: str = field(default="auto", metadata=_key(_choice(*ADAPTER_NAMES)))
    conf: float | None = field(default=None, metadata=_key(_unit_interval))
    iou: float = field(default=0.7, metadata=_key(_unit_interval))
    nireq: int | None = field(default=None, metadata=_key(_int_at_least(1)))
    labels: str | None = field(default=None, metadata=_key(_labels))
    classify: tuple[str, ...] = field(default=(), metadata=_key(_strings))  # [LABELS:]MODEL
    classify_adapter: str = field(
        default="auto", metadata=_key(_choice("auto", "softmax", "multilabel"))
    )
    classify_every: int = field(default=1, metadata=_key(_int_at_least(1)))
    classify_min_size: int = field(default=0, metadata=_key(_int_at_least(0)))
    reclassify_seconds: float = field(default=1.0, metadata=_key(_positive_float))


@dataclass(frozen=True)
class HttpConfig:
    bind: tuple[str, int] = field(default=("127.0.0.1", 8080), metadata=_key(_bind))
    token: str | None = field(default=None, metadata=_key(_string), repr=False)
    media_root: str | None = field(default=None, metadata=_key(_string))
    mjpeg_clients_per_camera: int = field(default=4, metadata=_key(_int_at_least(1)))


@dataclass(frozen=True)
class MqttConfig:
    host: str = field(metadata=_key(_string))
    port: int = field(default=1883, metadata=_key(_port))
    topic_prefix: str = field(default="vapipe", metadata=_key(_topic_prefix))
    client_id: str | None = field(default=None, metadata=_key(_string))
    username: str | None = field(default=None, metadata=_key(_string))
    password: str | None = field(default=None, metadata=_key(_string), repr=False)
    keepalive: int = field(default=60, metadata=_key(_int_at_least(5)))
    tls: bool = field(default=False, metadata=_key(_boolean))
    ca_file: str | None = field(default=None, metadata=_key(_string))
    cert_file: str | None = field(default=None, metadata=_key(_string))
    key_file: str | None = field(default=None, metadata=_key(_string))
    tls_insecure: bool = field(default=False, metadata=_key(_boolean))
    queue_size: int = field(default=10_000, metadata=_key(_int_at_least(1)))


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = field(default=None, metadata=_key(_string))
    save_video: bool = field(default=False, metadata=_key(_boolean))


def _cluster_address(path: str, value: Any) -> str:
    text = _string(path, value)
    host, _, port = text.rpartition(":")
    if text in ("local", "auto") or text.startswith("ray://") or (host and port.isdigit()):
        return text
    raise ConfigError(
        f"{path}: must be local (start Ray here), auto, HOST:PORT or ray://HOST:PORT, got {text!r}"
    )


@dataclass(frozen=True)
class ClusterConfig:
    """The cameras run on a Ray cluster's workers (`vapipe run --ray`); the service, its API
    and outputs stay here."""

    address: str = field(default="local", metadata=_key(_cluster_address))
    workers: int | None = field(default=None, metadata=_key(_int_at_least(1)))
    # `local` starts Ray here, whose ports take tasks from anyone who reaches them, without
    # authentication (and Ray binds the machine's address, not loopback): only when asked.
    expose_ray_ports: bool = field(default=False, metadata=_key(_boolean))


@dataclass(frozen=True)
class CameraConfig:
    """One camera: its source and how it is read, sampled, analysed and counted."""

    name: str
    source: str = field(metadata=_key(_string), repr=False)  # may hold credentials
    policy: str | None = field(default=None, metadata=_key(_choice("block", "drop-oldest")))
    every: int = field(default=1, metadata=_key(_int_at_least(1)))
    max_fps: float | None = field(default=None, metadata=_key(_positive_float))
    rtsp_transport: str = field(default="tcp", metadata=_key(_choice("tcp", "udp")))
    open_timeout: float = field(default=5.0, metadata=_key(_positive_float))
    read_timeout: float = field(default=5.0, metadata=_key(_positive_float))
    max_retries: int | None = field(default=None, metadata=_key(_int_at_least(0)))
    realtime: bool = field(default=False, metadata=_key(_boolean))
    loop: bool = field(default=False, metadata=_key(_boolean))
    track: bool = field(default=False, metadata=_key(_boolean))
    lines: tuple[Line, ...] = field(default=(), metadata=_key(_lines))
    zones: tuple[Zone, ...] = field(default=(), metadata=_key(_zones))
    confirm_seconds: float = field(default=CONFIRM_SECONDS, metadata=_key(_seconds))
    zone_min_seconds: float = field(default=ZONE_MIN_SECONDS, metadata=_key(_seconds))
    classify: bool = field(default=True, metadata=_key(_boolean))
    decoder: str = field(default="opencv", metadata=_key(_choice("opencv", "pyav")))
    deblocking: bool = field(default=True, metadata=_key(_boolean))
    skip_nonref: bool = field(default=False, metadata=_key(_boolean))
    service_class: str | None = field(
        default=None, metadata=_key(_choice("live", "batch"), key="class")
    )
    motion: bool = field(default=False, metadata=_key(_boolean))
    motion_threshold: float | None = field(default=None, metadata=_key(_fraction))
    motion_min_area: float | None = field(default=None, metadata=_key(_fraction))
    motion_mask: tuple[tuple[float, ...], ...] = field(default=(), metadata=_key(_masks))
    motion_keepalive: float | None = field(default=None, metadata=_key(_positive_float))

    @property
    def is_file(self) -> bool:
        return not is_live_uri(self.source)

    @property
    def tracked(self) -> bool:
        """Tracking is on: asked for, or implied by lines and zones."""
        return self.track or bool(self.lines or self.zones)

    def decoder_options(self) -> DecoderOptions:
        """How the camera is decoded (as `--decoder`, `--no-deblocking`, `--skip-nonref`)."""
        return DecoderOptions(self.decoder, self.deblocking, self.skip_nonref)

    def analytics(self) -> AnalyticsOptions | None:
        """The camera's tracking, lines and zones for the engine (None: not tracked)."""
        if not self.tracked:
            return None
        return AnalyticsOptions(
            tuple(line.spec() for line in self.lines),
            tuple(zone.spec() for zone in self.zones),
            tracker=TrackerOptions(confirm_seconds=self.confirm_seconds),
            zone_min_seconds=self.zone_min_seconds,
        )

    def motion_options(self) -> MotionOptions | None:
        """The camera's motion gating (None: off); any motion key turns it on."""
        settings = {
            "threshold": self.motion_threshold, "min_area": self.motion_min_area,
            "keepalive": self.motion_keepalive,
        }  # fmt: skip
        given = {key: value for key, value in settings.items() if value is not None}
        if not (self.motion or self.motion_mask or given):
            return None
        return MotionOptions(masks=motion_masks(self.motion_mask), **given)

    def to_table(self) -> dict[str, Any]:
        """The camera as a TOML/JSON table: its source and the keys that differ from the
        defaults, in declaration order (lines and zones as tables of arrays)."""
        table: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if f.name != "source" and value == f.default:
                continue
            if f.name in ("lines", "zones"):
                value = {item.name: list(item.points) for item in value}
            if f.name == "motion_mask":
                value = [list(polygon) for polygon in value]
            table[f.metadata["key"] or f.name] = value
        return table


@dataclass(frozen=True)
class ServiceConfig:
    model: ModelConfig
    http: HttpConfig = HttpConfig()
    mqtt: MqttConfig | None = None
    output: OutputConfig = OutputConfig()
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    cluster: ClusterConfig | None = None
    base_dir: Path = field(default=Path("."), compare=False)  # relative paths start here
    path: Path | None = field(default=None, compare=False)  # the file it was read from

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return (self.base_dir / Path(path).expanduser()).resolve()

    def source_of(self, camera: CameraConfig) -> str:
        """The camera's source as the engine opens it (a file relative to the config's folder)."""
        return str(self.resolve(camera.source)) if camera.is_file else camera.source


# -- building tables from parsed TOML or JSON ----------------------------------------------------


def _unknown(path: str, key: str, valid: list[str], where: str = "") -> ConfigError:
    where = where or (f"[{path}]" if path else "the top level")
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}?" if near else f"valid keys: {', '.join(valid)}"
    full = f"{path}.{key}" if path else key
    return ConfigError(f"{full}: unknown key in {where}; {hint}")


def _build(cls: type, path: str, table: Any, where: str = "", **given: Any) -> Any:
    """An instance of the dataclass `cls` from `table`, every key checked by its parser."""
    table = _table(path, table)
    keys = {
        f.metadata["key"] or f.name: f
        for f in dataclasses.fields(cls)
        if "parse" in f.metadata and f.name not in given
    }
    values = dict(given)
    for key, value in table.items():
        if key not in keys:
            raise _unknown(path, key, list(keys), where)
        full = f"{path}.{key}" if path else key
        values[keys[key].name] = keys[key].metadata["parse"](full, value)
    for key, f in keys.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in values:
            raise ConfigError(f"{path + '.' if path else ''}{key}: missing; it is required")
    return cls(**values)


def parse_camera(name: str, table: Any, path: str = "", where: str = "") -> CameraConfig:
    """A camera from its table (TOML or a JSON body); errors name keys under `path`, and
    an unknown key says it is in `where` (default: the table `[path]`)."""
    if not valid_name(name):
        where = f"{path}: " if path else ""
        raise ConfigError(
            f"{where}camera name {name!r} may hold only letters, digits, _ . - (at most "
            f"{MAX_NAME}, not only dots; e.g. gate-2)"
        )
    camera = _build(CameraConfig, path, table, where, name=name)
    prefix = f"{path}." if path else ""
    for option in ("realtime", "loop"):
        if getattr(camera, option) and not camera.is_file:
            raise ConfigError(f"{prefix}{option}: only for video files; {camera.name} is live")
    try:
        camera.decoder_options()
    except SourceError as error:
        raise ConfigError(f"{prefix}decoder: {error}") from None
    return camera


_SECTIONS = ("model", "http", "mqtt", "output", "cameras", "cluster")


def parse_config(
    document: Mapping[str, Any], base_dir: Path = Path("."), path: Path | None = None
) -> ServiceConfig:
    """A ServiceConfig from a parsed TOML document."""
    for key in document:
        if key not in _SECTIONS:
            raise _unknown("", key, list(_SECTIONS))
    if "model" not in document:
        raise ConfigError('[model] is missing; give at least path = "MODEL.xml"')
    cameras = {
        name: parse_camera(name, table, f"cameras.{name}")
        for name, table in _table("cameras", document.get("cameras", {})).items()
    }
    config = ServiceConfig(
        model=_build(ModelConfig, "model", document["model"]),
        http=_build(HttpConfig, "http", document.get("http", {})),
        mqtt=_build(MqttConfig, "mqtt", document["mqtt"]) if "mqtt" in document else None,
        output=_build(OutputConfig, "output", document.get("output", {})),
        cameras=cameras,
        cluster=_build(ClusterConfig, "cluster", document["cluster"])
        if "cluster" in document
        else None,
        base_dir=base_dir,
        path=path,
    )
    if config.cluster is not None:
        if config.cluster.address == "local" and not config.cluster.expose_ray_ports:
            raise ConfigError(
                'cluster.address: "local" starts Ray on this machine, whose ports run tasks from '
                "anyone on the network without authentication (Ray binds the machine's address, "
                'not loopback); join a cluster (address = "HOST:PORT"), or accept that with '
                "[cluster] expose_ray_ports = true (behind a firewall, or in a loopback-only "
                "network namespace)"
            )
        if config.output.save_video:
            raise ConfigError(
                "output.save_video: not available with [cluster] (frames stay on nodes)"
            )
        for camera in cameras.values():
            if camera.decoder != "opencv":
                raise ConfigError(
                    f"cameras.{camera.name}.decoder: pyav is not available with [cluster] yet"
                )
    return config


_POSITION = re.compile(r"\s*\(at (line \d+, column \d+|end of document)\)$")


def parse_toml(text: str, name: str = "config") -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes one line with its line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = _POSITION.search(message)
        where = f" at {match.group(1)}" if match else ""
        reason = _POSITION.sub("", message)
        raise ConfigError(f"{name}: TOML syntax error{where}: {reason}") from None


def load_config(path: str | Path) -> ServiceConfig:
    """Read and check the config file at `path`; every error is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    try:
        return parse_config(parse_toml(text, str(path)), path.resolve().parent, path)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None


# -- what changed between two configs --------------------------------------------------------------


@dataclass(frozen=True)
class ConfigDiff:
    """What a reload changes: cameras to start, stop and restart, and whether the pipeline
    (model, device or outputs) or the MQTT connection must be remade. A change of [http]
    needs a restart of the service."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    model_changed: bool = False
    output_changed: bool = False
    mqtt_changed: bool = False
    http_changed: bool = False

    @property
    def restarts_pipeline(self) -> bool:
        return self.model_changed or self.output_changed

    @property
    def empty(self) -> bool:
        return self == ConfigDiff()

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", self.added), ("removed", self.removed), ("changed", self.changed)
            )
            if names
        ]  # fmt: skip
        for label, flag in (
            ("model", self.model_changed), ("output", self.output_changed),
            ("mqtt", self.mqtt_changed), ("http", self.http_changed),
        ):  # fmt: skip
            if flag:
                parts.append(f"[{label}] changed")
        return "; ".join(parts) or "no change"


def diff_configs(old: ServiceConfig, new: ServiceConfig) -> ConfigDiff:
    """Compare two configs. A camera whose file source resolves elsewhere counts as changed."""

    def resolved(config: ServiceConfig, name: str) -> tuple[CameraConfig, str]:
        camera = config.cameras[name]
        return camera, config.source_of(camera)

    return ConfigDiff(
        added=tuple(n for n in new.cameras if n not in old.cameras),
        removed=tuple(n for n in old.cameras if n not in new.cameras),
        changed=tuple(
            n for n in new.cameras if n in old.cameras and resolved(old, n) != resolved(new, n)
        ),
        model_changed=old.model != new.model or _resolved_model(old) != _resolved_model(new),
        output_changed=old.output != new.output,
        mqtt_changed=old.mqtt != new.mqtt,
        http_changed=old.http != new.http,
    )


def _resolved_model(config: ServiceConfig) -> Path:
    return config.resolve(config.model.path)
