"""Planning cleanup over 10,000 resource groups against listing them alone, in the same run.

Both go through the real azure-mgmt-resource client over HTTPS to the ARM contract server
(paged with nextLink). Also times pure planning in-process (no HTTP).

    python benchmarks/cleanup_plan.py [--rounds 5] [--groups 10000] [--page-size 1000]
        [--json benchmarks/results/cleanup_plan.json]

Baseline: listing the groups alone; subject: the dry-run plan (list + locks + plan + report);
alternating in rounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Ratio, add_arguments, finish, run_rounds  # noqa: E402

from shared.cleanup.groups import Group  # noqa: E402
from shared.cleanup.planner import plan  # noqa: E402
from shared.cleanup.policy import Policy  # noqa: E402
from shared.cleanup.runner import run_cleanup  # noqa: E402
from shared.config.schema import ReactorConfig  # noqa: E402
from tests.contract.arm_server import ArmContract  # noqa: E402
from tests.contract.credentials import StaticTokenCredential  # noqa: E402
from tests.contract.https import HttpsServer, TestCA  # noqa: E402

SUB = "00000000-0000-0000-0000-00000000b0b0"
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def tags_for(i: int) -> dict[str, str]:
    kind = i % 5
    base = {"modelops-cleanup": "true"} if kind else {"owner": "team"}
    if kind == 2:
        base["expires-on"] = "2025-01-01"
    elif kind == 3:
        base["ttl"] = "P7D"
    elif kind == 4:
        base.update({"expires-on": "2025-01-01", "delete-after": "2025-02-01T00:00:00Z"})
    return base


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    add_arguments(parser, rounds=5)
    args = parser.parse_args()

    ca = TestCA()
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = str(ca.bundle)
    contract = ArmContract(page_size=args.page_size)
    for i in range(args.groups):
        group = contract.add_group(SUB, f"rg-{i:05}", tags=tags_for(i), created_time=NOW - timedelta(days=i % 30))
        if i % 100 == 0:
            contract.add_lock(group["id"], f"lock-{i}")
    credential = StaticTokenCredential()
    with HttpsServer(contract.app, ca) as server, tempfile.TemporaryDirectory() as state:
        cfg = ReactorConfig.model_validate(
            {
                "cleanup": {
                    "provider": "azure",
                    "subscriptions": [SUB],
                    "arm_endpoint": server.url,
                    "protected_patterns": ["rg-0999*"],
                }
            }
        )

        from azure.mgmt.resource import ResourceManagementClient

        client = ResourceManagementClient(
            credential, SUB, base_url=server.url, credential_scopes=[f"{server.url}/.default"]
        )

        def list_alone() -> None:
            listed = sum(1 for _ in client.resource_groups.list(params={"$expand": "createdTime"}))
            assert listed == args.groups

        def plan_run() -> None:
            report = run_cleanup(
                cfg, apply=False, state_dir=Path(state), now=NOW, credential=credential, progress=lambda _: None
            )
            assert len(report.rows) == args.groups

        list_alone(), plan_run()  # warm up connections, imports and the server
        result = run_rounds(
            lambda _: {"seconds": timed(list_alone)},
            lambda _: {"seconds": timed(plan_run)},
            rounds=args.rounds,
            ratios={"time": Ratio("seconds")},
        )
        client.close()

    groups = [
        Group(
            name=f"rg-{i:05}",
            id=f"/subscriptions/{SUB}/resourceGroups/rg-{i:05}",
            scope=SUB,
            tags=tags_for(i),
            created_time=NOW - timedelta(days=i % 30),
        )
        for i in range(args.groups)
    ]
    policy = Policy.from_config(cfg.cleanup)
    pure = min(timed(lambda: plan(groups, policy, NOW, cap=10)) for _ in range(3))
    print(f"pure planning in-process: {pure * 1000:.1f} ms ({pure / args.groups * 1e6:.1f} us/group)")
    finish(
        args,
        "cleanup_plan",
        result,
        goals=[],
        subject=f"dry-run cleanup plan of {args.groups:,} groups (list + locks + plan + report)",
        baseline="listing them alone (SDK paging over HTTPS, ARM contract server)",
        headline="{s[seconds]:.3f} s; {b[seconds]:.3f} s" + f" (pure planning {pure * 1000:.0f} ms)",
        groups=args.groups,
        pure_planning_seconds=pure,
    )


if __name__ == "__main__":
    main()
