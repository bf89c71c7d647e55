"""``tao-scaffold verify --runner docker`` against a real Docker engine and images built here (no registry).

* The runner test image (python + pip, no torch; ``scripts/build-test-image.sh``): verify starts the
  container, installs the workspace's repos in it, runs its environment probe through the mount, then stops
  at the doctor-style preflight (no torch there).
* The TAO-like CPU images (``scripts/build-tao-images.sh``; session fixture ``tao_cpu_images``): one full CPU
  verify per task (``PORTS``: one parameter per task's example port) runs every CPU stage inside them; and
  verify is stopped by SIGTERM, by Ctrl-C and by a timeout in them.

Every case ends with no container of this test process left (``docker ps -a`` filtered by the runner's owner
label). The engine is started with ``scripts/dockerd.sh start`` when none answers (root only); without one
the tests are skipped (failed in CI).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

docker = pytest.importorskip("docker")

from scaffolder.verify.docker_runner import LABEL, LABEL_OWNER, LABEL_REPO  # noqa: E402
from tests.conftest import DOCKER_TEST_IMAGE as IMAGE  # noqa: E402
from tests.report_checks import assert_complete_report, stage  # noqa: E402

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
VIT = ("vit_imagenet100", EXAMPLES / "google-vit-base-patch16-224")
# One CPU verify in the TAO-like images per task: (port name, model folder). Add each task's example here.
PORTS = [
    pytest.param(*VIT, id="classification-vit"),
]


@pytest.fixture(scope="module")
def client(docker_daemon):
    return docker_daemon


@pytest.fixture(scope="module")
def make_port(tao_workspace_template: Path, tmp_path_factory):
    """``make(name, model) -> workspace`` with that port generated; one workspace per port for the module."""
    made: dict[str, Path] = {}

    def make(name: str, model: Path) -> Path:
        if name not in made:
            ws = tmp_path_factory.mktemp(f"verify-docker-{name}") / "ws"
            shutil.copytree(tao_workspace_template, ws, symlinks=True)
            from scaffolder.cli import main

            assert main(["-q", "generate", "--model", str(model), "--name", name, "--workspace", str(ws)]) == 0
            made[name] = ws
        return made[name]

    return make


def containers_of(client, pid: int) -> list:
    """Containers the verify process ``pid`` (on this host) created and left."""
    owner = f"{socket.gethostname()}:{pid}"
    return client.containers.list(all=True, filters={"label": [LABEL, f"{LABEL_OWNER}={owner}"]})


def verify_argv(ws: Path, name: str, images: dict[str, str], *extra: str) -> list[str]:
    return ["verify", "--workspace", str(ws), "--name", name, "--runner", "docker", "--device", "cpu",
            "--pytorch-image", images["tao-pytorch"], "--deploy-image", images["tao-deploy"], *extra]


# ------------------------------------------------------------------------------- runner test image (no torch)
def test_docker_runner_probes_inside_the_container_and_stops_at_preflight(docker_engine, make_port, capsys):
    from scaffolder.cli import main

    ws = make_port(*VIT)
    name = VIT[0]
    report = ws / ".tao-scaffold-verify" / "preflight"
    code = main(verify_argv(ws, name, {"tao-pytorch": IMAGE, "tao-deploy": IMAGE}, "--stages", "consistency",
                            "--report", str(report)))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "preflight failed: torch" in err and "not installed in the tao-pytorch image" in err, err
    # The container installed the workspace's repos and ran the probe copied into the mounted work dir.
    setup_log = (report / "logs" / "setup-tao-pytorch.log").read_text()
    assert "-e /workspace/tao-core -e /workspace/tao-pytorch" in setup_log
    probe_log = (report / "logs" / "preflight.log").read_text()
    assert "/workspace/.tao-scaffold-verify/preflight/work/_tools/probes/env_info.py" in probe_log
    info = json.loads((report / "work" / "probe" / "env_info.json").read_text())
    assert info["ok"] and "torch" not in info["packages"]
    assert not containers_of(docker_engine, os.getpid())


# ----------------------------------------------------------------------------- the TAO-like CPU images
@pytest.fixture(scope="module")
def docker_verify(client, tao_cpu_images, make_port):
    """``run(name, model) -> (exit code, report, report dir, seconds, stderr)``: one full docker CPU verify per
    port for the module (the tests that read or break its results share it)."""
    runs: dict[str, tuple] = {}

    def run(name: str, model: Path) -> tuple:
        if name not in runs:
            from scaffolder.cli import main

            ws = make_port(name, model)
            report_dir = ws / ".tao-scaffold-verify" / name
            err = io.StringIO()
            started = time.monotonic()
            with contextlib.redirect_stderr(err):
                code = main(["-q", *verify_argv(ws, name, tao_cpu_images)])
            report = json.loads((report_dir / "report.json").read_text())
            runs[name] = (code, report, report_dir, time.monotonic() - started, err.getvalue())
        return runs[name]

    return run


@pytest.mark.slow
@pytest.mark.parametrize(("name", "model"), PORTS)
def test_every_cpu_stage_passes_inside_the_tao_cpu_images(client, tao_cpu_images, docker_verify, name, model):
    code, report, report_dir, seconds, err = docker_verify(name, model)
    assert code == 0, err[-3000:]
    assert_complete_report(report, report_dir, name)
    assert "tensorrt" in stage(report, "gen_trt_engine")["reason"] and "tao-deploy container" in \
        stage(report, "gen_trt_engine")["reason"]

    # It ran in the images, on the workspace's own clones installed there (the images carry no TAO package).
    env = report["environment"]
    assert report["runner"] == "docker" and env["runner"] == "docker" and env["images"] == tao_cpu_images
    assert env["target_python"].startswith("3.11.") and env["packages"]["torch"] == "2.13.0+cpu"
    for repo in ("tao-pytorch", "tao-deploy"):
        setup_log = (report_dir / "logs" / f"setup-{repo}.log").read_text()
        assert f"-e /workspace/tao-core -e /workspace/{repo}" in setup_log and "Successfully installed" in setup_log
        assert setup_log.rstrip().splitlines()[-1].startswith("# tao-scaffold: exit 0"), setup_log[-2000:]
    for name_ in ("train", "export"):
        assert tao_cpu_images["tao-pytorch"] in stage(report, name_)["command"]
    assert stage(report, "train")["metrics"]["console_setup_seconds"] > 0

    export = stage(report, "export")["metrics"]
    assert export["max_abs_diff"] <= export["tolerance"] == 1e-4 and export["top1_agreement"] == 1.0
    assert export["onnx_checker"] == "ok" and export["dynamic_batch"] is True and export["input_shape"][0] == 2
    assert export["onnx_inputs"] == ["input"] and export["onnx_outputs"] == ["output"]
    preprocess = stage(report, "deploy-preprocess")["metrics"]
    assert preprocess["max_abs_diff"] <= preprocess["tolerance"] and preprocess["top1_agreement"] == 1.0
    assert preprocess["images"] == 6 and len(preprocess["image_sizes"]) == 6
    # The stock TAO loader (bicubic + centre crop) differs from training: the check is sensitive to it.
    assert preprocess["stock_loader_max_abs_diff"] > 0.1
    parity = stage(report, "hf_parity")["metrics"]
    assert max(parity["max_abs_features"], parity["max_abs_logits"]) <= parity["tolerance"]
    assert Path(stage(report, "train")["artifacts"]["checkpoint"]).name == f"{name}_model_latest.pth"
    l0 = stage(report, "l0")["metrics"]
    assert l0["failed"] == 0 and l0["tao-pytorch_tests"]["passed"] > 0 and l0["tao-deploy_tests"]["passed"] > 0
    imports = stage(report, "imports")["metrics"]
    assert imports.get("failed", 0) == 0 and imports["ok"] > 0 and imports["stubbed"] >= 1
    # The deploy image has tao-deploy's dependencies: only TensorRT/pycuda (and ngcbase, not on PyPI) are stubbed.
    assert set(imports.get("stubbed_packages", [])) <= {"tensorrt", "pycuda", "ngcbase"}, imports

    assert not containers_of(client, os.getpid()), "verify left containers behind"
    print(f"\ndocker CPU verify of {name}: {seconds:.0f}s wall; per stage: "
          + ", ".join(f"{s['name']} {s['seconds']:.0f}s" for s in report["stages"] if s["status"] != "skipped"))


@pytest.mark.slow
def test_broken_deploy_mean_fails_consistency_and_preprocess(docker_verify, tmp_path, capsys):
    """A deploy spec whose mean differs from training's fails both the file check and the tensor check (local
    runner, on the docker run's exported model)."""
    from scaffolder.cli import main

    name = VIT[0]
    code, report, full_report_dir, _, _ = docker_verify(*VIT)
    assert stage(report, "export")["status"] == "passed"
    ws = full_report_dir.parents[1]
    # A report folder of its own that starts with the full run's exported model (hard links), so
    # deploy-preprocess runs without train/export (what `--stages` reruns do after a full run).
    report_dir = tmp_path / "report"
    shutil.copytree(full_report_dir / "work" / "results" / "export", report_dir / "work" / "results" / "export",
                    copy_function=os.link)
    (report_dir / ".tao-scaffold-verify").write_text("")
    spec = ws / "tao-deploy" / "nvidia_tao_deploy" / "cv" / name / "specs" / "inference.yaml"
    original = spec.read_bytes()
    try:
        data = yaml.safe_load(original)
        data["dataset"]["augmentation"]["mean"] = [0.485, 0.456, 0.406]
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        code = main(["-q", "verify", "--workspace", str(ws), "--name", name, "--runner", "local", "--device", "cpu",
                     "--report", str(report_dir), "--stages", "consistency,deploy-preprocess"])
    finally:
        spec.write_bytes(original)
    capsys.readouterr()
    broken = json.loads((report_dir / "report.json").read_text())
    assert code == 1 and broken["exit_code"] == 1
    consistency = stage(broken, "consistency")
    assert consistency["status"] == "failed"
    assert any("specs/inference.yaml" in m and "dataset.augmentation.mean" in m and "[0.485, 0.456, 0.406]" in m
               and "[0.5, 0.5, 0.5]" in m for m in consistency["messages"]), consistency["messages"]
    preprocess = stage(broken, "deploy-preprocess")
    assert preprocess["status"] == "failed"
    assert "dataset.augmentation.mean [0.485, 0.456, 0.406]" in preprocess["reason"]
    assert "[0.5, 0.5, 0.5]" in preprocess["reason"]
    assert preprocess["metrics"]["per_spec"]["inference"]["max_abs_diff"] > 0.1
    assert preprocess["metrics"]["per_spec"]["evaluate"]["max_abs_diff"] <= 1e-4
    assert any("tensors differ" in m for m in preprocess["messages"])
    assert stage(broken, "train")["reason"] == "not selected (--stages)"


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"verify exited ({proc.returncode}) before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"no {what} within {timeout:.0f}s")


