"""Live progress of a verify run.

On a terminal (stderr is a TTY): a stage list redrawn in place ~8 times a second, with a spinner and the
elapsed seconds of each running stage and the last line its command printed. Otherwise (CI logs, pipes):
one line per stage start and per stage end through the CLI's ``progress`` callable. ``--verbose`` also
prints every output line of the running commands (prefixed with the stage), and uses the plain mode.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence

from scaffolder.verify.model import FAILED, PASSED, SKIPPED, StageResult

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MARKS = {PASSED: "✓", FAILED: "✗", SKIPPED: "–"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def summary_metrics(result: StageResult) -> str:
    """The few metrics a reviewer wants next to a stage (also used by report.md)."""
    m = result.metrics
    parts = []
    for key, label in (("max_abs_diff", "max|Δ|"), ("top1_agreement", "top1"), ("cosine_min", "cos"),
                       ("fp32_max_abs_diff", "fp32 max|Δ|"), ("fp16_cosine_min", "fp16 cos"),
                       ("fp16_top1_agreement", "fp16 top1"), ("max_abs_features", "features max|Δ|"),
                       ("max_abs_logits", "logits max|Δ|")):
        value = m.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{label} {value:.3g}" if "top1" not in key else f"{label} {value:.0%}")
    if result.name == "static" and "files" in m:
        parts.append(f"{m['files']} files, {m.get('pylint_errors', 0)} errors")
    if result.name == "consistency" and "errors" in m:
        parts.append(f"{m['errors']} errors, {m['warnings']} warnings")
    if result.name == "imports" and "modules" in m:
        parts.append(f"{m.get('ok', 0)}/{m['modules']} imported" + (f", {m['stubbed']} TRT-stubbed" if m.get("stubbed") else ""))
    if result.name == "l0" and "tests" in m:
        parts.append(f"{m['passed']}/{m['tests']} passed" + (f", {m['skipped']} skipped" if m.get("skipped") else ""))
    if result.name == "deploy-preprocess" and isinstance(m.get("stock_loader_max_abs_diff"), (int, float)):
        parts.append(f"{m.get('images', '?')} images; stock TAO loader would differ by {m['stock_loader_max_abs_diff']:.2g}")
    if result.name == "train" and "checkpoint_mb" in m:
        parts.append(f"checkpoint {m['checkpoint_mb']:.0f} MB")
    if result.name == "trt_inference" and "rows" in m:
        parts.append(f"{m['rows']} rows")
    return ", ".join(parts)


class Board:
    def __init__(self, stages: Sequence[str], progress: Callable[[str], None], *, tty: bool | None = None,
                 verbose: bool = False, quiet: bool = False, stream=None):
        self.stages = list(stages)
        self.progress = progress
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.quiet = quiet
        self.tty = (self.stream.isatty() if tty is None else tty) and not verbose and not quiet
        self.started: dict[str, float] = {}
        self.results: dict[str, StageResult] = {}
        self.last_line: dict[str, str] = {}
        self._lock = threading.Lock()
        self._drawn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    # -- events ------------------------------------------------------------------------------------
    def open(self) -> None:
        if self.tty:
            self._thread = threading.Thread(target=self._loop, name="verify-progress", daemon=True)
            self._thread.start()

    def note(self, message: str) -> None:
        """A one-off line (preflight, dataset...): above the board on a TTY."""
        if self.quiet:
            return
        if self.tty:
            with self._lock:
                live = self._thread is not None and not self._stop.is_set()
                if live:
                    self._clear()
                self.stream.write(f"  {message}\n")
                if live:
                    self._draw()
                self.stream.flush()
        else:
            self.progress(message)

    def start(self, stage: str) -> None:
        with self._lock:
            self.started[stage] = time.monotonic()
        if not self.tty and not self.quiet:
            self.progress(f"{stage}: running")

    def line(self, stage: str, text: str) -> None:
        text = _ANSI.sub("", text).strip()
        if not text:
            return
        with self._lock:
            self.last_line[stage] = text
        if self.verbose and not self.quiet:
            self.progress(f"  {stage} | {text}")

    def finish(self, result: StageResult) -> None:
        with self._lock:
            self.results[result.name] = result
        if not self.tty and not self.quiet:
            detail = summary_metrics(result)
            reason = f" -- {result.reason}" if result.reason and result.status != PASSED else ""
            timing = f" ({result.seconds:.1f}s)" if result.status != SKIPPED else ""
            self.progress(f"{result.name}: {result.status.upper()}{timing}{' ' + detail if detail else ''}{reason}")

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            with self._lock:
                self._clear()
                self._draw(final=True)
                self._drawn = 0

    # -- drawing -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(0.125):
            with self._lock:
                self._clear()
                self._draw()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
        self._drawn = 0

    def _draw(self, final: bool = False) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        name_width = max(len(s) for s in self.stages)
        now = time.monotonic()
        frame = SPINNER[int((now - self._t0) * 8) % len(SPINNER)]
        lines = []
        for stage in self.stages:
            result = self.results.get(stage)
            if result is not None:
                mark = MARKS[result.status]
                timing = f"{result.seconds:6.1f}s" if result.status != SKIPPED else "       "
                detail = summary_metrics(result) if result.status == PASSED else result.reason
            elif stage in self.started:
                mark, timing = frame, f"{now - self.started[stage]:6.1f}s"
                detail = self.last_line.get(stage, "")
            else:
                if final:
                    continue
                mark, timing, detail = " ", "       ", ""
            lines.append(f" {mark} {stage.ljust(name_width)} {timing}  {detail}"[: width - 1])
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)
