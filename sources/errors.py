"""Base of vapipe's error hierarchy (here, in the lowest layer, so both packages can use it)."""

from __future__ import annotations

import re


class VapipeError(Exception):
    """Base class; the message is one line naming the thing at fault and what to do."""


class SourceError(VapipeError):
    """A video source cannot be opened or read."""


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def mask_credentials(uri: str) -> str:
    """Hide `user:password@` in a URL so it never reaches logs or outputs."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", uri)
