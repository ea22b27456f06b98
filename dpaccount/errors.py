"""The one public exception for bad input.

:class:`InputError` is a :class:`ValueError` whose message names the parameter and the value it
was given (``"noise must be a positive finite number; got -1.0"``). Everything in dpaccount and
training that refuses an argument raises it; ``dpaccount.cli.main`` catches it (and only it) and
turns it into one line and exit status 2. Any other exception is a bug and stays a traceback.
"""

from __future__ import annotations

__all__ = ["InputError", "Unsupported"]


class InputError(ValueError):
    """An argument was refused: the message names the parameter and its value."""


class Unsupported(InputError):
    """An accountant was asked about an event it does not cover; ``reason`` says which case
    (its :meth:`~dpaccount.accountants.Accountant.supports` answer)."""

    def __init__(self, method: str, reason: str):
        super().__init__(f"{method} does not apply: {reason}")
        self.method = method
        self.reason = reason
