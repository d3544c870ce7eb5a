"""How frames are born: video sources (files, live streams, cameras) and the frame type.

Names are imported from their modules on first use (see `sources.exports`).
"""

from __future__ import annotations

from sources.exports import lazy_exports

_EXPORTS = {
    "Backoff": "sources.backoff",
    "VideoSource": "sources.base",
    "ConnectedSource": "sources.base",
    "SourceError": "sources.errors",
    "VapipeError": "sources.errors",
    "mask_credentials": "sources.errors",
    "DecoderOptions": "sources.decoders",
    "FileSource": "sources.file",
    "Frame": "sources.frame",
    "LiveSource": "sources.live",
    "configure_ffmpeg_capture": "sources.live",
    "is_live_uri": "sources.live",
    "LiveOptions": "sources.live_options",
    "PacketFeed": "sources.packet_source",
    "PacketSource": "sources.packet_source",
    "FrameSampler": "sources.sampling",
    "SimulatedCamera": "sources.simulated",
    "simulate": "sources.simulated",
    "as_source": "sources.spec",
    "sources_from_specs": "sources.spec",
    "split_spec": "sources.spec",
    "unique_names": "sources.spec",
    "StreamState": "sources.state",
    "StreamStateMachine": "sources.state",
    "StreamStatus": "sources.state",
    "SyntheticSource": "sources.synthetic",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
