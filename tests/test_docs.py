"""The documentation runs and refers to what exists.

* Every ```python block of README.md and docs/*.md is executed in-process, each in a fresh
  namespace (in a temporary working directory). A block that needs an optional extra that is not
  installed (torch, scikit-learn, matplotlib, dp_accounting, autodp, opacus) is skipped, never
  failed: the extras a block needs are read from its imports (``training`` needs torch, and
  scikit-learn for the digits data) and from a ``# needs: matplotlib`` comment for what it uses
  indirectly. Output examples are marked ```text, not python.
* Every dotted name ``dpaccount.x.y`` or ``training.x`` written in backticks resolves (the
  longest importable module prefix, then attributes); a short reference such as
  ``closed_form.kov_epsilon`` or ``InstaHide.eps0`` whose first part is a dpaccount module or
  public class must resolve too.
* Every ``tests/...py``, ``proofs/...py``, ``benchmarks/...py`` and ``docs/...`` path mentioned
  exists.
"""

import contextlib
import dataclasses
import functools
import glob
import importlib
import importlib.util
import io
import os
import pkgutil
import re

import pytest

from .conftest import ROOT

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
OPTIONAL = ("torch", "sklearn", "matplotlib", "dp_accounting", "autodp", "opacus", "ray")
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
FILE_SUFFIX = re.compile(r"\.(py|md|json|png|npz|npy|txt|toml|cfg)$")


def _rel(path):
    return os.path.relpath(path, ROOT)


def python_blocks():
    out = []
    for path in DOCS:
        text = open(path, encoding="utf-8").read()
        for m in FENCE.finditer(text):
            if m.group(1) == "python":
                line = text.count("\n", 0, m.start()) + 2
                out.append(pytest.param(path, line, m.group(2), id=f"{_rel(path)}:{line}"))
    return out


def needed_extras(code: str) -> list:
    """The optional extras a block needs: its imports, and ``# needs: a, b`` comments."""
    mods = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", code, re.M))
    need = {m for m in mods if m in OPTIONAL}
    if "training" in mods:
        need.add("torch")
        if "digits" in code:
            need.add("sklearn")
    for names in re.findall(r"#\s*needs:\s*([\w ,]+)", code):
        need.update(n.strip() for n in names.split(",") if n.strip())
    return sorted(need)


def test_there_are_examples():
    blocks = python_blocks()
    assert len(blocks) >= 8
    pages = {_rel(b.values[0]) for b in blocks}
    # every page that documents a Python feature shows it
    for page in ("README.md", "docs/theory.md", "docs/pld.md", "docs/audit.md",
                 "docs/training.md", "docs/model_audit.md", "docs/poisoning.md",
                 "docs/architecture.md", "docs/testing.md"):
        assert page in pages, page


def _installed(module: str) -> bool:
    # a folder of that name on the path (Ray's session folder /tmp/ray) is an empty namespace
    # package, not the library
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin not in (None, "namespace")


@pytest.mark.parametrize("path,line,code", python_blocks())
def test_python_block_runs(path, line, code, tmp_path, monkeypatch):
    missing = [m for m in needed_extras(code) if not _installed(m)]
    if missing:
        pytest.skip(f"needs the optional {', '.join(missing)}")
    monkeypatch.chdir(tmp_path)
    compiled = compile(code, f"{_rel(path)}:{line}", "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compiled, {"__name__": "__doc_example__"})


# ---- names -----------------------------------------------------------------------------------

def _prose(text: str) -> str:
    """The text without its fenced blocks (their code runs above, or is output)."""
    return FENCE.sub("", text)


def inline_code(text: str) -> list:
    return re.findall(r"`([^`\n]+)`", _prose(text))


def _resolve(dotted: str):
    """Import the longest module prefix of ``dotted``, then getattr the rest. Returns None when
    it resolves, else why not; raises ModuleNotFoundError for a missing optional extra."""
    parts = dotted.split(".")
    module, i = None, len(parts)
    while i > 0:
        name = ".".join(parts[:i])
        try:
            module = importlib.import_module(name)
            break
        except ModuleNotFoundError as exc:
            if exc.name in OPTIONAL or (exc.name or "").split(".")[0] in OPTIONAL:
                raise
            if exc.name != name and not name.startswith(exc.name or "\0"):
                return f"importing {name} fails: {exc}"
            i -= 1
    if module is None:
        return "no importable module"
    return _getattrs(module, parts[i:])


def _getattrs(obj, attrs):
    for a in attrs:
        if hasattr(obj, a):
            obj = getattr(obj, a)
        elif dataclasses.is_dataclass(obj) and a in obj.__dataclass_fields__:
            return None  # a field without a default: an instance attribute
        else:
            return f"{getattr(obj, '__name__', obj)!s} has no attribute {a!r}"
    return None


@functools.lru_cache(maxsize=1)
def _index() -> dict:
    """First parts a short reference may start with: dpaccount's module names (last part) and
    the public classes and functions they define."""
    import dpaccount

    index = {}
    names = ["dpaccount"] + [m.name for m in pkgutil.walk_packages(dpaccount.__path__,
                                                                     "dpaccount.")
                             if m.name != "dpaccount.__main__"]
    for name in names:
        mod = importlib.import_module(name)
        index.setdefault(name.rsplit(".", 1)[-1], []).append(mod)
        for attr, obj in vars(mod).items():
            if not attr.startswith("_") and getattr(obj, "__module__", None) == name and (
                    isinstance(obj, type) or callable(obj)):
                index.setdefault(attr, []).append(obj)
    return index


QUALIFIED = re.compile(r"\b((?:dpaccount|training)(?:\.[A-Za-z_]\w*)+)")
SHORT = re.compile(r"^([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)+)(?:\(.*\))?$")


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_dotted_names_resolve(path):
    text = open(path, encoding="utf-8").read()
    index = _index()
    bad, skipped = [], []
    for span in inline_code(text):
        for dotted in QUALIFIED.findall(span):
            if FILE_SUFFIX.search(dotted):
                continue
            try:
                why = _resolve(dotted)
            except ModuleNotFoundError as exc:
                skipped.append((dotted, exc.name))
                continue
            if why is not None:
                bad.append((dotted, why))
        m = SHORT.match(span.strip())
        if m and m.group(1) not in ("dpaccount", "training") and m.group(1) in index \
                and not FILE_SUFFIX.search(span.strip()):
            attrs = m.group(2).lstrip(".").split(".")
            if all(_getattrs(obj, attrs) is not None for obj in index[m.group(1)]):
                bad.append((span, f"no {m.group(1)} has {'.'.join(attrs)}"))
    assert not bad, bad


PATHS = re.compile(r"(?<![\w/.-])((?:tests|proofs|benchmarks)/[\w./-]*?\w\.py"
                   r"|docs/[\w.-]*\w(?:/[\w.-]*\w)*)")


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_paths_exist(path):
    text = open(path, encoding="utf-8").read()
    missing = sorted({p for p in PATHS.findall(text)
                      if not os.path.exists(os.path.join(ROOT, p))})
    assert not missing, missing


def test_no_reference_to_removed_modules():
    removed = ("THEORY.md", "dpaccount.pld", "dpaccount.rdp", "dpaccount.mechanism",
               "dpaccount.closed_form", "tightest_result", "pld_result", "closed_form_table")
    for path in DOCS:
        text = open(path, encoding="utf-8").read()
        for name in removed:
            hits = [m.start() for m in re.finditer(re.escape(name) + r"(?![\w])", text)]
            assert not hits, (_rel(path), name)
