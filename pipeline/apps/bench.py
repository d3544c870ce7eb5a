"""`vapipe bench`: inference-only, decode-only and end-to-end throughput in one run."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.apps.stopping import StopController
from pipeline.engine.pipeline import Pipeline
from pipeline.models.detector import Detector
from pipeline.outputs.sinks import JsonlSink
from pipeline.summary import RunSummary
from sources import VideoSource, sources_from_specs
from sources.synthetic import SyntheticSource


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

    @property
    def e2e_over_inference(self) -> float:
        return self.e2e_fps / self.inference_fps if self.inference_fps else 0.0

    @property
    def e2e_over_combined(self) -> float:
        return self.e2e_fps / self.combined_limit_fps if self.combined_limit_fps else 0.0

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "ratio_e2e_over_inference": round(self.e2e_over_inference, 3),
            "ratio_e2e_over_combined_limit": round(self.e2e_over_combined, 3),
        }

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
        head = (
            f"model {self.model} on {self.device} (executed on "
            f"{', '.join(self.execution_devices)}), {self.nireq} requests, {self.streams} streams"
        )
        width = max(len(name) for name, _ in rows)
        return "\n".join([head, *(f"{name:<{width}}  {value}" for name, value in rows)])


def measure_inference(
    detector: Detector, seconds: float, stop: StopController | None = None
) -> float:
    """Frames per second with every request kept busy on one fixed input, as benchmark_app;
    ends early if `stop` is requested (the figure is then not to be reported)."""
    runtime = detector.runtime
    tensor = np.zeros(runtime.input_shape, dtype=np.uint8)
    runtime.set_callback(lambda outputs, userdata: None)
    for _ in range(runtime.nireq):  # warm-up
        runtime.submit(tensor, None)
    runtime.drain()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds and not (stop and stop.requested):
        runtime.submit(tensor, None)
        done += 1
    runtime.drain()
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
    device: str = "AUTO",
    seconds: float = 10.0,
    nireq: int | None = None,
    rounds: int = 1,
    stop: StopController | None = None,
) -> BenchReport | None:
    """Measure the three throughputs on one compiled model, in this process.

    With several `rounds`, inference-only and end-to-end phases alternate and the report gives
    their medians: on a shared, noisy machine, a ratio of two phases measured side by side is
    steadier than one of phases minutes apart. A `stop` request ends the bench: a round cut
    short is left out, and with no round complete there is no report (None).
    """
    with closing(Detector.load(model, device=device, nireq=nireq)) as detector:
        stopped = lambda: stop is not None and stop.requested  # noqa: E731
        inference_fps = measure_inference(detector, seconds, stop)
        synthetic_frames = max(1, int(inference_fps * seconds / streams))
        decode_fps = measure_decode(_streams(sources, streams, synthetic_frames), seconds, stop)
        latencies: list[float] = []
        measured = []
        for round_index in range(rounds):
            if round_index:
                inference_fps = measure_inference(detector, seconds, stop)
            round_latencies: list[float] = []
            summary = _measure_e2e(detector, _streams(sources, streams, synthetic_frames),
                                   seconds, round_latencies, stop)  # fmt: skip
            if stopped() or summary.interrupted:
                break
            latencies += round_latencies
            combined = 1.0 / (1.0 / inference_fps + 1.0 / decode_fps)
            measured.append((inference_fps, summary, combined))
        if not measured:
            return None
        inference_fps = statistics.median(m[0] for m in measured)
        e2e_fps = statistics.median(m[1].total_fps for m in measured)
        combined = 1.0 / (1.0 / inference_fps + 1.0 / decode_fps)
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (0.0, 0.0)
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
                }
                for inf, summary, comb in measured
            ],
            classes={name: asdict(c) for name, c in measured[-1][1].classes.items()},
        )


def _measure_e2e(
    detector: Detector,
    sources: list[VideoSource],
    seconds: float,
    latencies: list[float],
    stop: StopController | None = None,
) -> RunSummary:
    """The whole pipeline with a JSONL sink for `seconds`; latencies are appended. A `stop`
    request ends it early, and its summary then says `interrupted`."""
    with tempfile.TemporaryDirectory(prefix="vapipe-bench-") as out:
        sinks = [JsonlSink(out), lambda result: latencies.append(result.latency_ms)]
        with Pipeline(sources, detector, sinks=sinks) as pipeline:
            if stop is None:
                return pipeline.run(duration=seconds)
            with stop.stopping(pipeline.stop):
                return pipeline.run(duration=seconds)
