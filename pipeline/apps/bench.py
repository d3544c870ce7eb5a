"""`vapipe bench`: inference-only, decode-only and end-to-end throughput in one run."""

from __future__ import annotations

import dataclasses
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.analytics import AnalyticsOptions, LineSpec, ZoneSpec
from pipeline.apps.stopping import StopController
from pipeline.engine.pipeline import Pipeline
from pipeline.models.classifiers import ClassifyOptions, ClassifySpec
from pipeline.models.detector import Detector
from pipeline.option_table import DEVICE
from pipeline.outputs.sinks import EventsJsonlSink, JsonlSink
from pipeline.summary import RunSummary
from sources import VideoSource, sources_from_specs
from sources.synthetic import SyntheticSource


@dataclass(frozen=True)
class CascadeFigures:
    """End-to-end throughput with second-stage models against the detector alone, measured
    side by side (medians over rounds). `paced` classifies each detection once per
    `paced_every` frames (about once per `reclassify_seconds` of stream time): the rate at which
    tracking classifies a track that stays in view, without a tracker."""

    classifiers: list[str]
    detector_fps: float
    detector_cpu_ms: float  # process CPU time per frame
    cascade_fps: float
    cascade_cpu_ms: float
    cascade_inferences_per_frame: float
    paced_every: int
    paced_fps: float
    paced_cpu_ms: float
    paced_inferences_per_frame: float

    @staticmethod
    def _cost(fps: float, cpu_ms: float, alone_fps: float, alone_cpu_ms: float) -> tuple:
        """(fps cost, CPU cost): the throughput lost against the detector alone, measured, and
        as CPU time per frame predicts it where the CPU is the limit (steady on a shared
        machine, where other processes' load makes fps swing)."""
        by_fps = 1 - fps / alone_fps if alone_fps else 0.0
        by_cpu = 1 - alone_cpu_ms / cpu_ms if cpu_ms else 0.0
        return by_fps, by_cpu

    @property
    def cascade_cost(self) -> tuple[float, float]:
        return self._cost(
            self.cascade_fps, self.cascade_cpu_ms, self.detector_fps, self.detector_cpu_ms
        )

    @property
    def paced_cost(self) -> tuple[float, float]:
        return self._cost(
            self.paced_fps, self.paced_cpu_ms, self.detector_fps, self.detector_cpu_ms
        )

    def rows(self) -> list[tuple[str, str]]:
        def row(fps: float, cpu: float, cost: tuple, crops: float) -> str:
            return (
                f"{fps:.1f} fps, {cpu:.2f} ms CPU/frame, {crops:.2f} crops/frame; "
                f"cost {cost[0]:.1%} (fps), {cost[1]:.1%} (CPU)"
            )

        full = row(self.cascade_fps, self.cascade_cpu_ms, self.cascade_cost,
                   self.cascade_inferences_per_frame)  # fmt: skip
        paced = row(self.paced_fps, self.paced_cpu_ms, self.paced_cost,
                    self.paced_inferences_per_frame)  # fmt: skip
        alone = f"{self.detector_fps:.1f} fps, {self.detector_cpu_ms:.2f} ms CPU/frame"
        return [
            ("cascade: detector alone, end to end", alone),
            ("cascade: + classifiers on every detection", full),
            (f"cascade: + classifiers every {self.paced_every} frames", paced),
        ]


