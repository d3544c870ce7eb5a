"""The second stage in the engine: detections' crops to their classifiers, between a frame's
postprocessing and its stream's in-order release."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import openvino as ov

from pipeline.attributes import Attributes
from pipeline.detections import Detections, Result
from pipeline.engine.ordering import InOrderRelease
from pipeline.models.classifiers import (
    Classifier,
    ClassifyOptions,
    ClassifySpec,
    check_detector_labels,
    parse_classify_spec,
)
from pipeline.models.classifiers.votes import NO_TRACK, TrackVotes
from pipeline.option_table import DEVICE

log = logging.getLogger(__name__)

OnReady = Callable[[Result], None]


@dataclass(frozen=True)
class Stage:
    """One classifier and the detector classes whose crops it takes (None: every class)."""

    classifier: Classifier
    class_ids: frozenset[int] | None


class _Gather:
    """Collects one frame's answers from its stages; the last one releases the frame."""

    def __init__(self, result: Result, stages: int, on_ready: OnReady) -> None:
        self._result = result
        self._waiting = stages
        self._parts: list[list[Attributes | None]] = []
        self._on_ready = on_ready
        self._lock = threading.Lock()

    def part(self, results: list[Attributes | None]) -> None:
        with self._lock:
            self._parts.append(results)
            self._waiting -= 1
            if self._waiting:
                return
        merged = []
        for per_box in zip(*self._parts, strict=True):
            found = [a for a in per_box if a is not None]
            merged.append(Attributes.merge(found) if found else None)
        self._on_ready(_with_attributes(self._result, merged))


class Cascade:
    """Runs second-stage classifiers on each frame's detections.

    `process` picks the detections each classifier takes (its detector classes, crops at
    least `min_size` wide, every `every`-th frame of a stream; with track ids, the tracks due
    for classification), submits their crops to the classifiers' own request pools and calls
    `on_ready` with the result carrying the attributes once every answer is in (at once when
    there is nothing to classify). Results are released in frame order by the caller.
    """

    def __init__(self, stages: Sequence[Stage], options: ClassifyOptions | None = None) -> None:
        self.stages = tuple(stages)
        self.options = options or ClassifyOptions()
        self._votes: dict[str, TrackVotes] = {}
        self._votes_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        specs: Sequence[str | ClassifySpec],
        detector_names: Sequence[str],
        options: ClassifyOptions | None = None,
        *,
        device: str = DEVICE.default,
        core: ov.Core | None = None,
    ) -> Cascade:
        """Read, check and compile every classifier (VapipeError, one line, before any work:
        a missing file, a model that is not a classifier, LABELS the detector lacks)."""
        parsed = [s if isinstance(s, ClassifySpec) else parse_classify_spec(s) for s in specs]
        for spec in parsed:
            check_detector_labels(spec, detector_names)
        stages: list[Stage] = []
        try:
            for spec in parsed:
                classifier = Classifier.load(
                    spec.model, device=device, adapter=spec.adapter,
                    class_names=spec.class_names, core=core,
                )  # fmt: skip
                stages.append(Stage(classifier, _class_ids(spec.labels, detector_names)))
        except BaseException:
            for stage in stages:
                stage.classifier.close()
            raise
        return cls(stages, options)

    # -- per frame ---------------------------------------------------------------------------

    def process(
        self,
        result: Result,
        seq: int,
        on_ready: OnReady,
        track_ids: Sequence[int] | None = None,
    ) -> None:
        """Classify what `result`'s frame needs, then `on_ready(result with attributes)`,
        on this thread when there is nothing to classify, else on a classifier's callback
        thread.

        `seq` counts the stream's analysed frames (for `every`). With `track_ids` (one per
        detection, NO_TRACK for none; call this in frame order per stream), the tracks due
        are classified instead of every `every`-th frame, and `settle_tracks` turns a
        released result's classifications into its tracks' votes."""
        detections = result.detections
        n = len(detections)
        work = []
        if n and (track_ids is not None or seq % self.options.every == 0):
            eligible = self._eligible(detections)
            if track_ids is not None:
                wanted = [t if any(e[i] for e in eligible) else NO_TRACK
                          for i, t in enumerate(track_ids)]  # fmt: skip
                due = self.track_votes(result.stream).due(wanted, _seconds(result))
                eligible = [e & np.array(due, bool) for e in eligible]
            work = [(s, np.flatnonzero(e)) for s, e in zip(self.stages, eligible, strict=True)]
            work = [(s, idx) for s, idx in work if len(idx)]
        if not work:
            on_ready(_with_attributes(result, [None] * n))
            return
        gather = _Gather(result, len(work), on_ready)
        for stage, indices in work:
            stage.classifier.submit(result.frame.image, detections.boxes, indices, gather.part)

    def settle_tracks(self, result: Result, track_ids: Sequence[int]) -> Result:
        """`result` (from `process` with these `track_ids`) with each tracked detection's
        attributes replaced by its track's vote. Call it in frame order per stream (after the
        in-order release): each frame then carries the vote of its track's classifications
        up to and including that frame."""
        fresh = result.detections.attributes or (None,) * len(result.detections)
        votes = self.track_votes(result.stream).settle(track_ids, fresh, _seconds(result))
        return dataclasses.replace(result, detections=result.detections.with_attributes(votes))

    def _eligible(self, detections: Detections) -> list[np.ndarray]:
        """Per stage, which detections it takes: its classes, at least `min_size` wide."""
        wide = detections.boxes[:, 2] - detections.boxes[:, 0] >= self.options.min_size
        masks = []
        for stage in self.stages:
            if stage.class_ids is None:
                masks.append(wide.copy())
            else:
                wanted = np.isin(detections.class_ids, list(stage.class_ids))
                masks.append(wide & wanted)
        return masks

    def track_votes(self, stream: str) -> TrackVotes:
        with self._votes_lock:
            votes = self._votes.get(stream)
            if votes is None:
                votes = self._votes[stream] = TrackVotes(self.options.reclassify_seconds)
            return votes

    def forget_stream(self, stream: str) -> None:
        with self._votes_lock:
            self._votes.pop(stream, None)

    # -- the classifiers' state --------------------------------------------------------------

    @property
    def inferences(self) -> int:
        """Crops classified so far, by every classifier."""
        return sum(s.classifier.inferences for s in self.stages)

    @property
    def names(self) -> list[str]:
        return [str(s.classifier.model_path) for s in self.stages]

    def raise_if_failed(self) -> None:
        for stage in self.stages:
            stage.classifier.raise_if_failed()

    def drain(self) -> None:
        for stage in self.stages:
            stage.classifier.drain()

    def close(self) -> None:
        for stage in self.stages:
            stage.classifier.close()


