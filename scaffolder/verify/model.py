"""Data shared by verify's stages, runners and report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
STATUSES = (PASSED, FAILED, SKIPPED)


@dataclass
class CommandResult:
    """What a runner reports for one command (a stage may run several)."""

    argv: list[str]
    returncode: int | None  # None when it never finished (timeout, interrupted)
    seconds: float
    log_path: Path
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """``exited 1 after 3.2s`` / ``timed out after 600s``: for failure reasons."""
        if self.timed_out:
            return f"timed out after {self.seconds:.0f}s"
        if self.returncode is None:
            return f"did not finish ({self.seconds:.0f}s)"
        return f"exited {self.returncode} after {self.seconds:.1f}s"


@dataclass
class StageResult:
    name: str
    status: str  # passed | failed | skipped
    reason: str = ""  # why it failed or was skipped (one line)
    seconds: float = 0.0
    log: str = ""  # path of the stage log, relative to the report dir when possible
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    command: str = ""  # exact shell command to rerun this stage by hand
    required: bool = True  # a required stage that is skipped makes verify exit non-zero
    # -- added by verify's pipeline ---------------------------------------------------------------
    messages: list[str] = field(default_factory=list)  # every violation / failing check, one per line
    warnings: list[str] = field(default_factory=list)  # findings that do not fail the stage
    rerun: str = ""  # the `tao-scaffold verify ... --stages NAME` line that reruns just this stage
    cpu_seconds: float | None = None  # user+sys CPU time of the stage's child processes (local runner)

    @property
    def ok(self) -> bool:
        return self.status == PASSED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