@dataclass(frozen=True)
class BenchReport:
    model: str
    device: str
    execution_devices: list[str]
    nireq: int
    streams: int
    inference_fps: float
    decode_fps: float
    combined_limit_fps: float
    e2e_fps: float
    e2e_frames: int
    e2e_decoded: int
    latency_p50_ms: float
    latency_p95_ms: float
    peak_rss_mb: float
    rounds: list[dict] = field(default_factory=list)  # each round's inference and e2e fps
    classes: dict[str, dict] = field(default_factory=dict)  # e2e per service class, last round
    cascade: CascadeFigures | None = None
    tracked_fps: float | None = None  # end to end with tracking, a line and a zone (`track`)
    tracked_cpu_ratio: float | None = None  # CPU per frame with tracking / without (median)
    # process CPU time per frame (medians): steadier than fps on a machine shared with others
    inference_cpu_ms: float | None = None
    e2e_cpu_ms: float | None = None

    @property
    def tracked_over_e2e(self) -> float | None:
        if self.tracked_fps is None or not self.e2e_fps:
            return None
        return self.tracked_fps / self.e2e_fps

    @property
    def e2e_over_inference(self) -> float:
        return self.e2e_fps / self.inference_fps if self.inference_fps else 0.0

    @property
    def e2e_over_inference_cpu(self) -> float | None:
        """Inference-only CPU per frame / end-to-end CPU per frame: what e2e / inference-only
        would be where the CPU is the limit, whatever else the machine runs."""
        if not self.inference_cpu_ms or not self.e2e_cpu_ms:
            return None
        return self.inference_cpu_ms / self.e2e_cpu_ms

    @property
    def e2e_over_combined(self) -> float:
        return self.e2e_fps / self.combined_limit_fps if self.combined_limit_fps else 0.0

    def to_dict(self) -> dict:
        out = {
            **asdict(self),
            "ratio_e2e_over_inference": round(self.e2e_over_inference, 3),
            "ratio_e2e_over_combined_limit": round(self.e2e_over_combined, 3),
        }
        if self.e2e_over_inference_cpu is not None:
            out["ratio_e2e_over_inference_cpu_per_frame"] = round(self.e2e_over_inference_cpu, 3)
        if self.tracked_over_e2e is not None:
            out["ratio_tracked_over_e2e"] = round(self.tracked_over_e2e, 3)
            out["ratio_tracked_over_e2e_cpu_per_frame"] = self.tracked_cpu_ratio
        if self.cascade is not None:
            for name in ("cascade", "paced"):
                by_fps, by_cpu = getattr(self.cascade, f"{name}_cost")
                out["cascade"][f"{name}_cost_fps"] = round(by_fps, 3)
                out["cascade"][f"{name}_cost_cpu"] = round(by_cpu, 3)
        return out

    def format_table(self) -> str:
        rows = [
            ("inference only (fixed input, requests kept full)", f"{self.inference_fps:.1f} fps"),
            ("decode only (one thread, same streams)", f"{self.decode_fps:.1f} fps"),
            ("combined limit 1/(1/infer + 1/decode)", f"{self.combined_limit_fps:.1f} fps"),
            ("end to end (decode→infer→postprocess→JSONL)", f"{self.e2e_fps:.1f} fps"),
            ("end-to-end frames processed / decoded", f"{self.e2e_frames} / {self.e2e_decoded}"),
            ("latency p50 / p95", f"{self.latency_p50_ms:.1f} / {self.latency_p95_ms:.1f} ms"),
            ("peak RSS", f"{self.peak_rss_mb:.0f} MB"),
            ("ratio e2e / inference only", f"{self.e2e_over_inference:.3f}"),
            ("ratio e2e / combined limit", f"{self.e2e_over_combined:.3f}"),
        ]
        if self.e2e_over_inference_cpu is not None:
            rows.append((
                "CPU per frame: inference only, e2e, ratio",
                f"{self.inference_cpu_ms:.2f} ms, {self.e2e_cpu_ms:.2f} ms, "
                f"{self.e2e_over_inference_cpu:.3f}",
            ))  # fmt: skip
        if self.tracked_over_e2e is not None:
            rows.insert(4, ("end to end with tracking, a line and a zone",
                            f"{self.tracked_fps:.1f} fps"))  # fmt: skip
            rows.append(("ratio e2e with tracking / without", f"{self.tracked_over_e2e:.3f}"))
            rows.append(("CPU per frame with tracking / without", f"{self.tracked_cpu_ratio:.3f}"))
        for name, c in self.classes.items():
            rows.append((
                f"{name} class: frames, fps, latency p50 / p95",
                f"{c['frames']}, {c['fps']:.1f} fps, "
                f"{c['latency_p50_ms']:.1f} / {c['latency_p95_ms']:.1f} ms",
            ))  # fmt: skip
        if len(self.rounds) > 1:
            per_round = ", ".join(f"{r['e2e_over_combined']:.3f}" for r in self.rounds)
            rows.insert(0, (f"medians of {len(self.rounds)} interleaved rounds", ""))
            rows.append(("e2e / combined limit per round", per_round))
            if self.tracked_over_e2e is not None:
                per_round = ", ".join(f"{r['tracked_over_e2e']:.3f}" for r in self.rounds)
                rows.append(("tracking / without per round (fps)", per_round))
        if self.cascade is not None:
            rows += self.cascade.rows()
        head = (
            f"model {self.model} on {self.device} (executed on "
            f"{', '.join(self.execution_devices)}), {self.nireq} requests, {self.streams} streams"
        )
        width = max(len(name) for name, _ in rows)
        return "\n".join([head, *(f"{name:<{width}}  {value}" for name, value in rows)])