@pytest.mark.parametrize(("sig", "exit_code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                        (signal.SIGINT, 130, "interrupted")], ids=["sigterm", "ctrl-c"])
def test_signal_during_train_removes_the_containers(client, tao_cpu_images, make_port, sig, exit_code, word):
    ws = make_port(*VIT)
    name = VIT[0]
    report_dir = ws / ".tao-scaffold-verify" / f"signal-{sig.name}"
    train_log = report_dir / "logs" / "train.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scaffolder.cli", "-q",
                             *verify_argv(ws, name, tao_cpu_images, "--stages", "train", "--report", str(report_dir))],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        running = _wait_for(lambda: containers_of(client, proc.pid), 120, "verify container", proc)
        assert running[0].labels[LABEL_REPO] == "tao-pytorch"
        # Signal once TAO's train command runs in the container (the install step is behind it).
        _wait_for(lambda: train_log.is_file() and f"{name} train -e" in train_log.read_text(), 180,
                  "train command", proc)
        time.sleep(2)
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
        stop_seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == exit_code, err[-3000:]
    assert f"tao-scaffold: {word}" in err
    assert stop_seconds < 60, f"took {stop_seconds:.0f}s to stop"
    assert not containers_of(client, proc.pid), "the containers survived the signal"
    report = json.loads((report_dir / "report.json").read_text())  # the partial report is still written
    assert report["status"] != "passed" and stage(report, "train")["status"] != "passed"
    assert "# tao-scaffold: cancelled after" in train_log.read_text()


def test_command_timeout_fails_the_stage_and_removes_the_containers(client, tao_cpu_images, make_port, capsys):
    from scaffolder.cli import main

    ws = make_port(*VIT)
    name = VIT[0]
    report_dir = ws / ".tao-scaffold-verify" / "timeout"
    code = main(["-q", *verify_argv(ws, name, tao_cpu_images, "--stages", "train", "--timeout", "5",
                                    "--report", str(report_dir))])
    capsys.readouterr()
    report = json.loads((report_dir / "report.json").read_text())
    train = stage(report, "train")
    assert code == 1 and train["status"] == "failed" and "timed out" in train["reason"], train
    assert "timed out after" in (report_dir / "logs" / "train.log").read_text()
    assert not containers_of(client, os.getpid())
