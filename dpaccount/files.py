"""Writing files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["atomic_write_bytes", "check_output_file", "check_output_dir", "check_input_dir"]


def atomic_write_bytes(target, data: bytes) -> Path:
    """Write ``data`` to ``target`` through a temporary file in the same directory and an atomic
    rename: readers see the old file or the whole new one, never a part. The file gets the usual
    permissions (0666 less the umask), not the 0600 of a temporary file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def _nearest_existing(path: Path) -> Path:
    """``path`` itself, or its nearest ancestor that exists (what a later write would create the
    rest under)."""
    p = path
    while not p.exists() and not p.is_symlink():
        parent = p.parent
        if parent == p:
            break
        p = parent
    return p


def _check_creatable(flag: str, path: Path, what: str) -> None:
    """The missing part of ``path`` can be created: its nearest existing ancestor is a
    directory we may write in. Nothing is created here."""
    base = _nearest_existing(path.parent if what == "file" else path)
    if not base.is_dir():
        raise InputError(f"{flag} {str(path)!r} cannot be written: {str(base)!r} is not a "
                         "directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {str(path)!r} cannot be written: directory {str(base)!r} is "
                         "not writable")


def check_output_file(flag: str, path, suffix: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a file by
    :func:`atomic_write_bytes`: it is not a directory, every existing part of its folder is a
    directory we may write in, and it ends with ``suffix`` (e.g. ``".png"``) when given. Raises
    :class:`~dpaccount.errors.InputError` naming ``flag``; creates and leaves nothing."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{flag} must name a file; got {path!r}")
    p = Path(text)
    if p.is_dir():
        raise InputError(f"{flag} {text!r} is a directory; it must name a file")
    if suffix is not None and p.suffix.lower() != suffix.lower():
        raise InputError(f"{flag} must name a {suffix} file; got {text!r}")
    if p.exists() and not p.is_file():
        raise InputError(f"{flag} {text!r} exists and is not a regular file")
    _check_creatable(flag, p, "file")
    return p


def check_output_dir(flag: str, path) -> Path:
    """Check, before any work, that ``path`` is a directory we may write in, or can be created
    as one (its nearest existing ancestor is a writable directory). Raises
    :class:`~dpaccount.errors.InputError` naming ``flag``; creates and leaves nothing."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{flag} must name a directory; got {path!r}")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} {text!r} is not a directory")
    _check_creatable(flag, p, "dir")
    return p


def check_input_dir(flag: str, path) -> Path:
    """``path`` is an existing directory (to read from)."""
    text = os.fspath(path)
    p = Path(text)
    if not p.exists():
        raise InputError(f"{flag} {text!r} does not exist")
    if not p.is_dir():
        raise InputError(f"{flag} {text!r} is not a directory")
    return p