def measure_inference(
    detector: Detector,
    seconds: float,
    stop: StopController | None = None,
    cpu_ms: list[float] | None = None,
) -> float:
    """Frames per second with every request kept busy on one fixed input, as benchmark_app;
    ends early if `stop` is requested (the figure is then not to be reported). The process
    CPU time per frame (ms) is appended to `cpu_ms`."""
    runtime = detector.runtime
    tensor = np.zeros(runtime.input_shape, dtype=np.uint8)
    runtime.set_callback(lambda outputs, userdata: None)
    for _ in range(runtime.nireq):  # warm-up
        runtime.submit(tensor, None)
    runtime.drain()
    done, started, cpu_started = 0, time.perf_counter(), _cpu_seconds()
    while time.perf_counter() - started < seconds and not (stop and stop.requested):
        runtime.submit(tensor, None)
        done += 1
    runtime.drain()
    if cpu_ms is not None:
        cpu_ms.append(1000 * (_cpu_seconds() - cpu_started) / max(1, done))
    return done / (time.perf_counter() - started)


def measure_decode(
    sources: Sequence[VideoSource], seconds: float, stop: StopController | None = None
) -> float:
    """Frames per second decoding the streams one after another in one thread."""
    frames, started = 0, time.perf_counter()
    for source in sources:
        source.open()
        try:
            while (
                time.perf_counter() - started < seconds
                and not (stop and stop.requested)
                and source.read() is not None
            ):
                frames += 1
        finally:
            source.release()
    return frames / (time.perf_counter() - started)


def _streams(specs: Sequence[str], streams: int, synthetic_frames: int) -> list[VideoSource]:
    if not specs:
        return [SyntheticSource(f"synthetic-{i + 1}", synthetic_frames) for i in range(streams)]
    return sources_from_specs([specs[i % len(specs)] for i in range(streams)])


