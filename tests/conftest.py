import os

# Under pytest-xdist (``-n auto`` in pyproject.toml) each worker takes one core: numerical
# libraries must not start a thread per core in every worker too (measured on this 2-core
# machine: 2 workers with default threads ran no faster than one process; with one thread each
# they took half the time). Set before numpy, scipy or torch is imported by any test.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ.setdefault(_var, "1")

import contextlib  # noqa: E402
import io  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Deadlines off: these machines are shared and noisy, and speed is claimed in benchmarks only.
settings.register_profile("default", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args, check=False) -> CliResult:
    """Run ``dpaccount ARGS`` in this process (``dpaccount.cli.main``), capturing what it prints.

    In-process, so a refused command costs microseconds, not an interpreter start. Only
    :class:`~dpaccount.errors.InputError` and usage errors become exit status 2 inside ``main``;
    any other exception propagates, so an internal bug fails the test with its traceback."""
    from dpaccount.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's --help and --version
            code = exc.code if isinstance(exc.code, int) else 0
    result = CliResult(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"exit {code}: {result.stderr}")
    return result


def run_cli_process(*args, check=False, env=None):
    """Run ``python -m dpaccount ARGS`` in a subprocess: only for what needs a fresh
    interpreter (start-up time, imports, the entry point itself)."""
    proc = subprocess.run([sys.executable, "-m", "dpaccount", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
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


#: the closed-form methods of the epsilon table, in the order it prints them
CLOSED_FORM_METHODS = ("naive", "per_release", "amplified", "basic", "advanced", "kov")


def closed_rows(mech, delta):
    """The closed-form rows of the epsilon table for one phase (no RDP or PLD: fast)."""
    from dpaccount.accountants import (AdvancedAccountant, BasicAccountant, KOVAccountant,
                                       release_rows)

    return release_rows(mech, delta) + [a.row(mech, delta) for a in
                                        (BasicAccountant(), AdvancedAccountant(), KOVAccountant())]
