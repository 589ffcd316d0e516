"""Start and stop the storage emulators that tests and benchmarks run against.

Every server binds 127.0.0.1 on a free port and is stopped in ``finally``::

    with run_moto() as s3, run_gcs_emulator() as gcs, run_azurite() as az:
        s3.create_bucket("b1")
        store = Store(s3.uri("b1", "root"), s3.options())

An :class:`Emulator` carries the endpoint and the fsspec ``storage_options``
that reach it (``options()`` returns a fresh copy each time). Keep this module
free of pytest so scripts can import it.

- S3: moto's ``ThreadedMotoServer`` in this process (~0.2 s), or a
  ``moto_server`` subprocess with ``in_process=False``. In-process moto shares
  moto's global state: a ``mock_aws`` context in the same process resets it and
  wipes the server's buckets.
- GCS: ``gcp-storage-emulator`` in a subprocess (quiet; the in-process server
  is single-threaded and noisy). It does not honour preconditions
  (``ifGenerationMatch``); see ``vecstore.storage``.
- Azure: Azurite (npm, installed by ``make install`` under ``.tools``), with
  the published development account ``devstoreaccount1``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before gcsfs is imported anywhere (and inherited by Dask workers): without
# it every gcsfs call against the emulator hangs 60 s on a gRPC probe.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_BIN",
    "AZURITE_KEY",
    "Bucket",
    "Emulator",
    "ServerError",
    "free_port",
    "run_azurite",
    "run_gcs_emulator",
    "run_moto",
    "stop_process",
    "unique_name",
    "wait_for_port",
]

REPO = Path(__file__).resolve().parents[1]
AZURITE_BIN = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_KEY = S3_SECRET = "testing"
S3_REGION = "us-east-1"
START_TIMEOUT = 30.0


class ServerError(RuntimeError):
    """An emulator could not be started."""


# ------------------------------------------------------------------ helpers
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    *,
    timeout: float = START_TIMEOUT,
    proc: subprocess.Popen[bytes] | None = None,
    name: str = "server",
) -> None:
    """Block until ``host:port`` accepts connections.

    Fails at once (not after ``timeout``) if ``proc`` exits meanwhile.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerError(
                f"{name} exited with code {proc.returncode} before listening on {host}:{port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{name} did not listen on {host}:{port} within {timeout:.0f} s"
                ) from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """terminate, wait, then kill if it is still there."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _spawn(cmd: Sequence[str], *, cwd: str | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(cmd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a ^C in the test run does not reach it first
    )


def _script(name: str) -> str | None:
    """A console script of this interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


# ---------------------------------------------------------------- emulators
@dataclass
class Emulator:
    """A running emulator: where it listens and how to reach it.

    ``kind`` is ``s3``, ``gcs`` or ``azure``; ``scheme`` the fsspec protocol
    (``s3``, ``gs``, ``az``); ``endpoint`` the HTTP endpoint (for Azure the
    blob endpoint including the account, ``http://127.0.0.1:PORT/devstoreaccount1``).
    """

    kind: str
    scheme: str
    host: str
    port: int
    endpoint: str
    base_options: dict[str, Any]
    _admin: Any = field(default=None, repr=False)

    def options(self, **extra: Any) -> dict[str, Any]:
        """Fresh storage options with credentials (plus ``extra``)."""
        opts = _deep_copy(self.base_options)
        opts.update(extra)
        return opts

    @property
    def storage_options(self) -> dict[str, Any]:
        return self.options()

    def uri(self, bucket: str, path: str = "") -> str:
        path = path.strip("/")
        return f"{self.scheme}://{bucket}/{path}" if path else f"{self.scheme}://{bucket}"

    def options_via(self, endpoint: str, **extra: Any) -> dict[str, Any]:
        """Options that reach this emulator through another endpoint (a proxy)."""
        if self.kind == "s3":
            return self.options(endpoint_url=endpoint, **extra)
        if self.kind == "gcs":
            return self.options(endpoint_url=endpoint, **extra)
        blob = f"{endpoint.rstrip('/')}/{AZURITE_ACCOUNT}"
        return self.options(connection_string=azurite_connection_string(blob), **extra)

    def anon_options(self, **extra: Any) -> dict[str, Any]:
        """Options that reach the emulator without any credentials."""
        if self.kind == "s3":
            return {
                "anon": True,
                "endpoint_url": self.endpoint,
                "client_kwargs": {"region_name": S3_REGION},
                **extra,
            }
        if self.kind == "gcs":
            return {"endpoint_url": self.endpoint, "token": "anon", "project": "test", **extra}
        # adlfs builds https://{account_host} from account_host, so an http
        # emulator is reached through a connection string without a key.
        return {
            "anon": True,
            "account_name": AZURITE_ACCOUNT,
            "connection_string": f"BlobEndpoint={self.endpoint};",
            **extra,
        }

    def create_bucket(self, name: str, *, public: str | None = None) -> None:
        """Create a bucket (S3, GCS) or container (Azure).

        ``public`` (Azure only): ``"container"`` or ``"blob"`` public access.
        """
        if self.kind == "s3":
            self._fs().call_s3("create_bucket", Bucket=name)
        elif self.kind == "gcs":
            fs = self._fs()
            fs.mkdir(name)
            fs.invalidate_cache()
        else:
            from azure.storage.blob import BlobServiceClient

            with BlobServiceClient.from_connection_string(
                self.base_options["connection_string"]
            ) as client:
                client.create_container(name, public_access=public)

    def _fs(self) -> Any:
        if self._admin is None:
            import fsspec

            self._admin = fsspec.filesystem(self.scheme, **self.options())
        return self._admin


