"""Stage framework: a :class:`Stage` runs with a :class:`StageRun` that records its commands, log,
metrics, artifacts and messages, and turns them into a :class:`StageResult`."""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder.errors import ScaffoldError
from scaffolder.verify.model import FAILED, PASSED, SKIPPED, CommandResult, StageResult

if TYPE_CHECKING:  # pragma: no cover
    from scaffolder.verify.context import VerifyContext

_ERROR_LINE = re.compile(
    r"^(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b:?.*|.*\bFAILURE\b.*message.*|^E\s{3}.*|^FAILED .*"
)


class StageFailed(Exception):
    """Raised inside a stage to fail it with a one-line reason (messages go to StageResult.messages)."""

    def __init__(self, reason: str, messages: Sequence[str] = ()):
        super().__init__(reason)
        self.reason = reason
        self.messages = list(messages)


class StageSkipped(Exception):
    def __init__(self, reason: str, required: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.required = required


class Stage:
    name = "stage"
    title = ""  # what it checks, for --help and the report
    requires: tuple[str, ...] = ()
    # requirement -> artifact key: the stage may start as soon as that stage has published the artifact
    # (e.g. deploy-preprocess needs export's ONNX file, not export's parity verdict).
    early: dict[str, str] = {}
    required = True
    # Dispatch order among ready stages (lower first): the long chain train -> export -> deploy/TRT goes
    # first so the quick checks fill the other worker.
    priority = 50
    needs_data = False  # reads the verification dataset (prepared once, before the stages start)

    def precheck(self, ctx: VerifyContext) -> StageSkipped | None:
        """A reason to skip before running (e.g. TensorRT missing); None to run."""
        return None

    def run(self, ctx: VerifyContext, run: StageRun) -> None:
        raise NotImplementedError

    def execute(self, ctx: VerifyContext) -> StageResult:
        run = StageRun(ctx, self)
        started = time.monotonic()
        status, reason = PASSED, ""
        required = self.required
        try:
            self.run(ctx, run)
            if run.messages:
                status, reason = FAILED, run.reason or run.messages[0]
        except StageFailed as exc:
            status, reason = FAILED, exc.reason
            run.messages.extend(m for m in exc.messages if m not in run.messages)
        except StageSkipped as exc:
            status, reason, required = SKIPPED, exc.reason, exc.required and self.required
        except ScaffoldError as exc:
            status, reason = FAILED, exc.one_line()
        except Exception as exc:  # noqa: BLE001 - a stage crash is a failed stage, never a verify crash
            status, reason = FAILED, f"internal error in verify stage {self.name}: {type(exc).__name__}: {exc}"
            run.log(traceback.format_exc())
        return run.result(status, reason, time.monotonic() - started, required)


class StageRun:
    def ensure_console(self, repo: str) -> None:
        """Install ``repo``'s console scripts in the target environment once (timed); fail the stage if not."""
        setup = self.ctx.runner.prepare_console(repo, log_path=self.log_path, timeout=self.ctx.options.timeout,
                                                on_line=self.on_line)
        if setup is not None:
            self.metrics["console_setup_seconds"] = round(setup.seconds, 1)
            if not setup.ok:
                self.require_ok(setup, f"installing the {repo} console scripts")

    def __init__(self, ctx: VerifyContext, stage: Stage):
        self.ctx = ctx
        self.stage = stage
        self.log_path = ctx.logs_dir / f"{stage.name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists():
            self.log_path.unlink()
        self.commands: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.artifacts: dict[str, str] = {}
        self.messages: list[str] = []
        self.warnings: list[str] = []
        self.reason = ""
        self._log_lock = threading.Lock()

    # -- logging ------------------------------------------------------------------------------------
    def log(self, text: str) -> None:
        with self._log_lock, open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")

    def on_line(self, line: str) -> None:
        self.ctx.on_line(self.stage.name, line)

    # -- commands --------------------------------------------------------------------------------------
    def command(self, argv: Sequence[str], *, repo: str, console: bool = False, extra_pythonpath: Sequence[Path] = (),
                cwd: Path | None = None, timeout: float | None = None, record: bool = True) -> CommandResult:
        if self.ctx.cancel.is_set():
            raise StageFailed("interrupted")
        runner = self.ctx.runner
        if record:
            self.commands.append(runner.shell_line(argv, repo=repo, extra_pythonpath=extra_pythonpath,
                                                   console=console, cwd=cwd))
        return runner.run(argv, repo=repo, log_path=self.log_path, timeout=timeout or self.ctx.options.timeout,
                          on_line=self.on_line, extra_pythonpath=extra_pythonpath, console=console, cwd=cwd)

    def probe(self, script: str, args: Sequence[str], *, repo: str, extra_pythonpath: Sequence[Path] = (),
              tag: str = "", timeout: float | None = None) -> tuple[CommandResult, dict[str, Any]]:
        """Run a probe (``scaffolder/verify/probes/<script>``) in the target environment; returns its JSON."""
        name = f"{self.stage.name}{'-' + tag if tag else ''}-{Path(script).stem}.json"
        out = self.ctx.probe_dir / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        argv = ["python", self.ctx.runner.probe_script(script), *args, "--out", self.ctx.target(out)]
        result = self.command(argv, repo=repo, extra_pythonpath=extra_pythonpath, timeout=timeout)
        try:
            data = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if not data:
            data = {"ok": False, "crashed": True, "error": f"probe {script} {result.describe()} and wrote no result"}
        return result, data

    def require_ok(self, result: CommandResult, what: str) -> None:
        if not result.ok:
            hint = last_error(self.log_path)
            raise StageFailed(f"{what} {result.describe()}" + (f": {hint}" if hint else ""),
                              [f"log: {self.ctx.rel(self.log_path)}"])

    # -- result --------------------------------------------------------------------------------------
    def result(self, status: str, reason: str, seconds: float, required: bool) -> StageResult:
        ctx = self.ctx
        command = " && ".join(self.commands) if self.commands else ctx.rerun_line(self.stage.name)
        cpu = getattr(ctx.runner, "cpu_seconds", {}).get(str(self.log_path))
        if status == SKIPPED and not self.log_path.exists():
            self.log(f"# tao-scaffold: {self.stage.name} skipped: {reason}")
        elif status != SKIPPED:
            self.log(f"# tao-scaffold: {self.stage.name} {status} after {seconds:.1f}s{': ' + reason if reason else ''}")
            for message in self.messages:
                self.log(f"#   {message}")
        return StageResult(
            name=self.stage.name, status=status, reason=reason.strip().replace("\n", " "), seconds=round(seconds, 2),
            log=ctx.rel(self.log_path), metrics=self.metrics, artifacts=self.artifacts, command=command,
            required=required, messages=self.messages, warnings=self.warnings, rerun=ctx.rerun_line(self.stage.name),
            cpu_seconds=round(cpu, 1) if cpu is not None else None,
        )


def last_error(log_path: Path, limit: int = 300) -> str:
    """The most telling error line of a log (the last exception line), shortened."""
    try:
        lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if text.startswith("# tao-scaffold") or not text:
            continue
        if _ERROR_LINE.match(text):
            return text[:limit]
    return ""
