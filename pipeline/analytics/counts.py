"""What lines and zones counted, typed: built from events (`add`), summed over attempts or
sources (`+`), written as the JSON the summary, the API and MQTT have always carried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.analytics.events import Event

DIRECTIONS = ("in", "out")


def _field(event: Event | Mapping[str, Any], name: str) -> Any:
    """A field of an event, as an `Event` or as its `to_dict()`."""
    return event.get(name) if isinstance(event, Mapping) else getattr(event, name)


@dataclass
class LineCounts:
    """One line's crossings, by direction (`in`, `out`) and by label and direction."""

    crossed: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(DIRECTIONS, 0)))
    by_label: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, event: Event | Mapping[str, Any]) -> None:
        """Count a `line_cross` event (other events are not this line's)."""
        direction = _field(event, "direction")
        if _field(event, "type") != "line_cross" or direction not in DIRECTIONS:
            return
        self.count(str(_field(event, "label") or ""), direction)

    def count(self, label: str, direction: str, n: int = 1) -> None:
        self.crossed[direction] += n
        per_label = self.by_label.setdefault(label, Counter(dict.fromkeys(DIRECTIONS, 0)))
        per_label[direction] += n

    def __add__(self, other: LineCounts) -> LineCounts:
        total = LineCounts(Counter(self.crossed), {k: Counter(v) for k, v in self.by_label.items()})
        total.crossed.update(other.crossed)
        for label, per_label in other.by_label.items():
            for direction in DIRECTIONS:
                total.count(label, direction, 0)  # the label in order, with both directions
            total.by_label[label].update(per_label)
        return total

    def to_dict(self) -> dict:
        """`{"in", "out", "by_label": {LABEL: {"in", "out"}}}`."""
        return {
            **{d: self.crossed[d] for d in DIRECTIONS},
            "by_label": {k: {d: v[d] for d in DIRECTIONS} for k, v in self.by_label.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineCounts:
        counts = cls(Counter({d: int(data.get(d, 0)) for d in DIRECTIONS}))
        for label, per_label in data.get("by_label", {}).items():
            counts.by_label[label] = Counter({d: int(per_label.get(d, 0)) for d in DIRECTIONS})
        return counts


@dataclass
class ZoneCounts:
    """One zone's entries by label, the most tracks inside it at once, and who is inside now
    (by label, from enter and exit events)."""

    entered: Counter[str] = field(default_factory=Counter)
    max_occupancy: int = 0
    occupancy: Counter[str] = field(default_factory=Counter)

    @property
    def total_entered(self) -> int:
        return sum(self.entered.values())

    def add(self, event: Event | Mapping[str, Any]) -> None:
        """Count a `zone_enter` or `zone_exit` event (other events are not this zone's)."""
        kind, label = _field(event, "type"), str(_field(event, "label") or "")
        if kind == "zone_enter":
            self.entered[label] += 1
            self.occupancy[label] += 1
        elif kind == "zone_exit":
            self.occupancy[label] = max(0, self.occupancy[label] - 1)

    def __add__(self, other: ZoneCounts) -> ZoneCounts:
        total = ZoneCounts(
            Counter(self.entered),
            max(self.max_occupancy, other.max_occupancy),
            Counter(self.occupancy),
        )
        total.entered.update(other.entered)  # `update` keeps zero counts, `+` would not
        total.occupancy.update(other.occupancy)
        return total

    def to_dict(self) -> dict:
        """`{"entered", "max_occupancy", "by_label": {LABEL: {"entered"}}}` (the summary's)."""
        return {
            "entered": self.total_entered,
            "max_occupancy": self.max_occupancy,
            "by_label": {label: {"entered": n} for label, n in self.entered.items()},
        }

    def live_dict(self) -> dict:
        """`{"entered", "occupancy": {LABEL: n}}` (a served camera's counts)."""
        return {"entered": self.total_entered, "occupancy": dict(self.occupancy)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ZoneCounts:
        entered = Counter(
            {label: int(n.get("entered", 0)) for label, n in data.get("by_label", {}).items()}
        )
        return cls(entered, int(data.get("max_occupancy", 0)))
