"""``tao-scaffold doctor``: check that this machine (and optionally a workspace) can run a port end to end.

``run_checks(workspace)`` probes, without changing anything: the Python version, git, the docker
client and daemon (docker SDK ``ping`` with a short timeout), the TAO base images the verification
steps run in (``tao-pytorch-base:latest``, ``tao-deploy-base:latest``), a GPU (``nvidia-smi``, else
``torch.cuda``), TensorRT, and, when a workspace folder is given, its three repositories, config layout,
each repository's version from git (a mix of TAO releases fails), TAO repositories nested as submodules
(tao-deploy's ``tao-core``) and which copy of each TAO package a PYTHONPATH-based run imports, and
uncommitted changes. Each probe returns a ``Check(name, ok, detail, fix)``; a probe that fails in an
unexpected way becomes a failed check, so the doctor never crashes. ``required=False`` marks checks
whose failure only limits what can be verified here (no GPU, no TensorRT, no workspace given).
``format_checks`` renders the list as an aligned ✓/✗ table with the fix under each failure.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scaffolder.errors import ScaffoldError
from scaffolder.layout import PACKAGES
from scaffolder.workspace import INIT_HINT, REPO_NAMES, Workspace, git

TAO_IMAGES = ("tao-pytorch-base:latest", "tao-deploy-base:latest")
MIN_PYTHON = (3, 10)
DOCKER_TIMEOUT_S = 3
DOCKER_FIX = "apt-get install docker.io, then start the daemon (service docker start, or dockerd &)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # False: a failure is a limitation of this machine, not an error


def run_checks(workspace: Path | str | None = None, *, machine: bool = True) -> list[Check]:
    """Run every check; never raises (a crashing probe is reported as a failed check).

    ``machine=False`` runs only the workspace checks (fast: no docker, GPU or torch probes).
    """
    checks: list[Check] = []
    for probe in (_python, _git, _docker, _gpu, _tensorrt) if machine else ():
        checks += _safely(probe)
    checks += _safely(lambda: _workspace_checks(workspace), name="workspace")
    return checks


def format_checks(checks: list[Check]) -> str:
    """Aligned table: ``✓ name  detail``; failures get ``✗`` and an indented ``fix:`` line."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        mark = "✓" if check.ok else "✗"
        note = "" if check.ok or check.required else " (optional)"
        lines.append(f"{mark} {check.name.ljust(width)}  {check.detail}{note}".rstrip())
        if not check.ok and check.fix:
            lines.append(f"  {' ' * width}  fix: {check.fix}")
    return "\n".join(lines)


# --- probes ------------------------------------------------------------------------------------------


def _safely(probe: Callable[[], Check | list[Check]], name: str | None = None) -> list[Check]:
    try:
        result = probe()
    except Exception as exc:  # pylint: disable=broad-except
        label = name or getattr(probe, "__name__", "check").strip("_")
        return [
            Check(
                label,
                False,
                f"check crashed: {type(exc).__name__}: {exc}",
                "report this as a tao-scaffold bug",
            )
        ]
    return result if isinstance(result, list) else [result]


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check(
        "python",
        ok,
        f"{version} ({sys.executable})",
        (
            ""
            if ok
            else f"use Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (scripts/bootstrap-env.sh uses 3.11)"
        ),
    )


def _git() -> Check:
    path = shutil.which("git")
    if not path:
        return Check("git", False, "not found on PATH", "apt-get install git")
    out = _run([path, "--version"])
    return Check(
        "git", out is not None, out or f"{path} --version failed", "reinstall git (apt-get install git)"
    )


def _docker() -> list[Check]:
    """Client, daemon and image checks in one probe: they share the client and its timeout."""
    cli = shutil.which("docker")
    try:
        import docker  # pylint: disable=import-outside-toplevel
    except ImportError:
        sdk = None
    else:
        sdk = getattr(docker, "__version__", "?")
    parts = [f"SDK {sdk}" if sdk else "no docker SDK", f"CLI {cli}" if cli else "no docker CLI"]
    checks = [
        Check(
            "docker client",
            sdk is not None,
            ", ".join(parts),
            "pip install docker (the SDK tao-scaffold uses)",
        )
    ]
    if sdk is None:
        checks.append(Check("docker daemon", False, "not checked: docker SDK missing", "pip install docker"))
        checks += [
            Check(f"image {i}", False, "not checked: docker SDK missing", "pip install docker")
            for i in TAO_IMAGES
        ]
        return checks
    client, error = None, ""
    try:
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
        client.ping()
        version = client.version().get("Version", "?")
    except Exception as exc:  # pylint: disable=broad-except
        error = _first_line(str(exc)) or type(exc).__name__
    if error:
        checks.append(Check("docker daemon", False, f"not reachable: {error}", DOCKER_FIX))
        checks += [
            Check(f"image {i}", False, "not checked: docker daemon not reachable", DOCKER_FIX)
            for i in TAO_IMAGES
        ]
        return checks
    checks.append(Check("docker daemon", True, f"reachable (server {version})"))
    try:
        for image in TAO_IMAGES:
            checks.append(_image(client, image))
    finally:
        client.close()
    return checks


