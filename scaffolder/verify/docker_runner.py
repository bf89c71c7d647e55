"""The ``docker`` runner: run verify's commands inside TAO's own containers, the way TAO is really tested.

One :class:`DockerSession` is one long-lived container (``sleep infinity``) with the workspace
bind-mounted at ``/workspace`` and ``PYTHONPATH=/workspace/tao-core:/workspace/<repo>``; every command
of the stages that share it (train + export in ``tao-pytorch-base``, engine + inference + evaluate in
``tao-deploy-base``) is a ``docker exec`` inside it, so the install step runs once::

    client = docker.from_env()
    remove_leftovers(client)                       # containers of earlier, killed runs
    with DockerSession(client, "tao-pytorch-base:latest", ws, "tao-pytorch", env={...}, gpus=True,
                       setup_log_path=report_dir / "logs" / "setup-tao-pytorch.log") as session:
        result = session.run("tao-pytorch ...", log_path=..., timeout=3600, on_line=print)

Guarantees:

* Output (stderr merged into stdout inside the container, so lines keep their real order) is streamed
  live, line by line (``\\n``, ``\\r\\n`` and bare ``\\r`` -- progress bars -- end a line),
  to ``on_line`` (called in the caller's thread) and to ``log_path`` (appended, flushed per line,
  framed by ``# tao-scaffold:`` header/footer lines). The exit code is the process's own (``exec_inspect``).
* Timeouts: each command runs under coreutils ``timeout --kill-after`` *inside* the container, which
  signals the whole process group (TERM, then KILL), so the session stays usable after a timeout and
  the result has ``timed_out=True`` and ``returncode=None``. A host-side watchdog backs this up: if the
  command still has not ended ``kill_grace + 20`` s after its timeout (or the image has no ``timeout``),
  the process is killed from ``/proc`` inside the container, and failing that the container itself is
  killed -- the session is then *broken* and further ``run`` calls raise :class:`DockerRunnerError`.
* Cleanup: the container is removed (forced) when the ``with`` block ends -- normally, by an exception,
  a timeout or ``KeyboardInterrupt`` (also one raised from ``on_line``) -- and when ``__enter__`` fails
  half way; :meth:`DockerSession.cancel` removes it from another thread (the command running in it ends,
  its log says ``cancelled``). Containers carry the label :data:`LABEL` (plus the owner's host and PID) so
  :func:`remove_leftovers` can remove what a ``kill -9``'d run left behind.
* Secrets: values of ``HF_TOKEN`` and of every variable named in ``secret_env`` reach the container
  but are replaced by ``***`` in every log line, ``on_line`` call, ``CommandResult.argv`` and exception
  message produced here. (``docker inspect`` on the live container still shows them -- that is Docker.)
"""

from __future__ import annotations

import codecs
import os
import queue
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scaffolder.errors import ScaffoldError
from scaffolder.signals import terminate_like_sigint
from scaffolder.verify.lines import line_emitter, split_lines
from scaffolder.verify.model import CommandResult
from scaffolder.verify.runner import editable_install_argv

try:  # the project depends on docker>=7; keep the module importable without it (preflight reports it)
    import docker
    import docker.errors
    import docker.types
except ImportError:  # pragma: no cover - exercised only in broken environments
    docker = None  # type: ignore[assignment]

LABEL = "org.tao-scaffold.verify"  # every container we create has LABEL=1
LABEL_OWNER = f"{LABEL}.owner"  # "<hostname>:<pid>" of the process that created it
LABEL_REPO = f"{LABEL}.repo"
LABEL_SESSION = f"{LABEL}.session"  # unique per DockerSession

DEFAULT_IMAGES = {"tao-pytorch": "tao-pytorch-base:latest", "tao-deploy": "tao-deploy-base:latest"}
SECRET_ENV = ("HF_TOKEN",)  # always treated as secret
PASSTHROUGH_ENV = ("HF_TOKEN",)  # copied from os.environ when set and not given in env=
WORKSPACE_MOUNT = "/workspace"
REDACTED = "***"
MIN_SECRET_LEN = 4  # shorter values would redact ordinary text; they are still passed, not redacted

