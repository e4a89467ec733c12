"""A real `mlflow server` with a SQL backend, able to deliver webhooks to loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.local.processes import free_port, stop_process, wait_http


class MlflowServer:
    """`mlflow server` on a free port, state under ``root``; a context manager."""

    def __init__(self, root: Path, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.host = host
        self.port = port or free_port(host)
        self.log_path = self.root / "mlflow-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _encryption_key(self) -> str:
        path = self.root / "webhook-secrets.key"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.write_bytes(Fernet.generate_key())
            path.chmod(0o600)
        return path.read_text().strip()

    def start(self, *, timeout: float = 120) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # MLflow only delivers webhooks to loopback when told to (SSRF protection).
        env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] = "http,https"
        env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] = "true"
        env.pop("MLFLOW_TRACKING_URI", None)
        # MLflow encrypts stored webhook secrets with this Fernet key, or with one each process makes
        # up: then a restarted server cannot read its webhooks (InvalidToken) and stops delivering.
        # One key per server root, kept beside its database, survives restarts.
        env.setdefault("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", self._encryption_key())
        # MLflow caches the webhook list per event type for 60 s by default, and a webhook created
        # within that window after an event of its type misses deliveries; keep the cache short here
        env.setdefault("MLFLOW_WEBHOOK_CACHE_TTL", "1")
        # server-side jobs (huey consumers, for GenAI evaluation) are not needed and cost startup time
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{(self.root / 'mlflow.db').resolve()}",
            "--artifacts-destination",
            (self.root / "artifacts").resolve().as_uri(),
            "--serve-artifacts",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_http(f"{self.url}/health", timeout=timeout, process=self.process, log=self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
