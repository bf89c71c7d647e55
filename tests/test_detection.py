"""Detection ports on TAO's RT-DETR and Deformable DETR: routing, refusals, plan defaults, weights, generate/update,
verify (no mocks).

Expensive set-ups are shared: ``rtdetr_port`` (one ``generate`` of a reduced RT-DETR r18vd -- 30 queries, one
decoder layer, 256 px -- into a copy of the cached TAO workspace), ``rtdetr_verify`` (one full local CPU verify
of it, a few minutes on 2 cores) and ``ddetr_port`` (one ``generate`` of a single-stage box-refine Deformable DETR:
timm resnet50, 128 wide, 1 encoder / 2 decoder layers, 20 queries, 192 px). Parity of the other detectors runs only
the ``hf_parity`` stage (a full CPU verify of the D-DETR port takes ~5.5 min on 2 cores: run by hand).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scaffolder.cli import main
from tests.model_factory import make_ddetr_dir, make_model_dir, make_rtdetr_dir
from tests.report_checks import assert_complete_report

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "PekingU-rtdetr_r50vd"
NAME = "rtdetr_tiny"
DDETR_NAME = "ddetr_tiny"
REPOS = ("tao-core", "tao-pytorch", "tao-deploy")
CPU_STAGES = ["static", "consistency", "imports", "l0", "train", "export", "deploy-preprocess", "hf_parity"]
TRT_STAGES = ["gen_trt_engine", "trt_inference", "trt_evaluate", "trt_parity"]


def git(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    return subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit_all(workspace: Path, message: str) -> None:
    for repo in REPOS:
        git(workspace / repo, "add", "-A")
        git(workspace / repo, "commit", "-qm", message, "--allow-empty")


def clean(workspace: Path) -> bool:
    return all(git(workspace / repo, "status", "--porcelain") == "" for repo in REPOS)


def generate(model: Path, name: str, workspace: Path, *extra: str) -> int:
    return main(["-q", "generate", "--model", str(model), "--name", name, "--workspace", str(workspace), *extra])


def verify(workspace: Path, name: str, report: Path, *stages: str) -> dict:
    args = ["-q", "verify", "--workspace", str(workspace), "--name", name, "--runner", "local", "--device", "cpu",
            "--report", str(report)]
    main(args + (["--stages", ",".join(stages)] if stages else []))
    return json.loads((report / "report.json").read_text())


def stage(report: dict, name: str) -> dict:
    return next(s for s in report["stages"] if s["name"] == name)


def plan_of(model: Path, weights: bool = False, **kwargs):
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    return plan_port(inspect_model(str(model), offline=True, include_weights_schema=False), "det_port",
                     weights=weights, **kwargs)


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def rtdetr_port(tao_workspace_template: Path, tmp_path_factory) -> Path:
    """A workspace with the reduced RT-DETR r18vd port generated and committed (read it; break nothing)."""
    root = tmp_path_factory.mktemp("detection")
    ws = root / "ws"
    shutil.copytree(tao_workspace_template, ws, symlinks=True)
    assert generate(make_rtdetr_dir(root / "rtdetr-r18vd"), NAME, ws) == 0
    commit_all(ws, "rtdetr port")
    return ws


@pytest.fixture(scope="session")
def ddetr_port(tao_workspace_template: Path, tmp_path_factory) -> Path:
    """A workspace with the reduced Deformable DETR (box refine) port generated and committed (read it only)."""
    root = tmp_path_factory.mktemp("ddetr")
    ws = root / "ws"
    shutil.copytree(tao_workspace_template, ws, symlinks=True)
    assert generate(make_ddetr_dir(root / "ddetr-r50"), DDETR_NAME, ws) == 0
    commit_all(ws, "ddetr port")
    return ws


@pytest.fixture(scope="session")
def rtdetr_verify(rtdetr_port: Path) -> dict:
    """The one TAO-level verify of an RT-DETR port (every stage, local runner, CPU)."""
    return verify(rtdetr_port, NAME, rtdetr_port.parent / "report")


# -- plan: routing and defaults --------------------------------------------------------------------------
def test_rtdetr_example_plans_a_detection_port_with_the_models_defaults():
    plan = plan_of(EXAMPLE)
    p = plan.task_params
    assert (plan.task, plan.family, plan.backbone, plan.backbone_strategy) == ("detection", "rt_detr", "resnet_50vd",
                                                                              "generated")
    assert p["eval_spatial_size"] == [640, 640] and p["num_queries"] == 300 and p["dec_layers"] == 6
    assert p["first_category_id"] == 0 and p["convert_scope"] == "model"
    assert plan.mean == [0.0, 0.0, 0.0] and plan.std == [1.0, 1.0, 1.0]  # do_normalize: false
    assert plan.num_classes == 80 and plan.class_names[0] == "person" and plan.class_names[-1] == "toothbrush"
    assert plan.input_names == ["inputs"] and plan.output_names == ["pred_logits", "pred_boxes"]


def test_deformable_detr_plans_a_port_on_taos_deformable_detr(tmp_path):
    """Single stage D-DETR: TAO's deformable_detr with HF's geometry; id 0 ("N/A") is TAO's background."""
    plan = plan_of(make_ddetr_dir(tmp_path / "ddetr"))
    p = plan.task_params
    assert (plan.task, plan.family, plan.backbone, plan.backbone_strategy) == ("detection", "deformable_detr",
                                                                              "resnet_50", "reuse")
    assert "TAO's deformable_detr builds resnet_50" in plan.strategy_reason
    assert (p["detector"], p["first_category_id"], p["with_box_refine"]) == ("deformable_detr", 1, True)
    assert (p["num_feature_levels"], p["return_interm_indices"]) == (4, [1, 2, 3, 4])
    assert (p["hidden_dim"], p["enc_layers"], p["dec_layers"], p["dim_feedforward"]) == (128, 1, 2, 256)
    assert p["eval_spatial_size"] == [192, 192] and (p["num_queries"], p["num_select"]) == (20, 80)  # 20 x 4 < 100
    assert plan.num_classes == 4 and plan.class_names == ["N/A", "object_1", "object_2", "object_3"]
    assert plan.mean == [0.485, 0.456, 0.406] and plan.std == [0.229, 0.224, 0.225]


