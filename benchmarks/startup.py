"""Start-up time of the command line: ``dpaccount --version`` and ``--help`` against a bare
interpreter and against importing scipy and sympy (what an eager import would cost), measured in
the same run.

    python benchmarks/startup.py [--repeats 7]

Prints the median wall time of each command over the repeats, in seconds, and each as a ratio
to the bare interpreter. The target (issue 12): ``--version`` and ``--help`` within 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (bare interpreter)": [sys.executable, "-c", "pass"],
    "dpaccount --version": [sys.executable, "-m", "dpaccount", "--version"],
    "dpaccount --help": [sys.executable, "-m", "dpaccount", "--help"],
    "dpaccount epsilon --help": [sys.executable, "-m", "dpaccount", "epsilon", "--help"],
    "import scipy.stats, sympy (eager peer)": [sys.executable, "-c",
                                               "import scipy.stats, scipy.signal, sympy"],
}


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    for cmd in COMMANDS.values():  # warm the file cache
        wall(cmd)
    times = {name: statistics.median(wall(cmd) for _ in range(args.repeats))
             for name, cmd in COMMANDS.items()}
    bare = times["python -c pass (bare interpreter)"]
    width = max(len(n) for n in times)
    print(f"median of {args.repeats} runs, seconds (ratio to the bare interpreter)")
    for name, t in times.items():
        print(f"  {name.ljust(width)}  {t:6.3f}  ({t / bare:4.1f}x)")


if __name__ == "__main__":
    main()
