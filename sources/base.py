"""The source protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sources.state import StreamStatus


@runtime_checkable
class VideoSource(Protocol):
    """A stream of frames. `open` may raise SourceError; `read` returns None at the end."""

    name: str
    uri: str
    live: bool  # frames arrive in real time (a camera): never worth waiting for
    size: tuple[int, int]  # (width, height), known after open; (0, 0) if unknown
    fps: float  # nominal frame rate, 0.0 if unknown
    declared_frames: int  # frame count the container declares, 0 if unknown or live

    def open(self) -> None: ...

    def read(self) -> tuple[np.ndarray, float] | None:
        """Return (BGR image, pts in ms), or None when the stream has ended normally.

        Raise SourceError when the stream fails (corrupt or truncated data, lost device).
        """
        ...

    def release(self) -> None: ...

    def interrupt(self) -> None:
        """Called from another thread to stop: a `read` waiting (to reconnect) returns None."""
        ...


@runtime_checkable
class GrabbingSource(VideoSource, Protocol):
    """A source that can step past a frame without converting it to BGR.

    Decoding a compressed stream has to touch every frame, but the colour conversion (and
    the copy into a new array) is needed only for the frames that are analysed: the decoder
    thread grabs every frame, decides whether to analyse it, and only then retrieves it.
    `read` stays the same as `grab` followed by `retrieve`. A source whose decoder can leave
    frames out undecoded (`FileSource` with `DecoderOptions.skip_nonref`) also has a `discarded`
    attribute, true after grabbing such a frame: it is counted, as skipped, never retrieved.
    """

    def grab(self) -> float | None:
        """Step to the next frame and return its pts in ms, or None when the stream has ended
        normally; raise SourceError as `read` does."""
        ...

    def retrieve(self) -> np.ndarray | None:
        """The BGR image of the frame last grabbed, or None if that one frame could not be
        converted and the stream goes on (a live source reconnects); raise SourceError if the
        stream cannot go on."""
        ...


@runtime_checkable
class ConnectedSource(VideoSource, Protocol):
    """A live source with a connection that comes and goes (`LiveSource`, `PacketSource`):
    its state (connecting, streaming, reconnecting, ...) is reported."""

    def status(self) -> StreamStatus: ...


def grab_and_retrieve(source: GrabbingSource) -> tuple[np.ndarray, float] | None:
    """`read` for a grabbing source: the next frame it can convert (image, pts ms), or None at
    the end."""
    while (pts_ms := source.grab()) is not None:
        image = source.retrieve()
        if image is not None:
            return image, pts_ms
    return None
