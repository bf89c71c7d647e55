"""The ``local`` runner: verify's commands as subprocesses of a given Python environment.

For a workstation or GPU host with TAO's dependencies installed (no Docker), and for CPU smoke runs.
Each command runs with ``PYTHONPATH=<ws>/tao-core:<ws>/<repo>`` (the workspace shadows any installed
TAO), with the shim (``scaffolder/verify/shim/sitecustomize.py``: CPU forcing for ``--device cpu``, the MSDA
fallback on every device) in front, and
``console=True`` puts the repo's console scripts on ``PATH``.

Console scripts: TAO's entrypoint (``NAME train -e spec``) is a ``console_scripts`` entry of the repo's
``setup.py``, and TAO's ``launch()`` re-runs the subtask as ``python <script>``, so both ``NAME`` and
``python`` must resolve in the child's ``PATH``. :class:`ConsoleEnv` makes that true without touching
the project's environment: a throwaway venv under the work dir (``<python> -m venv --without-pip``,
plus a ``.pth`` that chains the given environment's site-packages, because a venv made from a venv only
inherits the *base* interpreter's packages) into which ``pip install --no-deps --no-build-isolation
--no-compile -e <ws>/tao-core -e <ws>/<repo>`` (``runner.EDITABLE_INSTALL``) installs the real entry points
(~10 s). If pip is unavailable or fails, it falls back to a generated console-script shim (``bin/NAME``
calling the ``setup.py`` entry's ``module:main``, ``bin/python`` linking the interpreter): same launcher
path, no install.

Process handling (:func:`run_process`): stdout+stderr merged, split into lines on ``\\n``/``\\r`` and
streamed live to the log and ``on_line``; the child is its own process group, killed (TERM, then KILL
after ``kill_grace``) on timeout or interrupt; CPU time comes from ``wait4``.
"""

from __future__ import annotations

import codecs
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scaffolder.verify.docker_runner import Redactor
from scaffolder.verify.lines import line_emitter, split_lines
from scaffolder.verify.model import CommandResult
from scaffolder.verify.runner import QUIET_ENV, LineCallback, Runner, editable_install_argv
from scaffolder.workspace import read_console_scripts, script_name

SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")
_EOF = object()


