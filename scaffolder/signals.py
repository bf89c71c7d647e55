"""Termination signals handled like Ctrl-C.

``timeout``, CI cancellation and ``docker stop`` send SIGTERM; a closed terminal sends SIGHUP. Python's
default for both is to die on the spot, skipping every ``finally`` -- the staged commit's rollback and the
docker runner's container removal included. :func:`terminate_like_sigint` makes them raise
:class:`Terminated` (a ``KeyboardInterrupt``), so the code that already cleans up after Ctrl-C cleans up
after them too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

HANDLED = (signal.SIGTERM, signal.SIGHUP)
INTERRUPTS = (signal.SIGINT, *HANDLED)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; ``signum`` says which (the exit status is 128 + signum)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, _frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a repeated SIGTERM must not cut the cleanup short (SIGKILL still can)
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_like_sigint(*, only_if_default: bool = False) -> Iterator[None]:
    """Within the block SIGTERM/SIGHUP raise :class:`Terminated`; previous handlers are restored after.

    ``only_if_default``: leave a signal alone when someone (e.g. the CLI) already handles it. Outside the
    main thread signal handlers cannot be set, and nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in HANDLED:
        current = signal.getsignal(signum)
        if only_if_default and current not in (signal.SIG_DFL, None):
            continue
        previous[signum] = current
        signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends (a rollback must not itself be interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