def _image(client, image: str) -> Check:
    import docker  # pylint: disable=import-outside-toplevel

    repo = "tao-pytorch" if "pytorch" in image else "tao-deploy"
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return Check(
            f"image {image}",
            False,
            "not present",
            f"build the base image from a {repo} clone (bash docker/build.sh --build --x86) and "
            f"docker tag it {image}",
        )
    except Exception as exc:  # pylint: disable=broad-except
        return Check(f"image {image}", False, f"lookup failed: {_first_line(str(exc))}", DOCKER_FIX)
    size = (found.attrs.get("Size") or 0) / 1e9
    return Check(f"image {image}", True, f"{found.short_id.removeprefix('sha256:')} ({size:.1f} GB)")


def _gpu() -> Check:
    fix = (
        "none needed for generate/verify on CPU; TensorRT engines need an NVIDIA GPU with the driver and "
        "nvidia-container-toolkit"
    )
    smi = shutil.which("nvidia-smi")
    if smi:
        out = _run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"], timeout=10)
        if out:
            gpus = [line.strip() for line in out.splitlines() if line.strip()]
            return Check("gpu", True, f"{len(gpus)} via nvidia-smi: {'; '.join(gpus)}", required=False)
    if importlib.util.find_spec("torch") is not None:
        import torch  # pylint: disable=import-outside-toplevel

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return Check("gpu", True, f"{len(names)} via torch.cuda: {'; '.join(names)}", required=False)
        how = "nvidia-smi failed" if smi else "no nvidia-smi"
        return Check(
            "gpu", False, f"none visible ({how}; torch {torch.__version__}: cuda unavailable)", fix, False
        )
    return Check("gpu", False, "none visible (no nvidia-smi, torch not installed)", fix, required=False)


def _tensorrt() -> Check:
    fix = (
        "run gen_trt_engine/TensorRT checks in the tao-deploy container (tao-deploy-base:latest); "
        "TensorRT cannot be pip-installed here"
    )
    if importlib.util.find_spec("tensorrt") is None:
        return Check("tensorrt", False, "not importable (module tensorrt not installed)", fix, required=False)
    try:
        import tensorrt  # pylint: disable=import-outside-toplevel,import-error
    except Exception as exc:  # pylint: disable=broad-except
        return Check("tensorrt", False, f"import failed: {_first_line(str(exc))}", fix, required=False)
    return Check("tensorrt", True, f"{getattr(tensorrt, '__version__', '?')}", required=False)


def _workspace_checks(root: Path | str | None) -> list[Check]:
    if root is None:
        return [
            Check(
                "workspace",
                False,
                "not given: repository checks skipped",
                f"pass --workspace DIR, or create one with `{INIT_HINT}`",
                required=False,
            )
        ]
    try:
        ws = Workspace.open(root)
    except ScaffoldError as exc:
        return [Check("workspace", False, exc.message, exc.hint or "")]
    checks = [Check("workspace", True, f"{ws.root}: {', '.join(REPO_NAMES)} are git repositories")]
    checks.append(_interrupted_writes(ws.root))
    layout = ws.config_layout
    kind = (
        "7.x: configs vendored in tao-core, tao-pytorch, tao-deploy"
        if layout == "vendored"
        else "6.x: configs in tao-core"
    )
    version = ws.tao_version
    checks.append(Check("workspace layout", True, f"{layout} ({kind}); TAO {version or 'version unknown'} "
                        "(what a port records: tao-pytorch's, else tao-deploy's)"))
    checks.append(_versions(ws))
    checks.append(_nested_repos(ws))
    checks.append(_imported_copies(ws))
    dirty = {}
    for name in REPO_NAMES:
        try:
            paths = ws.dirty_paths(name)
        except ScaffoldError as exc:
            checks.append(Check(f"workspace {name}", False, exc.message, exc.hint or ""))
            continue
        if paths:
            dirty[name] = paths
    if dirty:
        detail = "; ".join(
            f"{n}: {len(p)} changed ({', '.join(p[:3])}{', ...' if len(p) > 3 else ''})"
            for n, p in dirty.items()
        )
        checks.append(Check("workspace clean", False, detail, "commit or stash, or pass --allow-dirty"))
    else:
        checks.append(Check("workspace clean", True, "no uncommitted changes"))
    try:
        ws.ensure_writable()
        checks.append(Check("workspace writable", True, "all three repositories"))
    except ScaffoldError as exc:
        checks.append(Check("workspace writable", False, exc.message, exc.hint or ""))
    return checks


