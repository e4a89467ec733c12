"""Benchmark: a cold start to the first answer, the Functions app against the bare Functions ASGI app.

    python benchmarks/cold_start.py [--rounds 7] [--samples 3] [--bytecode shipped|source]
                                    [--baseline-tree DIR] [--json benchmarks/results/cold_start.json]

What a registry waits for after a scale-out or a restart is the host indexing the app and then its
first invocation answered. Each sample is a fresh interpreter (`benchmarks/first_call.py`) that
indexes an app and makes one first call through the indexed function's user function, as the
host's Python worker does: the reactor (`function_app`, a SQLite ledger that exists, the config
validated at indexing) against the floor, a `func.AsgiFunctionApp` over a one-route FastAPI app with
an Event Grid and a queue function that only decode their input. Four scenarios, each a ratio:

- ``webhook``: the first signed MLflow delivery, recorded (202) against the bare route's first POST;
- ``eventgrid``: the first Azure ML `ModelRegistered` event, recorded;
- ``queue``: the first `run_action` message (an action already done: a host retry's duplicate);
- ``import``: indexing alone (`import function_app` against `import azure.functions, fastapi`:
  the figure this benchmark gave before it measured the first answer).

Each round runs every scenario's samples on the baseline, then on the subject; each side's figure
is the median of ``--samples`` starts. Wall time and the child's CPU time (user + system, from its
own rusage) are both compared. ``--bytecode shipped`` (the default) gives every child a warmed
bytecode cache (``PYTHONPYCACHEPREFIX``), as a deployed package that ships its `.pyc` files runs
(`docs/azure.md`: the published package is read-only, so Python cannot write them there);
``source`` gives them an empty bytecode cache that is never written: every module compiled on import.
``--baseline-tree DIR`` runs the reactor from another checkout as the baseline instead of the bare
app (before/after: `git worktree add --detach /tmp/before <commit>`). Goal: webhook wall and CPU
<= 1.15x of the bare app.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, Goal, Ratio, add_arguments, finish, run_rounds
from ingest import CONFIG as INGEST_CONFIG
from ingest import SECRET, signed_delivery

CHILD = str(Path(__file__).resolve().parent / "first_call.py")
SCENARIOS = ("webhook", "eventgrid", "queue", "import")
# ingest.py's config, with an azureml source and a rule for its Event Grid events
CONFIG = (
    INGEST_CONFIG.replace("sources:\n", 'sources:\n  azureml: {tracking_uri: "sqlite:///%(tmp)s/aml-source.db"}\n', 1)
    + "  - {name: copy-registered, on: model.registered, models: [bench-*], do: [{register: local-aml}]}\n"
)


class Starts:
    """Fresh interpreters for one side, each indexing its app and making one first call."""

    def __init__(self, side: str, tmp: Path, env: dict[str, str], tree: Path | None = None) -> None:
        self.side, self.tmp, self.env, self.made = side, tmp, env, 0
        if tree is not None:  # the reactor of another checkout, its own state dir
            self.env = {**env, "COLD_START_TREE": str(tree), "MODELOPS_STATE_DIR": str(tmp / "state-tree")}

    def ident(self, scenario: str, done_action: str) -> str:
        """What makes the call new: a signed delivery file, a version, or the done action."""
        self.made += 1
        if scenario == "webhook":
            path = self.tmp / f"delivery-{self.side}-{self.made}.json"
            path.write_text(json.dumps(delivery(f"{self.side}-{self.made}")))
            return str(path)
        return done_action if scenario == "queue" else f"{self.side}-{self.made}"

    def sample(self, scenario: str, ident: str) -> tuple[float, float, dict]:
        """Wall seconds, CPU seconds (the child's own rusage) and what the call answered."""
        command = [sys.executable, CHILD, "reactor" if self.side == "tree" else self.side, scenario, ident]
        started = time.perf_counter()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            child = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=err)  # noqa: S603
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{err.read().decode()[-3000:]}")
            answer = json.loads(out.read().decode().strip().splitlines()[-1])
        return wall, usage.ru_utime + usage.ru_stime, answer


def delivery(version: str) -> dict:
    """A signed MLflow `model_version.created` delivery of a new version, as JSON for the child."""
    body, headers = signed_delivery("bench-model", version)
    return {"body": body.decode(), "headers": headers}


def checked(scenario: str, side: str, answer: dict) -> None:
    """The call did what it is measured for: a webhook answered 202 and, on the reactor, was recorded."""
    if scenario == "webhook" and (answer["status"] != 202 or (side != "bare" and not answer["body"].get("action_ids"))):
        raise SystemExit(f"{side} webhook answered {answer}")