class TrackedRelease:
    """One stream's second stage after a tracker: results pushed in frame order with their
    track ids, classified (the tracks due only) and emitted in frame order, each tracked
    detection carrying its track's vote.

    The tracker runs in frame order (after the stream's first in-order release); `push` is
    called there, and `emit` (the sinks) gets the results back in the same order once their
    classifications are in. Frames of other streams never wait for this one.
    """

    def __init__(self, cascade: Cascade, emit: Callable[[Result], None]) -> None:
        self._cascade = cascade
        self._emit = emit
        self._release: InOrderRelease[tuple[Result, Sequence[int]]] = InOrderRelease(self._settle)

    def push(self, seq: int, result: Result, track_ids: Sequence[int]) -> None:
        def ready(classified: Result) -> None:
            self._release.push(seq, (classified, track_ids))

        self._cascade.process(result, seq, ready, track_ids)

    def _settle(self, item: tuple[Result, Sequence[int]]) -> None:
        result, track_ids = item
        self._emit(self._cascade.settle_tracks(result, track_ids))

    @property
    def released(self) -> int:
        return self._release.released


def _seconds(result: Result) -> float:
    """The frame's stream time in seconds: tracks are reclassified in media time."""
    return result.frame.pts_ms / 1000.0


def _with_attributes(result: Result, attributes: Sequence[Attributes | None]) -> Result:
    detections = result.detections.with_attributes(attributes)
    return dataclasses.replace(result, detections=detections, completed_at=time.time())


def _class_ids(labels: Sequence[str], names: Sequence[str]) -> frozenset[int] | None:
    """The class ids LABELS name (names, or ids as text for a detector without names)."""
    if not labels:
        return None
    label = Detections.empty(names).label
    if names:
        return frozenset(i for i in range(len(names)) if label(i) in labels)
    return frozenset(int(x) for x in labels)
