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
import dpaccount, dpaccount.closed_form, dpaccount.symbolic, dpaccount.cli, dpaccount.audit
import dpaccount.audit.run, dpaccount.pld, dpaccount.rdp, dpaccount.calibrate, dpaccount.certify
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