# --------------------------------------------------------------------------------------------- processes
def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str | None,
    log_path: Path,
    timeout: float | None,
    on_line: LineCallback | None = None,
    redact: Callable[[str], str] | None = None,
    kill_grace: float = 10.0,
    header: str | None = None,
    cancel: threading.Event | None = None,
) -> tuple[CommandResult, float | None]:
    """Run ``argv``; returns the result and the CPU seconds (user+sys) of the process tree it waited for."""
    redact = redact or (lambda text: text)
    argv = [str(a) for a in argv]
    shown = [redact(a) for a in argv]
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(redact(f"# tao-scaffold: {header or shlex.join(shown)}  (cwd {cwd or os.getcwd()})") + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            log.write(f"# tao-scaffold: could not start: {exc}\n")
            return CommandResult(argv=shown, returncode=127, seconds=time.monotonic() - started,
                                 log_path=log_path), None
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()

        emit = line_emitter(log, redact, on_line)

        deadline = None if timeout is None else started + timeout
        timed_out = False
        killed_at = None
        try:
            while True:
                try:
                    item = lines.get(timeout=0.2)
                except queue.Empty:
                    item = None
                if item is _EOF:
                    break
                if item is not None:
                    emit(item)
                now = time.monotonic()
                if cancel is not None and cancel.is_set() and killed_at is None:
                    _kill_group(proc, signal.SIGTERM)
                    killed_at = now
                    log.write("# tao-scaffold: cancelled\n")
                if deadline is not None and now >= deadline and not timed_out:
                    timed_out = True
                    _kill_group(proc, signal.SIGTERM)
                    killed_at = now
                if killed_at is not None and now - killed_at > kill_grace:
                    _kill_group(proc, signal.SIGKILL)
                    killed_at = float("inf")
                if killed_at == float("inf") and proc.poll() is not None:
                    break  # a grandchild may keep the pipe open after the group was killed
        except BaseException:
            _kill_group(proc, signal.SIGKILL)
            seconds = time.monotonic() - started
            log.write(f"# tao-scaffold: interrupted after {seconds:.2f}s\n")
            raise
        returncode, cpu = _reap(proc)
        seconds = time.monotonic() - started
        if timed_out:
            _kill_group(proc, signal.SIGKILL)  # leftovers of the group
            log.write(f"# tao-scaffold: timed out after {seconds:.2f}s (timeout {timeout}s)\n")
            returncode = None
        else:
            log.write(f"# tao-scaffold: exit {returncode} after {seconds:.2f}s\n")
    return CommandResult(argv=shown, returncode=returncode, seconds=seconds, log_path=log_path,
                         timed_out=timed_out), cpu


def _reap(proc: subprocess.Popen) -> tuple[int | None, float | None]:
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # already reaped
        return proc.wait(), None
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return code, usage.ru_utime + usage.ru_stime


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(stream, out: queue.Queue) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    try:
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            pending += decoder.decode(chunk)
            pending = split_lines(pending, out)
        pending += decoder.decode(b"", final=True)
        if pending:
            out.put(pending)
    except (OSError, ValueError):
        if pending:
            out.put(pending)
    finally:
        out.put(_EOF)


def child_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key in SCRUBBED_ENV:
        env.pop(key, None)
    env.update(QUIET_ENV)
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------- console
class ConsoleEnv:
    """A throwaway venv whose ``bin/`` has ``python`` and the repo's console scripts (module docstring)."""

    def __init__(self, python: str, workspace: Path, repo: str, dest: Path):
        self.python = python
        self.workspace = workspace
        self.repo = repo
        self.dest = dest
        self.bin = dest / "bin"
        self.method = ""  # "pip install -e" | "generated shim"
        self.note = ""

    def create(self, *, log_path: Path, timeout: float | None, on_line: LineCallback | None,
               redact: Callable[[str], str], cancel: threading.Event | None = None) -> tuple[CommandResult, float | None]:
        started = time.monotonic()
        stamp = self.dest / ".tao-scaffold-python"
        reusable = stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == self.python
        if reusable and (self.bin / "python").exists() and self.entries() and not self.missing_scripts():
            self.method = "reused from an earlier verify run (editable install of the workspace)"
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"# tao-scaffold: console scripts of {self.repo} already in {self.bin}\n")
            return CommandResult(argv=["(reuse)"], returncode=0, seconds=time.monotonic() - started,
                                 log_path=log_path), None
        info = python_info(self.python)
        env = child_env(PIP_NO_INDEX="1")
        argv = [self.python, "-m", "venv", "--without-pip"]
        if info.get("system_site", True):
            argv.append("--system-site-packages")
        result, cpu = run_process([*argv, str(self.dest)], env=env, cwd=self.workspace, log_path=log_path,
                                  timeout=timeout, on_line=on_line, redact=redact, cancel=cancel)
        if result.ok:
            site_dir = Path(self._venv_site())
            site_dir.mkdir(parents=True, exist_ok=True)
            parents = [p for p in info.get("site", []) if p]
            (site_dir / "_tao_scaffold_parent.pth").write_text("".join(f"{p}\n" for p in parents), encoding="utf-8")
            pip = editable_install_argv(str(self.bin / "python"),
                                        [str(self.workspace / "tao-core"), str(self.workspace / self.repo)])
            result, cpu2 = run_process(pip, env=env, cwd=self.workspace, log_path=log_path, timeout=timeout,
                                       on_line=on_line, redact=redact, cancel=cancel)
            cpu = (cpu or 0) + (cpu2 or 0)
            if result.ok and self.missing_scripts() == []:
                self.method = "pip install -e (throwaway venv)"
                stamp.write_text(self.python + "\n", encoding="utf-8")
                return result, cpu
            self.note = f"pip install -e {result.describe()}; using a generated console-script shim instead"
        else:
            self.note = f"python -m venv {result.describe()}; using a generated console-script shim instead"
        self._write_shims()
        stamp.write_text(self.python + "\n", encoding="utf-8")
        self.method = "generated console-script shim"
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"# tao-scaffold: {self.note}\n")
        return CommandResult(argv=["(console-script shim)"], returncode=0, seconds=time.monotonic() - started,
                             log_path=log_path), cpu

    def _venv_site(self) -> str:
        return str(self.dest / "lib" / f"python{_python_version(self.python)}" / "site-packages")

    def entries(self) -> list[str]:
        setup_py = self.workspace / self.repo / "setup.py"
        return read_console_scripts(setup_py) if setup_py.is_file() else []

    def missing_scripts(self) -> list[str]:
        return [script_name(e) for e in self.entries() if not (self.bin / script_name(e)).exists()]

    def _write_shims(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        python = self.bin / "python"
        if python.is_symlink() or python.exists():
            python.unlink()
        python.symlink_to(self.python if os.path.isabs(self.python) else _which(self.python))
        for entry in self.entries():
            name, target = (part.strip() for part in entry.split("=", 1))
            module, _, func = target.partition(":")
            script = self.bin / name
            script.write_text(
                f"#!{python}\n# console-script shim generated by tao-scaffold verify from {self.repo}/setup.py\n"
                f"import sys\nfrom {module} import {func or 'main'} as _main\n"
                "if __name__ == '__main__':\n    sys.exit(_main())\n",
                encoding="utf-8",
            )
            script.chmod(0o755)


def _which(python: str) -> str:
    import shutil

    return shutil.which(python) or python


_INFO_CACHE: dict[str, dict[str, Any]] = {}


def python_info(python: str) -> dict[str, Any]:
    """Site-packages, venv-ness and version of an interpreter (cached)."""
    if python not in _INFO_CACHE:
        code = (
            "import json, site, sys, os\n"
            "p = [*site.getsitepackages()]\n"
            "u = site.getusersitepackages() if site.ENABLE_USER_SITE else None\n"
            "venv = sys.prefix != sys.base_prefix\n"
            "sysw = True\n"
            "cfg = os.path.join(sys.prefix, 'pyvenv.cfg')\n"
            "if venv and os.path.isfile(cfg):\n"
            "    for line in open(cfg):\n"
            "        k, _, v = line.partition('=')\n"
            "        if k.strip() == 'include-system-site-packages': sysw = v.strip().lower() == 'true'\n"
            "print(json.dumps({'site': p + ([u] if u else []), 'venv': venv, 'system_site': sysw,"
            " 'version': '%d.%d' % sys.version_info[:2], 'full_version': sys.version.split()[0],"
            " 'executable': sys.executable}))\n"
        )
        try:
            out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                                 env=child_env(), check=True).stdout
            _INFO_CACHE[python] = json.loads(out.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            _INFO_CACHE[python] = {}
    return _INFO_CACHE[python]


def _python_version(python: str) -> str:
    return python_info(python).get("version") or "%d.%d" % sys.version_info[:2]


# --------------------------------------------------------------------------------------------- runner
class LocalRunner(Runner):
    kind = "local"

    def __init__(self, workspace: Path, work_dir: Path, device: str, python: str | None = None,
                 secret_env: Sequence[str] = ("HF_TOKEN",)):
        super().__init__(workspace, work_dir, device)
        self.python = python or sys.executable
        self.consoles: dict[str, ConsoleEnv] = {}
        self._locks = {repo: threading.Lock() for repo in ("tao-pytorch", "tao-deploy")}
        self.redact = Redactor(os.environ.get(k, "") for k in secret_env)
        self.cpu_seconds: dict[str, float] = {}  # log path -> CPU seconds of its commands
        self.cancel_event = threading.Event()

    def target(self, path: Path | str) -> str:
        return str(Path(path).absolute())

    def env(self, repo: str, extra_pythonpath: Sequence[Path] = (), console: bool = False) -> dict[str, str]:
        env = child_env(PYTHONPATH=os.pathsep.join(self.pythonpath(repo, extra_pythonpath)), **self.device_env())
        if console and repo in self.consoles:
            env["PATH"] = f"{self.consoles[repo].bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.consoles[repo].dest) if console and repo in self.consoles else ""
        if not env["VIRTUAL_ENV"]:
            env.pop("VIRTUAL_ENV")
        return env

    def prepare_console(self, repo: str, *, log_path: Path, timeout: float | None,
                        on_line: LineCallback | None = None) -> CommandResult | None:
        with self._locks[repo]:
            if repo in self.consoles:
                return None
            console = ConsoleEnv(self.python, self.workspace, repo, self.work_dir / "env" / repo)
            result, cpu = console.create(log_path=log_path, timeout=timeout, on_line=on_line, redact=self.redact,
                                         cancel=self.cancel_event)
            self._add_cpu(log_path, cpu)
            if result.ok:
                self.consoles[repo] = console
            return result

    def run(self, argv: Sequence[str], *, repo: str, log_path: Path, timeout: float | None,
            on_line: LineCallback | None = None, extra_pythonpath: Sequence[Path] = (),
            console: bool = False, cwd: Path | None = None) -> CommandResult:
        argv = [str(a) for a in argv]
        if argv and argv[0] == "python":
            argv[0] = self.python
        result, cpu = run_process(
            argv, env=self.env(repo, extra_pythonpath, console), cwd=cwd or self.workspace, log_path=log_path,
            timeout=timeout, on_line=on_line, redact=self.redact, cancel=self.cancel_event,
            header=self.shell_line(argv, repo=repo, extra_pythonpath=extra_pythonpath, console=console, cwd=cwd),
        )
        self._add_cpu(log_path, cpu)
        return result

    def _add_cpu(self, log_path: Path, cpu: float | None) -> None:
        if cpu is not None:
            key = str(log_path)
            self.cpu_seconds[key] = self.cpu_seconds.get(key, 0.0) + cpu

    def shell_line(self, argv: Sequence[str], *, repo: str, extra_pythonpath: Sequence[Path] = (),
                   console: bool = False, cwd: Path | None = None) -> str:
        argv = [str(a) for a in argv]
        if argv and argv[0] == "python":
            argv[0] = self.python
        assignments = [f"PYTHONPATH={shlex.quote(os.pathsep.join(self.pythonpath(repo, extra_pythonpath)))}"]
        assignments += [f"{k}={shlex.quote(v)}" for k, v in self.device_env().items()]
        if console:
            bin_dir = self.consoles[repo].bin if repo in self.consoles else self.work_dir / "env" / repo / "bin"
            assignments.append(f'PATH={shlex.quote(str(bin_dir))}:"$PATH"')
        where = shlex.quote(str(cwd or self.workspace))
        return self.redact(f"cd {where} && env {' '.join(assignments)} {shlex.join(argv)}")

    def cancel(self) -> None:
        self.cancel_event.set()

    def describe(self) -> dict[str, Any]:
        info = python_info(self.python)
        return {
            "runner": self.kind, "device": self.device, "python": info.get("executable", self.python),
            "python_version": info.get("full_version"),
            "console_scripts": {repo: c.method + (f" ({c.note})" if c.note else "") for repo, c in self.consoles.items()},
        }
