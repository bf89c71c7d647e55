"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations

import re
import unicodedata

# userinfo of a URL (https://user:token@host) -- e.g. a token inside HF_ENDPOINT
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


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


def printable(text: str) -> str:
    """``text`` safe for one terminal line: control, format (bidi) and separator characters escaped, URL
    credentials masked. Untrusted names (model paths, labels) reach error messages; ESC, CR or U+202E would
    rewrite what the user sees."""
    text = _URL_CREDENTIALS.sub("***@", text)
    return "".join(ch if ch == " " or unicodedata.category(ch)[0] not in "CZ" else ch.encode("unicode_escape").decode()
                   for ch in text)
