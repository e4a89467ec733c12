"""One side of `benchmarks/ingest_azure.py`, in a process of its own: the Azure intake of a checkout
(``reactor TREE``: `Reactor.accept` with MODELOPS_STATE_BACKEND=azure, the code imported from TREE)
or the bare path (``bare``: one entity insert and one queue send per delivery), on the Azurite and
the names its environment gives.

    python benchmarks/azure_side.py reactor|bare TREE

It reads one JSON command a line on stdin and answers one JSON line on stdout: ``round`` (fresh
deliveries from ``concurrency`` threads: latencies, throughput, the requests each delivery sent,
the answers), ``check`` (the ledger's events, actions and counted deliveries) and ``costs`` (client
CPU of one SDK call of each kind).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import ROOT, percentile, run_threads

MODEL = "bench-model"
STORAGE = "AzureWebJobsStorage"  # the Functions host's name for it


def events(count: int, duplicate_share: float, rng: random.Random, first: int, model: str = MODEL) -> list[Any]:
    """``count`` parsed MLflow `model_version.created` deliveries of fresh versions from ``first``,
    ``duplicate_share`` of them exact redeliveries, shuffled."""
    from shared.ingest.mlflow_hooks import parse_mlflow

    originals = []
    for version in range(first, first + round(count * (1 - duplicate_share))):
        data = {"name": model, "version": str(version), "source": f"models:/m-{version}", "run_id": uuid.uuid4().hex}
        envelope = {"entity": "model_version", "action": "created", "timestamp": "2025-01-01T00:00:00Z", "data": data}
        originals.append(parse_mlflow(envelope, str(uuid.uuid4()), source="mlflow"))
    out = originals + [rng.choice(originals) for _ in range(count - len(originals))]
    rng.shuffle(out)
    return out


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

    seconds = run_threads(concurrency, client)
    return {
        "seconds": seconds,
        "throughput_per_s": len(work) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


class Side:
    def __init__(self, kind: str) -> None:
        from shared.adapters.azure_storage import StorageAccount

        self.kind, self.requests, self.answered = kind, RequestCount(), Counter[str]()
        options = StorageAccount._pipeline_options
        hook = self.requests.hook
        StorageAccount._pipeline_options = lambda self: {**options(self), "raw_request_hook": hook}  # type: ignore[method-assign]
        self.account = StorageAccount(connection_string=os.environ[STORAGE])
        if kind == "bare":
            self.table = self.account.table_client(os.environ["MODELOPS_LEDGER_TABLE"])
            self.table.create_table()
            self.queue = self.account.queue_client(os.environ["MODELOPS_ACTIONS_QUEUE"])
            self.queue.create_queue()
        else:
            from shared.bootstrap import Container

            self.reactor = Container.from_env().reactor()
        self.lock = threading.Lock()

    def one(self, event: Any) -> None:
        if self.kind == "bare":
            entity = {
                "PartitionKey": "event",
                "RowKey": f"evt_{uuid.uuid4().hex[:20]}",
                "payload": json.dumps({"model": event.model_name, "version": event.model_version}),
                "status": "accepted",
            }

            def send() -> None:
                self.table.create_entity(entity)
                self.queue.send_message(json.dumps({"action_id": entity["RowKey"]}))

            self.requests.around("bare", send)
            return
        result = self.requests.around(None, lambda: self.reactor.accept(event))
        with self.lock:
            self.answered["duplicate" if result.duplicate else "accepted"] += 1

    def round(self, command: dict[str, Any]) -> dict[str, Any]:
        rng = random.Random(command["seed"])
        work = events(command["count"], command["duplicates"], rng, command["first"], command.get("model", MODEL))
        metrics = blast(work, command["concurrency"], self.one)
        return {"metrics": metrics, "distinct": len({e.dedupe_key for e in work})}

    def reset(self) -> dict[str, Any]:
        self.requests.reset()
        self.answered.clear()
        return {}

    def check(self) -> dict[str, Any]:
        ledger = self.reactor.ledger
        found = [e for e in ledger.list_events(limit=100_000) if e["model_name"] == MODEL]
        queue = self.account.queue_client(os.environ["MODELOPS_ACTIONS_QUEUE"])
        return {
            "events": len(found),
            "deliveries_counted": sum(e["deliveries"] for e in found),
            "actions": len(ledger.list_actions(model=MODEL, limit=100_000)),
            "messages_queued": int(queue.get_queue_properties().approximate_message_count),
            "answered": dict(self.answered),
        }

    def counts(self) -> dict[str, Any]:
        return {
            "by_kind": {k: dict(v) for k, v in self.requests.by_kind.items()},
            "deliveries": self.requests.deliveries,
        }

    def costs(self, calls: int = 100) -> dict[str, float]:
        """Client CPU of one call of each kind, from one thread (``time.thread_time``)."""
        from shared.adapters import table_batch

        table, queue = self.table, self.queue

        def entity() -> dict[str, Any]:
            return {"PartitionKey": "cost", "RowKey": uuid.uuid4().hex, "payload": "x" * 800, "status": "accepted"}

        kept = entity()
        table.create_entity(kept)
        kinds = {
            "create_entity": lambda: table.create_entity(entity()),
            "get_entity": lambda: table.get_entity(kept["PartitionKey"], kept["RowKey"]),
            "submit_transaction, 1 entity": lambda: table.submit_transaction([("create", entity())]),
            "submit_transaction, 4 entities": lambda: table.submit_transaction(
                [("create", entity()) for _ in range(4)]
            ),
            "table_batch.submit, 4 entities (shared/adapters/table_batch.py)": lambda: table_batch.submit(
                table, [entity() for _ in range(4)]
            ),
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


def main() -> None:
    kind, tree = sys.argv[1], Path(sys.argv[2]).resolve()
    # the checkout measured first on the path (harness put this one's root there)
    sys.path[:] = [str(tree), *(p for p in sys.path if Path(p or ".").resolve() not in (ROOT, tree))]
    side = Side(kind)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        answer = side.round(command) if op == "round" else getattr(side, op)()
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
