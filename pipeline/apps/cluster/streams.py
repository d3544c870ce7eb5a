"""`vapipe run --ray`: streams spread over a Ray cluster's nodes, results back to the driver's
sinks in frame order per stream; a lost node's streams restart on the others."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.analytics import AnalyticsOptions
from pipeline.apps.cluster.carry import CarriedTracks
from pipeline.apps.cluster.connect import (
    ClusterError,
    Node,
    connect,
    import_ray,
    on_node,
    shared_machine_cores,
    spread,
    worker_nodes,
)
from pipeline.apps.cluster.stream_worker import (
    START_SECONDS,
    SinkCall,
    StreamSpec,
    StreamWorker,
    WorkerInfo,
)
from pipeline.detections import Result
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.errors import VapipeError
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.sinks import CallbackSink, EventSink, Sink
from pipeline.summary import Progress, RunSummary, StreamOutcome, StreamSummary
from sources import (
    StreamState,
    StreamStatus,
    is_live_uri,
    mask_credentials,
    split_spec,
    unique_names,
)

log = logging.getLogger(__name__)

FINISH_SECONDS = 60.0  # a removed stream's finish is waited for at most this long
UNKNOWN_FPS = 25.0  # a live stream's assumed rate when no --max-fps declares it


def is_live(uri: str) -> bool:
    return is_live_uri(uri) and not Path(uri).is_file()


def stream_spec(
    name: str,
    uri: str,
    options: StreamOptions,
    *,
    own_options: StreamOptions | None = None,
    service_class: ServiceClass | None = None,
    realtime: bool = False,
    loop: bool = False,
) -> StreamSpec:
    """A stream for the workers: a file's absolute path (a missing file is refused here), its
    declared load under its own options or else the run's `options`."""
    live = is_live(uri)
    if not live:
        if not Path(uri).is_file():
            raise VapipeError(f"{uri}: no such file; check the path")
        uri = str(Path(uri).resolve())
    load = declared_load(uri, live, own_options or options)
    return StreamSpec(
        name, uri, live, load, own_options, service_class, realtime and not live, loop and not live
    )


def declared_load(uri: str, live: bool, options: StreamOptions) -> float:
    """Frames per second the stream will be analysed at: its rate (a file's own, or
    `max_fps` or 25 for a live one), capped by `max_fps`, divided by `every`."""
    fps = UNKNOWN_FPS
    if not live:
        import cv2

        capture = cv2.VideoCapture(uri)
        fps = capture.get(cv2.CAP_PROP_FPS) or UNKNOWN_FPS
        capture.release()
    if options.max_fps:
        fps = min(fps, options.max_fps) if not live else options.max_fps
    return fps / max(1, options.every)


def balance(streams: Sequence[StreamSpec], capacity: dict[str, float]) -> dict[str, list]:
    """Streams per worker, heaviest first onto the worker least loaded for its capacity."""
    loads = dict.fromkeys(capacity, 0.0)
    shares: dict[str, list[StreamSpec]] = {worker: [] for worker in capacity}
    for stream in sorted(streams, key=lambda s: -s.load):
        worker = min(loads, key=lambda w: ((loads[w] + stream.load) / capacity[w], w))
        loads[worker] += stream.load
        shares[worker].append(stream)
    return {worker: share for worker, share in shares.items() if share}


@dataclasses.dataclass
class _Delivered:
    """The driver's record of one stream: what reached its sinks, and its restarts."""

    spec: StreamSpec
    opened: bool = False
    last_frame: int = -1  # the last frame index delivered to the sinks
    skipping: bool = False  # the last result was one delivered before: skip its events too
    since: float = 0.0  # when it opened (its first open)
    image: np.ndarray | None = None  # its latest snapshot, if the workers send them
    ended: threading.Event = dataclasses.field(default_factory=threading.Event)  # finished
    carry: CarriedTracks = dataclasses.field(default_factory=CarriedTracks)
    offset: int = 0  # added to a restarted live stream's frame indices
    processed: int = 0
    restarts: int = 0
    summary: StreamSummary | None = None


