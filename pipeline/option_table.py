"""Every model and stream option, declared once: name, type, default, unit, help, bounds.

The command line's arguments (`pipeline.apps.cli.parser`), the service's TOML `[model]` and
`[cameras.NAME]` keys (`pipeline.apps.serve.config`, which the HTTP API's validation uses) and
the engine's defaults (`DetectorOptions`, `MotionOptions`) are all built from these
declarations. Adding an option: declare it here, add it to the parser's group and to the TOML
table with `option_field`, and map it to the engine's settings.

Light on purpose (standard library and `sources.live_options` only): `vapipe --help` loads it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.counting_defaults import CONFIRM_SECONDS, MAX_SECONDS, ZONE_MIN_SECONDS
from sources.live_options import LiveOptions


class OptionValueError(ValueError):
    """A value outside an option's bounds; the message reads after the option's name."""


@dataclass(frozen=True)
class Bounds:
    """Where a number must lie, and how to say it ("must be <text>, got ...")."""

    text: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is outside
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


UNIT_INTERVAL = Bounds("between 0 and 1", 0.0, 1.0)
POSITIVE = Bounds("a positive number", 0.0, low_open=True)
FRACTION = Bounds("a fraction in (0, 1]", 0.0, 1.0, low_open=True)
SECONDS = Bounds(f"a number of seconds from 0 to {MAX_SECONDS}", 0.0, MAX_SECONDS, high_open=True)


def at_least(low: int) -> Bounds:
    return Bounds(f"{low} or more", low)


@dataclass(frozen=True)
class Option:
    """One option. `kind` is its value's type (float, int, str, bool); `default` the value
    when not given (None: unset, the engine decides; `default_text` then says what it
    does, or `fallback` is the value the engine then takes); `unit` e.g. "s" or "pixels";
    `choices` the allowed strings; `bounds` where a number must lie; `flag` the command
    line's (default --name-with-dashes); `implies` what the option's mere presence turns on
    (said in the help)."""

    name: str
    kind: type
    default: Any
    help: str
    unit: str | None = None
    choices: tuple[str, ...] | None = None
    bounds: Bounds | None = None
    flag: str | None = None
    metavar: str | None = None
    default_text: str | None = None
    fallback: Any = None
    implies: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value: Any, given: object = None) -> Any:
        """`value` (already of `kind`) if allowed; OptionValueError ("must be ..., got
        `given`", default the value) if not."""
        if value is None:
            return value
        if self.choices is not None and value not in self.choices:
            raise OptionValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        if self.bounds is not None and not self.bounds.holds(value):
            shown = value if given is None else given
            raise OptionValueError(f"must be {self.bounds.text}, got {shown}")
        return value

    def from_text(self) -> Callable[[str], Any]:
        """The command line's converter: text -> checked value (ValueError if not one)."""
        kind = self.kind

        def convert(text: str) -> Any:
            try:
                return self.check(kind(text), text)
            except OptionValueError as error:  # argparse shows the message as it is
                raise argparse.ArgumentTypeError(str(error)) from None

        convert.__name__ = kind.__name__  # argparse: "invalid float value: 'x'"
        return convert

    def help_text(self) -> str:
        """The help with its default and what it implies, as `vapipe --help` shows it."""
        shown = self.default_text
        value = self.fallback if self.default is None else self.default
        if shown is None and value is not None and not isinstance(value, bool):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
        notes = [f"default {shown}"] if shown else []
        if self.implies:
            notes.append(f"implies {self.implies}")
        if not notes:
            return self.help
        if self.help.endswith(")"):  # "... (without tracking)" -> "... (without tracking; ...)"
            return f"{self.help[:-1]}; {'; '.join(notes)})"
        return f"{self.help} ({'; '.join(notes)})"


# -- the model -----------------------------------------------------------------------------------

# The adapters' names, spelt out so that `vapipe --help` does not load OpenVINO to list them
# (tests/test_layout.py checks them against pipeline.models.adapters.ADAPTER_NAMES).
ADAPTER_CHOICES = (
    "auto", "ssd", "omz-boxes", "yolo-end2end", "yolo-seg", "yolo-pose", "yolo", "yolov5",
    "blazeface",
)  # fmt: skip
# Likewise the classifier families (tests/test_classifiers.py checks them).
CLASSIFY_ADAPTER_CHOICES = ("auto", "softmax", "multilabel")

DEVICE = Option("device", str, "AUTO", "OpenVINO device string")
ADAPTER = Option(
    "adapter", str, "auto", "how the model's outputs are read", choices=ADAPTER_CHOICES
)
CONF = Option(
    "conf", float, None, "score threshold", bounds=UNIT_INTERVAL, default_text="yolo 0.25, ssd 0.5"
)
IOU = Option("iou", float, 0.7, "NMS IoU", bounds=UNIT_INTERVAL)
NIREQ = Option(
    "nireq", int, None, "requests in flight", bounds=at_least(1), default_text="2 x optimal"
)
LABELS = Option("labels", str, None, "class names: a file (one per line) or a,b,c")
CLASSIFY_ADAPTER = Option(
    "classify_adapter", str, "auto", "classifier family", choices=CLASSIFY_ADAPTER_CHOICES,
    default_text="from the model's outputs",
)  # fmt: skip
CLASSIFY_EVERY = Option(
    "classify_every", int, 1,
    "classify every Nth analysed frame of a stream (without tracking)",
    unit="frames", bounds=at_least(1), metavar="N",
)  # fmt: skip
CLASSIFY_MIN_SIZE = Option(
    "classify_min_size", int, 0, "skip crops narrower than PIXELS (e.g. 72 for vehicle attributes)",
    unit="pixels", bounds=at_least(0), metavar="PIXELS",
)  # fmt: skip
RECLASSIFY_SECONDS = Option(
    "reclassify_seconds", float, 1.0, "with tracking: classify a track again every S seconds",
    unit="s", bounds=POSITIVE, metavar="S",
)  # fmt: skip

MODEL_OPTIONS = (
    DEVICE, ADAPTER, CONF, IOU, NIREQ, LABELS, CLASSIFY_ADAPTER, CLASSIFY_EVERY,
    CLASSIFY_MIN_SIZE, RECLASSIFY_SECONDS,
)  # fmt: skip

# -- streams -------------------------------------------------------------------------------------

POLICY = Option(
    "policy", str, None,
    "when inference lags: block (files' default) or drop-oldest (live default)",
    choices=("block", "drop-oldest"),  # QueuePolicy's values (tests/test_layout.py checks)
)  # fmt: skip
EVERY = Option(
    "every", int, 1, "analyse every Nth frame", unit="frames", bounds=at_least(1),
    default_text="",
)  # fmt: skip
MAX_FPS = Option(
    "max_fps", float, None, "analyse at most F frames/s/stream", unit="frames/s", bounds=POSITIVE
)
RTSP_TRANSPORT = Option("rtsp_transport", str, "tcp", "RTSP transport", choices=("tcp", "udp"))
OPEN_TIMEOUT = Option(
    "open_timeout", float, LiveOptions.open_timeout, "seconds to open a live stream",
    unit="s", bounds=POSITIVE,
)  # fmt: skip
READ_TIMEOUT = Option(
    "read_timeout", float, LiveOptions.read_timeout,
    "seconds without a frame before a live stream counts as lost", unit="s", bounds=POSITIVE,
)  # fmt: skip
MAX_RETRIES = Option(
    "max_retries", int, LiveOptions.max_retries,
    "failed connection attempts in a row before a live stream fails", bounds=at_least(0),
    default_text="forever",
)  # fmt: skip
REALTIME = Option(
    "realtime", bool, False,
    "read video files at their own frame rate, as cameras (then live: drop-oldest)",
)  # fmt: skip
LOOP = Option("loop", bool, False, "start video files again at their end (no end)")
DECODER = Option(
    "decoder", str, "opencv",
    "decode files and network streams with OpenCV (default) or PyAV (pip install "
    "'vapipe[pyav]'); capture devices use OpenCV",
    choices=("opencv", "pyav"), default_text="",
)  # fmt: skip
DEBLOCKING = Option(
    "deblocking", bool, True,
    "with --decoder pyav: skip H.264's deblocking filter (about a sixth less decoding CPU; "
    "blockier pictures, see benchmarks/results/density.md)",
    flag="--no-deblocking",
)  # fmt: skip
SKIP_NONREF = Option(
    "skip_nonref", bool, False,
    "with --decoder pyav: leave H.264 pictures no other refers to (B-frames) undecoded; "
    "counted as skipped (for sampled streams)",
)  # fmt: skip
SERVICE_CLASS = Option(
    "service_class", str, None,
    "the stream's service class (default: live for cameras and streams, batch for files)",
    choices=("live", "batch"),  # ServiceClass's values (tests/test_layout.py checks)
)  # fmt: skip
TRACK = Option(
    "track", bool, False,
    "follow objects over time: track ids, events (DIR/<stream>.events.jsonl), counts",
)  # fmt: skip
CONFIRM = Option(
    "confirm_seconds", float, CONFIRM_SECONDS,
    "a new track becomes an object (id, counts, events) once matched in every frame for S "
    "seconds of video", unit="s", bounds=SECONDS, metavar="S",
)  # fmt: skip
ZONE_MIN = Option(
    "zone_min_seconds", float, ZONE_MIN_SECONDS,
    "a track enters or leaves a zone once it has stayed on the other side of its edge for S "
    "seconds of video", unit="s", bounds=SECONDS, metavar="S",
)  # fmt: skip
CLASSIFY = Option(
    "classify", bool, True, "the stream's detections go to the second stage (if there is one)"
)
MOTION = Option(
    "motion", bool, False,
    "infer only frames with motion or live tracks (and a keep-alive); the others are results "
    'with "skipped": "no_motion"',
)  # fmt: skip
# None: unset (MotionOptions' default, the `fallback`); any of them given turns motion on.
MOTION_THRESHOLD = Option(
    "motion_threshold", float, None,
    "grey-level change of a moving pixel, a fraction of full scale", unit="fraction",
    bounds=FRACTION, metavar="F", fallback=0.06, implies="--motion",
)  # fmt: skip
MOTION_MIN_AREA = Option(
    "motion_min_area", float, None, "smallest moving region, a fraction of the frame",
    unit="fraction", bounds=FRACTION, metavar="F", fallback=0.002, implies="--motion",
)  # fmt: skip
MOTION_KEEPALIVE = Option(
    "motion_keepalive", float, None, "infer at least one frame every SECONDS without motion",
    unit="s", bounds=POSITIVE, metavar="SECONDS", fallback=5.0, implies="--motion",
)  # fmt: skip

STREAM_OPTIONS = (
    POLICY, EVERY, MAX_FPS, RTSP_TRANSPORT, OPEN_TIMEOUT, READ_TIMEOUT, MAX_RETRIES, REALTIME,
    LOOP, DECODER, DEBLOCKING, SKIP_NONREF, SERVICE_CLASS, TRACK, CONFIRM, ZONE_MIN, CLASSIFY,
    MOTION, MOTION_THRESHOLD, MOTION_MIN_AREA, MOTION_KEEPALIVE,
)  # fmt: skip

OPTIONS = {option.name: option for option in (*MODEL_OPTIONS, *STREAM_OPTIONS)}