LineCallback = Callable[[str], Any]


class DockerRunnerError(ScaffoldError):
    """The docker runner could not do its job (daemon, image, container, setup); message is redacted."""

    def __init__(self, message: str, hint: str | None = None, result: CommandResult | None = None):
        super().__init__(message, hint)
        self.result = result


# --------------------------------------------------------------------------------------------- secrets
class Redactor:
    """Replaces secret values with ``***`` (longest first, so a secret containing another is whole)."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _is_local_client(client: Any) -> bool:
    base = str(getattr(getattr(client, "api", None), "base_url", ""))
    return base.startswith(("http+docker://localhost", "http+docker://localunixsocket")) or "unix" in base


# --------------------------------------------------------------------------------------------- session
class DockerSession:
    """One long-lived container for the stages that share an image (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        image: str,
        workspace: Path,
        repo: str,
        *,
        env: Mapping[str, str] | None = None,
        gpus: bool = False,
        shm_size: str | None = "16G",
        ipc_host: bool = True,
        setup: bool = True,
        name_prefix: str = "tao-scaffold-verify",
        secret_env: Sequence[str] = (),
        setup_log_path: Path | None = None,
        setup_timeout: float = 1800.0,
        setup_commands: Sequence[str] | None = None,
        on_setup_line: LineCallback | None = None,
        labels: Mapping[str, str] | None = None,
        kill_grace: float = 10.0,
        stop_timeout: float = 10.0,
    ):
        if not repo or "/" in repo or repo in (".", ".."):
            raise ValueError(
                f"repo must be a folder name of the workspace (tao-pytorch, tao-deploy), not {repo!r}"
            )
        self.client = client
        self.image = image
        self.workspace = Path(workspace).expanduser().resolve()
        self.repo = repo
        self.gpus = gpus
        self.shm_size = shm_size
        self.ipc_host = ipc_host
        self.setup = setup
        self.name_prefix = name_prefix
        self.setup_log_path = Path(setup_log_path) if setup_log_path else None
        self.setup_timeout = setup_timeout
        self.setup_commands = list(setup_commands) if setup_commands is not None else None
        self.on_setup_line = on_setup_line
        self.extra_labels = dict(labels or {})
        self.kill_grace = kill_grace
        self.stop_timeout = stop_timeout

        self.env: dict[str, str] = {
            "PYTHONPATH": f"{WORKSPACE_MOUNT}/tao-core:{WORKSPACE_MOUNT}/{repo}",
            "PYTHONUNBUFFERED": "1",  # live logs from python even without a tty
            # Bytecode stays in the container: no root-owned __pycache__ folders in the user's mounted clones.
            "PYTHONPYCACHEPREFIX": "/tmp/tao-scaffold-pycache",
        }
        for name in PASSTHROUGH_ENV:
            if os.environ.get(name) and name not in (env or {}):
                self.env[name] = os.environ[name]
        self.env.update({k: str(v) for k, v in (env or {}).items()})
        self.secret_env = tuple(dict.fromkeys([*SECRET_ENV, *secret_env]))
        self.redact = Redactor(self.env[k] for k in self.secret_env if self.env.get(k))

        self.session_id = uuid.uuid4().hex[:12]
        self.name = f"{name_prefix}-{repo}-{self.session_id}"
        self.container: Any = None
        self.setup_result: CommandResult | None = None
        self.broken: str = ""  # why the session can no longer run commands
        self.cancelled = False  # cancel() removed the container, maybe under a running command
        self._has_timeout_binary = True
        self._signals: Any = None

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> DockerSession:
        # SIGTERM/SIGHUP (docker stop, CI cancellation, `timeout`) unwind like Ctrl-C, so the container is
        # removed below; the CLI installs the same handlers, a library caller gets them here.
        self._signals = terminate_like_sigint(only_if_default=True)
        self._signals.__enter__()
        try:
            self._start_container()
            if self.setup:
                self._run_setup()
        except BaseException:
            try:
                self.close()
            finally:
                self._signals.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            try:
                self.close()
            finally:
                self._signals.__exit__(None, None, None)
        except DockerRunnerError as cleanup_error:
            if exc is None:
                raise
            if hasattr(exc, "add_note"):  # keep the original exception; say what was left behind
                exc.add_note(f"also: {cleanup_error}")

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL: "1",
            LABEL_OWNER: _owner(),
            LABEL_REPO: self.repo,
            LABEL_SESSION: self.session_id,
            **self.extra_labels,
        }

    def _start_container(self) -> None:
        if docker is None:
            raise self._error("the docker Python SDK is not installed", "pip install 'docker>=7'")
        if not self.workspace.is_dir():
            raise self._error(f"workspace {self.workspace} is not a folder")
        kwargs: dict[str, Any] = dict(
            image=self.image,
            command=["sleep", "infinity"],
            name=self.name,
            detach=True,
            labels=self.labels,
            environment=self.env,
            volumes={str(self.workspace): {"bind": WORKSPACE_MOUNT, "mode": "rw"}},
            working_dir=WORKSPACE_MOUNT,
            init=True,  # tini as PID 1: reaps orphans, and the container stops at once
            stop_signal="SIGKILL",
        )
        if self.ipc_host:
            kwargs["ipc_mode"] = "host"  # /dev/shm is the host's then; shm_size is moot but harmless
        if self.shm_size and not self.ipc_host:
            kwargs["shm_size"] = self.shm_size
        if self.gpus:
            kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        try:
            self.container = self.client.containers.create(**kwargs)
            self.container.start()
            self.container.reload()
        except docker.errors.ImageNotFound:
            raise self._error(f"image {self.image} not found", image_fix(self.image)) from None
        except docker.errors.DockerException as exc:
            hint = gpu_fix() if self.gpus and "gpu" in str(exc).lower() else None
            raise self._error(
                f"could not start a container from {self.image}: {self.redact(str(exc))}", hint
            ) from None
        if self.container.status != "running":
            logs = self.redact(self.container.logs(tail=20).decode("utf-8", "replace"))
            raise self._error(
                f"container {self.name} from {self.image} is {self.container.status}, not running: {logs.strip()}",
                "the image must provide `sleep` (coreutils) and must not override the command with an ENTRYPOINT "
                "that exits",
            )
        try:  # without coreutils `timeout` in the image, the host-side watchdog enforces timeouts alone
            probe = self.container.exec_run(["sh", "-c", "command -v timeout"])
            self._has_timeout_binary = probe.exit_code == 0
        except docker.errors.DockerException as exc:
            raise self._error(f"cannot exec in container {self.name}: {self.redact(str(exc))}") from None

    def _error(
        self, message: str, hint: str | None = None, result: CommandResult | None = None
    ) -> DockerRunnerError:
        return DockerRunnerError(self.redact(message), self.redact(hint) if hint else None, result=result)

    def default_setup_commands(self) -> list[str]:
        return setup_commands(self.repo)

    def _run_setup(self) -> None:
        for name in ("tao-core", self.repo):
            folder = self.workspace / name
            if not ((folder / "setup.py").is_file() or (folder / "pyproject.toml").is_file()):
                raise self._error(
                    f"{folder} is not an installable package (no setup.py or pyproject.toml)",
                    f"the workspace needs the {name} repository there (git clone "
                    f"https://github.com/NVIDIA-TAO/{name}.git {folder}), or pass setup=False",
                )
        commands = self.setup_commands if self.setup_commands is not None else self.default_setup_commands()
        script = "set -ex\n" + "\n".join(commands)
        log_path = self.setup_log_path
        if log_path is None:
            import tempfile

            log_path = Path(tempfile.mkdtemp(prefix="tao-scaffold-setup-")) / f"setup-{self.repo}.log"
        result = self.run(script, log_path=log_path, timeout=self.setup_timeout, on_line=self.on_setup_line)
        self.setup_result = result
        if not result.ok:
            why = "timed out" if result.timed_out else f"exited {result.returncode}"
            raise self._error(
                f"install step in {self.image} {why} after {result.seconds:.0f}s (log: {log_path})",
                "read the log; the image must have python and pip, and tao-core/"
                f"{self.repo} must install with pip",
                result=result,
            )

    # -- commands ---------------------------------------------------------------------------------
    def run(
        self,
        command: str | Sequence[str],
        *,
        log_path: Path,
        timeout: float | None,
        on_line: LineCallback | None = None,
        workdir: str = WORKSPACE_MOUNT,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``command`` (argv list, or a string for ``bash -c``) in the container; see module docstring."""
        if self.container is None:
            raise self._error("the docker session is not started (use it as a context manager)")
        if self.broken:
            raise self._error(f"the docker session {self.name} is broken: {self.broken}")
        argv = ["bash", "-c", command] if isinstance(command, str) else [str(a) for a in command]
        if not argv:
            raise ValueError("empty command")
        shown_argv = [self.redact(a) for a in argv]
        exec_env = {k: str(v) for k, v in (env or {}).items()}
        redact = self.redact
        if any(k in self.secret_env for k in exec_env):
            redact = Redactor(
                [*self.redact.secrets, *(exec_env[k] for k in self.secret_env if k in exec_env)]
            )
            shown_argv = [redact(a) for a in argv]

        token = uuid.uuid4().hex[:12]
        pidfile = f"/tmp/.tao-scaffold-exec-{token}.pid"
        inner = argv
        if timeout is not None and self._has_timeout_binary:
            inner = ["timeout", f"--kill-after={self.kill_grace:g}s", f"{max(timeout, 0.001):.3f}s", *argv]
        # `sh` records its PID (the same process after exec) so the watchdog/Ctrl-C path can kill it, and
        # sends stderr into stdout: Docker copies two pipes independently, one pipe keeps the real order.
        wrapped = ["sh", "-c", 'echo $$ > "$0"; exec "$@" 2>&1', pidfile, *inner]

        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        timed_out = False
        returncode: int | None = None
        finished = False
        with open(log_path, "a", encoding="utf-8") as log:
            header = shlex.join(shown_argv).replace("\n", "\\n")
            log.write(redact(f"# tao-scaffold: {header}  (container {self.name}, workdir {workdir})") + "\n")
            log.flush()
            try:
                exec_id = self.client.api.exec_create(
                    self.container.id,
                    wrapped,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    environment=exec_env or None,
                    workdir=workdir,
                )["Id"]
                stream = self.client.api.exec_start(exec_id, stream=True, demux=False)
            except docker.errors.DockerException as exc:
                raise self._error(f"docker exec failed in {self.name}: {redact(str(exc))}") from None

            lines: queue.Queue = queue.Queue()
            reader = threading.Thread(
                target=_pump, args=(stream, lines), name=f"docker-exec-{token}", daemon=True
            )
            reader.start()

            emit = line_emitter(log, redact, on_line)

            hard_deadline = None if timeout is None else started + timeout + self.kill_grace + 20.0
            if timeout is not None and not self._has_timeout_binary:
                hard_deadline = started + timeout
            escalation = 0
            last_poll = time.monotonic()
            exited_at: float | None = None
            try:
                while True:
                    try:
                        item = lines.get(timeout=0.25)
                    except queue.Empty:
                        item = None
                    if item is _EOF:
                        break
                    if isinstance(item, BaseException):
                        raise self._error(f"lost the output stream of {self.name}: {redact(str(item))}")
                    if item is not None:
                        emit(item)
                        continue
                    now = time.monotonic()
                    if hard_deadline is not None and now >= hard_deadline:
                        timed_out = True
                        escalation += 1
                        if escalation == 1:
                            self._kill_exec(pidfile, signal="KILL", quiet=True)
                            hard_deadline = now + 10.0
                        else:  # the process would not die or the stream would not close: kill the container
                            self.broken = (
                                f"a command outlived its timeout ({timeout}s) and could not be killed"
                            )
                            self._kill_container()
                            hard_deadline = now + 30.0
                            if escalation > 3:
                                break
                    if now - last_poll >= 2.0:
                        # A backgrounded grandchild can hold the output pipe open after the command exits.
                        last_poll = now
                        if exited_at is None and not _exec_running(self.client, exec_id):
                            exited_at = now
                        elif exited_at is not None and now - exited_at > 5.0:
                            break
                for rest in _drain(lines):
                    emit(rest)
                info = _exec_inspect(self.client, exec_id)
                returncode = info.get("ExitCode") if not info.get("Running", False) else None
                finished = True
            finally:
                seconds = time.monotonic() - started
                if not finished:  # exception or KeyboardInterrupt (e.g. raised by on_line): stop the command
                    self._kill_exec(pidfile, signal="KILL", quiet=True)
                    log.write(f"# tao-scaffold: interrupted after {seconds:.2f}s\n")
                    log.flush()
            if timeout is not None and returncode in (124, 137) and seconds >= timeout - 0.05:
                timed_out = True
            if self.cancelled:  # the container was removed under the command (Ctrl-C / SIGTERM of verify)
                log.write(f"# tao-scaffold: cancelled after {seconds:.2f}s\n")
                returncode = None
            elif timed_out:
                log.write(f"# tao-scaffold: timed out after {seconds:.2f}s (timeout {timeout}s)\n")
                returncode = None
            else:
                log.write(f"# tao-scaffold: exit {returncode} after {seconds:.2f}s\n")
            log.flush()
        return CommandResult(
            argv=shown_argv, returncode=returncode, seconds=seconds, log_path=log_path, timed_out=timed_out
        )

    def _kill_exec(self, pidfile: str, *, signal: str, quiet: bool = False) -> None:
        """Kill the exec'd process and everything in its process group, from inside the container."""
        if self.container is None:
            return
        # POSIX sh only (dash's `kill` takes no negative PIDs): kill every process of the group by PID.
        script = (
            f'p=$(cat "{pidfile}" 2>/dev/null) || exit 0; '
            "g=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f3); "
            'if [ -n "$g" ] && [ "$g" != 0 ] && [ "$g" != 1 ]; then '
            "for s in /proc/[0-9]*/stat; do q=${s#/proc/}; q=${q%/stat}; "
            "[ \"$(sed 's/.*) //' $s 2>/dev/null | cut -d' ' -f3)\" = \"$g\" ] && "
            f"kill -s {signal} $q 2>/dev/null; done; fi; "
            f'kill -s {signal} $p 2>/dev/null; rm -f "{pidfile}"; true'
        )
        try:
            self.container.exec_run(["sh", "-c", script])
        # best effort: the container is removed at the end anyway
        except Exception:  # pylint: disable=broad-exception-caught
            if not quiet:
                raise

    def _kill_container(self) -> None:
        try:
            self.container.kill()
        except Exception:  # pylint: disable=broad-exception-caught
            pass

    def cancel(self) -> None:
        """From another thread: remove the container now, which ends the command running in it."""
        self.cancelled = True
        self.broken = "cancelled"
        self.close()

    def close(self) -> None:
        """Remove the container (forced). Idempotent; survives one extra Ctrl-C while it works."""
        if self.container is None:
            return
        interrupted: BaseException | None = None
        for _ in range(3):
            try:
                _remove(self.container)
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
        self.container = None
        if interrupted is not None:
            raise interrupted

    def shell_command(self, command: str) -> str:
        """A ``docker exec`` line to rerun ``command`` by hand in this session's container (secrets redacted)."""
        return self.redact(f"docker exec -it -w {WORKSPACE_MOUNT} {self.name} bash -c {shlex.quote(command)}")


# --------------------------------------------------------------------------------------------- helpers
def setup_commands(repo: str) -> list[str]:
    """The install step of a session of ``repo``: tao-core and the repo, editable from the mount."""
    return [shlex.join(editable_install_argv("python", [f"{WORKSPACE_MOUNT}/tao-core", f"{WORKSPACE_MOUNT}/{repo}"]))]


_EOF = object()


def _pump(stream: Iterable[bytes], out: queue.Queue) -> None:
    """Reader thread: split the exec's byte stream into text lines (\\n, \\r\\n, bare \\r)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    try:
        for chunk in stream:
            pending += decoder.decode(chunk)
            pending = split_lines(pending, out)
        pending += decoder.decode(b"", final=True)
        pending = split_lines(pending, out)
        if pending:
            out.put(pending)
    except BaseException as exc:  # pylint: disable=broad-exception-caught  # reported to the caller's thread
        if pending:
            out.put(pending)
        out.put(exc)
    out.put(_EOF)


def _drain(q: queue.Queue) -> list[str]:
    out = []
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return out
        if isinstance(item, str):
            out.append(item)


def _exec_inspect(client: Any, exec_id: str, wait: float = 10.0) -> dict:
    deadline = time.monotonic() + wait
    info: dict = {}
    while True:
        try:
            info = client.api.exec_inspect(exec_id)
        except Exception:  # pylint: disable=broad-exception-caught
            return info
        if not info.get("Running") or time.monotonic() >= deadline:
            return info
        time.sleep(0.1)


def _exec_running(client: Any, exec_id: str) -> bool:
    try:
        return bool(client.api.exec_inspect(exec_id).get("Running"))
    except Exception:  # pylint: disable=broad-exception-caught
        return True


def _remove(container: Any, attempts: int = 5) -> None:
    for attempt in range(attempts):
        try:
            container.remove(force=True, v=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            # "removal of container ... is already in progress" / daemon busy: wait and retry
            if attempt == attempts - 1:
                raise DockerRunnerError(
                    f"could not remove container {container.name}: {exc}", f"docker rm -f {container.name}"
                ) from None
            time.sleep(1.0 + attempt)


def remove_leftovers(client: Any, *, label: str = LABEL, all_owners: bool = False) -> list[str]:
    """Remove containers carrying ``label`` left behind by runs that died; returns their names.

    By default only containers whose owner process is gone are removed (owner label on this host with a
    dead PID, or no owner label), so two verify runs on one machine do not remove each other's
    containers. ``all_owners=True`` removes every container with the label.
    """
    removed = []
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": label}):
        owner = container.labels.get(LABEL_OWNER, "")
        if not all_owners and owner:
            owner_host, _, pid = owner.rpartition(":")
            if owner_host != host or not pid.isdigit() or _pid_alive(int(pid)):
                continue
        _remove(container)
        removed.append(container.name)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------- preflight
def image_fix(image: str) -> str:
    flavour = "deploy" if "deploy" in image else "pyt"
    return (
        f"pull NVIDIA's TAO container and tag it: docker pull nvcr.io/nvidia/tao/tao-toolkit:<version>-{flavour} && "
        f"docker tag nvcr.io/nvidia/tao/tao-toolkit:<version>-{flavour} {image} "
        f"(or build the base image from the tao-{'deploy' if flavour == 'deploy' else 'pytorch'} repository's "
        f"docker/ folder and tag it {image}), or choose another image for verify (without NGC access, for "
        "--device cpu: scripts/build-tao-images.sh builds local CPU stand-ins and prints their tags)"
    )


def gpu_fix() -> str:
    return (
        "install the NVIDIA Container Toolkit and register it with Docker: "
        "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker "
        "(check with: docker run --rm --gpus all <image> nvidia-smi), or run verify without GPUs"
    )


DAEMON_FIX = (
    "start the Docker engine (sudo systemctl start docker; on a machine without systemd: "
    "scripts/dockerd.sh start), check DOCKER_HOST, and make sure this user may use the socket "
    "(root, or member of the docker group)"
)


def connect(timeout: int = 60) -> Any:
    """``docker.from_env()`` plus a ping; raises :class:`DockerRunnerError` with the fix when unreachable."""
    if docker is None:
        raise DockerRunnerError("the docker Python SDK is not installed", "pip install 'docker>=7'")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    # DockerException, requests/urllib3 errors
    except Exception as exc:  # pylint: disable=broad-exception-caught
        raise DockerRunnerError(f"Docker engine not reachable: {exc}", DAEMON_FIX) from None
    return client


def preflight(
    client: Any | None,
    images: Sequence[str],
    gpus: bool,
    *,
    workspace: Path | None = None,
    repos: Sequence[str] = (),
) -> list[str]:
    """Doctor-style checks before a docker verify run: each problem is one line ``what -- fix``.

    ``client=None`` means "connect from the environment" (``DOCKER_HOST`` or the default socket).
    Checks: daemon reachable; each image present locally (no pull is attempted: TAO images are
    large and registries may be unreachable); with ``gpus``, a GPU runtime in the daemon (and, for a
    local daemon, NVIDIA devices on this host); with ``workspace``, ``tao-core`` and each of ``repos``
    present there as installable packages.
    """
    problems: list[str] = []
    if workspace is not None:
        ws = Path(workspace).expanduser()
        if not ws.is_dir():
            problems.append(
                f"workspace {ws} does not exist -- create it (tao-core, tao-pytorch, tao-deploy clones)"
            )
        else:
            for name in dict.fromkeys(["tao-core", *repos]):
                folder = ws / name
                if not folder.is_dir():
                    problems.append(
                        f"workspace has no {name}/ -- git clone https://github.com/NVIDIA-TAO/{name}.git {folder}"
                    )
                elif not ((folder / "setup.py").is_file() or (folder / "pyproject.toml").is_file()):
                    problems.append(
                        f"{folder} has no setup.py or pyproject.toml, so it cannot be installed in the container -- "
                        f"replace it with a clone of https://github.com/NVIDIA-TAO/{name}.git"
                    )
    if client is None:
        try:
            client = connect()
        except DockerRunnerError as exc:
            return [f"{exc.message} -- {exc.hint}", *problems]
    else:
        try:
            client.ping()
        except Exception as exc:  # pylint: disable=broad-exception-caught
            return [f"Docker engine not reachable: {exc} -- {DAEMON_FIX}", *problems]
    for image in dict.fromkeys(images):
        try:
            client.images.get(image)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # ImageNotFound, APIError
            if docker is not None and isinstance(exc, docker.errors.ImageNotFound):
                problems.append(f"image {image} is not present -- {image_fix(image)}")
            else:
                problems.append(f"cannot inspect image {image}: {exc} -- {DAEMON_FIX}")
    if gpus:
        try:
            info = client.info()
        except Exception:  # pylint: disable=broad-exception-caught
            info = {}
        runtimes = set((info.get("Runtimes") or {}).keys())
        has_runtime = "nvidia" in runtimes or (bool(info.get("CDISpecDirs")) and _local_nvidia_cdi())
        if _is_local_client(client):
            import shutil

            has_runtime = has_runtime or bool(shutil.which("nvidia-container-runtime-hook"))
            if not Path("/dev/nvidiactl").exists():
                problems.append(
                    "no NVIDIA GPU visible on this host (/dev/nvidiactl missing) -- install the NVIDIA "
                    "driver (nvidia-smi must work), or run verify without GPUs"
                )
        if not has_runtime:
            problems.append(
                f"Docker has no NVIDIA GPU runtime (runtimes: {', '.join(sorted(runtimes)) or 'none'}) "
                f"-- {gpu_fix()}"
            )
    return problems


def _local_nvidia_cdi() -> bool:
    return any(Path(d).glob("nvidia*.yaml") for d in ("/etc/cdi", "/var/run/cdi"))
