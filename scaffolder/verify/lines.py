"""Line splitting shared by the local and docker runners' output readers."""

from __future__ import annotations

import queue


def split_lines(text: str, out: queue.Queue) -> str:
    """Queue every complete line of ``text`` (``\\n``, ``\\r\\n`` or a bare ``\\r``); return the rest.

    A trailing ``\\r`` is kept back: it may be the first half of a ``\\r\\n`` split across reads.
    """
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            out.put(text[start:i])
            start = i + 1
        elif ch == "\r":
            if i + 1 == n:
                break
            out.put(text[start:i])
            start = i + 2 if text[i + 1] == "\n" else i + 1
            i = start - 1
        i += 1
    return text[start:]


def line_emitter(log, redact, on_line):
    """``emit(line)``: redact a command's output line, append it to the open log file, pass it on."""

    def emit(line: str) -> None:
        line = redact(line)
        log.write(line + "\n")
        log.flush()
        if on_line is not None:
            on_line(line)

    return emit
