"""`python -m shared.local.router --state FILE --host H --port P`: serve one target's router."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.local.router", description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the target's state file (weights)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a version may take to answer")
    args = parser.parse_args(argv)

    import uvicorn

    from shared.local.router.app import Router

    app = Router(args.state, timeout_s=args.timeout)
    # uvloop and httptools where installed (requirements.txt pins both): "auto" picks them
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,  # a loopback router: no proxy in front whose headers to trust
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