def run_bench(
    model: str | Path,
    sources: Sequence[str] = (),
    *,
    streams: int = 4,
    device: str = DEVICE.default,
    seconds: float = 10.0,
    nireq: int | None = None,
    rounds: int = 1,
    labels: str | None = None,
    classify: Sequence[str | ClassifySpec] = (),
    classify_options: ClassifyOptions | None = None,
    stop: StopController | None = None,
    track: bool = False,
) -> BenchReport | None:
    """Measure the three throughputs on one compiled model, in this process.

    With several `rounds`, inference-only and end-to-end phases alternate and the report gives
    their medians: on a shared, noisy machine, a ratio of two phases measured side by side is
    steadier than one of phases minutes apart. A `stop` request ends the bench: a round cut
    short is left out, and with no round complete there is no report (None). With `classify`,
    the cascade's figures are measured after, in rounds of their own (see `CascadeFigures`).
    With `track`, each round also runs the end-to-end phase with tracking, a counting line and
    a zone (events written too), after the one without (before it every other round), and
    both phases' CPU time per frame is measured: on a machine shared with other work the CPU
    ratio is steadier than the throughput ratio.
    """
    with closing(Detector.load(model, device=device, nireq=nireq, labels=labels)) as detector:
        stopped = lambda: stop is not None and stop.requested  # noqa: E731
        inference_cpu: list[float] = []
        inference_fps = measure_inference(detector, seconds, stop, inference_cpu)
        synthetic_frames = max(1, int(inference_fps * seconds / streams))
        decode_fps = measure_decode(_streams(sources, streams, synthetic_frames), seconds, stop)
        latencies: list[float] = []
        measured = []
        for round_index in range(rounds):
            if round_index:
                inference_fps = measure_inference(detector, seconds, stop, inference_cpu)
            round_latencies: list[float] = []
            cpu: list[float] = []

            def tracked_phase() -> tuple[RunSummary, float] | None:
                if not track or stopped():
                    return None
                seconds_used: list[float] = []
                summary = _measure_e2e(
                    detector, _streams(sources, streams, synthetic_frames), seconds, [], stop,
                    cpu_seconds=seconds_used, analytics=BENCH_ANALYTICS,
                )  # fmt: skip
                return summary, 1000 * seconds_used[0] / max(1, summary.total_frames)

            tracked = tracked_phase() if round_index % 2 else None  # every other round first
            summary = _measure_e2e(detector, _streams(sources, streams, synthetic_frames),
                                   seconds, round_latencies, stop, cpu_seconds=cpu)  # fmt: skip
            if not round_index % 2:
                tracked = tracked_phase()
            interrupted = tracked is not None and tracked[0].interrupted
            if stopped() or summary.interrupted or interrupted or (track and tracked is None):
                break
            latencies += round_latencies
            combined = 1.0 / (1.0 / inference_fps + 1.0 / decode_fps)
            cpu_ms = 1000 * cpu[0] / max(1, summary.total_frames)
            measured.append((inference_fps, summary, combined, tracked, cpu_ms, inference_cpu[-1]))
        if not measured:
            return None
        inference_fps = statistics.median(m[0] for m in measured)
        e2e_fps = statistics.median(m[1].total_fps for m in measured)
        combined = 1.0 / (1.0 / inference_fps + 1.0 / decode_fps)
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (0.0, 0.0)
        cascade = None
        if classify and not stopped():
            cascade = _measure_cascade(
                detector, lambda: _streams(sources, streams, synthetic_frames), seconds, rounds,
                classify, classify_options or ClassifyOptions(), device, stop,
            )  # fmt: skip
        return BenchReport(
            model=str(detector.model_path),
            device=detector.runtime.plan.device,
            execution_devices=list(detector.runtime.execution_devices),
            nireq=detector.runtime.nireq,
            streams=streams,
            inference_fps=round(inference_fps, 2),
            decode_fps=round(decode_fps, 2),
            combined_limit_fps=round(combined, 2),
            e2e_fps=round(e2e_fps, 2),
            e2e_frames=sum(m[1].total_frames for m in measured),
            e2e_decoded=sum(s.frames_decoded for m in measured for s in m[1].streams),
            latency_p50_ms=round(float(p50), 2),
            latency_p95_ms=round(float(p95), 2),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            rounds=[
                {
                    "inference_fps": round(inf, 2),
                    "e2e_fps": summary.total_fps,
                    "e2e_over_combined": round(summary.total_fps / comb, 3),
                    **(
                        {
                            "tracked_fps": tracked[0].total_fps,
                            "tracked_over_e2e": round(tracked[0].total_fps / summary.total_fps, 3),
                            "cpu_ms_per_frame": round(cpu_ms, 3),
                            "tracked_cpu_ms_per_frame": round(tracked[1], 3),
                        }
                        if tracked is not None and summary.total_fps
                        else {}
                    ),
                }
                for inf, summary, comb, tracked, cpu_ms, _ in measured
            ],
            classes={name: asdict(c) for name, c in measured[-1][1].classes.items()},
            cascade=cascade,
            tracked_fps=(
                round(statistics.median(m[3][0].total_fps for m in measured), 2) if track else None
            ),
            inference_cpu_ms=round(statistics.median(m[5] for m in measured), 3),
            e2e_cpu_ms=round(statistics.median(m[4] for m in measured), 3),
            tracked_cpu_ratio=(
                round(statistics.median(m[3][1] / m[4] for m in measured if m[4] > 0), 3)
                if track
                else None
            ),
        )


# what `--track` adds: tracking, a line across the middle and a zone over the left half
BENCH_ANALYTICS = AnalyticsOptions(
    lines=(LineSpec("middle", (0.0, 0.5), (1.0, 0.5)),),
    zones=(ZoneSpec("left", ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))),),
)


