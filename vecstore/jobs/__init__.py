"""Jobs: one record model (:class:`vecstore.schemas.Job`, with a ``kind``),
one lifecycle for every kind.

- :mod:`vecstore.jobstate` -- the pure state machine (events -> actions)
- :mod:`vecstore.jobs.lifecycle` -- its one interpreter; take-over, cancel, recovery
- :mod:`vecstore.jobs.policy` -- "stale" and the other knobs, in one place
- :mod:`vecstore.jobs.store` -- records in the store
- :mod:`vecstore.jobs.kinds` -- the registry of kinds (``import`` today)

See docs/jobs.md.
"""

from vecstore.jobs.policy import heartbeat_age, is_stale, stale_seconds
from vecstore.jobs.store import MAX_PAGE, JobStore, decode_token, encode_token, new_job_id

__all__ = [
    "MAX_PAGE",
    "JobStore",
    "decode_token",
    "encode_token",
    "heartbeat_age",
    "is_stale",
    "new_job_id",
    "stale_seconds",
]
