"""The one pagination-token format of vecstore (id lists and job pages alike).

A token is the unpadded URL-safe base64 of ``{"v":1,"after":"<last key>"}``:
the key the previous page ended with. Tokens are opaque to callers; a token
that does not decode is an :class:`~vecstore.errors.InvalidArgumentError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from vecstore.errors import InvalidArgumentError

TOKEN_VERSION = 1


def encode(after: str) -> str:
    """The token of a page that ended with ``after``."""
    raw = json.dumps({"v": TOKEN_VERSION, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: Any) -> str | None:
    """The key the previous page ended with (None: no token, start at the beginning)."""
    if token is None:
        return None
    if isinstance(token, str) and token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and data.get("v") == TOKEN_VERSION:
            after = data.get("after")
            if isinstance(after, str):
                return after
    raise InvalidArgumentError(
        f'Invalid pagination token "{token}": pass the "next" value of a previous page'
    )
