"""``tao-scaffold verify`` on a real TAO 7.3.0 workspace with the generated ViT-B port (no mocks).

The expensive set-up is shared per module: ``vit_port`` (one ``generate`` of the offline ViT-B example into a
copy of the cached workspace). Tests that break the port do it on a private copy (``port_copy``), or on
``vit_port`` itself, restoring the file in ``finally``. The full run of a classification port is the docker
one (tests/test_verify_docker.py); segmentation and detection run the local runner end to end: each TAO-level
behaviour runs once in the suite.

The fast tests (consistency rules, runner, shim, progress, CLI errors) need no training and run in seconds
once the port exists; the ones marked ``slow`` run TAO's commands.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "google-vit-base-patch16-224"
NAME = "vit_imagenet100"


# -- helpers ---------------------------------------------------------------------------------------------
def cli(*args: str, capsys=None) -> tuple[int, str, str]:
    """``scaffolder.cli.main`` in this process (same code path as the console script)."""
    from scaffolder.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err


def model_dir(tmp: Path) -> Path:
    if (EXAMPLE / "config.json").is_file():
        return EXAMPLE
    from tests.model_factory import make_model_dir

    return make_model_dir(tmp / "vit-base", "vit", full_size=True, weights=False)


def stage(report: dict, name: str) -> dict:
    return next(s for s in report["stages"] if s["name"] == name)


def deploy_spec(ws: Path, subtask: str) -> Path:
    return ws / "tao-deploy" / "nvidia_tao_deploy" / "cv" / NAME / "specs" / f"{subtask}.yaml"


def train_spec(ws: Path) -> Path:
    return ws / "tao-pytorch" / "nvidia_tao_pytorch" / "cv" / NAME / "experiment_specs" / "experiment_spec.yaml"


def edit_yaml(path: Path, key: str, value) -> None:
    data = yaml.safe_load(path.read_text())
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def violations(ws: Path, strict: bool = False):
    from scaffolder.verify.consistency_rules import check_port
    from scaffolder.verify.port import load_port
    from scaffolder.verify.tasks import get_task

    port = load_port(ws, NAME)
    return check_port(port, get_task(port.task), strict=strict)


def errors(ws: Path, strict: bool = False) -> list[str]:
    return [str(v) for v in violations(ws, strict) if v.severity == "error"]


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vit_port(tao_workspace_template: Path, tmp_path_factory) -> Path:
    """A workspace with the ViT-B classification port generated (read it; break only what you restore)."""
    root = tmp_path_factory.mktemp("verify")
    ws = root / "ws"
    shutil.copytree(tao_workspace_template, ws, symlinks=True)
    from scaffolder.cli import main

    assert main(["-q", "generate", "--model", str(model_dir(root)), "--name", NAME, "--workspace", str(ws)]) == 0
    return ws


@pytest.fixture
def port_copy(vit_port: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(vit_port, dest, symlinks=True, ignore=shutil.ignore_patterns(".tao-scaffold-verify"))
    return dest


@pytest.mark.slow
def test_broken_import_fails_imports(vit_port, capsys, tmp_path):
    build = vit_port / "tao-pytorch" / "nvidia_tao_pytorch" / "cv" / NAME / "model" / "build.py"
    original = build.read_bytes()
    try:
        build.write_text(original.decode() + "\nfrom nvidia_tao_pytorch.cv.no_such_network import helper  # noqa\n")
        code, _, _ = cli("-q", "verify", "--workspace", vit_port, "--name", NAME, "--device", "cpu",
                         "--report", tmp_path / "report", "--stages", "imports", capsys=capsys)
    finally:
        build.write_bytes(original)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    imports = stage(report, "imports")
    assert code == 1 and imports["status"] == "failed"
    assert any(f"nvidia_tao_pytorch.cv.{NAME}.model.build" in m and "no_such_network" in m
               for m in imports["messages"]), imports["messages"]


# -- consistency rules (fast: files only) ----------------------------------------------------------------
def test_generated_port_is_consistent(vit_port):
    found = violations(vit_port, strict=True)
    assert not [v for v in found if v.severity == "error"], [str(v) for v in found]


def test_results_dir_interpolated_handoffs_warn_and_fail_when_strict(port_copy):
    """TAO rewrites results_dir to results_dir/<subtask> before ${results_dir} resolves, so hand-off paths
    written through ${results_dir} agree on paper and miss each other at run time."""
    edit_yaml(train_spec(port_copy), "export.onnx_file", "${results_dir}/export/m.onnx")
    edit_yaml(deploy_spec(port_copy, "gen_trt_engine"), "gen_trt_engine.onnx_file", "${results_dir}/export/m.onnx")
    edit_yaml(train_spec(port_copy), "gen_trt_engine.onnx_file", "${export.onnx_file}")
    runtime = [v for v in violations(port_copy) if "at run time" in v.message]
    assert runtime and all(v.severity == "warning" for v in runtime)
    assert any(v.key == "gen_trt_engine.onnx_file" and "/export/export/m.onnx" in v.message
               and "/gen_trt_engine/export/m.onnx" in v.message for v in runtime), [str(v) for v in runtime]
    assert not errors(port_copy)
    assert any("gen_trt_engine.onnx_file" in e for e in errors(port_copy, strict=True))


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda ws: edit_yaml(deploy_spec(ws, "evaluate"), "dataset.augmentation.std", [0.2, 0.2, 0.2]),
         "specs/evaluate.yaml: dataset.augmentation.std: [0.2, 0.2, 0.2] but the training spec"),
        (lambda ws: edit_yaml(deploy_spec(ws, "gen_trt_engine"), "gen_trt_engine.onnx_file", "/models/other.onnx"),
         "specs/gen_trt_engine.yaml: gen_trt_engine.onnx_file: /models/other.onnx but"),
        (lambda ws: edit_yaml(deploy_spec(ws, "inference"), "inference.trt_engine", "/models/x.engine"),
         "specs/inference.yaml: inference.trt_engine: /models/x.engine but"),
        (lambda ws: edit_yaml(train_spec(ws), "model.head.in_channels", 1024),
         "experiment_spec.yaml: model.head.in_channels: 1024 but model_params_mapping has 768"),
        (lambda ws: edit_yaml(train_spec(ws), "export.input_width", 256),
         "experiment_spec.yaml: export.input_width: 256 but dataset.img_size = 224"),
        (lambda ws: edit_yaml(deploy_spec(ws, "inference"), "dataset.img_size", 384),
         "specs/inference.yaml: dataset.img_size: 384 but the training spec has 224"),
        (lambda ws: edit_yaml(train_spec(ws), "export.checkpoint", "/results/train/model.pth"),
         "export.checkpoint: /results/train/model.pth, but VitImagenet100PlModel"),
        (lambda ws: (ws / "tao-pytorch/nvidia_tao_pytorch/cv" / NAME / "model/__init__.py").unlink(),
         f"cv/{NAME}/model: __init__.py: missing"),
        (lambda ws: _replace(ws / "tao-deploy/setup.py", f"'{NAME}=", "'renamed_network="),
         f"tao-deploy/setup.py: entry_points.console_scripts: no {NAME}=... entry"),
        (lambda ws: _replace(ws / "tao-pytorch/nvidia_tao_pytorch/cv" / NAME / "scripts/export.py",
                             'OUTPUT_NAMES = ["output"]', 'OUTPUT_NAMES = ["logits"]'),
         "scripts/export.py: OUTPUT_NAMES: ['logits'] but the plan"),
        (lambda ws: _replace(ws / "tao-deploy/nvidia_tao_deploy/cv" / NAME / "dataloader.py",
                             'INTERPOLATION = "bilinear"', 'INTERPOLATION = "bicubic"'),
         "dataloader.py: INTERPOLATION: deploy loader resizes with 'bicubic'"),
        (lambda ws: _replace(ws / "tao-deploy/nvidia_tao_deploy/config" / NAME / "default_config.py",
                             "IMAGE_MEAN = [0.5, 0.5, 0.5]", "IMAGE_MEAN = [0.4, 0.5, 0.5]"),
         "config/vit_imagenet100/default_config.py: IMAGE_MEAN: [0.4, 0.5, 0.5] but tao-core's copy"),
    ],
    ids=["std", "onnx-handoff", "engine-handoff", "head-width", "export-size", "deploy-img-size", "checkpoint-name",
         "init-py", "console-script", "onnx-names", "loader-resize", "vendored-drift"],
)
def test_consistency_violation_names_file_and_key(port_copy, edit, expected):
    assert not errors(port_copy)
    edit(port_copy)
    found = errors(port_copy)
    assert any(expected in message for message in found), found


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_spec_resolution_follows_tao_results_dir_rewriting():
    from scaffolder.verify import specs as S

    doc = {"results_dir": "/r", "export": {"onnx_file": "${results_dir}/export/m.onnx", "results_dir": None},
           "gen_trt_engine": {"onnx_file": "${export.onnx_file}"}}
    assert S.resolve(doc, "gen_trt_engine.onnx_file") == "/r/export/m.onnx"
    assert S.resolve(S.tao_runtime_view(doc, "export", S.PYTORCH_TASK_DIRS), "export.onnx_file") == "/r/export/export/m.onnx"
    assert S.resolve({"a": "${eval:1+1}"}, "a") == "${eval:1+1}"  # resolvers are left alone


# -- verify CLI behaviour (fast) -------------------------------------------------------------------------
def test_unknown_port_is_one_line_error(vit_port, capsys, tmp_path):
    code, _, err = cli("verify", "--workspace", vit_port, "--name", "no_such_port", "--report", tmp_path / "r",
                       capsys=capsys)
    assert code == 2
    assert "tao-scaffold: error: no port named 'no_such_port'" in err and NAME in err


def test_missing_workspace_and_unknown_stage(tmp_path, vit_port, capsys):
    code, _, err = cli("verify", "--workspace", tmp_path / "nope", "--name", NAME, capsys=capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = cli("verify", "--workspace", vit_port, "--name", NAME, "--stages", "static,bogus",
                       "--report", tmp_path / "r", capsys=capsys)
    assert code == 2 and "unknown stage 'bogus'" in err


def test_required_stage_skipped_fails_the_run(vit_port, capsys, tmp_path):
    """export alone, with no checkpoint from an earlier run: skipped, and a skipped required stage is exit 1."""
    code, _, err = cli("verify", "--workspace", vit_port, "--name", NAME, "--device", "cpu", "--stages", "export,consistency",
                       "--report", tmp_path / "r", capsys=capsys)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    export = stage(report, "export")
    assert export["status"] == "skipped" and "no checkpoint" in export["reason"] and export["required"]
    assert stage(report, "consistency")["status"] == "passed"
    assert code == 1 and report["exit_code"] == 1
    assert "export: SKIPPED" in err and "FAILED" in err  # plain progress (stderr is not a TTY here)


def test_report_folder_of_someone_else_is_refused(vit_port, capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = cli("verify", "--workspace", vit_port, "--name", NAME, "--stages", "consistency",
                       "--report", tmp_path / "mine", capsys=capsys)
    assert code == 2 and "not a verify report folder" in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_docker_runner_needs_report_inside_workspace(vit_port, capsys, tmp_path):
    code, _, err = cli("verify", "--workspace", vit_port, "--name", NAME, "--runner", "docker",
                       "--report", tmp_path / "outside", capsys=capsys)
    assert code == 2 and "outside the workspace" in err


def test_user_dataset_is_a_bounded_symlinked_view(tmp_path, vit_port):
    from scaffolder.verify.port import load_port
    from scaffolder.verify.tasks import get_task
    from PIL import Image

    data = tmp_path / "data"
    for split, per_class in (("train", 5), ("val", 4)):  # no test/: val is used for it
        for cls in ("cat", "dog", "fox"):
            (data / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (40 + i, 30)).save(data / split / cls / f"{i}.jpg")
    (data / "classes.txt").write_text("cat\ndog\nfox\n")
    port = load_port(vit_port, NAME)
    dataset = get_task(port.task).user_dataset(port, data, tmp_path / "view")
    assert dataset.num_classes == 3 and not dataset.synthetic
    assert dataset.counts == {"train": 4, "val": 2, "test": 6}
    linked = sorted((tmp_path / "view" / "train").rglob("*.jpg"))
    assert len(linked) == 4 and all(p.is_symlink() and p.resolve().parent.parent.parent == data for p in linked)
    assert (tmp_path / "view" / "classes.txt").read_text() == "cat\ndog\nfox\n"


def test_bad_trt_precision_and_bad_data_are_input_errors(vit_port, tmp_path, capsys):
    code, _, err = cli("verify", "--workspace", vit_port, "--name", NAME, "--trt-precision", "int8",
                       "--report", tmp_path / "r", capsys=capsys)
    assert code == 2 and "--trt-precision int8 is not supported" in err
    code, _, err = cli("verify", "--workspace", vit_port, "--name", NAME, "--data", tmp_path / "missing",
                       "--report", tmp_path / "r", capsys=capsys)
    assert code == 2 and "is not a folder" in err


def test_ctrl_c_stops_the_children_and_still_writes_the_report(vit_port, tmp_path):
    import signal

    report_dir = tmp_path / "r"
    script = Path(sys.executable).with_name("tao-scaffold")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "scaffolder.cli"]
    proc = subprocess.Popen([*argv, "verify", "--workspace", str(vit_port), "--name", NAME, "--stages", "static",
                             "--report", str(report_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = report_dir / "logs" / "static.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and "pylint" in log.read_text()):
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert time.monotonic() - sent < 15, "children were not stopped promptly"
    report = json.loads((report_dir / "report.json").read_text())
    assert report["status"] == "failed" and report["why_failed"][0] == "interrupted (Ctrl-C)"
    assert "# tao-scaffold: cancelled" in log.read_text()
    busy = subprocess.run(["pgrep", "-f", f"--rcfile={report_dir}"], capture_output=True, text=True).stdout
    assert not busy.strip(), "pylint still running after Ctrl-C"


def test_verdict_rules():
    from scaffolder.verify.model import StageResult
    from scaffolder.verify.report import verdict

    ok = StageResult("a", "passed")
    assert verdict([ok, StageResult("b", "skipped", "no TensorRT", required=False)]) == (True, [])
    passed, why = verdict([ok, StageResult("b", "skipped", "no checkpoint")])
    assert not passed and why == ["b (required) skipped: no checkpoint"]
    assert not verdict([StageResult("c", "failed", "boom")])[0]


# -- runner, shim, progress (fast) -----------------------------------------------------------------------
def test_run_process_streams_lines_and_kills_the_process_group_on_timeout(tmp_path):
    from scaffolder.verify.runner_local import child_env, run_process

    lines: list[str] = []
    pidfile = tmp_path / "child.pid"
    script = f"printf 'a\\rb\\r\\nc\\n'; (sleep 60 & echo $! > {pidfile}; wait) & sleep 60"
    started = time.monotonic()
    result, _ = run_process(["sh", "-c", script], env=child_env(), cwd=tmp_path, log_path=tmp_path / "log",
                            timeout=1.5, on_line=lines.append, kill_grace=2)
    assert time.monotonic() - started < 20
    assert result.timed_out and result.returncode is None and not result.ok
    assert lines[:3] == ["a", "b", "c"]
    grandchild = int(pidfile.read_text())
    time.sleep(0.2)
    assert not _alive(grandchild)
    log = (tmp_path / "log").read_text()
    assert log.startswith("# tao-scaffold: sh -c") and "timed out after" in log


def _alive(pid: int) -> bool:
    """Running (a killed process may linger as a zombie until its new parent reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_local_runner_redacts_hf_token(tmp_path, monkeypatch):
    from scaffolder.verify.runner_local import LocalRunner

    monkeypatch.setenv("HF_TOKEN", "hf_supersecret_value")
    runner = LocalRunner(tmp_path, tmp_path / "work", "cpu", python=sys.executable)
    seen: list[str] = []
    result = runner.run(["python", "-c", "import os; print('token', os.environ['HF_TOKEN'])"], repo="tao-pytorch",
                        log_path=tmp_path / "log", timeout=60, on_line=seen.append)
    assert result.ok
    assert seen == ["token ***"]
    assert "hf_supersecret_value" not in (tmp_path / "log").read_text()


def test_cpu_shim_patches_tao_initializers_at_import(tmp_path):
    """The shim wraps TAO's initialize_* the moment the module is imported, before a script binds them."""
    fake = tmp_path / "fake" / "nvidia_tao_pytorch" / "core"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "initialize_experiments.py").write_text(textwrap.dedent("""
        def initialize_train_experiment(cfg, key=None):
            return None, {"accelerator": "gpu", "devices": [0, 1], "strategy": "ddp"}
        def initialize_evaluation_experiment(cfg, key=None):
            return "m.pth", {"accelerator": "gpu", "devices": [0], "strategy": "auto"}
    """))
    probe = textwrap.dedent("""
        from nvidia_tao_pytorch.core.initialize_experiments import initialize_train_experiment as train
        from nvidia_tao_pytorch.core.initialize_experiments import initialize_evaluation_experiment as evaluate
        _, kw = train({})
        path, ekw = evaluate({})
        print(kw["accelerator"], int(kw["devices"]), len(kw["devices"]), isinstance(kw["devices"], int),
              kw["strategy"], path, ekw["accelerator"])
    """)
    shim = PROJECT / "scaffolder" / "verify" / "shim"
    env = dict(os.environ, PYTHONPATH=f"{shim}{os.pathsep}{tmp_path / 'fake'}", TAO_SCAFFOLD_FORCE_CPU="1")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["cpu", "1", "1", "True", "auto", "m.pth", "cpu"]
    env.pop("TAO_SCAFFOLD_FORCE_CPU")  # without the switch the shim does nothing
    plain = "from nvidia_tao_pytorch.core.initialize_experiments import initialize_train_experiment as t; print(t({}))"
    out = subprocess.run([sys.executable, "-c", plain], env=env, capture_output=True, text=True, check=True).stdout
    assert "'gpu'" in out and "[0, 1]" in out


