import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Deadlines off: these machines are shared and noisy, and speed is claimed in benchmarks only.
settings.register_profile("default", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def run_cli(*args, check=False):
    """Run ``python -m dpaccount ARGS`` in a subprocess, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "dpaccount", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def assert_usage_error(proc, match: str) -> None:
    """A refused command line: exit status 2, one line on stderr naming ``match``, no
    traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert match in proc.stderr, proc.stderr


@pytest.fixture
def cli():
    return run_cli
