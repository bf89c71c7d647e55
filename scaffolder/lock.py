"""The workspace lock: one tao-scaffold writer per workspace at a time.

An advisory ``flock`` on the workspace folder itself (no lock file to leave behind or commit): generate,
update and convert-weights hold it from their first read of the workspace to their last write, so two
concurrent runs cannot both patch ``setup.py`` from the same original. A second writer waits up to
``TAO_SCAFFOLD_LOCK_WAIT`` seconds (default 120, about two generates) and then refuses with one line.
Holding the lock, the writer first replays what an interrupted run left (scaffolder.staging.recover).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from scaffolder.errors import WorkspaceError
from scaffolder.staging import recover

DEFAULT_WAIT_S = 120.0
WAIT_ENV = "TAO_SCAFFOLD_LOCK_WAIT"


def _wait_seconds() -> float:
    text = os.environ.get(WAIT_ENV, "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_WAIT_S
    except ValueError:
        raise WorkspaceError(f"{WAIT_ENV}={text!r} is not a number of seconds", f"unset it or set e.g. {WAIT_ENV}=60") from None


@contextlib.contextmanager
def workspace_lock(root: Path, progress: Callable[[str], None] = lambda _msg: None) -> Iterator[list[str]]:
    """Hold the lock on ``root``; yields the notes of interrupted writes it rolled back (also on stderr)."""
    wait = _wait_seconds()
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise WorkspaceError(f"cannot open workspace {root} ({exc.strerror})", "check the path and its permissions") from exc
    try:
        deadline, waited = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceError(
                        f"another tao-scaffold process is writing {root} (still busy after {wait:g}s)",
                        f"wait for it to finish and run again (or raise {WAIT_ENV})",
                    ) from None
                if not waited:
                    progress(f"lock: another tao-scaffold process is writing {root}; waiting up to {wait:g}s")
                    waited = True
                time.sleep(0.1)
        notes = recover(root)
        for note in notes:
            print(f"tao-scaffold: recovered: {note}", file=sys.stderr, flush=True)
        yield notes
    finally:
        os.close(fd)  # releases the lock