def test_reduced_rtdetr_v2_plans_its_geometry(tmp_path):
    plan = plan_of(make_rtdetr_dir(tmp_path / "v2", v2=True, decoder_layers=2, num_queries=20, size=320))
    assert plan.backbone == "resnet_18vd"
    assert plan.task_params["eval_spatial_size"] == [320, 320]
    assert (plan.task_params["num_queries"], plan.task_params["dec_layers"]) == (20, 2)
    assert plan.task_params["expansion"] == 0.5 and plan.task_params["feat_channels"] == [256, 256, 256]


def _refused(model: Path, workspace: Path, capsys, *extra: str) -> str:
    before = {repo: git(workspace / repo, "rev-parse", "HEAD") for repo in REPOS}
    assert generate(model, "refused_port", workspace, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tao-scaffold: error: ")
    assert clean(workspace) and before == {repo: git(workspace / repo, "rev-parse", "HEAD") for repo in REPOS}
    return err


def _config_dir(dest: Path, config) -> Path:
    config.save_pretrained(dest)
    return dest


def test_two_stage_deformable_detr_is_refused_and_the_workspace_untouched(tao_workspace, tmp_path, capsys):
    from transformers import DeformableDetrConfig

    config = DeformableDetrConfig(two_stage=True, with_box_refine=True, use_pretrained_backbone=False)
    config.architectures = ["DeformableDetrForObjectDetection"]
    err = _refused(_config_dir(tmp_path / "ddetr2", config), tao_workspace, capsys)
    assert "two_stage" in err and "no two-stage option" in err


def test_deformable_detr_geometry_taos_ddmodel_cannot_build_is_refused(tao_workspace, tmp_path, capsys):
    err = _refused(make_ddetr_dir(tmp_path / "ddetr-2lv", num_feature_levels=2), tao_workspace, capsys)
    assert "num_feature_levels=2" in err


def test_detr_is_refused_naming_the_backbone_route(tao_workspace, tmp_path, capsys):
    from transformers import DetrConfig

    config = DetrConfig(use_pretrained_backbone=False)
    config.architectures = ["DetrForObjectDetection"]
    err = _refused(_config_dir(tmp_path / "detr", config), tao_workspace, capsys)
    assert "no DETR network" in err and "--task detection" in err


def test_non_default_rtdetr_v2_decoder_is_refused(tao_workspace, tmp_path, capsys):
    model = make_rtdetr_dir(tmp_path / "v2-discrete", v2=True, decoder_layers=2, decoder_method="discrete")
    err = _refused(model, tao_workspace, capsys)
    assert "decoder_method='discrete'" in err


# -- weights ---------------------------------------------------------------------------------------------
def test_rtdetr_mapping_covers_every_tao_tensor_and_names_the_checkpoint_keys():
    """The derived table maps the HF *checkpoint* names (encoder.encoder.N, out_proj, fc1: what Hub files hold)
    onto all of TAO's RTDETRModel keys, with q/k/v packed into in_proj."""
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    plan = plan_port(inspect_model(str(EXAMPLE), offline=True, include_weights_schema=False), "rtdetr_coco")
    tao_keys = [row[0] for row in plan.weight_mapping]
    hf_keys = {key for row in plan.weight_mapping for key in row[1]}
    assert "model.encoder.encoder.0.layers.0.fc1.weight" in hf_keys
    assert not any("model.encoder.aifi" in key for key in hf_keys)
    assert sum(key.endswith("in_proj_weight") for key in tao_keys) == 7  # 1 encoder + 6 decoder self-attentions
    assert "model.backbone.layer1.0.downsample.1.weight" in tao_keys and len(tao_keys) == len(set(tao_keys)) == 791


def test_deformable_detr_without_box_refine_passes_its_fp64_gate(tmp_path):
    """HF Deformable DETR (no box refine) -> TAO deformable_detr through the catalog rules and a save_pretrained
    checkpoint (tied heads: one name each), into the model TAO trains (4-channel input): the fp64 gate."""
    import torch
    from transformers import AutoConfig, DeformableDetrForObjectDetection

    from scaffolder.catalog import family_named
    from scaffolder.catalog.deformable_detr import plan_params
    from scaffolder.convert.engine import derive_mapping
    from scaffolder.convert.hf_keys import checkpoint_view
    from scaffolder.convert.runtime import apply_mapping, load_hf_state_dict
    from scaffolder.convert.tao_models import build_detector

    sys.path.insert(0, str(PROJECT / "scaffolder" / "verify" / "probes"))  # probes import their helpers flat
    from _common import well_conditioned  # pylint: disable=import-error

    config = AutoConfig.from_pretrained(make_ddetr_dir(tmp_path / "hf", with_box_refine=False))
    torch.manual_seed(0)
    hf = DeformableDetrForObjectDetection(config).eval()
    well_conditioned(hf, 0)
    tao = build_detector("resnet_50", 4, plan_params(config.to_dict(), {})).eval()
    mapping = derive_mapping(checkpoint_view(hf)[0], tao.state_dict(), family_named("deformable_detr"), "detection")
    assert mapping.ok, mapping.problems()
    hf.save_pretrained(tmp_path / "saved")
    tao.load_state_dict(apply_mapping(load_hf_state_dict(tmp_path / "saved"), mapping.table()), strict=True)
    x = torch.rand(1, 3, 160, 192, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hf.double(), tao.double()
    with torch.no_grad():
        ref = hf(pixel_values=x, pixel_mask=torch.ones(1, 160, 192, dtype=torch.long))
        got = tao(torch.cat([x, torch.zeros_like(x[:, :1])], dim=1))  # image + padding mask (none)
    assert (ref.logits - got["pred_logits"]).abs().max().item() <= 1e-4
    assert (ref.pred_boxes - got["pred_boxes"]).abs().max().item() <= 1e-4


def test_export_parity_topk_gate_matches_detections_not_raw_values():
    """The ORT-vs-PyTorch gate of box-refine detectors: same label, IoU >= 0.99, |score| <= 1e-3 per top-k item."""
    import numpy as np

    sys.path.insert(0, str(PROJECT / "scaffolder" / "verify" / "probes"))
    from export_parity import topk_agreement  # pylint: disable=import-error

    rng = np.random.default_rng(0)
    logits, boxes = rng.normal(size=(2, 30, 4)) * 3, rng.uniform(0.3, 0.6, size=(2, 30, 4))
    close = topk_agreement(logits, boxes, logits + 2e-4, boxes + 1e-4, 10)
    assert close["topk_matched"] == close["topk_total"] == 20
    moved = boxes.copy()
    moved[:, :, 0] += 0.05
    far = topk_agreement(logits, boxes, logits, moved, 10)
    assert far["topk_matched"] == 0


# -- generate / update -----------------------------------------------------------------------------------
@pytest.mark.parametrize("port, name", [("rtdetr_port", NAME), ("ddetr_port", DDETR_NAME)])
def test_second_generate_leaves_all_three_repos_clean(port, name, request, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(request.getfixturevalue(port), ws, symlinks=True)
    from scaffolder.workspace import Workspace

    model = Workspace(ws).model_folders()[name]  # the port records only the folder's name; generate remembered it
    assert generate(Path(model), name, ws, "--allow-dirty") == 0
    assert clean(ws)


def test_deformable_detr_port_writes_taos_conventions(ddetr_port):
    """Classmap without background, plain converter checkpoint, the processor's mean/std in every spec."""
    import yaml

    cv = ddetr_port / "tao-pytorch/nvidia_tao_pytorch/cv" / DDETR_NAME
    deploy = ddetr_port / "tao-deploy/nvidia_tao_deploy/cv" / DDETR_NAME
    assert (cv / "experiment_specs/classmap.txt").read_text() == "object_1\nobject_2\nobject_3\n"
    assert not (cv / "model/backbone.py").exists()  # TAO's deformable_detr builds resnet_50 itself
    assert 'TAO_MODEL = ""' in (cv / "utils/hf_checkpoint_converter.py").read_text()
    assert 'BACKBONE_PREFIX = "model.backbone.0.body."' in (cv / "utils/hf_checkpoint_converter.py").read_text()
    assert "FIRST_CATEGORY_ID = 1" in (deploy / "scripts/inference.py").read_text()
    for spec in [cv / "experiment_specs/experiment_spec.yaml", *sorted((deploy / "specs").glob("*.yaml"))]:
        aug = yaml.safe_load(spec.read_text())["dataset"]["augmentation"]
        assert aug["input_std"] == [0.229, 0.224, 0.225], spec  # not TAO deploy's 0.224 on every channel
    train = yaml.safe_load((cv / "experiment_specs/experiment_spec.yaml").read_text())
    assert train["model"]["with_box_refine"] is True and train["dataset"]["num_classes"] == 4
    assert [train["evaluate"]["input_height"], train["export"]["input_height"]] == [192, 192]


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A git clone of this project with the working tree's blueprints committed (update renders by commit)."""
    clone = tmp_path / "template"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    (clone / "copier.yml").write_bytes((PROJECT / "copier.yml").read_bytes())
    subprocess.run(["cp", "-a", f"{PROJECT}/blueprints/.", f"{clone}/blueprints/"], check=True)
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "blueprints as in the working tree", "--allow-empty")
    return clone


def test_update_keeps_a_hand_edit_in_a_detection_port(tao_workspace, template, tmp_path):
    model = make_rtdetr_dir(tmp_path / "rtdetr-r18vd")
    assert generate(model, NAME, tao_workspace, "--template", str(template)) == 0
    commit_all(tao_workspace, "port")
    build = tao_workspace / "tao-pytorch/nvidia_tao_pytorch/cv" / NAME / "model/build.py"
    build.write_text(build.read_text().replace("def build_model(", "# hand edit: keep me\ndef build_model(", 1))
    commit_all(tao_workspace, "hand edit")
    blueprint = template / "blueprints/detection/tao-pytorch/nvidia_tao_pytorch/cv/{{ name }}/model/build.py.jinja"
    blueprint.write_text(blueprint.read_text().replace('"""Model builder for {{ name }}:',
                                                       '"""Model builder (v2) for {{ name }}:'))
    git(template, "commit", "-qam", "blueprint: build.py")
    assert main(["-q", "update", "--name", NAME, "--workspace", str(tao_workspace), "--template", str(template)]) == 0
    text = build.read_text()
    assert "Model builder (v2) for rtdetr_tiny" in text  # the blueprint change arrived
    assert "# hand edit: keep me" in text  # the user's edit survived


# -- verify ----------------------------------------------------------------------------------------------
def test_deformable_detr_consistency_rules_catch_tao_deploys_std_and_another_engine_size(ddetr_port, tmp_path):
    """The D-DETR port is consistent as generated; TAO deploy's std 0.224 or a deploy spec evaluating at another
    size than the ONNX input is an error naming the file and key."""
    import yaml

    from scaffolder.verify.consistency_rules import check_port
    from scaffolder.verify.port import load_port
    from scaffolder.verify.tasks import get_task

    def errors(ws):
        port = load_port(ws, DDETR_NAME)
        return [str(v) for v in check_port(port, get_task(port.task).for_port(port)) if v.severity == "error"]

    assert errors(ddetr_port) == []
    ws = tmp_path / "ws"
    shutil.copytree(ddetr_port, ws, symlinks=True)
    spec = ws / "tao-deploy/nvidia_tao_deploy/cv" / DDETR_NAME / "specs/evaluate.yaml"
    data = yaml.safe_load(spec.read_text())
    data["dataset"]["augmentation"]["input_std"] = [0.224, 0.224, 0.224]
    data["evaluate"]["input_height"] = 224
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    found = errors(ws)
    assert any("evaluate.yaml: dataset.augmentation.input_std" in e for e in found), found
    assert any("evaluate.yaml: evaluate.input_height/input_width" in e for e in found), found


@pytest.mark.slow
def test_rtdetr_port_passes_every_cpu_stage_with_trt_skipped(rtdetr_port, rtdetr_verify):
    report = rtdetr_verify
    assert_complete_report(report, rtdetr_port.parent / "report", NAME)
    for name in CPU_STAGES:
        assert stage(report, name)["status"] == "passed", (name, stage(report, name).get("reason"))
    for name in TRT_STAGES:
        assert stage(report, name)["status"] == "skipped" and stage(report, name)["reason"]
    parity = stage(report, "hf_parity")["metrics"]
    assert parity["max_abs_logits"] <= 1e-4 and parity["max_abs_boxes"] <= 1e-4
    assert parity["tao_keys_loaded"].split("/")[0] == parity["tao_keys_loaded"].split("/")[1]
    assert stage(report, "export")["metrics"]["max_abs_diff"] <= 1e-4
    assert stage(report, "deploy-preprocess")["metrics"]["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_rtdetr_v2_port_passes_hf_parity(tao_workspace, tmp_path):
    assert generate(make_rtdetr_dir(tmp_path / "v2", v2=True, decoder_layers=2), "rtdetr_v2_tiny", tao_workspace) == 0
    parity = stage(verify(tao_workspace, "rtdetr_v2_tiny", tmp_path / "report", "hf_parity"), "hf_parity")
    assert parity["status"] == "passed", parity.get("reason")
    assert parity["metrics"]["max_abs_logits"] <= 1e-4 and parity["metrics"]["max_abs_boxes"] <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("kind, backbone, compared", [
    ("resnet", "resnet_50", "forward_feature_pyramid"),
    # no RT-DETR Swin: the port's backbone.py registers a pyramid over backbone_v2's; norm1/norm2 start fresh
    ("swin", "swin_tiny_patch4_window7_224", "body.norm1<, body.norm2<, body.norm3>"),
])
def test_classification_backbone_under_rtdetr_passes_backbone_parity(kind, backbone, compared, tao_workspace,
                                                                      tmp_path):
    model = make_model_dir(tmp_path / kind, kind, full_size=True, weights=False)
    name = f"{kind}_rtdetr"
    assert generate(model, name, tao_workspace, "--task", "detection") == 0
    port = tao_workspace / f"tao-pytorch/nvidia_tao_pytorch/cv/{name}"
    answers = (port / ".tao-scaffold-answers.yml").read_text()
    assert "convert_scope: backbone" in answers and f"backbone: {backbone}" in answers
    assert "RTDETR_BACKBONE_REGISTRY" in answers  # strategy_reason: the registry it comes from
    assert "export_notes: []" in answers  # measured: RT-DETR's Swin port exports on torch 2.13 (classification's not)
    notes = (port / "utils/hf_checkpoint_converter.py").read_text()
    assert "RT-DETR's encoder, decoder and heads start from TAO's initialisation" in notes
    parity = stage(verify(tao_workspace, name, tmp_path / "report", "hf_parity"), "hf_parity")
    assert parity["status"] == "passed", parity.get("reason")
    assert parity["metrics"]["max_abs_features"] <= 1e-4 and parity["metrics"]["scope"] == "backbone"
    assert parity["metrics"]["compared"].endswith(compared), parity["metrics"]["compared"]


@pytest.mark.parametrize("kind, overrides, backbone, fresh", [
    # TAO's convnextv2_* have backbone_v2's keys: every tensor converted, the pyramid is the stage outputs
    ("convnextv2", {"hidden_sizes": [40, 80, 160, 320], "depths": [2, 2, 6, 2]}, "convnextv2_atto", []),
    # TAO's convnext_* project the levels with 3x3 convs HF lacks: fresh, and the parity compares their inputs
    ("convnext", {}, "convnext_tiny", ["conv_1024", "conv_2048", "conv_512"]),
])
def test_convnext_backbones_under_rtdetr_reproduce_hf_stage_outputs(kind, overrides, backbone, fresh, tmp_path):
    """In process: the planned route (RT-DETR's own registry entry), the plan's mapping applied to HF weights,
    loaded into the registry's backbone, compared the way the port's hf_parity compares (hf_parity_detection)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageClassification

    from scaffolder.catalog import family_named
    from scaffolder.convert.runtime import apply_mapping, load_hf_state_dict
    from scaffolder.convert.tao_models import build_detector

    sys.path.insert(0, str(PROJECT / "scaffolder" / "verify" / "probes"))  # probes import their helpers flat
    from _common import well_conditioned  # pylint: disable=import-error
    from hf_parity_detection import pyramid_levels  # pylint: disable=import-error

    model = make_model_dir(tmp_path / kind, kind, full_size=True, weights=False, overrides=overrides)
    plan = plan_of(model, task="detection", weights=True)
    assert (plan.backbone, plan.backbone_strategy, plan.task_params["convert_scope"]) == (backbone, "reuse", "backbone")
    assert "RTDETR_BACKBONE_REGISTRY registers" in plan.strategy_reason
    assert any("encoder, decoder and heads start from TAO's initialisation" in n for n in plan.mapping_notes)
    torch.manual_seed(0)
    hf = AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(model)).eval()
    well_conditioned(hf, 0)
    hf.save_pretrained(tmp_path / "saved")
    tao = build_detector(plan.backbone, plan.num_classes, plan.task_params).eval()
    converted = apply_mapping(load_hf_state_dict(tmp_path / "saved"), plan.weight_mapping)
    missing, unexpected = tao.load_state_dict(converted, strict=False)
    assert not unexpected and sorted({k.split(".")[0] for k in missing}) == fresh, (missing, unexpected)
    mode = family_named(kind).key_rules("detection").hf_features
    x = torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(1))
    hf_levels, tao_levels, _ = pyramid_levels(hf, tao, x, mode)
    assert [tuple(t.shape[1:]) for t in tao_levels] == [tuple(t.shape[1:]) for t in hf_levels]
    assert [t.shape[-1] for t in tao_levels] == [20, 10, 5]  # strides 8/16/32
    assert max((a - b).abs().max().item() for a, b in zip(hf_levels, tao_levels)) <= 1e-4


def test_backbone_sizes_under_rtdetr_follow_taos_registry(tao_workspace, tmp_path, capsys):
    """A size no catalog variant lists is ported when RT-DETR's registry has it (convnextv2_small); a size it lacks
    is refused in one line, be it a catalog variant (resnet_152) or not (ConvNeXt v1 atto)."""
    from scaffolder.errors import UnsupportedModelError

    small = make_model_dir(tmp_path / "v2-small", "convnextv2", full_size=True, weights=False,
                           overrides={"depths": [3, 3, 27, 3]})
    plan = plan_of(small, task="detection")
    assert (plan.backbone, plan.backbone_strategy, plan.backbone_kwargs) == ("convnextv2_small", "reuse", {})
    r152 = make_model_dir(tmp_path / "r152", "resnet", full_size=True, weights=False,
                          overrides={"depths": [3, 8, 36, 3]})
    with pytest.raises(UnsupportedModelError, match="RTDETR_BACKBONE_REGISTRY has no entry resnet_152"):
        plan_of(r152, task="detection")
    atto = make_model_dir(tmp_path / "v1-atto", "convnext", full_size=True, weights=False,
                          overrides={"hidden_sizes": [40, 80, 160, 320], "depths": [2, 2, 6, 2]})
    err = _refused(atto, tao_workspace, capsys, "--task", "detection")
    assert "RTDETR_BACKBONE_REGISTRY has no entry for this geometry (convnext_atto)" in err


def test_vit_backbone_under_rtdetr_through_the_vit_pyramid_passes_backbone_parity(tao_workspace, tmp_path):
    """A plain ViT (tiny, patch 8) under RT-DETR: the port's model/backbone.py registers the generated simple feature
    pyramid; TAO's pretrained_backbone_path loader fills its ViT, whose final-norm tokens at the pyramid's stride-16
    input equal HF's last_hidden_state (the image resized to the stride-16 grid, position embeddings resampled)."""
    model = make_model_dir(tmp_path / "vit", "vit", weights=False)
    assert generate(model, "vit_rtdetr", tao_workspace, "--task", "detection") == 0
    cv = tao_workspace / "tao-pytorch/nvidia_tao_pytorch/cv/vit_rtdetr"
    answers = (cv / ".tao-scaffold-answers.yml").read_text()
    assert "convert_scope: backbone" in answers and "backbone_strategy: generated" in answers
    assert "register_vit_pyramid(RTDETR_BACKBONE_REGISTRY, BACKBONE, BACKBONE_KWARGS)" in (cv / "model/backbone.py").read_text()
    parity = stage(verify(tao_workspace, "vit_rtdetr", tmp_path / "report", "hf_parity"), "hf_parity")
    assert parity["status"] == "passed", parity.get("reason")
    metrics = parity["metrics"]
    assert metrics["max_abs_features"] <= 1e-4 and metrics["scope"] == "backbone"
    assert metrics["compared"].startswith("vit_map") and metrics["parity_input"] == [2, 3, 384, 384]


def test_deformable_detr_port_passes_hf_parity_through_its_fp64_gate(ddetr_port, tmp_path):
    """The generated converter's checkpoint, loaded the way TAO's deformable_detr loads it, reproduces HF (fp64)."""
    parity = stage(verify(ddetr_port, DDETR_NAME, tmp_path / "report", "hf_parity"), "hf_parity")
    assert parity["status"] == "passed", parity.get("reason")
    metrics = parity["metrics"]
    assert metrics["fp64_gate"] is True and metrics["tao_keys_sorted_match"] is True
    assert metrics["fp64_max_abs_logits"] <= 1e-4 and metrics["fp64_max_abs_boxes"] <= 1e-4
    assert metrics["tao_keys_loaded"].split("/")[0] == metrics["tao_keys_loaded"].split("/")[1]
