"""Which H.264 packets hold a non-reference picture, read from their NAL unit headers."""

from __future__ import annotations

_SLICE_TYPES = (1, 5)  # a coded slice (non-IDR, IDR): its header carries nal_ref_idc
_START_CODE = b"\x00\x00\x01"


def nal_length_size(extradata: bytes | None) -> int:
    """Bytes before each NAL unit in an MP4/MKV packet (avcC), or 0 for Annex B streams (start
    codes, e.g. MPEG-TS), from the codec's extradata."""
    if extradata and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def is_non_reference(packet: bytes | memoryview, length_size: int) -> bool:
    """True if the packet's first coded slice has nal_ref_idc 0: no other picture is predicted
    from it, so the decoder can leave it out without changing any other frame."""
    data = memoryview(packet)
    for header in _nal_headers(data, length_size):
        if header & 0x1F in _SLICE_TYPES:
            return header >> 5 == 0
    return False  # no slice: not a picture to leave out


def _nal_headers(data: memoryview, length_size: int):
    """The first byte of each NAL unit in the packet."""
    if length_size:
        at = 0
        while at + length_size < len(data):
            size = int.from_bytes(data[at : at + length_size], "big")
            yield data[at + length_size]
            at += length_size + size
        return
    raw = data.tobytes()
    at = raw.find(_START_CODE)
    while at >= 0 and at + 3 < len(raw):
        yield raw[at + 3]
        at = raw.find(_START_CODE, at + 3)
