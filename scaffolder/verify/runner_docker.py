"""The ``docker`` runner: verify's commands inside TAO's own containers, via :mod:`docker_runner`.

One :class:`~scaffolder.verify.docker_runner.DockerSession` per repository, opened on first use and kept
for the whole run: ``tao-pytorch`` (default image ``tao-pytorch-base:latest``: imports, L0, train, export,
export parity, deploy-preprocess) and ``tao-deploy`` (``tao-deploy-base:latest``: deploy imports/L0,
gen_trt_engine, TensorRT inference/evaluate/parity). The session's setup installs tao-core and the repo
from the mount (editable, no dependencies, no index: ``runner.EDITABLE_INSTALL``), which is what makes the
``NAME`` console scripts exist; the images bring the dependencies, as TAO's do and as the local CPU
stand-ins of ``scripts/build-tao-images.sh`` do. The workspace is mounted at ``/workspace``, so every file a
command reads or writes (work dir, data, probes, CPU shim) must live inside the workspace: verify puts its
work dir there when this runner is used. Commands of one session run one at a time; ``cancel()`` (Ctrl-C,
SIGTERM) removes the containers, which ends the commands in them.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import Any

from scaffolder.errors import ScaffoldError
from scaffolder.verify import docker_runner as dr
from scaffolder.verify.model import CommandResult
from scaffolder.verify.runner import QUIET_ENV, LineCallback, Runner

DEFAULT_IMAGES = dict(dr.DEFAULT_IMAGES)


class DockerRunner(Runner):
    kind = "docker"
    python = "python"

    def __init__(self, workspace: Path, work_dir: Path, device: str, *, images: dict[str, str] | None = None,
                 client: Any = None, shm_size: str = "16G", ipc_host: bool = True, setup_timeout: float = 1800.0,
                 log_dir: Path | None = None):
        super().__init__(workspace, work_dir, device)
        try:
            self.work_dir.relative_to(self.workspace)
        except ValueError:
            raise ScaffoldError(
                f"the docker runner needs its work dir inside the workspace (mounted at {dr.WORKSPACE_MOUNT}); "
                f"{self.work_dir} is not under {self.workspace}",
                "pass --report DIR inside the workspace, or leave --report at its default",
            ) from None
        self.images = {**DEFAULT_IMAGES, **(images or {})}
        self.client = client
        self.shm_size = shm_size
        self.ipc_host = ipc_host
        self.setup_timeout = setup_timeout
        self.log_dir = log_dir or self.work_dir
        self.sessions: dict[str, dr.DockerSession] = {}
        self._stack = ExitStack()
        self.cancelled = False
        self._setup_reported: set[str] = set()
        self._open_lock = threading.Lock()
        self._run_locks = {repo: threading.Lock() for repo in ("tao-pytorch", "tao-deploy")}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        super().start()
        if self.client is None:
            self.client = dr.connect()
        dr.remove_leftovers(self.client)

    def close(self) -> None:
        self._stack.close()
        self.sessions.clear()

    def cancel(self) -> None:
        """Ctrl-C / SIGTERM: remove the containers (which ends every exec in them) and start no new one."""
        self.cancelled = True
        for session in list(self.sessions.values()):
            session.cancel()
        self.close()

    def session(self, repo: str, *, on_line: LineCallback | None = None) -> dr.DockerSession:
        with self._open_lock:
            if self.cancelled:  # a stage thread still running after Ctrl-C must not start a fresh container
                raise dr.DockerRunnerError(f"verify was cancelled; no {repo} container is started")
            if repo not in self.sessions:
                session = dr.DockerSession(
                    self.client, self.images[repo], self.workspace, repo,
                    env=dict(QUIET_ENV), gpus=self.device == "gpu", shm_size=self.shm_size, ipc_host=self.ipc_host,
                    setup=True, setup_log_path=self.log_dir / f"setup-{repo}.log", setup_timeout=self.setup_timeout,
                    on_setup_line=on_line,
                )
                self.sessions[repo] = self._stack.enter_context(session)
                if self.cancelled:  # cancelled while its install step ran
                    self.close()
                    raise dr.DockerRunnerError(f"verify was cancelled; the {repo} container is removed")
            return self.sessions[repo]

    # -- paths -------------------------------------------------------------------------------------
    def target(self, path: Path | str) -> str:
        path = Path(path).absolute()
        try:
            rel = path.relative_to(self.workspace)
        except ValueError:
            raise ScaffoldError(f"{path} is outside the workspace, so the container cannot see it",
                                "keep --data and --report inside the workspace with --runner docker") from None
        return str(PurePosixPath(dr.WORKSPACE_MOUNT, *rel.parts))

    # -- commands ----------------------------------------------------------------------------------
    def prepare_console(self, repo: str, *, log_path: Path, timeout: float | None,
                        on_line: LineCallback | None = None) -> CommandResult | None:
        session = self.session(repo, on_line=on_line)
        if repo in self._setup_reported:  # the install step ran once, when the container started (maybe for a probe)
            return None
        self._setup_reported.add(repo)
        return session.setup_result

    def _exec_env(self, repo: str, extra_pythonpath: Sequence[Path]) -> dict[str, str]:
        return {"PYTHONPATH": ":".join(self.pythonpath(repo, extra_pythonpath)), **self.device_env()}

    def run(self, argv: Sequence[str], *, repo: str, log_path: Path, timeout: float | None,
            on_line: LineCallback | None = None, extra_pythonpath: Sequence[Path] = (),
            console: bool = False, cwd: Path | None = None) -> CommandResult:
        session = self.session(repo, on_line=on_line)
        workdir = self.target(cwd) if cwd else dr.WORKSPACE_MOUNT
        with self._run_locks[repo]:
            return session.run([str(a) for a in argv], log_path=log_path, timeout=timeout, on_line=on_line,
                               workdir=workdir, env=self._exec_env(repo, extra_pythonpath))

    def shell_line(self, argv: Sequence[str], *, repo: str, extra_pythonpath: Sequence[Path] = (),
                   console: bool = False, cwd: Path | None = None) -> str:
        """A self-contained ``docker run --rm`` line (the verify containers are gone after the run)."""
        setup = " && ".join([
            *dr.setup_commands(repo),
            f"cd {shlex.quote(self.target(cwd) if cwd else dr.WORKSPACE_MOUNT)}",
            shlex.join([str(a) for a in argv]),
        ])
        parts = ["docker", "run", "--rm"]
        if self.device == "gpu":
            parts += ["--gpus", "all"]
        parts += ["--ipc", "host"] if self.ipc_host else ["--shm-size", self.shm_size]
        parts += ["-v", f"{self.workspace}:{dr.WORKSPACE_MOUNT}", "-w", dr.WORKSPACE_MOUNT]
        for key, value in self._exec_env(repo, extra_pythonpath).items():
            parts += ["-e", f"{key}={value}"]
        parts += [self.images[repo], "bash", "-c", setup]
        return shlex.join(parts)

    def describe(self) -> dict[str, Any]:
        return {"runner": self.kind, "device": self.device, "images": dict(self.images)}


def docker_preflight(workspace: Path, images: dict[str, str], device: str, repos: Sequence[str]) -> list[str]:
    """Problems (``what -- fix``) that stop a docker run before it starts."""
    return dr.preflight(None, [images[r] for r in repos], device == "gpu", workspace=workspace, repos=list(repos))
