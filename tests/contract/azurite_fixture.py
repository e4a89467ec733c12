"""A real Azurite (npm, installed by scripts/bootstrap into .tools/) on free loopback ports."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from shared.local.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".tools" / "node_modules" / ".bin" / "azurite"
# Azurite's documented development account (the same for every Azurite; not a secret of ours)
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """Start with ``with Azurite() as azurite:``; ``connection_string`` points at its three services."""

    def __init__(self, location: Path | None = None) -> None:
        if not AZURITE.exists():
            raise RuntimeError(f"Azurite is not installed at {AZURITE}: run scripts/bootstrap (needs Node.js 20+)")
        self.location = location or Path(tempfile.mkdtemp(prefix="azurite-"))
        self.ports = {"blob": free_port(), "queue": free_port(), "table": free_port()}
        self.log = self.location / "azurite.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        endpoints = ";".join(
            f"{name.capitalize()}Endpoint=http://127.0.0.1:{port}/{ACCOUNT}" for name, port in self.ports.items()
        )
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};{endpoints};"

    def start(self) -> Azurite:
        command = [
            str(AZURITE),
            "--location", str(self.location),
            "--blobPort", str(self.ports["blob"]),
            "--queuePort", str(self.ports["queue"]),
            "--tablePort", str(self.ports["table"]),
            "--skipApiVersionCheck", "--silent", "--disableTelemetry",
        ]  # fmt: skip
        handle = self.log.open("ab")
        self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        pending = set(self.ports.values())
        while pending:
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Azurite did not listen on {sorted(pending)} within 60s")
            for port in list(pending):
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        pending.discard(port)
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