def _versions(ws: Workspace) -> Check:
    """Each repo's version from git (or the wheel marker); a workspace mixing TAO releases is flagged."""
    facts = {name: ws.repo_version(name) for name in REPO_NAMES}
    detail = "; ".join(f"{name} {version or '?'} ({where})" for name, (version, where) in facts.items())
    releases = {".".join(v.split(".")[:2]) for v, _ in facts.values() if v}
    if len(releases) <= 1:
        return Check("workspace versions", True, detail)
    return Check("workspace versions", False, f"mixes TAO {', '.join(sorted(releases))}: {detail}",
                 "check out one TAO release in all three repositories (e.g. git -C DIR/tao-core checkout "
                 "release/X.Y.Z), or make a matching workspace with `tao-scaffold workspace init DIR --from-pypi 7.3.0`")


def _nested_repos(ws: Workspace) -> Check:
    """TAO repositories nested as git submodules (tao-deploy's tao-core): NVIDIA's run scripts put the nested copy
    on PYTHONPATH (tao-deploy scripts/envsetup.sh: /workspace/tao-deploy/tao-core), verify the sibling."""
    found = []
    for name in REPO_NAMES:
        for path in ws.submodules(name):
            if Path(path).name in REPO_NAMES:
                found.append((name, path))
    if not found:
        return Check("workspace submodules", True, "no TAO repository is nested in another")
    notes = []
    for repo, path in found:
        nested = ws.repo(repo) / path
        package = PACKAGES[Path(path).name]
        state = (f"checked out at {git(nested, 'rev-parse', '--short', 'HEAD', check=False).stdout.strip()}"
                 if (nested / package).is_dir() else "not initialised")
        sibling = ws.repo(Path(path).name)
        notes.append(f"{repo}/{path} ({state}): a run with PYTHONPATH={nested} (NVIDIA's run scripts) imports "
                     f"{package} from {_origin(package, [nested]) or 'the installed package, if any'}, not from "
                     f"{sibling} where tao-scaffold writes (and which verify imports: PYTHONPATH={sibling}:{ws.repo(repo)})")
    impact = ("the port's commands import their vendored configs and are unaffected; its "
              f"{PACKAGES['tao-core']}/config copy is seen only from the sibling" if ws.config_layout == "vendored"
              else f"the port's commands import {PACKAGES['tao-core']}.config.NAME and fail with the nested copy")
    return Check("workspace submodules", False, "; ".join(notes) + f"; {impact}",
                 "run the port with PYTHONPATH pointing at the sibling tao-core (as tao-scaffold verify does), or "
                 "copy the port's tao-core files into the nested checkout", required=False)


def _imported_copies(ws: Workspace) -> Check:
    """Which copy of each TAO package a run with the caller's PYTHONPATH imports; flagged when that path brings
    in another copy than the workspace's (e.g. tao-deploy's nested tao-core). verify always sets its own."""
    import os  # pylint: disable=import-outside-toplevel

    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    shown, foreign = [], []
    for repo, package in PACKAGES.items():
        mine = ws.repo(repo) / package
        from_path = _origin(package, current, path_only=True) if current else None
        origin = from_path or _origin(package, None)
        if origin is None:
            where = "not importable"
        elif Path(origin) == mine:
            where = f"this workspace's {repo}"
        else:
            where = origin if from_path else f"the installed package ({origin})"
        shown.append(f"{package} from {where}")
        if from_path is not None and Path(from_path) != mine:
            foreign.append(package)
    source = f"PYTHONPATH={os.pathsep.join(current)}" if current else "no PYTHONPATH"
    detail = (f"with {source}: {'; '.join(shown)} (tao-scaffold verify sets PYTHONPATH={ws.repo('tao-core')}:"
              f"{ws.root}/<repo> itself)")
    if not foreign:
        return Check("workspace imports", True, detail)
    return Check("workspace imports", False, detail,
                 f"for TAO's own commands on this workspace: export PYTHONPATH={ws.repo('tao-core')}:"
                 f"{ws.repo('tao-pytorch')}:{ws.repo('tao-deploy')}", required=False)


def _origin(package: str, paths: list | None, *, path_only: bool = False) -> str | None:
    """The folder ``import package`` loads from with ``paths`` first on the search path, then sys.path (not
    with ``path_only``)."""
    import importlib.machinery  # pylint: disable=import-outside-toplevel

    search = [str(p) for p in paths or []] + ([] if path_only else [p for p in sys.path if p])
    try:
        spec = importlib.machinery.PathFinder.find_spec(package, search)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return locations[0] if locations else spec.origin


def _interrupted_writes(root: Path) -> Check:
    """A generate/update killed mid-write (SIGKILL, power loss) leaves its journal; doctor reports, never replays."""
    from scaffolder.staging import interrupted_writes

    journaled, stale = interrupted_writes(root)
    if journaled:
        return Check("workspace writes", False,
                     f"{len(journaled)} interrupted write(s) ({', '.join(journaled)}): a port may be half-written",
                     "run any tao-scaffold generate/update on this workspace: it rolls them back first")
    if stale:
        return Check("workspace writes", True, f"no interrupted write; {len(stale)} leftover staging folder(s) "
                     "that the next generate/update removes", required=False)
    return Check("workspace writes", True, "no interrupted write")


def _run(cmd: list[str], timeout: float = 5) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
