"""What a second-stage classifier says about one detection: probabilities per output head."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Head:
    """One classifier output: a softmax over `labels` (exactly one holds: `multilabel` false)
    or independent sigmoid `labels` (each present when its probability exceeds `threshold`)."""

    name: str
    labels: tuple[str, ...]
    multilabel: bool = False
    threshold: float = 0.5


@dataclass(frozen=True, slots=True)
class Attributes:
    """Probabilities of one crop, one array per head; `votes` is how many classifications were
    averaged into them (more than one for a track's running vote)."""

    heads: tuple[Head, ...]
    scores: tuple[np.ndarray, ...]
    votes: int = 1

    def __post_init__(self) -> None:
        if len(self.scores) != len(self.heads):
            raise ValueError(f"expected {len(self.heads)} score arrays, got {len(self.scores)}")
        for head, scores in zip(self.heads, self.scores, strict=True):
            if scores.shape != (len(head.labels),):
                raise ValueError(
                    f"head {head.name}: scores must have shape ({len(head.labels)},), "
                    f"got {scores.shape}"
                )

    def top(self) -> dict[str, tuple[str, float]]:
        """Each softmax head's most probable label and its probability."""
        tops = {}
        for head, scores in zip(self.heads, self.scores, strict=True):
            if not head.multilabel:
                best = int(np.argmax(scores))
                tops[head.name] = (head.labels[best], float(scores[best]))
        return tops

    def present(self) -> Iterator[tuple[str, str | None]]:
        """What holds: (head name, its most probable label) for each softmax head, and
        (attribute, None) for each multi-label attribute above its threshold."""
        for head, scores in zip(self.heads, self.scores, strict=True):
            if head.multilabel:
                for label, score in zip(head.labels, scores, strict=True):
                    if score > head.threshold:
                        yield label, None
            else:
                yield head.name, head.labels[int(np.argmax(scores))]

    def caption(self, limit: int = 3) -> str:
        """Short text for drawing: "red car", "male longhair" (at most `limit` words)."""
        words = [
            (key if value is None else value).removeprefix("has_").removeprefix("is_")
            for key, value in self.present()
        ]
        return " ".join(words[:limit])

    def to_dict(self) -> dict:
        """JSON-ready: `{"color": {"label": "red", "score": 0.99}}` for a softmax head,
        `{"has_bag": 0.87, ...}` (every label's probability) for a multi-label head."""
        out: dict = {}
        for head, scores in zip(self.heads, self.scores, strict=True):
            if head.multilabel:
                for label, score in zip(head.labels, scores, strict=True):
                    out[label] = round(float(score), 4)
            else:
                best = int(np.argmax(scores))
                out[head.name] = {
                    "label": head.labels[best],
                    "score": round(float(scores[best]), 4),
                }
        return out

    @classmethod
    def merge(cls, parts: Sequence[Attributes]) -> Attributes:
        """The heads of several classifiers of the same detection side by side."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            tuple(h for p in parts for h in p.heads),
            tuple(s for p in parts for s in p.scores),
            min(p.votes for p in parts),
        )

    @classmethod
    def mean(cls, parts: Sequence[Attributes]) -> Attributes:
        """The vote of several classifications of the same heads: their weighted mean."""
        first = parts[0]
        if any(p.heads != first.heads for p in parts):
            raise ValueError("cannot average attributes of different heads")
        votes = sum(p.votes for p in parts)
        scores = tuple(
            sum(p.scores[i] * p.votes for p in parts) / votes for i in range(len(first.heads))
        )
        return cls(first.heads, scores, votes)
