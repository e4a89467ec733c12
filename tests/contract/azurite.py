"""Azurite (the Azure Storage emulator, npm) as a real process: blob, queue and table on free ports.

    with Azurite(tmp_path) as storage:
        BlobServiceClient.from_connection_string(storage.connection_string)

Plain HTTP by default; give ``cert``/``key`` (e.g. a TestCA's) to serve HTTPS like real storage.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from shared.local.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".tools" / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public; documented by Microsoft for the emulator)
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """`azurite` under ``root`` (its --location); a context manager. Needs Node.js and the npm package."""

    def __init__(self, root: Path, *, cert: Path | None = None, key: Path | None = None) -> None:
        self.root = Path(root)
        self.cert, self.key = cert, key
        self.blob_port, self.queue_port, self.table_port = free_port(), free_port(), free_port()
        self.log_path = self.root / "azurite.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.cert else "http"

    @property
    def blob_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def table_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};"
        )

    def start(self, *, timeout: float = 60) -> Azurite:
        if not BINARY.exists():
            raise RuntimeError(f"azurite is not installed at {BINARY} (npm install --prefix .tools azurite)")
        location = self.root / "data"
        location.mkdir(parents=True, exist_ok=True)
        command = [
            str(BINARY),
            "--location",
            str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.blob_port),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(self.queue_port),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(self.table_port),
        ]
        if self.cert and self.key:
            command += ["--cert", str(self.cert), "--key", str(self.key)]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {self.blob_port, self.queue_port, self.table_port}
        while pending:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited with {self.process.returncode}: {self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"azurite did not listen on {sorted(pending)} within {timeout:.0f}s")
            for port in list(pending):
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        pending.discard(port)
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
