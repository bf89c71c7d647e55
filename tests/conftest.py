"""Shared fixtures: a real TAO 7.3.0 workspace materialised from the cached PyPI wheels.

``tao_workspace_template`` (session) builds one workspace per machine with ``init_from_pypi`` under
``$TAO_SCAFFOLD_TEST_CACHE`` (default ``~/.cache/tao-scaffold``) as ``test-workspace-7.3.0``, and
rebuilds it only when it is missing, broken, dirty, or was made by a different version of the code
that builds it. Treat it as read-only. ``tao_workspace`` (function) is a private copy of it in
``tmp_path``: use that one in any test that writes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

TAO_TEST_VERSION = "7.3.0"


def _test_cache() -> Path:
    override = os.environ.get("TAO_SCAFFOLD_TEST_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "tao-scaffold"


def _builder_fingerprint() -> str:
    """Hash of the code that builds the workspace: a change to it rebuilds the cached template."""
    from scaffolder import tao_wheels, workspace_init

    digest = hashlib.sha256(TAO_TEST_VERSION.encode())
    for module in (tao_wheels, workspace_init):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _usable(path: Path) -> bool:
    from scaffolder.errors import ScaffoldError
    from scaffolder.workspace import REPO_NAMES, Workspace

    try:
        ws = Workspace.open(path)
        return not any(ws.dirty_paths(name) for name in REPO_NAMES)
    except ScaffoldError:
        return False


@pytest.fixture(scope="session")
def tao_workspace_template() -> Path:
    """A TAO 7.3.0 workspace (tao-core, tao-pytorch, tao-deploy; one commit each), shared and read-only."""
    from scaffolder.workspace_init import init_from_pypi

    cache = _test_cache()
    cache.mkdir(parents=True, exist_ok=True)
    template = cache / f"test-workspace-{TAO_TEST_VERSION}"
    stamp = cache / f"test-workspace-{TAO_TEST_VERSION}.stamp"
    fingerprint = _builder_fingerprint()
    # Several test sessions (and engineers) share the cache: build under an exclusive lock.
    with open(cache / f"test-workspace-{TAO_TEST_VERSION}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = stamp.is_file() and stamp.read_text().strip() == fingerprint
        if not (fresh and _usable(template)):
            if template.exists() or template.is_symlink():
                stale = cache / f".{template.name}.stale-{os.getpid()}"
                os.rename(template, stale)
                shutil.rmtree(stale, ignore_errors=True)
            stamp.unlink(missing_ok=True)
            init_from_pypi(template, TAO_TEST_VERSION)
            stamp.write_text(fingerprint + "\n")
    return template


@pytest.fixture
def tao_workspace(tao_workspace_template: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the TAO 7.3.0 workspace template (its root folder)."""
    dest = tmp_path / "tao-workspace"
    shutil.copytree(tao_workspace_template, dest, symlinks=True)
    return dest


@pytest.fixture
def partial_tao_workspace(tao_workspace_template: Path, tmp_path: Path):
    """Factory for cheap workspace variants: ``make(copy=(...), missing=(...))`` -> root Path.

    Repositories named in ``copy`` are private copies (write to those only), those in ``missing`` are
    absent, and the rest are symlinks to the shared template (read-only!). Each call makes a new root.
    """
    from scaffolder.workspace import REPO_NAMES

    count = 0

    def make(copy: tuple[str, ...] = (), missing: tuple[str, ...] = ()) -> Path:
        nonlocal count
        count += 1
        root = tmp_path / f"partial-workspace-{count}"
        root.mkdir()
        for name in REPO_NAMES:
            if name in copy:
                shutil.copytree(tao_workspace_template / name, root / name, symlinks=True)
            elif name not in missing:
                (root / name).symlink_to(tao_workspace_template / name, target_is_directory=True)
        return root

    return make


# -- a real Docker engine and the locally built images (shared by the docker tests) ----------------------
DOCKER_TEST_IMAGE = os.environ.get("TAO_SCAFFOLD_TEST_IMAGE", "tao-scaffold/runner-test:bookworm")
_ROOT = Path(__file__).resolve().parents[1]


def _docker_unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the docker tests must run here, not be skipped)", pytrace=False)
    pytest.skip(reason)


def _docker_ping():
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client, ""
    except Exception as exc:  # pylint: disable=broad-exception-caught
        return None, str(exc)


@pytest.fixture(scope="session")
def docker_daemon():
    """A docker SDK client of a running engine (started with scripts/dockerd.sh when none answers, root only)."""
    client, why = _docker_ping()
    if client is None:
        if os.geteuid() != 0:
            _docker_unavailable(f"no Docker engine reachable ({why}) and not root, so scripts/dockerd.sh cannot start one")
        proc = subprocess.run([str(_ROOT / "scripts" / "dockerd.sh"), "start"], capture_output=True, text=True,
                              timeout=900, check=False)
        client, why = _docker_ping()
        if client is None:
            _docker_unavailable(f"no Docker engine reachable: scripts/dockerd.sh start exited {proc.returncode}: "
                                f"{(proc.stderr or proc.stdout)[-2000:]} / {why}")
    return client


@pytest.fixture(scope="session")
def docker_engine(docker_daemon):
    """The engine client, with DOCKER_TEST_IMAGE (built by scripts/build-test-image.sh, cached)."""
    proc = subprocess.run([str(_ROOT / "scripts" / "build-test-image.sh"), DOCKER_TEST_IMAGE], capture_output=True,
                          text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-test-image.sh {DOCKER_TEST_IMAGE} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return docker_daemon


@pytest.fixture(scope="session")
def tao_cpu_images(docker_daemon) -> dict[str, str]:
    """``{"tao-pytorch": tag, "tao-deploy": tag}``: the TAO-like CPU images of scripts/build-tao-images.sh (built
    once per machine and cached by the hash of their inputs: minutes cold, a second warm)."""
    started = time.monotonic()
    proc = subprocess.run([str(_ROOT / "scripts" / "build-tao-images.sh")], capture_output=True, text=True,
                          timeout=3600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-tao-images.sh failed:\n{proc.stderr[-3000:]}", pytrace=False)
    images = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    assert set(images) == {"tao-pytorch", "tao-deploy"}, proc.stdout
    print(f"\nTAO CPU images ready in {time.monotonic() - started:.0f}s: {images}")
    return images
