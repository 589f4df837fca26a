"""The errors the library raises; each carries a message a person can act on (in Chinese)."""
from __future__ import annotations


class KaopingError(Exception):
    """Base class: the message is shown to the user as it is."""


class InputError(KaopingError):
    """Rejected input (CLI exit code 1)."""


class PermissionDenied(KaopingError):
    """The acting user may not do this."""


class NotFound(InputError):
    """A unit, period, item, batch or user that does not exist."""


class Problems(InputError):
    """Many problems at once, each (row, column, value, message) or (place, message)."""

    def __init__(self, title: str, problems: list):
        self.title = title
        self.problems = problems
        super().__init__(title + "\n" + "\n".join(str(p) for p in problems))
