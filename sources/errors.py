"""Base of vapipe's error hierarchy (here, in the lowest layer, so both packages can use it)."""

from __future__ import annotations

import re


class VapipeError(Exception):
    """Base class; the message is one line naming the thing at fault and what to do."""


class SourceError(VapipeError):
    """A video source cannot be opened or read."""


# The user information runs to the authority's last "@" (a password may hold an "@").
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@")
_QUERY_SECRETS = re.compile(
    r"(?P<key>[?&;](?:user|username|usr|password|passwd|pass|pwd|token|access_token|auth|"
    r"authorization|key|api_key|apikey|secret|signature|sig)=)[^&#\s]*",
    re.IGNORECASE,
)


def mask_credentials(uri: str) -> str:
    """Hide `user:password@` and credentials in a query string (`?user=..&password=..`) in a
    URL, or in a message holding URLs, so they never reach logs or outputs."""
    return _QUERY_SECRETS.sub(r"\g<key>***", _CREDENTIALS.sub(r"\g<scheme>***@", uri))
