"""CPU per webhook inside the serving process, without the network: the reactor's ASGI app and the
bare route's, driven directly (no uvicorn, no sockets) by the same signed MLflow deliveries.

    python benchmarks/ingest_inproc.py [--requests 3000] [--concurrency 16] [--profile OUT.pstats]

Each request is one ASGI call (scope, a receive giving the body, a send collecting the answer),
``--concurrency`` of them at a time on one event loop, so the SQLite group commit batches them as
under uvicorn. Prints CPU microseconds per request for both apps (the event loop thread's CPU time over the requests,
after a warm-up); ``--profile`` writes cProfile statistics of the reactor's requests
(`python -m pstats OUT.pstats`, or ``--top N`` to print the heaviest functions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402,F401  (puts the repository on sys.path)

if "--tree" in sys.argv:  # before anything imports `shared`: the other checkout's package
    sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--tree") + 1]).resolve()))
from ingest import BARE_APP, CONFIG, SECRET, Delivery, deliveries  # noqa: E402


def _scope(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"host", b"127.0.0.1"))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 7071),
        "state": {},
    }


async def _call(app: Any, delivery: Delivery, codes: Counter[int]) -> None:
    body, headers = delivery
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            codes[message["status"]] += 1

    await app(_scope("/api/hooks/mlflow", headers, body), receive, send)


async def _drive(app: Any, work: list[Delivery], concurrency: int) -> Counter[int]:
    codes: Counter[int] = Counter()
    queue = iter(work)

    async def client() -> None:
        for delivery in queue:
            await _call(app, delivery, codes)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return codes


def measure(
    app: Any, work: list[Delivery], concurrency: int, profile: cProfile.Profile | None = None
) -> tuple[float, Counter[int]]:
    loop = asyncio.new_event_loop()
    try:
        start = time.thread_time()
        if profile is not None:
            profile.enable()
        codes = loop.run_until_complete(_drive(app, work, concurrency))
        if profile is not None:
            profile.disable()
        return (time.thread_time() - start) / len(work) * 1e6, codes
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each app (the minimum is shown)")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--no-bare", action="store_true", help="only the reactor (e.g. under py-spy)")
    parser.add_argument("--tree", type=Path, default=None, help="the reactor of another checkout (before/after)")
    args = parser.parse_args()
    rng = random.Random(8)
    with tempfile.TemporaryDirectory(prefix="bench-inproc-") as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "modelops.yaml"
        config.write_text(CONFIG % {"tmp": tmp})
        os.environ.update(
            {"MODELOPS_STATE_DIR": str(tmp / "state"), "MODELOPS_CONFIG": str(config), "MLFLOW_WEBHOOK_SECRET": SECRET}
        )
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        import logging

        import shared
        from shared import telemetry
        from shared.bootstrap import Container
        from shared.service.dispatch import LocalDispatcher
        from shared.settings import Settings

        settings = Settings.from_env()
        telemetry.setup_logging(settings, level=logging.INFO, stream=(tmp / "serve.log").open("w"))
        reactor_app = Container(settings, dispatcher=LocalDispatcher()).http_app()
        namespace: dict[str, Any] = {}
        exec(BARE_APP.split("uvicorn.run")[0].replace("import uvicorn", ""), namespace)  # noqa: S102
        bare_app = namespace["app"]
        warm, _ = deliveries(300, args.duplicates, rng, first=9_000_000)
        measure(reactor_app, warm, args.concurrency)
        measure(bare_app, warm, args.concurrency)
        best: dict[str, float] = {}
        for i in range(args.repeat):
            work, _ = deliveries(args.requests, args.duplicates, rng, first=1 + i * 100_000)
            profile = cProfile.Profile() if args.profile is not None and i == 0 else None
            reactor_us, codes = measure(reactor_app, work, args.concurrency, profile)
            bare_us = 0.0 if args.no_bare else measure(bare_app, work, args.concurrency)[0]
            best["reactor"] = min(best.get("reactor", 1e9), reactor_us)
            best["bare"] = min(best.get("bare", 1e9), bare_us)
            print(f"  run {i + 1}: reactor {reactor_us:.0f} us/request {dict(codes)}, bare {bare_us:.0f} us/request")
            if profile is not None:
                profile.dump_stats(args.profile)
        print(f"reactor from {Path(shared.__file__).parent}")
        print(f"CPU per request (min of {args.repeat}): reactor {best['reactor']:.0f} us, bare {best['bare']:.0f} us")
        if args.profile is not None and args.top:
            pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(args.top)
            pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
