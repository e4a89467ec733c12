"""Sum py-spy collapsed stacks by function: where a serving process spent its (non-idle) samples.

    python benchmarks/profile_summary.py PROFILE.txt [--top 25] [--match shared/]

Inclusive share = samples with the function anywhere on the stack; self share = samples where it
was the innermost frame. ``--match`` keeps only frames whose text contains it (e.g. ``shared/``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarize(path: Path, match: str | None) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        total += count
        for frame in {_name(f) for f in frames if match is None or match in f}:
            inclusive[frame] += count
        if frames:
            self_time[_name(frames[-1])] += count
    return total, inclusive, self_time


def _name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (path/file.py)``: one entry per function, not per line."""
    func, _, where = frame.partition(" (")
    return f"{func} ({where.rsplit(':', 1)[0]})" if where else func


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None)
    args = parser.parse_args()
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
