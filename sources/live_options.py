"""How live streams connect: timeouts, back-off, retries."""

from __future__ import annotations

from dataclasses import dataclass, field

from sources.backoff import Backoff


@dataclass(frozen=True)
class LiveOptions:
    """How live streams connect: timeouts in seconds (a stream that stays connected but sends
    nothing for `read_timeout` counts as lost), the back-off between attempts, and how many
    failed attempts in a row end the stream (None: retry forever)."""

    open_timeout: float = 5.0
    read_timeout: float = 5.0
    max_retries: int | None = None
    backoff: Backoff = field(default_factory=Backoff)