class ClusterRun:
    """Runs `sources` on workers spread over a Ray cluster's nodes (one per node, or
    `workers`), each owning a compiled model; the results come back to `sinks` here.

    With `analytics`, each stream is tracked on its worker (in frame order, as locally) and its
    events come back to the sinks here that take them. A file restarted on another node is
    tracked again from its start, its results and events already delivered skipped; a live
    one's new tracks are numbered on from the highest delivered, and its summary adds the
    counts of the events delivered before (`CarriedTracks`).

    `sources` are `NAME=URI` specs or `StreamSpec`s (each with its own options). With
    `open_ended`, every worker runs until `stop`, and streams may be added and removed while
    it runs (`add_stream`, `remove_stream`). With `snapshot_seconds`, each stream's frame comes
    along that often and its results carry the latest one (for a live view)."""

    def __init__(
        self,
        sources: Sequence[str | StreamSpec],
        model: str | Path,
        *,
        sinks: Sequence[Sink | Callable[[Result], None]] = (),
        streams: StreamOptions | None = None,
        address: str | None = None,
        workers: int | None = None,
        analytics: AnalyticsOptions | None = None,
        realtime: bool = False,
        loop: bool = False,
        snapshot_seconds: float | None = None,
        open_ended: bool = False,
        detector_options: DetectorOptions | None = None,
    ) -> None:
        from pipeline.models.loader import find_model_file

        import_ray()
        find_model_file(Path(model))  # a missing model is refused here, not on every node
        self.options = streams or StreamOptions()
        self.sinks = [s if isinstance(s, Sink) else CallbackSink(s) for s in sinks]
        self.address = address
        self.workers = workers
        self._model = str(Path(model).resolve())
        # the workers do not share our working folder
        self._detector_options = (detector_options or DetectorOptions()).with_absolute_labels()
        given = [s for s in sources if isinstance(s, StreamSpec)]  # named and set up already
        names, uris = [], []
        for spec in [s for s in sources if not isinstance(s, StreamSpec)]:
            name, uri = split_spec(str(spec))
            name = name or (Path(uri).stem if not is_live(uri) else uri.rstrip("/"))
            names.append(name.rsplit("/")[-1])
            uris.append(uri)
        self.streams = given + [
            stream_spec(name, uri, self.options, realtime=realtime, loop=loop)
            for name, uri in zip(unique_names(names), uris, strict=True)
        ]
        self.analytics = analytics
        self.snapshot_seconds = snapshot_seconds
        self.open_ended = open_ended
        self._launched = threading.Event()  # the workers run: streams may be added
        if analytics is not None:
            analytics.check_streams(s.name for s in self.streams)
        self._delivered = {s.name: _Delivered(s) for s in self.streams}
        self._on_stream_end: Callable[[StreamSummary], None] | None = None
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()  # (worker, lost error)
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Stop every stream (from any thread); `run` then returns the summary."""
        self._stop.set()

    def placement(self) -> dict[str, str]:
        """The node each running stream is on, by stream name."""
        with self._lock:
            running = {w: list(share) for w, share in self._running.items()}
        return {s.name: self._nodes[w].name for w, share in running.items() for s in share}

    def run(
        self,
        on_tick: Callable[[Progress], None] | None = None,
        duration: float | None = None,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
    ) -> RunSummary:
        import ray

        started_ray = not ray.is_initialized()
        connect(self.address)
        try:
            self._on_stream_end = on_stream_end
            return self._run(ray, on_tick, duration)
        finally:
            if started_ray:
                ray.shutdown()

    def _run(self, ray: Any, on_tick: Callable | None, duration: float | None) -> RunSummary:
        self._ray = ray
        self._actors: dict[str, Any] = {}
        self._nodes: dict[str, Node] = {}
        self._info: WorkerInfo | None = None
        self._next_worker = 0
        self._running: dict[str, list[StreamSpec]] = {}  # worker -> its streams
        nodes = spread(worker_nodes(ray), self.workers)
        cores = shared_machine_cores(nodes)
        workers = [
            self._start_worker(node, nodes.count(node), cores[i]) for i, node in enumerate(nodes)
        ]
        self._wait_ready(workers)
        capacity = {w: self._nodes[w].cpus / nodes.count(self._nodes[w]) for w in workers}
        self._capacity = capacity
        started = time.time()
        shares = balance(self.streams, capacity)
        for worker in workers:  # open-ended: every worker runs, to take the streams added
            if worker in shares or self.open_ended:
                self._launch(worker, shares.get(worker, []))
        self._launched.set()
        deadline = started + duration if duration is not None else float("inf")
        interrupted = stopping = False
        try:
            while True:
                try:
                    self._handle_lost(timeout=0.5)
                    if on_tick is not None:
                        on_tick(self._progress())
                    if not stopping and (self._stop.is_set() or time.time() >= deadline):
                        stopping, interrupted = True, self._stop.is_set()
                        self._stop_all()
                    with self._lock:
                        if not self._running:
                            break
                except KeyboardInterrupt:
                    if interrupted:
                        raise
                    interrupted = True
                    log.warning("interrupted: stopping the streams (Ctrl-C again to quit)")
                    self._stop.set()
        finally:
            for actor in self._actors.values():
                ray.kill(actor)
        for sink in self.sinks:
            sink.close()
        if self._failure is not None:
            raise self._failure
        return self._summary(time.time() - started, interrupted)

    # -- workers -----------------------------------------------------------------------------

    def _start_worker(self, node: Node, sharing: int, cores: tuple[int, ...] | None = None) -> str:
        worker = f"w{self._next_worker}"
        self._next_worker += 1
        actor = self._ray.remote(StreamWorker).options(
            num_cpus=0, max_concurrency=4, max_restarts=0, scheduling_strategy=on_node(node.node_id)
        )
        threads = max(1, node.cpus // max(1, sharing))
        self._actors[worker] = actor.remote(
            self._model, node.name, threads, self.options, self._detector_options, self.analytics,
            self.snapshot_seconds, cores,
        )  # fmt: skip
        self._nodes[worker] = node
        return worker

    def _wait_ready(self, workers: list[str]) -> None:
        ray = self._ray
        try:
            infos = ray.get([self._actors[w].ready.remote() for w in workers])
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, VapipeError):
                raise error.cause from None
            raise
        self._info = self._info or infos[0]
        log.info("%d workers on %s", len(infos), ", ".join(sorted({i.node for i in infos})))

    def _launch(self, worker: str, share: list[StreamSpec]) -> None:
        with self._lock:
            self._running[worker] = share
        generator = self._actors[worker].run.remote(share, self.open_ended)
        threading.Thread(
            target=self._consume, args=(worker, generator), name=f"relay-{worker}", daemon=True
        ).start()
        log.info("%s on %s: %s", worker, self._nodes[worker].name, ", ".join(s.name for s in share))

    def _consume(self, worker: str, generator: Any) -> None:
        """Deliver one worker's events to the sinks; on its loss, tell the main thread."""
        try:
            for ref in generator:
                for kind, payload in self._ray.get(ref):
                    self._deliver(kind, payload)
        except self._ray.exceptions.RayActorError as error:  # its node or process was lost
            self._events.put((worker, error))
            return
        except BaseException as error:  # a sink here, or the engine there, failed: stop all
            self._failure = self._failure or error
            self._stop.set()
        with self._lock:
            self._running.pop(worker, None)

    def _handle_lost(self, timeout: float) -> None:
        """Restart a lost worker's unfinished streams on a new worker on a live node."""
        try:
            worker, error = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        with self._lock:
            share = self._running.pop(worker, [])
        self._ray.kill(self._actors.pop(worker))
        lost = [s for s in share if self._delivered[s.name].summary is None]
        log.warning(
            "%s on %s lost (%s): restarting %s", worker, self._nodes[worker].name,
            type(error).__name__, ", ".join(s.name for s in lost) or "nothing",
        )  # fmt: skip
        if not lost or self._stop.is_set():
            return
        for spec in lost:
            delivered = self._delivered[spec.name]
            delivered.restarts += 1
            if spec.live:  # its frames and tracks go on numbering, its counts carried over
                delivered.offset = delivered.last_frame + 1
                delivered.carry.restart()
        try:
            nodes = worker_nodes(self._ray)
        except VapipeError:
            log.error("no node left for %s", ", ".join(s.name for s in lost))
            return
        node = min(nodes, key=lambda n: sum(1 for w in self._running if self._nodes[w] == n))
        replacement = self._start_worker(node, 1)
        self._capacity[replacement] = node.cpus
        try:
            self._wait_ready([replacement])
        except Exception as error:  # that node went too: try again with the next loss
            self._events.put((replacement, error))
            with self._lock:
                self._running[replacement] = lost
            return
        self._launch(replacement, lost)

    def _stop_all(self) -> None:
        with self._lock:
            workers = list(self._running)
        for worker in workers:
            self._actors[worker].stop.remote()

    # -- results -----------------------------------------------------------------------------

    def _deliver(self, kind: SinkCall, payload: Any) -> None:
        if kind is SinkCall.OPEN:
            delivered = self._delivered[payload.name]
            if not delivered.opened:
                delivered.opened, delivered.since = True, time.time()
                for sink in self.sinks:
                    sink.open(payload)
        elif kind is SinkCall.WRITE:
            delivered = self._delivered[payload.stream]
            frame = payload.frame
            index = frame.index + delivered.offset
            delivered.skipping = index <= delivered.last_frame
            if delivered.skipping:  # a restarted file's frames already delivered
                return
            if delivered.offset or delivered.image is not None:  # the latest snapshot, if any
                image = frame.image if delivered.image is None else delivered.image
                payload = dataclasses.replace(
                    payload, frame=dataclasses.replace(frame, index=index, image=image)
                )
            payload = delivered.carry.result(payload)
            delivered.last_frame = index
            delivered.processed += 1
            for sink in self.sinks:
                sink.write(payload)
        elif kind is SinkCall.SNAPSHOT:
            name, _, jpeg = payload
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                self._delivered[name].image = image
        elif kind is SinkCall.EVENTS:
            name, events = payload
            delivered = self._delivered[name]
            if delivered.skipping:
                return
            events = delivered.carry.events(events)
            for sink in self.sinks:
                if isinstance(sink, EventSink):
                    sink.write_events(name, events)
        else:
            delivered = self._delivered[payload.name]
            summary = dataclasses.replace(
                delivered.carry.summary(payload), frames_processed=delivered.processed,
                reconnects=payload.reconnects + delivered.restarts,
            )  # fmt: skip
            delivered.summary = summary
            for sink in self.sinks:
                sink.finish(summary)
            delivered.ended.set()
            if self._on_stream_end is not None:
                self._on_stream_end(summary)

    def add_stream(self, spec: StreamSpec) -> None:
        """Start one more stream while an open-ended run runs (from any thread), on the worker
        least loaded for its node's CPUs. ValueError if a running stream has its name."""
        if not self._launched.wait(START_SECONDS):
            raise ClusterError(f"stream {spec.name}: the cluster's workers did not start")
        with self._lock:
            delivered = self._delivered.get(spec.name)
            if delivered is not None and delivered.summary is None:
                raise ValueError(f"a stream named {spec.name!r} is already running")
            if not self._running:
                raise ClusterError(f"stream {spec.name}: no worker is running")
            for worker, share in self._running.items():  # forget the streams that ended
                self._running[worker] = [s for s in share if not self._delivered[s.name].summary]

            def load(worker: str) -> float:
                share = self._running[worker]
                return (sum(s.load for s in share) + spec.load) / self._capacity[worker]

            worker = min(self._running, key=lambda w: (load(w), w))
            self._delivered[spec.name] = _Delivered(spec)
            self._running[worker].append(spec)
        self._ray.get(self._actors[worker].add.remote(spec))
        log.info("%s on %s: %s added", worker, self._nodes[worker].name, spec.name)

    def remove_stream(self, name: str, timeout: float | None = None) -> StreamSummary:
        """Stop one stream while the others run on (from any thread) and wait until its
        outputs here are finished; its summary. KeyError if no such stream runs."""
        with self._lock:
            delivered = self._delivered.get(name)
            running = delivered is not None and delivered.summary is None
            worker = next((w for w, share in self._running.items() if delivered and
                           delivered.spec in share), None)  # fmt: skip
        if not running or worker is None:
            raise KeyError(name)
        self._ray.get(self._actors[worker].remove.remote(name))
        delivered.ended.wait(timeout if timeout is not None else FINISH_SECONDS)
        with self._lock:
            if worker in self._running:
                self._running[worker] = [s for s in self._running[worker] if s.name != name]
        return delivered.summary

    def stream_summaries(self) -> dict[str, StreamSummary]:
        """Each running stream's figures so far, as the driver knows them (frames delivered,
        restarts), from any thread."""
        summaries = {}
        for d in list(self._delivered.values()):
            if d.summary is None:
                spec = d.spec
                service_class = spec.service_class or ServiceClass.for_source(
                    spec.live or spec.realtime
                )
                summaries[spec.name] = StreamSummary(
                    spec.name, mask_credentials(spec.uri), StreamOutcome.RUNNING, d.processed,
                    d.processed, 0, 0.0, reconnects=d.restarts,
                    service_class=service_class.value,
                )  # fmt: skip
        return summaries

    def stream_status(self) -> dict[str, StreamStatus]:
        """Each running stream's state: streaming once its results come, connecting before."""
        status = {}
        for name, d in list(self._delivered.items()):
            if d.summary is None:
                state = StreamState.STREAMING if d.processed else StreamState.CONNECTING
                status[name] = StreamStatus(state, d.since, d.restarts, 0.0)
        return status

    def _progress(self) -> Progress:
        delivered = self._delivered.values()
        processed = sum(d.processed for d in delivered)
        ended = sum(1 for d in delivered if d.summary is not None)
        return Progress(processed, processed, 0, 0, len(self.streams) - ended, ended)

    def _summary(self, wall_seconds: float, interrupted: bool) -> RunSummary:
        streams = []
        for delivered in self._delivered.values():
            spec = delivered.spec
            summary = delivered.summary or StreamSummary(
                spec.name, spec.uri, StreamOutcome.FAILED, 0, delivered.processed, 0, 0.0,
                reconnects=delivered.restarts, errors=["its node was lost; no node left"],
            )  # fmt: skip
            streams.append(summary)
        total = sum(s.frames_processed for s in streams)
        info = self._info
        return RunSummary(
            streams=streams, total_frames=total, wall_seconds=round(wall_seconds, 3),
            total_fps=round(total / wall_seconds, 2) if wall_seconds > 0 else 0.0,
            device=info.device if info else "", nireq=info.nireq if info else 0,
            execution_devices=list(info.execution_devices) if info else [],
            adapter=info.adapter if info else "", model=info.model if info else self._model,
            interrupted=interrupted,
        )  # fmt: skip
