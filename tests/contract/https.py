"""Serve an ASGI app (a contract server) over real HTTPS on loopback, trusted through a test CA.

Cloud SDKs (azure-core, databricks-sdk) then talk to it exactly as to the cloud: real TLS, real
HTTP, and the standard REQUESTS_CA_BUNDLE / SSL_CERT_FILE trust settings.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import trustme
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestCA:
    """A throwaway CA and a loopback server certificate; ``bundle`` is the PEM to trust."""

    __test__ = False

    def __init__(self) -> None:
        self._ca = trustme.CA()
        self._dir = Path(tempfile.mkdtemp(prefix="modelops-ca-"))
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self.bundle = self._dir / "ca.pem"
        self.cert = self._dir / "server.pem"
        self.key = self._dir / "server.key"
        self._ca.cert_pem.write_to_path(str(self.bundle))
        cert.private_key_pem.write_to_path(str(self.key))
        cert.cert_chain_pems[0].write_to_path(str(self.cert))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(self.cert), append=True)

    def issue(self, *hostnames: str) -> tuple[Path, Path]:
        """A server certificate and key for other names (e.g. a cloud hostname reached through a proxy)."""
        cert = self._ca.issue_cert(*hostnames)
        stem = self._dir / hostnames[0].replace("*", "_")
        cert.private_key_pem.write_to_path(str(stem.with_suffix(".key")))
        cert.cert_chain_pems[0].write_to_path(str(stem.with_suffix(".pem")))
        return stem.with_suffix(".pem"), stem.with_suffix(".key")


class HttpsServer:
    """Run ``app`` with uvicorn on https://127.0.0.1:<port> in a background thread."""

    def __init__(self, app: Any, ca: TestCA, *, port: int | None = None, cert: tuple[Path, Path] | None = None) -> None:
        self.port = port or free_port()
        certfile, keyfile = cert or (ca.cert, ca.key)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            ssl_certfile=str(certfile),
            ssl_keyfile=str(keyfile),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,  # SDK keep-alive connections must not hold up teardown
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpsServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("contract server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
