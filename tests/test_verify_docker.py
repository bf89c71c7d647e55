"""``tao-scaffold verify --runner docker`` against a real Docker engine (no registry needed).

TAO's real images (tao-pytorch-base / tao-deploy-base) are not available here, so this runs verify with the
locally built runner test image (python + pip, no torch; ``scripts/build-test-image.sh``): the docker
runner must start the container, install the workspace's tao-core and tao-pytorch in it, run verify's
environment probe inside it through the workspace mount, and then stop with the doctor-style preflight
message (no torch in the image), removing its containers. The engine is started with
``scripts/dockerd.sh start`` when none answers (root only); without one the test is skipped (failed in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("TAO_SCAFFOLD_TEST_IMAGE", "tao-scaffold/runner-test:bookworm")
EXAMPLE = ROOT / "examples" / "google-vit-base-patch16-224"
NAME = "vit_imagenet100"


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the docker tests must run here)", pytrace=False)
    pytest.skip(reason)


def _ping():
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client, ""
    except Exception as exc:  # pylint: disable=broad-exception-caught
        return None, str(exc)


@pytest.fixture(scope="module")
def client():
    client, why = _ping()
    if client is None:
        if os.geteuid() != 0:
            _unavailable(f"no Docker engine reachable ({why}) and not root, so scripts/dockerd.sh cannot start one")
        proc = subprocess.run([str(ROOT / "scripts" / "dockerd.sh"), "start"], capture_output=True, text=True,
                              timeout=900, check=False)
        client, why = _ping()
        if client is None:
            _unavailable(f"no Docker engine: scripts/dockerd.sh start exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout)[-1500:]} / {why}")
    proc = subprocess.run([str(ROOT / "scripts" / "build-test-image.sh"), IMAGE], capture_output=True, text=True,
                          timeout=1800, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-test-image.sh {IMAGE} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return client


@pytest.fixture(scope="module")
def port_ws(tao_workspace_template: Path, tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("verify-docker") / "ws"
    shutil.copytree(tao_workspace_template, ws, symlinks=True)
    from scaffolder.cli import main

    assert main(["-q", "generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(ws)]) == 0
    return ws


def test_docker_runner_probes_inside_the_container_and_stops_at_preflight(client, port_ws, capsys):
    from scaffolder.cli import main
    from scaffolder.verify.docker_runner import LABEL_OWNER

    code = main(["verify", "--workspace", str(port_ws), "--name", NAME, "--runner", "docker", "--device", "cpu",
                 "--pytorch-image", IMAGE, "--deploy-image", IMAGE, "--stages", "consistency"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "preflight failed: torch" in err and "not installed in the tao-pytorch image" in err, err
    report = port_ws / ".tao-scaffold-verify" / NAME
    # The container installed the workspace's repos and ran the probe copied into the mounted work dir.
    setup_log = (report / "logs" / "setup-tao-pytorch.log").read_text()
    assert "pip install -e /workspace/tao-pytorch" in setup_log
    probe_log = (report / "logs" / "preflight.log").read_text()
    assert f"/workspace/.tao-scaffold-verify/{NAME}/work/_tools/probes/env_info.py" in probe_log
    info = json.loads((report / "work" / "probe" / "env_info.json").read_text())
    assert info["ok"] and "torch" not in info["packages"]
    owner = f"{socket.gethostname()}:{os.getpid()}"
    assert not client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"})
