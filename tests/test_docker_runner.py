"""The docker runner against a real Docker engine and a locally built image (no registry needed).

The session fixture starts ``dockerd`` (``scripts/dockerd.sh start``; root only) when no engine answers
and builds the test image (``scripts/build-test-image.sh``, cached). Without an engine the tests are
skipped -- except in CI (``CI`` set), where that is a failure.

Every container made here carries a per-run label besides the runner's own, so the "nothing left
behind" checks are not disturbed by other verify runs using the same engine.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

from scaffolder.verify.docker_runner import (  # noqa: E402
    LABEL,
    LABEL_OWNER,
    DockerRunnerError,
    DockerSession,
    preflight,
    remove_leftovers,
)

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
from tests.conftest import DOCKER_TEST_IMAGE as IMAGE  # noqa: E402
IN_CI = bool(os.environ.get("CI"))
RUN_ID = uuid.uuid4().hex[:10]
TEST_LABEL = "org.tao-scaffold.test-run"
TOKEN = "hf_tEsT" + uuid.uuid4().hex  # looks like a HF token; must never show up in logs/results


@pytest.fixture(scope="session")
def client(docker_engine):
    client = docker_engine
    remove_leftovers(client)  # containers of earlier, killed runs (only those whose owner is dead)
    yield client
    # Safety net: never leave this run's containers behind, even when a test failed half way.
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
        container.remove(force=True)


def ours(client) -> list:
    """Containers of this test run that carry the runner's label."""
    return client.containers.list(all=True, filters={"label": [LABEL, f"{TEST_LABEL}={RUN_ID}"]})


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fake three-repo TAO workspace; tao-core and tao-pytorch are tiny installable packages."""
    ws = tmp_path / "ws"
    pkgs = {
        "tao-core": ("nvidia-tao-core", "nvidia_tao_core", ""),
        "tao-pytorch": (
            "nvidia-tao-pytorch",
            "nvidia_tao_pytorch",
            "entry_points={'console_scripts': ['tao-fake-train=nvidia_tao_pytorch.cli:main']},",
        ),
        "tao-deploy": ("nvidia-tao-deploy", "nvidia_tao_deploy", ""),
    }
    for repo, (dist, pkg, extra) in pkgs.items():
        (ws / repo / pkg).mkdir(parents=True)
        (ws / repo / "setup.py").write_text(textwrap.dedent(f"""\
                from setuptools import setup, find_packages
                setup(name={dist!r}, version="0.0.1", packages=find_packages(), {extra})
                """))
        (ws / repo / pkg / "__init__.py").write_text(f"NAME = {pkg!r}\n")
    (ws / "tao-pytorch" / "nvidia_tao_pytorch" / "cli.py").write_text(
        "import nvidia_tao_core\n\ndef main():\n    print('fake train using', nvidia_tao_core.NAME)\n"
    )
    return ws


def session(client, ws: Path, **kw) -> DockerSession:
    kw.setdefault("setup", False)
    kw.setdefault("labels", {TEST_LABEL: RUN_ID})
    kw.setdefault("shm_size", "1G")
    return DockerSession(client, IMAGE, ws, "tao-pytorch", **kw)


# ----------------------------------------------------------------------------------------------- runs
def test_success_streams_lines_live_and_in_order(client, workspace, tmp_path):
    seen: list[tuple[float, str]] = []
    log = tmp_path / "logs" / "train.log"
    script = "for i in $(seq 1 50); do echo line-$i; done; echo to-stderr >&2; sleep 2; echo last"
    with session(client, workspace) as s:
        t0 = time.monotonic()
        result = s.run(
            script, log_path=log, timeout=60, on_line=lambda line: seen.append((time.monotonic(), line))
        )
    lines = [line for _, line in seen]
    assert result.ok and result.returncode == 0 and not result.timed_out
    assert lines == [f"line-{i}" for i in range(1, 51)] + ["to-stderr", "last"]
    # live: the first lines arrived while the command was still sleeping, not all at exit
    assert seen[0][0] - t0 < seen[-1][0] - t0 - 1.5
    body = [line for line in log.read_text().splitlines() if not line.startswith("# tao-scaffold:")]
    assert body == lines
    assert log.read_text().splitlines()[-1].startswith("# tao-scaffold: exit 0")
    assert result.argv == ["bash", "-c", script] and result.log_path == log
    assert not ours(client)


def test_failing_command_reports_its_exit_code(client, workspace, tmp_path):
    seen: list[str] = []
    with session(client, workspace) as s:
        result = s.run(
            ["sh", "-c", "echo boom >&2; exit 3"],
            log_path=tmp_path / "fail.log",
            timeout=60,
            on_line=seen.append,
        )
        assert s.run("true", log_path=tmp_path / "ok.log", timeout=60).ok  # still usable
    assert result.returncode == 3 and not result.ok and not result.timed_out
    assert seen == ["boom"]
    assert "# tao-scaffold: exit 3" in (tmp_path / "fail.log").read_text()
    assert not ours(client)


def test_timeout_kills_the_command_and_keeps_the_session(client, workspace, tmp_path):
    with session(client, workspace) as s:
        t0 = time.monotonic()
        result = s.run("sleep 60 & sleep 30", log_path=tmp_path / "t.log", timeout=2)
        elapsed = time.monotonic() - t0
        assert result.timed_out and result.returncode is None and not result.ok
        assert elapsed < 10, f"timeout took {elapsed:.1f}s to be reported"
        # the whole process group is gone (also the backgrounded sleep), and the session still works
        left = s.run(
            "ps -e -o comm= 2>/dev/null || cat /proc/[0-9]*/comm", log_path=tmp_path / "ps.log", timeout=30
        )
        assert left.ok
        procs = [l for l in (tmp_path / "ps.log").read_text().splitlines() if not l.startswith("#")]
        assert procs.count("sleep") == 1, procs  # only the container's own `sleep infinity`
    assert "timed out after" in (tmp_path / "t.log").read_text()
    assert not ours(client)


def test_timeout_without_coreutils_timeout_in_the_image(client, workspace, tmp_path):
    """The host-side watchdog alone (images without `timeout`) kills the process group from /proc."""
    with session(client, workspace) as s:
        s._has_timeout_binary = False  # pylint: disable=protected-access
        t0 = time.monotonic()
        result = s.run(["sh", "-c", "sleep 60 & sleep 30"], log_path=tmp_path / "t.log", timeout=2)
        assert result.timed_out and result.returncode is None
        assert time.monotonic() - t0 < 10
        assert s.run(
            "! grep -qx sleep /proc/[0-9]*/comm || test $(grep -lx sleep /proc/[0-9]*/comm | wc -l) = 1",
            log_path=tmp_path / "ps.log",
            timeout=30,
        ).ok
    assert not ours(client)


def test_workspace_is_bind_mounted_with_pythonpath(client, workspace, tmp_path):
    (workspace / "from-host.txt").write_text("host says hi\n")
    seen: list[str] = []
    with session(client, workspace) as s:
        result = s.run(
            "cat /workspace/from-host.txt; echo written-in-container > /workspace/tao-pytorch/out.txt; "
            'echo "PYTHONPATH=$PYTHONPATH"; pwd',
            log_path=tmp_path / "mount.log",
            timeout=60,
            on_line=seen.append,
        )
        sub = s.run(
            ["pwd"],
            log_path=tmp_path / "pwd.log",
            timeout=60,
            workdir="/workspace/tao-pytorch",
            on_line=seen.append,
        )
    assert result.ok and sub.ok
    assert (workspace / "tao-pytorch" / "out.txt").read_text() == "written-in-container\n"
    assert seen == [
        "host says hi",
        "PYTHONPATH=/workspace/tao-core:/workspace/tao-pytorch",
        "/workspace",
        "/workspace/tao-pytorch",
    ]


def test_secrets_are_redacted_everywhere(client, workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # passed through from the environment
    other = "s3cr3t-" + uuid.uuid4().hex
    seen: list[str] = []
    log = tmp_path / "secret.log"
    with session(client, workspace, env={"NGC_KEY": other}, secret_env=["NGC_KEY"]) as s:
        result = s.run(
            f'echo "token=$HF_TOKEN"; echo "ngc=$NGC_KEY"; echo literal {TOKEN}; '
            "python -c 'import os; print(len(os.environ[\"HF_TOKEN\"]))'",
            log_path=log,
            timeout=60,
            on_line=seen.append,
        )
        # an error text coming back from Docker itself (here: a workdir named after the secret)
        bad = s.run(["true"], log_path=log, timeout=60, workdir=f"/nonexistent/{TOKEN}", on_line=seen.append)
        s.broken = f"pretend failure mentioning {TOKEN}"  # exception messages go through the redactor too
        with pytest.raises(DockerRunnerError) as excinfo:
            s.run(["true"], log_path=log, timeout=60)
        s.broken = ""
    assert result.ok
    assert seen[:4] == ["token=***", "ngc=***", "literal ***", str(len(TOKEN))]  # it did reach the container
    assert not bad.ok
    text = log.read_text() + "\n".join(seen) + repr(result) + repr(bad)
    assert TOKEN not in text and other not in text
    assert "***" in result.argv[-1]
    assert TOKEN not in str(excinfo.value) and "***" in str(excinfo.value)
    assert not ours(client)


def test_secret_not_in_exception_messages(client, workspace):
    with pytest.raises(DockerRunnerError) as excinfo:
        with session(
            client,
            workspace,
            env={"HF_TOKEN": TOKEN},
            setup=True,
            setup_commands=[f"echo using {TOKEN}; exit 7"],
        ):
            pass
    assert TOKEN not in str(excinfo.value)
    assert excinfo.value.result is not None and excinfo.value.result.returncode == 7
    assert TOKEN not in excinfo.value.result.log_path.read_text()
    assert not ours(client)


# ------------------------------------------------------------------------------------------- cleanup
def test_cleanup_on_exception_and_keyboard_interrupt(client, workspace, tmp_path):
    with pytest.raises(RuntimeError):
        with session(client, workspace) as s:
            assert len(ours(client)) == 1 and ours(client)[0].name == s.name
            raise RuntimeError("stage blew up")
    assert not ours(client)

    def interrupt(line: str) -> None:
        if line == "3":
            raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with session(client, workspace) as s:
            s.run(
                "for i in $(seq 1 300); do echo $i; sleep 0.1; done",
                log_path=tmp_path / "ki.log",
                timeout=120,
                on_line=interrupt,
            )
    assert time.monotonic() - t0 < 20, "Ctrl-C must not wait for the command to finish"
    assert "interrupted after" in (tmp_path / "ki.log").read_text()
    assert not ours(client)


def _sigint_in(seconds: float) -> threading.Timer:
    """A real Ctrl-C: SIGINT to this process (Python raises KeyboardInterrupt in the main thread)."""
    timer = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_cleanup_on_real_ctrl_c_during_run(client, workspace, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with session(client, workspace) as s:
            timer = _sigint_in(1.5)
            s.run("sleep 60", log_path=tmp_path / "ctrl-c.log", timeout=120)
    timer.join()
    assert time.monotonic() - t0 < 30, "Ctrl-C must not wait for the command"
    assert not ours(client)


def test_cleanup_on_real_ctrl_c_during_setup(client, workspace, tmp_path):
    t0 = time.monotonic()
    timer = _sigint_in(3.0)
    with pytest.raises(KeyboardInterrupt):
        with session(
            client, workspace, setup=True, setup_commands=["sleep 60"], setup_log_path=tmp_path / "setup.log"
        ):
            pytest.fail("setup cannot have finished")
    timer.join()
    assert time.monotonic() - t0 < 30, "Ctrl-C must not wait for the install step"
    assert "interrupted after" in (tmp_path / "setup.log").read_text()
    assert not ours(client)


def test_run_after_close_raises(client, workspace, tmp_path):
    s = session(client, workspace)
    with s:
        pass
    with pytest.raises(DockerRunnerError):
        s.run("true", log_path=tmp_path / "x.log", timeout=5)


# --------------------------------------------------------------------------------------------- setup
def test_setup_installs_core_and_repo_for_real(client, workspace, tmp_path):
    setup_log = tmp_path / "logs" / "setup-tao-pytorch.log"
    seen: list[str] = []
    with session(client, workspace, setup=True, setup_log_path=setup_log, on_setup_line=seen.append) as s:
        assert s.setup_result is not None and s.setup_result.ok
        result = s.run(
            "tao-fake-train && python -c 'import nvidia_tao_pytorch as p; print(p.__file__)'",
            log_path=tmp_path / "train.log",
            timeout=120,
            on_line=seen.append,
        )
        assert result.ok
        # editable install: a change on the host is seen in the container without reinstalling
        (workspace / "tao-pytorch" / "nvidia_tao_pytorch" / "cli.py").write_text(
            "def main():\n    print('v2')\n"
        )
        assert s.run("tao-fake-train", log_path=tmp_path / "v2.log", timeout=60, on_line=seen.append).ok
    text = setup_log.read_text()
    assert "--no-deps --no-build-isolation --no-compile --no-input -e /workspace/tao-core -e /workspace/tao-pytorch" in text
    assert "Successfully installed nvidia-tao-core" in text
    assert "fake train using nvidia_tao_core" in seen
    assert "/workspace/tao-pytorch/nvidia_tao_pytorch/__init__.py" in seen
    assert seen[-1] == "v2"
    assert not ours(client)


def test_setup_failure_raises_and_cleans_up(client, workspace, tmp_path):
    (workspace / "tao-pytorch" / "setup.py").write_text("raise SystemExit('broken setup.py')\n")
    with pytest.raises(DockerRunnerError, match="install step") as excinfo:
        with session(client, workspace, setup=True, setup_log_path=tmp_path / "setup.log"):
            pytest.fail("the with-block must not run when setup fails")
    assert excinfo.value.result is not None and not excinfo.value.result.ok
    assert "broken setup.py" in (tmp_path / "setup.log").read_text()
    assert not ours(client)


def test_setup_requires_installable_repos(client, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DockerRunnerError, match="not an installable package"):
        with session(client, tmp_path / "empty", setup=True):
            pass
    assert not ours(client)


# ------------------------------------------------------------------------------- preflight, leftovers
def test_preflight(client, workspace, tmp_path, monkeypatch):
    assert (
        preflight(client, [IMAGE], gpus=False, workspace=workspace, repos=["tao-pytorch", "tao-deploy"]) == []
    )

    problems = preflight(client, [IMAGE, "tao-pytorch-base:does-not-exist"], gpus=False)
    assert len(problems) == 1 and "tao-pytorch-base:does-not-exist" in problems[0]
    assert "docker tag" in problems[0]  # says how to get it

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "tao-core").mkdir()
    problems = preflight(client, [IMAGE], gpus=False, workspace=tmp_path / "half", repos=["tao-deploy"])
    assert any("no setup.py" in p and "tao-core" in p for p in problems)
    assert any("no tao-deploy/" in p and "git clone" in p for p in problems)

    info = client.info()
    if "nvidia" not in (info.get("Runtimes") or {}):
        assert any("GPU" in p and "nvidia-ctk" in p for p in preflight(client, [IMAGE], gpus=True))

    dead = docker.DockerClient(base_url=f"unix://{tmp_path}/no-such.sock", version="1.41", timeout=5)
    problems = preflight(dead, [IMAGE], gpus=False)
    assert len(problems) == 1 and "not reachable" in problems[0] and "dockerd.sh start" in problems[0]
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")  # client=None: connect from env
    problems = preflight(None, [IMAGE], gpus=False)
    assert len(problems) == 1 and "not reachable" in problems[0]


def test_remove_leftovers_only_takes_containers_of_dead_owners(client):
    scope = f"{TEST_LABEL}.leftovers={RUN_ID}"
    base = {LABEL: "1", TEST_LABEL: RUN_ID, f"{TEST_LABEL}.leftovers": RUN_ID}
    dead = client.containers.create(
        IMAGE, ["sleep", "infinity"], labels={**base, LABEL_OWNER: f"{os.uname().nodename}:999999999"}
    )
    alive = client.containers.create(
        IMAGE, ["sleep", "infinity"], labels={**base, LABEL_OWNER: f"{os.uname().nodename}:{os.getpid()}"}
    )
    removed = remove_leftovers(client, label=scope)
    assert removed == [dead.name]
    names = [c.name for c in client.containers.list(all=True, filters={"label": scope})]
    assert names == [alive.name]
    assert remove_leftovers(client, label=scope, all_owners=True) == [alive.name]
    assert not client.containers.list(all=True, filters={"label": scope})
