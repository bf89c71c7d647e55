"""What every verify runner provides (``local`` subprocesses, ``docker`` containers).

A stage never builds environments itself; it asks the runner to run an argv "in the environment of
repo R" (``tao-pytorch`` or ``tao-deploy``): the runner supplies ``PYTHONPATH=<ws>/tao-core:<ws>/<R>``
(plus ``extra_pythonpath``), the shim (CPU forcing for ``--device cpu``; the MSDA fallback on every device), the repo's console scripts on ``PATH``
when ``console=True``, live line streaming into the stage log, a timeout that kills the whole process
tree, and secret redaction. Paths in argv must be given as the runner sees them: :meth:`Runner.target`.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scaffolder.verify.model import CommandResult

LineCallback = Callable[[str], Any]
TOOLS_DIR = "_tools"  # under the work dir: shim/ and probes/ copied from this package
PACKAGE_DIR = Path(__file__).resolve().parent
# Environment for every child: unbuffered output (live logs), no telemetry / W&B network calls.
QUIET_ENV = {
    "PYTHONUNBUFFERED": "1",
    "TELEMETRY_OPT_OUT": "yes",
    "WANDB_MODE": "disabled",
    "WANDB_SILENT": "true",
    "MPLBACKEND": "Agg",
    "HYDRA_FULL_ERROR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
# How both runners install the workspace's repos to get their console scripts: editable, and nothing fetched or
# built -- the environment (venv or image) already has the dependencies and setuptools, and may have no index
# (the local TAO-like images are offline); TAO's wheel-derived tao-pytorch has Python-3.12-only files that must
# not be byte-compiled on 3.11.
EDITABLE_INSTALL = ("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-compile", "--no-input")


def editable_install_argv(python: str, repo_dirs: Sequence[str]) -> list[str]:
    """``python -m pip install ... -e DIR -e DIR`` (see :data:`EDITABLE_INSTALL`)."""
    return [python, *EDITABLE_INSTALL, *(arg for d in repo_dirs for arg in ("-e", str(d)))]


class Runner(ABC):
    kind = "base"
    python = "python"  # the interpreter of the target environment, as argv[0]

    def __init__(self, workspace: Path, work_dir: Path, device: str):
        self.workspace = Path(workspace).resolve()
        self.work_dir = Path(work_dir).resolve()
        self.device = device
        self.tools = self.work_dir / TOOLS_DIR

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Copy the shim and the probes where the target environment can read them."""
        if self.tools.exists():
            shutil.rmtree(self.tools)
        self.tools.mkdir(parents=True)
        shutil.copytree(PACKAGE_DIR / "shim", self.tools / "shim", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(PACKAGE_DIR / "probes", self.tools / "probes", ignore=shutil.ignore_patterns("__pycache__"))

    def close(self) -> None:
        """Release what :meth:`start` and the commands acquired (containers...)."""

    def cancel(self) -> None:
        """Stop the running commands as soon as possible (Ctrl-C); called from another thread."""

    # -- paths -------------------------------------------------------------------------------------
    @abstractmethod
    def target(self, path: Path | str) -> str:
        """``path`` (on this machine) as the commands of this runner see it."""

    def probe_script(self, name: str) -> str:
        return self.target(self.tools / "probes" / name)

    def pythonpath(self, repo: str, extra: Sequence[Path] = ()) -> list[str]:
        # The shim goes first on every device: CPU forcing acts only with TAO_SCAFFOLD_FORCE_CPU=1 (device_env), the
        # MSDA fallback only where TAO's CUDA op library cannot load (shim/sitecustomize.py).
        paths = [self.target(self.tools / "shim")]
        paths += [self.target(self.workspace / "tao-core"), self.target(self.workspace / repo)]
        paths += [self.target(p) for p in extra]
        return paths

    def device_env(self) -> dict[str, str]:
        if self.device == "cpu":
            return {"TAO_SCAFFOLD_FORCE_CPU": "1", "CUDA_VISIBLE_DEVICES": ""}
        return {}

    # -- commands ----------------------------------------------------------------------------------
    @abstractmethod
    def prepare_console(self, repo: str, *, log_path: Path, timeout: float | None,
                        on_line: LineCallback | None = None) -> CommandResult | None:
        """Make the repo's console scripts (``NAME``) runnable; idempotent; ``None`` if nothing ran."""

    @abstractmethod
    def run(self, argv: Sequence[str], *, repo: str, log_path: Path, timeout: float | None,
            on_line: LineCallback | None = None, extra_pythonpath: Sequence[Path] = (),
            console: bool = False, cwd: Path | None = None) -> CommandResult:
        """Run ``argv`` in the environment of ``repo`` (see the module docstring)."""

    @abstractmethod
    def shell_line(self, argv: Sequence[str], *, repo: str, extra_pythonpath: Sequence[Path] = (),
                   console: bool = False, cwd: Path | None = None) -> str:
        """The exact shell line that reruns ``argv`` by hand the way :meth:`run` runs it."""

    def describe(self) -> dict[str, Any]:
        return {"runner": self.kind, "device": self.device}
