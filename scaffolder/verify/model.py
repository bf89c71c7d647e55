"""Data shared by verify's stages, runners and report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


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