def _measure_cascade(
    detector: Detector,
    make_sources,
    seconds: float,
    rounds: int,
    classify: Sequence[str | ClassifySpec],
    options: ClassifyOptions,
    device: str,
    stop: StopController | None = None,
) -> CascadeFigures | None:
    """The detector alone, the cascade on every frame, and the cascade paced to one
    classification per detection per `reclassify_seconds`, alternated `rounds` times (a round
    cut short by `stop` is left out; None when none completed)."""
    probe = make_sources()[0]
    probe.open()
    fps = probe.fps or 25.0
    probe.release()
    paced_every = max(1, round(fps * options.reclassify_seconds))
    paced = dataclasses.replace(options, every=paced_every)
    phases: dict[str, list[tuple[RunSummary, float]]] = {"alone": [], "full": [], "paced": []}
    for _ in range(rounds):
        measured = {}
        for name, cascade in (("alone", None), ("full", options), ("paced", paced)):
            cpu: list[float] = []
            summary = _measure_e2e(
                detector, make_sources(), seconds, [], stop, classify if cascade else (),
                cascade, device, cpu,
            )  # fmt: skip
            if summary.interrupted or (stop is not None and stop.requested):
                break
            measured[name] = (summary, cpu[0] * 1000 / max(1, summary.total_frames))
        else:
            for name, figures in measured.items():
                phases[name].append(figures)
            continue
        break
    if not phases["full"]:
        return None

    def fps(name: str) -> float:
        return round(statistics.median(s.total_fps for s, _ in phases[name]), 2)

    def cpu_ms(name: str) -> float:
        return round(statistics.median(c for _, c in phases[name]), 3)

    def crops_per_frame(name: str) -> float:
        frames = sum(s.total_frames for s, _ in phases[name])
        crops = sum(s.classify_inferences for s, _ in phases[name])
        return round(crops / frames, 3) if frames else 0.0

    return CascadeFigures(
        classifiers=phases["full"][0][0].classifiers,
        detector_fps=fps("alone"),
        detector_cpu_ms=cpu_ms("alone"),
        cascade_fps=fps("full"),
        cascade_cpu_ms=cpu_ms("full"),
        cascade_inferences_per_frame=crops_per_frame("full"),
        paced_every=paced_every,
        paced_fps=fps("paced"),
        paced_cpu_ms=cpu_ms("paced"),
        paced_inferences_per_frame=crops_per_frame("paced"),
    )


def _cpu_seconds() -> float:
    """CPU time of this process so far (every thread: decoders, OpenVINO, callbacks)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure_e2e(
    detector: Detector,
    sources: list[VideoSource],
    seconds: float,
    latencies: list[float],
    stop: StopController | None = None,
    classify: Sequence[str | ClassifySpec] = (),
    classify_options: ClassifyOptions | None = None,
    device: str = DEVICE.default,
    cpu_seconds: list[float] | None = None,
    analytics: AnalyticsOptions | None = None,
) -> RunSummary:
    """The whole pipeline with a JSONL sink (and an events sink, with `analytics`) for
    `seconds`; latencies are appended, and the process CPU time of the run (not of loading)
    to `cpu_seconds`. A `stop` request ends it early, and its summary then says
    `interrupted`."""
    with tempfile.TemporaryDirectory(prefix="vapipe-bench-") as out:
        sinks = [JsonlSink(out), lambda result: latencies.append(result.latency_ms)]
        if analytics is not None:
            sinks.append(EventsJsonlSink(out))
        with Pipeline(
            sources, detector, sinks=sinks, classify=classify, classify_options=classify_options,
            device=device, analytics=analytics,
        ) as pipeline:  # fmt: skip
            cpu_started = _cpu_seconds()
            if stop is None:
                summary = pipeline.run(duration=seconds)
            else:
                with stop.stopping(pipeline.stop):
                    summary = pipeline.run(duration=seconds)
            if cpu_seconds is not None:
                cpu_seconds.append(_cpu_seconds() - cpu_started)
    return summary
