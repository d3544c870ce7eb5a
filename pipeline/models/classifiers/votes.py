"""Track-aware classification: classify a track, not every detection of it.

A track is classified when it first appears (confirmed: it has a track id) and then every
`reclassify_seconds` of stream time while it lives; its attributes are the running vote (mean
of probabilities, per head) of its classifications so far.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.attributes import Attributes

NO_TRACK = -1  # the id of a detection that belongs to no confirmed track


@dataclass(eq=False)
class _Track:
    submitted_at: float  # stream seconds of its last classification request
    seen_at: float
    heads: dict[str, Attributes] = field(default_factory=dict)  # one single-head vote per head


class TrackVotes:
    """One stream's tracks: which are due for classification, and each one's vote.

    `due` is called in frame order as frames are classified (the tracker's order); `settle`
    in frame order as they are released, so a frame's attributes are the vote of the
    classifications of its track up to and including that frame, whatever order the
    second-stage requests complete in. Tracks not seen for `forget_seconds` are dropped.
    """

    def __init__(self, reclassify_seconds: float = 1.0, forget_seconds: float | None = None):
        self.reclassify_seconds = reclassify_seconds
        self.forget_seconds = forget_seconds or max(10.0, 10 * reclassify_seconds)
        self._tracks: dict[int, _Track] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def due(self, track_ids: Sequence[int], now: float) -> list[bool]:
        """For each detection (by its track id), whether to classify it in this frame (at
        stream time `now`, seconds); those due are counted as classified from now on."""
        flags = []
        with self._lock:
            for track_id in map(int, track_ids):
                if track_id == NO_TRACK:
                    flags.append(False)
                    continue
                track = self._tracks.get(track_id)
                if track is None:
                    self._tracks[track_id] = _Track(now, now)
                    flags.append(True)
                elif now - track.submitted_at >= self.reclassify_seconds:
                    track.submitted_at = now
                    flags.append(True)
                else:
                    flags.append(False)
        return flags

    def settle(
        self, track_ids: Sequence[int], fresh: Sequence[Attributes | None], now: float
    ) -> list[Attributes | None]:
        """Add this frame's classifications (`fresh`, one per detection) to their tracks'
        votes, and return each detection's vote (None for one without track or vote)."""
        votes: list[Attributes | None] = []
        with self._lock:
            for track_id, attributes in zip(map(int, track_ids), fresh, strict=True):
                track = self._tracks.get(track_id) if track_id != NO_TRACK else None
                if track is None:
                    votes.append(attributes)
                    continue
                track.seen_at = now
                if attributes is not None:
                    for head, scores in zip(attributes.heads, attributes.scores, strict=True):
                        single = Attributes((head,), (scores,), attributes.votes)
                        old = track.heads.get(head.name)
                        track.heads[head.name] = single if old is None else Attributes.mean(
                            [old, single]
                        )  # fmt: skip
                parts = list(track.heads.values())
                votes.append(Attributes.merge(parts) if parts else None)
            if now - self._last_prune >= self.forget_seconds:
                self._prune(now)
        return votes

    def _prune(self, now: float) -> None:
        self._last_prune = now
        for track_id in [
            t for t, track in self._tracks.items() if now - track.seen_at > self.forget_seconds
        ]:
            del self._tracks[track_id]

    def __len__(self) -> int:
        return len(self._tracks)
