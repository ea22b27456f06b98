"""dpaccount must import with numpy, scipy, sympy and mpmath only: never torch."""

import glob
import os
import re
import subprocess
import sys

from .conftest import ROOT

BLOCK_TORCH = r"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _Block())
import importlib, pkgutil
import dpaccount
names = [m.name for m in pkgutil.walk_packages(dpaccount.__path__, "dpaccount.")
         if m.name != "dpaccount.__main__"]
assert len(names) > 20, names
for name in names:
    importlib.import_module(name)
assert "torch" not in sys.modules
print("ok")
"""


def test_imports_without_torch():
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_no_torch_import_in_source():
    for path in glob.glob(os.path.join(ROOT, "dpaccount", "**", "*.py"), recursive=True):
        src = open(path).read()
        assert not re.search(r"^\s*(import|from)\s+torch\b", src, re.M), path


def test_train_without_torch_is_a_one_line_error():
    code = BLOCK_TORCH.replace('print("ok")', "from dpaccount.cli import main\n"
                               "sys.exit(main(['train', '--epochs', '1']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs torch" in proc.stderr and proc.stderr.count("\n") == 1


LIGHT_START = r"""
import sys
import dpaccount, dpaccount.cli
heavy = sorted(m for m in ("scipy", "sympy", "mpmath", "torch") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_cli_start_imports_no_heavy_library():
    # `dpaccount --version` and `--help` must start fast: the CLI module and the package load
    # no scipy, sympy or torch until a command needs them (what start-up time depends on;
    # the time itself is measured in benchmarks/startup.py, not here)
    proc = subprocess.run([sys.executable, "-c", LIGHT_START], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none"


def _sources(*folders):
    for folder in folders:
        for path in glob.glob(os.path.join(ROOT, folder, "**", "*.py"), recursive=True):
            yield os.path.relpath(path, ROOT), open(path).read()


def test_sampler_is_interpreted_only_in_the_sampler_types_and_events():
    # the check: `grep -rn "sampler ==\|Sampler\." dpaccount training`
    allowed = {os.path.join("dpaccount", "samplers.py"), os.path.join("dpaccount", "events.py")}
    for path, src in _sources("dpaccount", "training"):
        hits = re.findall(r"sampler ==|Sampler\.", src)
        assert not hits or path in allowed, (path, hits)


def test_no_private_name_is_imported_across_modules():
    pattern = re.compile(r"^\s*from\s+(\S+)\s+import\s+\(?([^)\n]*)", re.M)
    for path, src in _sources("dpaccount", "training", "tests"):
        for module, names in pattern.findall(src):
            if module == "__future__":
                continue
            for name in names.split(","):
                name = name.strip().split(" as ")[0]
                # dunder names (__version__) are public by convention
                assert not name.startswith("_") or name.endswith("__"), (path, module, name)
        assert not re.search(r"dpaccount\._[a-z]", src), path
