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
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
from tests.conftest import DOCKER_TEST_IMAGE as IMAGE  # noqa: E402
EXAMPLE = ROOT / "examples" / "google-vit-base-patch16-224"
NAME = "vit_imagenet100"


@pytest.fixture(scope="module")
def client(docker_engine):
    return docker_engine


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
