"""`modelops serve`: the local stack (HTTP API + in-process workers) on embedded defaults.

On Ctrl+C or SIGTERM it stops taking requests, lets the workers finish the action they run, and
leaves the local deployments it started serving: they are the deployed state the ledger records
(a later `serve` keeps managing them), so it lists them with the command that stops them.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import threading
from pathlib import Path

from shared.bootstrap import Container
from shared.errors import ConfigError
from shared.ingest.sources import SOURCE_TABLE, secret_setting
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor
from shared.service.reconcile import reconciled
from shared.service.schedule import LocalTimers
from shared.settings import Settings

log = logging.getLogger("modelops.serve")
WORKER_GRACE_SECONDS = 30


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the HTTP API and workers locally")
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
    reactor = container.reactor()
    warn_missing_batch_inputs(reactor)
    stop = threading.Event()
    threads = [] if args.no_worker else reactor.start_workers(args.workers, stop, dispatcher.wakeup)
    timers = LocalTimers(reactor).start()  # the timers the Functions app has (shared/service/schedule.py)
    _banner(args, settings, reactor, len(threads))
    for name, at in timers.schedule().items():
        print(f"  timer {name:<15}-> next at {at:%Y-%m-%d %H:%M:%S} UTC", flush=True)
    received: list[int] = []
    # uvicorn stops on SIGINT/SIGTERM, restores the handlers it found and raises the signal again:
    # these record it, so the shutdown below runs for SIGTERM too (the default would just exit)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        uvicorn.run(container.http_app(), host=args.host, port=args.port, log_level="warning")
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C stops waiting
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        timers.close()
        stop_workers(threads, stop, dispatcher)
        report_left_running(reactor)
    return 0


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


def _banner(args: argparse.Namespace, settings: Settings, reactor: Reactor, workers: int) -> None:
    base = f"http://{args.host}:{args.port}/api"
    print(f"modelops-reactor listening on {base}  (state: {settings.state_dir}, workers: {workers})")
    for name, source in reactor.config.sources.items():
        kind = SOURCE_TABLE[str(source.kind)]
        if kind.verify is not None:
            setting = str(secret_setting(reactor.config, name, kind))
            state = "set" if settings.webhook_secret(setting) else "NOT set"
            route = f"{base}/hooks/{name}"
            print(f"  source {name} ({source.kind}) -> {route}  (secret: {setting} {state})")
        elif kind.parse is not None:
            print(f"  source {name} ({source.kind}) -> {base}/hooks/eventgrid, by workspace")
        if reconciled(source):
            print(f"  source {name} ({source.kind}) -> reconciled every {reactor.config.reconcile.every}")
    print(f"  Event Grid (Azure ML)-> {base}/hooks/eventgrid")
    print(f"  ops API              -> {base}/actions, {base}/events, {base}/docs")
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
