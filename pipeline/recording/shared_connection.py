"""One connection per camera: a camera recorded from the URL it is analysed from is demuxed
once, by its recorder, and the analysis decodes the recorder's packets (`PacketSource`)."""

from __future__ import annotations

from dataclasses import replace

from pipeline.recording.recorder import CameraRecorder, RecordOptions
from sources.live import LiveSource
from sources.packet_source import PacketFeed, PacketSource


def shares_connection(source: object, record_url: str) -> bool:
    """True if `source` is a network camera recorded from its own URL (a device, or a file,
    is opened twice: that costs no camera a second connection)."""
    return isinstance(source, LiveSource) and "://" in source.uri and source.uri == record_url


def record_options_for(source: LiveSource, options: RecordOptions) -> RecordOptions:
    """`options` with the connection settings of the stream it also serves: its timeouts,
    back-off and RTSP transport (when it has its own)."""
    live = source.options
    return replace(
        options,
        timeout=(live.open_timeout, live.read_timeout),
        backoff=live.backoff,
        rtsp_transport=live.rtsp_transport or options.rtsp_transport,
    )


def decoded_from(recorder: CameraRecorder, source: LiveSource) -> PacketSource:
    """`source`'s stream, decoded from `recorder`'s packets instead of a connection of its own
    (same name, options and decoder); it stops observing the recorder when released."""
    feed = PacketFeed()
    recorder.subscribe(feed)
    return PacketSource(
        source.uri, source.name, feed, source.options, source.decoder,
        on_release=lambda: recorder.unsubscribe(feed),
    )  # fmt: skip
