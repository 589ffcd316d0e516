"""The Store's retry schedule (read at each retry, so tests can shorten it)."""

from __future__ import annotations

RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.1
RETRY_MAX_DELAY = 5.0
RETRY_DEADLINE = 15.0
"""No new attempt starts this many seconds after the first one."""
