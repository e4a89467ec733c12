"""Benchmark: the Azure intake path (Table Storage ledger + Storage queue, on Azurite) versus a bare
entity insert plus a queue send, per delivery.

    python benchmarks/ingest_azure.py [--rounds 5] [--deliveries 300] [--concurrency 16]
        [--json benchmarks/results/ingest_azure.json]

Both sides run in this process on the real SDKs against one Azurite, from ``--concurrency`` threads.
Subject: `Reactor.accept` of parsed MLflow `model_version.created` events (30% exact redeliveries)
as the Functions app runs it with MODELOPS_STATE_BACKEND=azure: the event with its key claim, the
register action with its own, the links, the audit line, then the queue message. Baseline: for each
delivery one `create_entity` of a comparable entity and one `send_message`, which is the least any
durable intake on these two services can do. Rounds alternate the two. The ledger is checked after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import ROOT, Ratio, add_arguments, finish, percentile, run_rounds

MODEL = "bench-model"
CONFIG = """
sources:
  mlflow: {tracking_uri: "http://127.0.0.1:9"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - name: copy
    on: model_version.created
    models: ["bench-*"]
    do: [{register: local-aml}]
"""


def events(
    count: int, duplicate_share: float, rng: random.Random, first: int, model: str = MODEL
) -> tuple[list[Any], int]:
    from shared.ingest.mlflow_hooks import parse_mlflow

    distinct = round(count * (1 - duplicate_share))
    originals = []
    for version in range(first, first + distinct):
        envelope = {
            "entity": "model_version",
            "action": "created",
            "timestamp": "2025-01-01T00:00:00Z",
            "data": {
                "name": model,
                "version": str(version),
                "source": f"models:/m-{version}",
                "run_id": uuid.uuid4().hex,
            },
        }
        originals.append(parse_mlflow(envelope, str(uuid.uuid4()), source="mlflow"))
    out = originals + [rng.choice(originals) for _ in range(count - distinct)]
    rng.shuffle(out)
    return out, distinct


class RequestCount:
    """Every HTTP request the SDK clients send, counted on the sending thread (azure-core's
    ``raw_request_hook``, set on every client the StorageAccount builds), so that each delivery's
    own requests are read around its call: ``table`` (by verb: GET a point read or query, POST an
    insert or a ``$batch``, PUT/MERGE an update) and ``queue`` sends."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.by_kind: dict[str, Counter[str]] = {"new": Counter(), "duplicate": Counter(), "bare": Counter()}
        self.deliveries: Counter[str] = Counter()

    def hook(self, request: Any) -> None:
        http = request.http_request
        url = urlsplit(http.url)
        kind = "queue" if "/messages" in url.path else "table"
        label = "table $batch" if url.path.endswith("$batch") else f"{kind} {http.method}"
        current = getattr(self._local, "counter", None)
        if current is not None:
            current[label] += 1

    def around(self, kind: str | None, call: Any) -> Any:
        """Run ``call`` counting its requests under ``kind`` (None: by the intake's answer)."""
        self._local.counter = mine = Counter[str]()
        try:
            result = call()
        finally:
            self._local.counter = None
        name = kind or ("duplicate" if result.duplicate else "new")
        with self.lock:
            self.by_kind[name].update(mine)
            self.deliveries[name] += 1
        return result

    def per_delivery(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, counts in self.by_kind.items():
            n = self.deliveries[name]
            if n:
                per = {label: round(c / n, 2) for label, c in sorted(counts.items())}
                table = sum(c for label, c in counts.items() if label.startswith("table")) / n
                out[name] = {"deliveries": n, "table_requests": round(table, 2), **per}
        return out


def blast(work: list[Any], concurrency: int, one: Any) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(range(len(work)))

    def client() -> None:
        mine = []
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            start = time.perf_counter()
            one(work[index])
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "throughput_per_s": len(work) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    parser.add_argument("--deliveries", type=int, default=300, help="per side and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.3)
    args = parser.parse_args()
    rng = random.Random(8)

    from tests.contract.azurite import Azurite

    with tempfile.TemporaryDirectory(prefix="bench-azure-") as tmp_name, Azurite(Path(tmp_name) / "azurite") as azurite:
        tmp = Path(tmp_name)
        (tmp / "modelops.yaml").write_text(CONFIG % {"tmp": tmp})
        os.environ.update(
            {
                "MODELOPS_STATE_BACKEND": "azure",
                "AzureWebJobsStorage": azurite.connection_string,
                "MODELOPS_CONFIG": str(tmp / "modelops.yaml"),
                "MODELOPS_STATE_DIR": str(tmp / "state"),
                "MODELOPS_LEDGER_TABLE": "benchledger",
                "MODELOPS_ACTIONS_QUEUE": "bench-actions",
            }
        )
        from azure.storage.queue import QueueClient

        from shared.adapters.azure_storage import StorageAccount
        from shared.bootstrap import Container

        requests = RequestCount()
        options = StorageAccount._pipeline_options
        StorageAccount._pipeline_options = lambda self: {**options(self), "raw_request_hook": requests.hook}  # type: ignore[method-assign]
        reactor = Container.from_env().reactor()
        account = StorageAccount(connection_string=azurite.connection_string)
        table = account.table_client("benchbare")
        table.create_table()
        queue: QueueClient = account.queue_client("bench-bare")
        queue.create_queue()
        answered: Counter[str] = Counter()
        distinct_total = 0

        def bare_one(event: Any) -> None:
            entity = {
                "PartitionKey": "event",
                "RowKey": f"evt_{uuid.uuid4().hex[:20]}",
                "payload": json.dumps({"model": event.model_name, "version": event.model_version}),
                "status": "accepted",
            }

            def send() -> None:
                table.create_entity(entity)
                queue.send_message(json.dumps({"action_id": entity["RowKey"]}))

            requests.around("bare", send)

        def reactor_one(event: Any) -> None:
            result = requests.around(None, lambda: reactor.accept(event))
            with lock:
                answered["duplicate" if result.duplicate else "accepted"] += 1

        lock = threading.Lock()
        warm, _ = events(32, 0.0, rng, first=1, model="bench-warmup")
        blast(warm, args.concurrency, bare_one)
        blast(warm, args.concurrency, reactor_one)
        answered.clear()
        requests.reset()

        def side(target: int, i: int) -> dict[str, float]:
            nonlocal distinct_total
            work, distinct = events(args.deliveries, args.duplicates, rng, first=1 + (2 * i + target) * 100_000)
            if target == 1:
                distinct_total += distinct
            return blast(work, args.concurrency, reactor_one if target else bare_one)

        result = run_rounds(
            lambda i: side(0, i),
            lambda i: side(1, i),
            rounds=args.rounds,
            ratios={"throughput": Ratio("throughput_per_s"), "p99": Ratio("p99_ms"), "p50": Ratio("p50_ms")},
        )
        ledger_events = [e for e in reactor.ledger.list_events(limit=100_000) if e["model_name"] == MODEL]
        actions = reactor.ledger.list_actions(model=MODEL, limit=100_000)
        queued = queue_length(account, "bench-actions")
        costs = sdk_cpu_ms(table, queue)
    consistent = (
        answered["accepted"] == distinct_total == len(ledger_events) == len(actions)
        and sum(e["deliveries"] for e in ledger_events) == args.rounds * args.deliveries
    )
    finish(
        args,
        "ingest_azure",
        result,
        goals=[],
        extra_goals={"ledger consistent": consistent},
        subject=f"Azure intake (`Reactor.accept`: Table Storage ledger + queue, Azurite), {args.duplicates:.0%}"
        f" duplicates, {args.concurrency} threads",
        baseline="one bare entity insert + one queue send per delivery",
        headline="{s[throughput_per_s]:.0f}/s, p50 {s[p50_ms]:.0f} ms, p99 {s[p99_ms]:.0f} ms;"
        " {b[throughput_per_s]:.0f}/s, p50 {b[p50_ms]:.0f} ms, p99 {b[p99_ms]:.0f} ms"
        + requests_text(per_delivery := requests.per_delivery()),
        requests_per_delivery=per_delivery,
        sdk_cpu_ms_per_call=costs,
        ledger=(
            ledger_check := {
                "accepted": answered["accepted"],
                "duplicates": answered["duplicate"],
                "events": len(ledger_events),
                "actions": len(actions),
                "messages_queued": queued,
                "consistent": consistent,
                "expected_distinct": distinct_total,
                "deliveries_counted": sum(e["deliveries"] for e in ledger_events),
            }
        ),
    )
    if not consistent:
        raise SystemExit(f"the Table ledger does not match what was answered: {ledger_check}")


def requests_text(per_delivery: dict[str, dict[str, float]]) -> str:
    """The requests per delivery, for the docs table row (Table requests + queue sends)."""

    def one(name: str) -> str:
        counts = per_delivery.get(name, {})
        return f"{counts.get('table_requests', 0):g} + {counts.get('queue POST', 0):g}"

    return (
        f"; Table + queue requests per delivery: new event {one('new')}, duplicate {one('duplicate')},"
        f" baseline {one('bare')}"
    )


def sdk_cpu_ms(table: Any, queue: Any, calls: int = 100) -> dict[str, float]:
    """Client CPU of one call of each kind, from one thread (``time.thread_time``): where the
    subject's Python goes besides the reactor's own work."""

    def entity() -> dict[str, Any]:
        return {"PartitionKey": "cost", "RowKey": uuid.uuid4().hex, "payload": "x" * 800, "status": "accepted"}

    kept = entity()
    table.create_entity(kept)
    kinds = {
        "create_entity": lambda: table.create_entity(entity()),
        "get_entity": lambda: table.get_entity(kept["PartitionKey"], kept["RowKey"]),
        "submit_transaction, 1 entity": lambda: table.submit_transaction([("create", entity())]),
        "submit_transaction, 4 entities": lambda: table.submit_transaction([("create", entity()) for _ in range(4)]),
        "send_message": lambda: queue.send_message("x" * 100),
    }
    out = {}
    for name, call in kinds.items():
        call()
        started = time.thread_time()
        for _ in range(calls):
            call()
        out[name] = round((time.thread_time() - started) / calls * 1000, 2)
    return out


def queue_length(account: Any, name: str) -> int:
    return int(account.queue_client(name).get_queue_properties().approximate_message_count)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    main()