FINISH = """
import sys
sys.path.insert(0, sys.argv[1])
from shared.bootstrap import Container
from shared.domain.outputs import RegisterOutputs
from shared.settings import Settings
ledger = Container(Settings.from_env()).reactor().ledger
ledger.claim("bench", 60, action_id=sys.argv[2])
ledger.complete(sys.argv[2], "bench", RegisterOutputs(reused=True))
"""


def done_action(starts: Starts) -> str:
    """Record one event through a reactor and finish its action with that reactor's own code: what
    the queue scenario names."""
    seed = write(starts.tmp / f"seed-{starts.side}.json", delivery(f"seed-{starts.side}"))
    [action_id] = starts.sample("webhook", str(seed))[2]["body"]["action_ids"]
    tree = starts.env.get("COLD_START_TREE", str(ROOT))
    subprocess.run([sys.executable, "-c", FINISH, tree, action_id], cwd=ROOT, env=starts.env, check=True)  # noqa: S603
    return str(action_id)


def tree_commit(tree: Path) -> str:
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"commit {head.stdout.strip()}" if head.returncode == 0 else str(tree)


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def environment(tmp: Path, bytecode: str) -> dict[str, str]:
    (tmp / "c.yaml").write_text(CONFIG % {"tmp": tmp})
    env = {**os.environ, "MODELOPS_CONFIG": str(tmp / "c.yaml"), "MODELOPS_STATE_DIR": str(tmp / "state")}
    env["MLFLOW_WEBHOOK_SECRET"] = SECRET
    env.pop("MLFLOW_TRACKING_URI", None)
    if bytecode == "shipped":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    else:  # nothing written, and no .pyc found: a prefix is the only place Python then looks
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "no-pycache")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=7)
    parser.add_argument("--samples", type=int, default=3, help="interpreter starts per side, scenario and round")
    parser.add_argument("--bytecode", choices=("shipped", "source"), default="shipped")
    parser.add_argument("--baseline-tree", type=Path, default=None, metavar="DIR", help="DIR's reactor as baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as name:
        tmp = Path(name)
        env = environment(tmp, args.bytecode)
        baseline = "bare" if args.baseline_tree is None else "tree"
        sides = {"reactor": Starts("reactor", tmp, env), baseline: Starts(baseline, tmp, env, args.baseline_tree)}
        # a done action in each side's ledger (recording it also warms the bytecode cache)
        done = {side: done_action(starts) if side != "bare" else "none" for side, starts in sides.items()}
        for side, starts in sides.items():  # warm the caches once for every scenario
            for scenario in SCENARIOS:
                checked(scenario, side, starts.sample(scenario, starts.ident(scenario, done[side]))[2])

        def timed(side: str) -> dict[str, float]:
            out: dict[str, float] = {}
            for scenario in SCENARIOS:
                starts = sides[side]
                samples = [starts.sample(scenario, starts.ident(scenario, done[side])) for _ in range(args.samples)]
                for _, _, answer in samples:
                    checked(scenario, side, answer)
                out[f"{scenario}_seconds"] = statistics.median(w for w, _, _ in samples)
                out[f"{scenario}_cpu_seconds"] = statistics.median(c for _, c, _ in samples)
            return out

        ratios = {}
        for scenario in SCENARIOS:
            ratios[f"{scenario}_wall"] = Ratio(f"{scenario}_seconds")
            ratios[f"{scenario}_cpu"] = Ratio(f"{scenario}_cpu_seconds")
        result = run_rounds(lambda _: timed(baseline), lambda _: timed("reactor"), rounds=args.rounds, ratios=ratios)
    name = "cold_start" + ("" if args.bytecode == "shipped" else "_source") + ("" if baseline == "bare" else "_vs_tree")
    finish(
        args,
        name,
        result,
        goals=[Goal("webhook_wall", "<=", 1.15), Goal("webhook_cpu", "<=", 1.15)] if baseline == "bare" else [],
        subject="`function_app` indexed, then its first call: a signed MLflow webhook / an Event Grid event / a"
        f" queue message (bytecode {args.bytecode})",
        baseline="a bare `func.AsgiFunctionApp` (one FastAPI route, an Event Grid and a queue function) indexed,"
        " then the same first call"
        if baseline == "bare"
        else f"the same at {tree_commit(args.baseline_tree)}",
        headline="webhook {s[webhook_seconds]:.3f} s wall, {s[webhook_cpu_seconds]:.3f} s CPU;"
        " Event Grid {s[eventgrid_seconds]:.3f} s; queue {s[queue_seconds]:.3f} s; index alone"
        " {s[import_seconds]:.3f} s; baseline: webhook {b[webhook_seconds]:.3f} s wall,"
        " {b[webhook_cpu_seconds]:.3f} s CPU; Event Grid {b[eventgrid_seconds]:.3f} s;"
        " queue {b[queue_seconds]:.3f} s; index alone {b[import_seconds]:.3f} s",
        samples=args.samples,
        bytecode=args.bytecode,
    )


if __name__ == "__main__":
    main()
