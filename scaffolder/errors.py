"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations


class ScaffoldError(Exception):
    """An error the CLI prints as one line (``tao-scaffold: error: ...``) before exiting non-zero.

    ``hint`` is appended after an em dash so the message says what to do, not only what broke.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        self.message = message.strip().replace("\n", " ")
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.message} -- {self.hint}" if self.hint else self.message


class ModelSourceError(ScaffoldError):
    """The model cannot be found, read or understood."""


class UnsupportedModelError(ScaffoldError):
    """The model is readable but not something tao-scaffold can port (yet)."""


class WorkspaceError(ScaffoldError):
    """The TAO workspace is missing, malformed, dirty or unwritable."""


class NameError_(ScaffoldError):  # noqa: N801 -- avoid shadowing the builtin NameError
    """The port name is invalid or collides with an existing TAO network."""
