"""Job records in the store: create, read, save, list newest first, cancel
markers and attempt claims. Every kind of job keeps its record here."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from vecstore import layout, pagination
from vecstore.errors import AlreadyExistsError, FormatError, InvalidArgumentError, NotFoundError
from vecstore.schemas import ImportPage, Job, Pagination
from vecstore.storage import Store

MAX_PAGE = 100


def new_job_id() -> str:
    """Unique and sortable by creation time: ``<microseconds:016d><random:8hex>``."""
    return f"{time.time_ns() // 1000:016d}{os.urandom(4).hex()}"


def encode_token(job_id: str) -> str:
    return pagination.encode(job_id)


def decode_token(token: str) -> str:
    raw = pagination.decode(token)
    if not raw or not raw.isalnum():
        raise InvalidArgumentError(
            f'Invalid pagination token "{token}": pass the "next" value of a previous page'
        )
    return raw


class JobStore:
    """Job records of one index."""

    def __init__(self, store: Store, index: str) -> None:
        self.store = store
        self.index = index

    def create(self, job: Job) -> Job:
        try:
            self.store.put_if_absent(
                layout.job_key(self.index, job.id), job.model_dump_json().encode()
            )
        except AlreadyExistsError:
            raise AlreadyExistsError(f'Import "{job.id}" already exists', id=job.id) from None
        return job

    def get(self, job_id: str) -> Job:
        if not job_id or "/" in job_id:
            raise InvalidArgumentError(f'Invalid import id "{job_id}"')
        key = layout.job_key(self.index, job_id)
        try:
            raw = self.store.read_bytes(key)
        except NotFoundError:
            raise NotFoundError(f"Import {job_id} not found", id=job_id, index=self.index) from None
        try:
            job = Job.model_validate_json(raw)
        except ValueError as exc:
            raise FormatError(f"Import record {job_id} is not valid: {exc}") from exc
        if not job.done and not job.cancel_requested and self.cancel_requested(job_id):
            job = job.model_copy(update={"cancel_requested": True})
        return job

    def save(self, job: Job) -> None:
        self.store.write_bytes(layout.job_key(self.index, job.id), job.model_dump_json().encode())

    def ids(self) -> list[str]:
        """Every import id, newest first."""
        out = []
        for key in self.store.ls(layout.imports_prefix(self.index)):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(".json"):
                out.append(name[: -len(".json")])
        return sorted(out, reverse=True)

    def page(
        self,
        limit: int | None = None,
        pagination_token: str | None = None,
        kind: str | None = None,
    ) -> ImportPage:
        """Records newest first; ``kind``: only jobs of that kind."""
        limit = MAX_PAGE if limit is None else limit
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise InvalidArgumentError(
                f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}"
            )
        ids = self.ids()
        if pagination_token:
            after = decode_token(pagination_token)
            ids = [i for i in ids if i < after]
        jobs: list[Job] = []
        more = False
        for i in ids:
            try:
                job = self.get(i)
            except NotFoundError:  # deleted meanwhile
                continue
            if kind is not None and job.kind != kind:
                continue
            if len(jobs) == limit:
                more = True
                break
            jobs.append(job)
        return ImportPage(
            data=jobs, pagination=Pagination(next=encode_token(jobs[-1].id)) if more else None
        )

    def iter_all(
        self, limit: int = MAX_PAGE, pagination_token: str | None = None, kind: str | None = None
    ) -> Iterator[Job]:
        token = pagination_token
        while True:
            page = self.page(limit, token, kind)
            yield from page.data
            if page.pagination is None:
                return
            token = page.pagination.next

    def request_cancel(self, job_id: str) -> None:
        with contextlib.suppress(AlreadyExistsError):
            self.store.put_if_absent(layout.cancel_marker_key(self.index, job_id), b"cancel\n")

    def cancel_requested(self, job_id: str) -> bool:
        return self.store.exists(layout.cancel_marker_key(self.index, job_id))

    def claim_attempt(self, job_id: str, attempt: int, runner: str) -> bool:
        """Atomically claim an attempt of a job (one process wins a resume)."""
        try:
            self.store.put_if_absent(layout.claim_key(self.index, job_id, attempt), runner.encode())
        except AlreadyExistsError:
            return False
        return True