def test_shim_msda_fallback_on_every_device(tmp_path):
    """Without TAO's CUDA .so (stripped wheel), MSDeformAttn still builds and its CUDA branch takes TAO's pure-PyTorch
    function -- with or without --device cpu (the GPU host's case); TAO's op is used once it is registered."""
    ops = tmp_path / "fake" / "nvidia_tao_pytorch" / "cv" / "deformable_detr" / "model" / "ops"
    ops.mkdir(parents=True)
    for folder in [ops, *ops.parents][:5]:
        (folder / "__init__.py").write_text("")
    (ops / "functions.py").write_text(textwrap.dedent("""
        import os, torch
        def load_ops(ops_dir, lib_name):
            torch.ops.load_library(os.path.join(ops_dir, lib_name))
        class MSDeformAttnFunction:
            @staticmethod
            def apply(*args):
                return "cuda-op"
    """))
    (ops / "modules.py").write_text(textwrap.dedent("""
        from nvidia_tao_pytorch.cv.deformable_detr.model.ops.functions import MSDeformAttnFunction, load_ops
        def multi_scale_deformable_attn_pytorch(value, shapes, locations, weights, deterministic=False):
            return ("pytorch", value, deterministic)
        class MSDeformAttn:
            def __init__(self):
                load_ops("/nonexistent", "MultiScaleDeformableAttention.so")
            def forward_cuda(self, value):
                return MSDeformAttnFunction.apply(value, "shapes", "start", "locations", "weights", 64)
    """))
    probe = textwrap.dedent("""
        from nvidia_tao_pytorch.cv.deformable_detr.model.ops.modules import MSDeformAttn
        print(MSDeformAttn().forward_cuda("v"))
    """)
    shim = PROJECT / "scaffolder" / "verify" / "shim"
    for extra in ({}, {"TAO_SCAFFOLD_FORCE_CPU": "1"}):
        env = {k: v for k, v in os.environ.items() if k != "TAO_SCAFFOLD_FORCE_CPU"}
        env.update(extra, PYTHONPATH=f"{shim}{os.pathsep}{tmp_path / 'fake'}")
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "('pytorch', 'v', False)"
    without = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=str(tmp_path / "fake")))
    assert without.returncode != 0 and "OSError" in without.stderr  # what the shim is for

    # In-process (scaffolder.convert.tao_models, the throughput bench), on TAO's real module: the dispatcher gives
    # TAO's pure-PyTorch result while the op library is absent, and TAO's own function once the op is registered.
    import torch
    from unittest import mock

    from scaffolder.verify.shim import tao_scaffold_msda

    tao_scaffold_msda.patch()
    tao_scaffold_msda.patch()  # idempotent
    from nvidia_tao_pytorch.cv.deformable_detr.model.ops import functions, modules

    assert modules.MSDeformAttnFunction is functions.MSDeformAttnFunction and functions.MSDeformAttnFunction.wrapped
    gen = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[4, 4], [2, 2]])
    value = torch.randn(1, 20, 2, 8, generator=gen)
    locations = torch.rand(1, 5, 2, 2, 3, 2, generator=gen)
    weights = torch.rand(1, 5, 2, 2, 3, generator=gen)
    starts = torch.tensor([0, 16])
    expected = modules.multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    assert torch.equal(functions.MSDeformAttnFunction.apply(value, shapes, starts, locations, weights, 64), expected)
    with mock.patch.object(functions.MSDeformAttnFunction.wrapped, "apply", return_value="cuda-op"), \
            mock.patch.object(tao_scaffold_msda, "op_registered", return_value=True):
        assert functions.MSDeformAttnFunction.apply(value, shapes, starts, locations, weights, 64) == "cuda-op"
    assert functions.load_ops("/nonexistent", "x.so") is None


def test_progress_board_draws_a_stage_list_on_a_tty():
    from scaffolder.verify.model import StageResult
    from scaffolder.verify.progress import Board

    stream = io.StringIO()
    board = Board(["static", "train"], print, tty=True, stream=stream)
    board.open()
    board.start("train")
    board.line("train", "Epoch 0: 50%")
    time.sleep(0.4)
    board.finish(StageResult("static", "passed", seconds=1.5, metrics={"files": 3, "pylint_errors": 0}))
    board.close()
    text = stream.getvalue()
    assert "train" in text and "Epoch 0: 50%" in text and "\x1b[" in text  # redrawn in place
    final = text.rsplit("\x1b[J", 1)[-1]
    assert "✓ static" in final and "3 files, 0 errors" in final
