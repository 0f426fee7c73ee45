"""Start-up cost: ``import federation`` and ``federation --version`` against ``import jwt`` (PyJWT).

Run from the repository root (``pip install -e '.[bench]'`` for PyJWT)::

    python benchmarks/startup.py [--runs 15]

Each measurement is a fresh interpreter, started as a serverless cold start starts one;
the commands alternate (A B A B ...) and each ratio is taken pair by pair, so a drift in
the machine's speed moves both sides of a pair alike. Printed: the median wall time of
each command and the median of the paired ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence


def _wall(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    python = sys.executable
    baseline = [python, "-c", "import jwt"]
    rows = {
        "import federation": [python, "-c", "import federation"],
        "federation --version": [python, "-c", "import sys; sys.argv[1:] = ['--version']; "
                                 "from federation._entry import main; main()"],
        "from federation import Bridge": [python, "-c", "from federation import Bridge"],
    }  # fmt: skip
    for command in (baseline, *rows.values()):
        _wall(command)  # warm the file cache
    print(f"Python {sys.version.split()[0]}, {args.runs} paired runs; baseline: python -c 'import jwt'\n")
    print(f"{'command':32} {'median s':>9} {'jwt s':>7} {'x import jwt':>13}")
    for name, command in rows.items():
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(_wall(command))
            theirs.append(_wall(baseline))
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        print(
            f"{name:32} {statistics.median(ours):9.3f} {statistics.median(theirs):7.3f} "
            f"{statistics.median(ratios):13.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
