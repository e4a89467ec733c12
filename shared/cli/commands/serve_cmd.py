"""`modelops serve`: the local stack (HTTP API + in-process workers) on embedded defaults."""

from __future__ import annotations

import argparse
import logging
import threading

from shared.bootstrap import Container
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor

log = logging.getLogger("modelops.serve")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the HTTP API and workers locally")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7071, help="port (default 7071, as `func start`)")
    p.add_argument("--workers", type=int, default=None, help="worker threads (default: worker.threads)")
    p.add_argument("--no-worker", action="store_true", help="API only; run `modelops worker` elsewhere")
    p.set_defaults(func=serve)
    w = sub.add_parser("worker", help="run only the worker loop over the local ledger")
    w.add_argument("--workers", type=int, default=None, help="worker threads (default: worker.threads)")
    w.set_defaults(func=work)


def start_workers(
    reactor: Reactor, dispatcher: LocalDispatcher, count: int | None, stop: threading.Event
) -> list[threading.Thread]:
    """Worker threads, each with its own lease identity, woken early by new dispatches."""
    threads = []
    for _ in range(count or reactor.config.worker.threads):
        worker = reactor.worker()
        thread = threading.Thread(target=worker.run_forever, args=(stop, dispatcher.wakeup), daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = args.settings
    dispatcher = LocalDispatcher()
    container = Container(settings, dispatcher=dispatcher)
    reactor = container.reactor()
    stop = threading.Event()
    threads = [] if args.no_worker else start_workers(reactor, dispatcher, args.workers, stop)
    app = container.http_app()
    base = f"http://{args.host}:{args.port}/api"
    print(f"modelops-reactor listening on {base}  (state: {settings.state_dir}, workers: {len(threads)})")
    print(
        f"  MLflow webhooks      -> {base}/hooks/mlflow       (secret: MLFLOW_WEBHOOK_SECRET"
        f"{' set' if settings.mlflow_webhook_secret else ' NOT set: unsigned deliveries accepted'})"
    )
    print(
        f"  Databricks webhooks  -> {base}/hooks/databricks   (secret: DATABRICKS_WEBHOOK_SECRET"
        f"{' set' if settings.databricks_webhook_secret else ' NOT set'})"
    )
    print(f"  Event Grid (Azure ML)-> {base}/hooks/eventgrid")
    print(f"  ops API              -> {base}/actions, {base}/events, {base}/docs")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        stop.set()
        dispatcher.wakeup.set()
        for thread in threads:
            thread.join(timeout=30)
    return 0


def work(args: argparse.Namespace) -> int:
    dispatcher = LocalDispatcher()
    reactor = Container(args.settings, dispatcher=dispatcher).reactor()
    stop = threading.Event()
    threads = start_workers(reactor, dispatcher, args.workers, stop)
    print(f"worker running ({len(threads)} threads); Ctrl-C to stop")
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=1)
    except KeyboardInterrupt:
        stop.set()
    return 0
