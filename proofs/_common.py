"""Helpers shared by the proof scripts: run from the repository root or from proofs/."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def check(condition, message):
    """Print the checked statement; exit 1 on the first one that fails."""
    if not condition:
        print(f"FAILED: {message}")
        sys.exit(1)
    print(f"  ok: {message}")
