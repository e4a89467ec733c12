"""`modelops serve`: the local stack (HTTP API + in-process workers) on embedded defaults.

On Ctrl+C or SIGTERM it stops taking requests, lets the workers finish the action they run, and
leaves the local deployments it started serving: they are the deployed state the ledger records
(a later `serve` keeps managing them), so it lists them with the command that stops them.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import logging
import signal
import socket
import sys
import threading
from datetime import datetime
from pathlib import Path

from shared.bootstrap import Container
from shared.cli.output import tsv
from shared.errors import ConfigError
from shared.ingest.sources import SOURCE_TABLE, secret_setting
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor
from shared.service.reconcile import reconciled
from shared.service.schedule import LocalTimers
from shared.settings import Settings

log = logging.getLogger("modelops.serve")
WORKER_GRACE_SECONDS = 30
EXIT_UNBOUND = 3


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="run the HTTP API and workers locally",
        description="Run the HTTP API, the audit page and the workers locally. Exit codes: 0 stopped (Ctrl+C, "
        f"SIGTERM); 2 a usage or config error; {EXIT_UNBOUND} the address cannot be bound (the port is in use, "
        "or not permitted): nothing was started.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7071, help="port (default 7071, as `func start`)")
    p.add_argument("--workers", type=int, default=None, help="worker threads (default: worker.threads)")
    p.add_argument("--no-worker", action="store_true", help="API only; run `modelops worker` elsewhere")
    p.add_argument(
        "--allow-open",
        action="store_true",
        help="bind a non-loopback --host although no operator credential is set (the ops routes open to that network)",
    )
    p.set_defaults(func=serve)
    w = sub.add_parser("worker", help="run only the worker loop over the local ledger")
    w.add_argument("--workers", type=int, default=None, help="worker threads (default: worker.threads)")
    w.set_defaults(func=work)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = args.settings
    refuse_open_bind(args.host, settings, allow_open=args.allow_open)
    dispatcher = LocalDispatcher()
    container = Container(settings, dispatcher=dispatcher)
    try:  # bound before anything starts or is announced: a busy port fails here, saying so
        listener = bind(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {_bind_problem(exc, args.port)}", file=sys.stderr)
        return EXIT_UNBOUND
    reactor = container.reactor()
    warn_missing_batch_inputs(reactor)
    stop = threading.Event()
    threads = [] if args.no_worker else reactor.start_workers(args.workers, stop, dispatcher.wakeup)
    timers = LocalTimers(reactor).start()  # the timers the Functions app has (shared/service/schedule.py)
    _banner(args, settings, reactor, len(threads), timers.schedule())
    received: list[int] = []
    # uvicorn stops on SIGINT/SIGTERM, restores the handlers it found and raises the signal again:
    # these record it, so the shutdown below runs for SIGTERM too (the default would just exit)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        server = uvicorn.Server(uvicorn.Config(container.http_app(), log_level="warning"))
        server.run(sockets=[listener])
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C stops waiting
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        timers.close()
        stop_workers(threads, stop, dispatcher)
        report_left_running(reactor)
    return 0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket uvicorn serves on, bound here so that failing to bind comes first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart reuses TIME_WAIT
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _bind_problem(exc: OSError, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is already in use (another `modelops serve` or `func start`?); "
            "stop it, or choose another port with --port"
        )
    if exc.errno == errno.EACCES:
        return f"not permitted to listen on port {port}; choose a port above 1023 with --port"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return "this machine has no such address; use --host 127.0.0.1 (this machine) or 0.0.0.0 (every interface)"
    return exc.strerror or str(exc)


def stop_workers(threads: list[threading.Thread], stop: threading.Event, dispatcher: LocalDispatcher) -> None:
    """Ask the workers to stop after their current action; a lease left behind is retried later."""
    stop.set()
    dispatcher.wakeup.set()
    busy = [t for t in threads if t.is_alive()]
    if busy:
        print(f"stopping {len(busy)} worker(s): waiting up to {WORKER_GRACE_SECONDS}s for running actions", flush=True)
    for thread in busy:
        thread.join(timeout=WORKER_GRACE_SECONDS)
    left = sum(t.is_alive() for t in threads)
    if left:
        print(f"{left} action(s) still running: they are retried when their lease expires", flush=True)
    elif threads:
        print("workers stopped", flush=True)


def report_left_running(reactor: Reactor) -> None:
    """Say which local deployments keep serving after `serve` exits, and how to stop them."""
    from shared.adapters.local_deployments import LocalDeploymentStore, is_alive

    alive = [rec for rec in LocalDeploymentStore(reactor.settings.state_dir).list() if is_alive(rec)]
    if not alive:
        print("no local deployments left running", flush=True)
        return
    print(f"left running ({len(alive)} local deployment(s), still serving):", flush=True)
    for rec in alive:
        print(f"  {rec.target}: {rec.model_name}/{rec.model_version} at {rec.url} (pid {rec.pid})", flush=True)
    for target in sorted({rec.target for rec in alive}):
        print(f"stop with: modelops undeploy {target}", flush=True)


def refuse_open_bind(host: str, settings: Settings, *, allow_open: bool) -> None:
    """Open ops routes (no credential) are for this machine only: another interface needs a credential."""
    if allow_open or settings.ops_auth.configured or settings.ops_auth.in_azure or _loopback(host):
        return
    raise ConfigError.single(
        "command line",
        "--host",
        f"{host} is reachable from other machines and no operator credential is set: anyone there could "
        "request deploys and read the ledger",
        "set MODELOPS_OPS_TOKEN (or the Entra settings), bind 127.0.0.1, or pass --allow-open",
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_missing_batch_inputs(reactor: Reactor) -> None:
    """A local batch target whose input file is missing fails every batch_score: say so at start."""
    for name, target in reactor.config.batch.items():
        path = getattr(target, "input", None) if target.kind == "local" else None
        if path and not Path(path).exists():
            log.warning("batch target %s: input %s does not exist yet; batch_score fails until it does", name, path)


def _banner(
    args: argparse.Namespace, settings: Settings, reactor: Reactor, workers: int, timers: dict[str, datetime]
) -> None:
    """Where everything is: the routes of each source, the ops API, its docs and the audit page."""
    base = f"http://{args.host}:{args.port}/api"
    routes: list[tuple[str, str]] = []
    for name, source in reactor.config.sources.items():
        kind = SOURCE_TABLE[str(source.kind)]
        if kind.verify is not None:
            setting = str(secret_setting(reactor.config, name, kind))
            state = "set" if settings.webhook_secret(setting) else "NOT set"
            routes.append((f"source {name} ({source.kind})", f"{base}/hooks/{name}  (secret: {setting} {state})"))
        elif kind.parse is not None:
            routes.append((f"source {name} ({source.kind})", f"{base}/hooks/eventgrid, by workspace"))
        if reconciled(source):
            routes.append((f"source {name} ({source.kind})", f"reconciled every {reactor.config.reconcile.every}"))
    routes += [
        ("Event Grid (Azure ML)", f"{base}/hooks/eventgrid"),
        ("ops API", f"{base}/actions, {base}/events"),
        ("API docs", f"{base}/docs"),
        ("audit page", f"{base}/ui/"),
    ]
    if args.output == "json":  # one line a script can read the URLs from
        print(
            json.dumps(
                {
                    "listening": base,
                    "state_dir": str(settings.state_dir),
                    "workers": workers,
                    "routes": [{"what": w, "where": u} for w, u in routes],
                    "timers": {name: at.isoformat() for name, at in timers.items()},
                }
            ),
            flush=True,
        )
        return
    routes += [(f"timer {name}", f"next at {at:%Y-%m-%d %H:%M:%S} UTC") for name, at in timers.items()]
    if args.output == "tsv":  # `what<TAB>where` lines, the first one where it listens
        print(tsv([("listening", base), *routes]), flush=True)
        return
    print(f"modelops-reactor listening on {base}  (state: {settings.state_dir}, workers: {workers})")
    width = max(len(label) for label, _ in routes)  # a long source or timer name keeps its arrow apart
    for label, where in routes:
        print(f"  {label:{width}} -> {where}")
    print("  Ctrl+C stops the API and workers; local deployments keep serving (`modelops undeploy TARGET`)", flush=True)


def work(args: argparse.Namespace) -> int:
    dispatcher = LocalDispatcher()
    reactor = Container(args.settings, dispatcher=dispatcher).reactor()
    stop = threading.Event()
    threads = reactor.start_workers(args.workers, stop, dispatcher.wakeup)
    print(f"worker running ({len(threads)} threads); Ctrl-C to stop", flush=True)
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=1)
    except KeyboardInterrupt:
        stop_workers(threads, stop, dispatcher)
    return 0
