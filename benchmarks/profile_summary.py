"""Sum py-spy collapsed stacks by function: where a serving process spent its (non-idle) samples.

    python benchmarks/profile_summary.py PROFILE.txt [--top 25] [--match shared/]
    python benchmarks/profile_summary.py PROFILE.txt --buckets [--thread MainThread] [--rate 250 --requests N]
        [--within TEXT] [--busy-us US]

Inclusive share = samples with the function anywhere on the stack; self share = samples where it
was the innermost frame. ``--match`` keeps only frames whose text contains it (e.g. ``shared/``).
``--buckets`` sorts each sample of one thread (``--thread``, default the event loop's MainThread)
by its innermost frame that one of ``BUCKETS`` names: what an intake's time goes to, and,
with ``--rate`` (py-spy's sampling rate) and ``--requests`` (how many the process answered while
sampled), microseconds per request (or ``--busy-us``: the busy samples scaled to a measured
CPU time per request); ``--within`` keeps only the samples with that text on their stack.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# (bucket, patterns): a sample goes to the bucket of its innermost frame that matches a pattern
# (frames of neither kind, the standard library's json among them, are looked through; JSON encoding
# is told apart by where it was called: the stored fields in the ledger, the answer's body)
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle (waiting for sockets)", ("EpollSelector.select", "Condition.wait", "Event.wait")),
    ("logging (audit line, refusals)", ("(logging/", "Formatter.", "factory (shared/telemetry", "CorrelationFilter")),
    ("answer: JSON body and response", ("answer (shared/api/hooks", "starlette/responses", "shared/api/fast_json")),
    ("JSON encoding of stored fields", ()),  # json/ under a ledger frame
    (
        "SQLite statements, BEGIN/COMMIT",
        ("SqliteStore._run ", "SqliteStore._add_plan (", "_run_units (shared/ledger/sqlite_db", "sqlite3"),
    ),
    ("ledger core and records (Python)", ("shared/ledger/", "shared/domain/ids", "shared/domain/actions")),
    ("rules (plan_actions/explain)", ("shared/rules.py", "shared/domain/params")),
    ("HMAC signature check", ("shared/ingest/signatures.py", "_verify_mlflow")),
    ("JSON parse of the body", ("shared/ingest/jsonbody.py",)),
    ("MLflow envelope -> ModelEvent", ("shared/ingest/mlflow_hooks.py", "shared/domain/events.py")),
    ("body read", ("read_body (shared/api", "starlette/requests.py")),
    ("route code (hooks, reactor, sources)", ("shared/api/", "shared/service/", "shared/ingest/", "shared/")),
    ("FastAPI/Starlette routing, middleware", ("fastapi/", "starlette/", "anyio/")),
    ("uvicorn/h11 HTTP parsing and writing", ("uvicorn/", "h11/", "selector_events.py", "selectors.py")),
    ("asyncio loop", ("asyncio/",)),
)
_JSON = ("json/encoder", "json/__init__", "_json")
_STORED = "ledger core and records (Python)"
OTHER = "other"


def summarize(path: Path, match: str | None) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for stack, count in _samples(path):
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        total += count
        for frame in {_name(f) for f in frames if match is None or match in f}:
            inclusive[frame] += count
        if frames:
            self_time[_name(frames[-1])] += count
    return total, inclusive, self_time


def buckets(path: Path, thread: str, within: str | None = None) -> Counter[str]:
    """Samples of ``thread`` (with ``within`` on the stack) per bucket: the bucket of the innermost
    frame that has one."""
    out: Counter[str] = Counter()
    for stack, count in _samples(path):
        if within is not None and within not in stack:
            continue
        frames = stack.split(";")
        # py-spy --threads: "thread (TID): NAME;frames" (after "process ..." with --subprocesses)
        if not any(part.startswith("thread ") and part.endswith(f": {thread}") for part in frames[:2]):
            continue
        out[_bucket(frames)] += count
    return out


def _bucket(frames: list[str]) -> str:
    encoding = False
    for frame in reversed(frames):
        if any(p in frame for p in _JSON):
            encoding = True
            continue
        for name, patterns in BUCKETS:
            if any(p in frame for p in patterns):
                return "JSON encoding of stored fields" if encoding and name == _STORED else name
    return OTHER


def _samples(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack:
            out.append((stack, int(count_text)))
    return out


def _name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (path/file.py)``: one entry per function, not per line."""
    func, _, where = frame.partition(" (")
    return f"{func} ({where.rsplit(':', 1)[0]})" if where else func


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None)
    parser.add_argument("--buckets", action="store_true", help="one thread's samples by what they did")
    parser.add_argument("--thread", default="MainThread")
    parser.add_argument("--rate", type=float, default=None, help="py-spy's samples per second (--rate)")
    parser.add_argument("--requests", type=int, default=None, help="requests answered while sampled")
    parser.add_argument("--within", default=None, help="only samples with this text on the stack")
    parser.add_argument("--busy-us", type=float, default=None, help="scale: the busy samples are this many us/request")
    args = parser.parse_args()
    if args.buckets:
        counted = buckets(args.profile, args.thread, args.within)
        total = sum(counted.values())
        busy = total - counted[BUCKETS[0][0]]
        per = 1e6 / args.rate / args.requests if args.rate and args.requests else None
        if args.busy_us is not None and busy:
            per = args.busy_us / busy
        print(f"{total} samples of {args.thread}, {busy} busy")
        for name, _ in (*BUCKETS, (OTHER, ())):
            count = counted[name]
            share = f"{count / busy:6.1%} of busy" if name != BUCKETS[0][0] and busy else " " * 14
            us = f"  {count * per:6.1f} us/request" if per is not None else ""
            print(f"  {count:6d}  {share}{us}  {name}")
        if per is not None:
            print(f"  busy: {busy * per:.1f} us/request")
        return
    total, inclusive, self_time = summarize(args.profile, args.match)
    print(f"{total} samples")
    print("inclusive:")
    for name, count in inclusive.most_common(args.top):
        print(f"  {count / total:6.1%}  {name}")
    print("self:")
    for name, count in self_time.most_common(args.top):
        print(f"  {count / total:6.1%}  {name}")


if __name__ == "__main__":
    main()
