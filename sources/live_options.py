"""How live streams connect: timeouts, back-off, retries."""

from __future__ import annotations

from dataclasses import dataclass, field

from sources.backoff import Backoff


@dataclass(frozen=True)
class LiveOptions:
    """How live streams connect: timeouts in seconds (a stream that stays connected but sends
    nothing for `read_timeout` counts as lost), the back-off between attempts, and how many
    failed attempts in a row end the stream (None: retry forever). `rtsp_transport` (`tcp` or
    `udp`) is the stream's own RTSP transport; None takes the process-wide one
    (`configure_ffmpeg_capture`)."""

    open_timeout: float = 5.0
    read_timeout: float = 5.0
    max_retries: int | None = None
    backoff: Backoff = field(default_factory=Backoff)
    rtsp_transport: str | None = None

    def __post_init__(self) -> None:
        if self.rtsp_transport not in (None, "tcp", "udp"):
            raise ValueError(f"RTSP transport must be tcp or udp, not {self.rtsp_transport!r}")