@dataclass(frozen=True)
class Bucket:
    """A bucket (container) on an emulator."""

    server: Emulator
    name: str

    def uri(self, path: str = "") -> str:
        return self.server.uri(self.name, path)

    def options(self, **extra: Any) -> dict[str, Any]:
        return self.server.options(**extra)

    def store(self, path: str = "root", **extra: Any) -> Any:
        """A vecstore Store rooted at ``path`` in this bucket."""
        from vecstore.storage import Store

        return Store(self.uri(path), self.options(**extra))


def unique_name(prefix: str = "t") -> str:
    """A bucket / container name valid on S3, GCS and Azure (3-63, [a-z0-9-])."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def azurite_connection_string(blob_endpoint: str, key: str = AZURITE_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={key};BlobEndpoint={blob_endpoint};"
    )


def _deep_copy(options: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in options.items()}


@contextlib.contextmanager
def run_moto(*, in_process: bool = True, port: int | None = None) -> Iterator[Emulator]:
    """moto's S3 server; yields an :class:`Emulator` of kind ``s3``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = port or free_port()
    proc: subprocess.Popen[bytes] | None = None
    server: Any = None
    try:
        if in_process:
            from moto.server import ThreadedMotoServer

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            wait_for_port(port, name="moto")
        else:
            exe = _script("moto_server")
            cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
            proc = _spawn([*cmd, "-H", "127.0.0.1", "-p", str(port)])
            wait_for_port(port, proc=proc, name="moto_server")
        endpoint = f"http://127.0.0.1:{port}"
        yield Emulator(
            kind="s3",
            scheme="s3",
            host="127.0.0.1",
            port=port,
            endpoint=endpoint,
            base_options={
                "key": S3_KEY,
                "secret": S3_SECRET,
                "endpoint_url": endpoint,
                "client_kwargs": {"region_name": S3_REGION},
                "skip_instance_cache": True,
            },
        )
    finally:
        if server is not None:
            server.stop()
        if proc is not None:
            stop_process(proc)


@contextlib.contextmanager
def run_gcs_emulator(*, port: int | None = None) -> Iterator[Emulator]:
    """gcp-storage-emulator in a subprocess; yields an :class:`Emulator` of kind ``gcs``."""
    port = port or free_port()
    exe = _script("gcp-storage-emulator")
    cmd = [exe] if exe else [sys.executable, "-m", "gcp_storage_emulator"]
    proc = _spawn([*cmd, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory", "-q"])
    try:
        wait_for_port(port, proc=proc, name="gcp-storage-emulator")
        endpoint = f"http://127.0.0.1:{port}"
        yield Emulator(
            kind="gcs",
            scheme="gs",
            host="127.0.0.1",
            port=port,
            endpoint=endpoint,
            base_options={
                "endpoint_url": endpoint,
                "token": "anon",
                "project": "test",
                "skip_instance_cache": True,
            },
        )
    finally:
        stop_process(proc)


def wipe_gcs(endpoint: str) -> None:
    """Delete every bucket and object of a gcp-storage-emulator."""
    with urllib.request.urlopen(f"{endpoint}/wipe", timeout=10) as resp:
        resp.read()


@contextlib.contextmanager
def run_azurite(*, port: int | None = None, binary: Path | str = AZURITE_BIN) -> Iterator[Emulator]:
    """Azurite's blob service; yields an :class:`Emulator` of kind ``azure``."""
    binary = Path(binary)
    if not binary.exists():
        raise ServerError(
            f"Azurite is not installed ({binary} is missing): run `make install` "
            "(it runs `npm install azurite` into .tools/)"
        )
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    proc = _spawn(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            "--loose",
        ],
        cwd=workdir,
    )
    try:
        wait_for_port(port, proc=proc, name="azurite-blob")
        blob = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        yield Emulator(
            kind="azure",
            scheme="az",
            host="127.0.0.1",
            port=port,
            endpoint=blob,
            base_options={
                "account_name": AZURITE_ACCOUNT,
                "connection_string": azurite_connection_string(blob),
                "skip_instance_cache": True,
            },
        )
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)
