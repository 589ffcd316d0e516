"""Keeping credentials out of messages: the option values to hide, and a
scrubber for anything that looks like a credential."""

from __future__ import annotations

import re
from typing import Any

_SECRET_KEYS = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "account_key",
        "connection_string",
        "sas_token",
        "client_secret",
        "credential",
        "credentials",
        "session_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "secret_key",
    }
)
_SECRETISH = re.compile(
    r"(?i)(sig|signature|accountkey|account_key|sharedaccesssignature|secret|token|password"
    r"|credential|x-amz-security-token|authorization)=([^&\s;]+)"
)


def secret_values(options: Any, key: str = "") -> list[str]:
    """Every string in ``options`` stored under a credential-like key."""
    out: list[str] = []
    if isinstance(options, dict):
        for k, v in options.items():
            out.extend(secret_values(v, str(k).lower()))
    elif isinstance(options, list | tuple):
        for v in options:
            out.extend(secret_values(v, key))
    elif isinstance(options, str) and key in _SECRET_KEYS and options not in ("", "anon"):
        out.append(options)
        if key == "connection_string":
            for part in options.split(";"):
                name, _, value = part.partition("=")
                if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
                    out.append(value.strip())
    return out


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials (given values and anything that looks like one)."""
    for s in secrets:
        if len(s) >= 4:
            text = text.replace(s, "***")
    return _SECRETISH.sub(r"\1=***", text)[:500]
