"""Semantic segmentation ports: routing and refusals, full-model weights, the blueprint, TAO-level verify.

Expensive work is shared: ``ade_port`` generates the bundled SegFormer-b0 ADE20K example once (then commits and
generates again), ``ade_verify`` runs one full CPU verify of it (the task's one TAO-level verify in CI), and
``backbone_ports`` generates a SegFormer-b2 (Cityscapes widths, decoder 768) and a ConvNeXt-tiny
(``--task segmentation``) port into one workspace for their hf_parity runs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from scaffolder.hf_inspect import inspect_model
from scaffolder.planner import plan_port
from tests.model_factory import make_model_dir
from tests.report_checks import assert_complete_report
from tests.test_generate import (
    assert_unchanged,
    call_main,
    commit_all,
    copy_workspace,
    error_line,
    git,
    make_template_snapshot,
    porcelain,
    snapshot,
)

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "nvidia-segformer-b0-finetuned-ade-512-512"
NAME = "seg_ade"
PORT = f"tao-pytorch/nvidia_tao_pytorch/cv/{NAME}"
TRT_STAGES = ("gen_trt_engine", "trt_parity", "trt_inference", "trt_evaluate")
CITYSCAPES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
              "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")


def stages_of(report_dir: Path) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads((report_dir / "report.json").read_text())["stages"]}


# -- plan: routing, task params, weights ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ade_info():
    return inspect_model(str(EXAMPLE), offline=True, include_weights_schema=False)


def test_segformer_semantic_model_plans_a_full_model_port(ade_info):
    plan = plan_port(ade_info, NAME)
    assert (plan.task, plan.backbone, plan.img_size, plan.num_classes) == ("segmentation", "mit_b0", 512, 150)
    params = plan.task_params
    assert params["pyramid_channels"] == [32, 64, 160, 256] and params["decoder_embed_dim"] == 256
    assert params["decoder_source"] == "converted" and params["label_transform"] == "None"
    assert len(params["palette"]) == 150 and params["palette"][12] == {
        "label_id": 12, "rgb": [12], "seg_class": "person", "mapping_class": "person"}
    rows = {tao: (hf, [op for op, _ in ops if op != "optional"]) for tao, hf, ops in plan.weight_mapping}
    # decoder converted: linear_c.i -> linear_c{i+1}, fuse conv + its BatchNorm, classifier -> linear_pred
    assert rows["decoder.linear_c1.proj.weight"] == (["decode_head.linear_c.0.proj.weight"], ["copy"])
    assert rows["decoder.linear_fuse.0.weight"] == (["decode_head.linear_fuse.weight"], ["copy"])
    assert rows["decoder.linear_fuse.1.running_var"] == (["decode_head.batch_norm.running_var"], ["copy"])
    assert rows["decoder.linear_pred.weight"] == (["decode_head.classifier.weight"], ["copy"])
    assert rows["backbone.block1.0.attn.kv.weight"] == (["segformer.encoder.block.0.0.attention.self.key.weight",
                                                         "segformer.encoder.block.0.0.attention.self.value.weight"],
                                                        ["concat"])
    assert rows["decoder.linear_fuse.0.bias"] == ([], ["fill"])  # TAO's extra bias, zero
    assert plan.norm_eps["backbone.block1.0.norm1"] == 1e-5  # HF LayerNorm default vs TAO mit's 1e-6


def test_other_class_count_keeps_the_decoder_but_not_its_classifier(ade_info):
    plan = plan_port(ade_info, NAME, num_classes=5)
    assert plan.num_classes == 5 and len(plan.task_params["palette"]) == 5
    converted = {row[0] for row in plan.weight_mapping}
    assert "decoder.linear_pred.weight" not in converted and "decoder.linear_c4.proj.weight" in converted
    note = next(n for n in plan.mapping_notes if "head not converted" in n)
    assert "class count differs (HF 150, TAO 5)" in note


# -- generate: the tree, a second generate, update -------------------------------------------------------


@pytest.fixture(scope="module")
def ade_port(tao_workspace_template: Path, tmp_path_factory):
    """generate the b0 ADE example -> commit -> generate again: (workspace, first run, second run, status)."""
    ws = copy_workspace(tao_workspace_template, tmp_path_factory.mktemp("ade") / "ws")
    first = call_main("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(ws))
    assert first[0] == 0, first[2]
    commit_all(ws, "first generate")
    committed = snapshot(ws)
    second = call_main("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(ws))
    return ws, first, second, porcelain(ws), snapshot(ws) == committed


def test_generate_writes_the_segmentation_tree(ade_port):
    ws = ade_port[0]
    build = (ws / PORT / "model/build.py").read_text()
    assert "TAOSegFormerHead" in build and "BACKBONE_REGISTRY.get(name)" in build
    spec = yaml.safe_load((ws / PORT / "experiment_specs/experiment_spec.yaml").read_text())
    assert spec["model"]["decode_head"]["in_channels"] == [32, 64, 160, 256]
    assert spec["dataset"]["segment"]["img_size"] == spec["export"]["input_width"] == 512
    converter = (ws / PORT / "utils/hf_checkpoint_converter.py").read_text()
    assert 'TAO_MODEL = ""' in converter and "train.pretrained_model_path" in converter
    deploy = ws / "tao-deploy/nvidia_tao_deploy/cv" / NAME
    assert sorted(p.name for p in (deploy / "specs").iterdir()) == ["evaluate.yaml", "gen_trt_engine.yaml",
                                                                    "inference.yaml"]
    loader = (deploy / "dataloader.py").read_text()
    assert 'IMAGE_INTERPOLATION = "bicubic"' in loader and "def pair_by_stem" in loader
    for repo in ("tao-pytorch", "tao-deploy"):
        assert f"{NAME}=nvidia_tao_" in (ws / repo / "setup.py").read_text()


def test_second_generate_leaves_all_three_repos_clean(ade_port):
    _, _, second, status, unchanged = ade_port
    assert second[0] == 0, second[2]
    assert status == {"tao-core": "", "tao-pytorch": "", "tao-deploy": ""}, status
    assert unchanged


def test_update_keeps_a_hand_edit_in_a_segmentation_port(tao_workspace: Path, tmp_path: Path):
    template = make_template_snapshot(tmp_path / "template", dirty=False)
    assert call_main("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(tao_workspace),
                     "--template", str(template))[0] == 0
    commit_all(tao_workspace, "port")
    build = tao_workspace / PORT / "model/build.py"
    build.write_text(build.read_text().replace("def apply_norm_eps(", "# hand edit: keep me\ndef apply_norm_eps("))
    commit_all(tao_workspace, "hand edit")
    blueprint = template / "blueprints/segmentation/tao-pytorch/nvidia_tao_pytorch/cv/{{ name }}/model/build.py.jinja"
    text = blueprint.read_text()
    assert '"""Model builder for {{ name }}:' in text
    blueprint.write_text(text.replace('"""Model builder for {{ name }}:', '"""Model builder (v2) for {{ name }}:'))
    git(template, "commit", "-qam", "blueprint v2")
    rc, _, err = call_main("update", "--name", NAME, "--workspace", str(tao_workspace), "--template", str(template))
    assert rc == 0, err
    updated = build.read_text()
    assert '"""Model builder (v2) for seg_ade:' in updated and "# hand edit: keep me" in updated


@pytest.mark.parametrize("rel, key, value, expected", [
    (f"{PORT}/experiment_specs/experiment_spec.yaml", ("export", "input_width"), 448,
     "export.input_width: 448 but dataset.segment.img_size = 512"),
    (f"tao-deploy/nvidia_tao_deploy/cv/{NAME}/specs/evaluate.yaml", ("model", "decode_head", "in_channels"),
     [64, 128, 320, 512], "model.decode_head.in_channels: [64, 128, 320, 512] but mit_b0's feature maps are "
                          "[32, 64, 160, 256]"),
])
def test_consistency_rules_of_a_segmentation_port(ade_port, tmp_path, rel, key, value, expected):
    ws = copy_workspace(ade_port[0], tmp_path / "ws")
    path = ws / rel
    doc = yaml.safe_load(path.read_text())
    node = doc
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    report = tmp_path / "report"
    rc, out, err = call_main("-q", "verify", "--workspace", str(ws), "--name", NAME, "--runner", "local",
                             "--device", "cpu", "--stages", "consistency", "--report", str(report))
    stage = stages_of(report)["consistency"]
    assert rc != 0 and stage["status"] == "failed"
    assert any(expected in line for line in stage["messages"]), stage["messages"]


# -- bad input: one line, exit 2, workspace untouched ------------------------------------------------------


@pytest.fixture(scope="module")
def clean_ws(tao_workspace_template: Path, tmp_path_factory) -> Path:
    return copy_workspace(tao_workspace_template, tmp_path_factory.mktemp("clean") / "ws")


def _refused(ws: Path, *args: str) -> str:
    before = snapshot(ws)
    rc, _, err = call_main("generate", *args, "--workspace", str(ws))
    assert rc == 2, err
    assert_unchanged(ws, before)
    return error_line(err)


def test_mask2former_is_refused_naming_taos_networks(clean_ws, tmp_path):
    model = make_model_dir(tmp_path / "m2f", "mask2former", weights=False)
    line = _refused(clean_ws, "--model", str(model), "--name", "m2f")
    assert "Mask2FormerForUniversalSegmentation" in line and "mask2former / oneformer" in line
    assert "no tao-scaffold blueprint" in line and " -- " in line


@pytest.mark.parametrize("backbone", ["resnet", "swin"])
def test_upernet_with_a_backbone_not_mapped_is_refused_naming_it(clean_ws, tmp_path, backbone):
    model = make_model_dir(tmp_path / "upernet", "upernet", weights=False, overrides={"backbone_config": {
        "model_type": backbone, "out_features": ["stage1", "stage2", "stage3", "stage4"]}})
    line = _refused(clean_ws, "--model", str(model), "--name", "upernet_seg")
    assert "maps UperNet's backbone for ConvNeXt / ConvNeXt V2 backbones" in line
    assert f"backbone_config.model_type='{backbone}'" in line and "--task segmentation" in line


def test_backbone_segformer_cannot_host_is_refused(clean_ws, tmp_path):
    model = make_model_dir(tmp_path / "deit", "deit", weights=False)
    line = _refused(clean_ws, "--model", str(model), "--name", "deit_seg", "--task", "segmentation")
    assert "deit family has no segmentation port" in line and "convnext" in line and "dinov2" in line


def test_decoder_widths_that_do_not_fit_the_backbone_are_refused(clean_ws, ade_info, tmp_path):
    plan = plan_port(ade_info, "seg_bad", weights=False)
    data = plan.answers()
    data["task_params"]["pyramid_channels"] = [64, 128, 320, 512]
    path = tmp_path / "port.yml"
    path.write_text(yaml.safe_dump(data))
    line = _refused(clean_ws, "--plan", str(path))
    assert "[64, 128, 320, 512] do not match mit_b0's feature pyramid [32, 64, 160, 256]" in line


# -- verify: the b0 port end to end (the one TAO-level run), and hf_parity of b2 / ConvNeXt -----------------


@pytest.fixture(scope="module")
def ade_verify(ade_port, tmp_path_factory):
    ws = ade_port[0]
    report = tmp_path_factory.mktemp("ade-report")
    rc, out, err = call_main("-q", "verify", "--workspace", str(ws), "--name", NAME, "--runner", "local",
                             "--device", "cpu", "--report", str(report))
    return rc, report, out + err


def test_full_cpu_verify_passes_with_trt_skipped(ade_verify):
    rc, report_dir, output = ade_verify
    stages = stages_of(report_dir)
    failed = {n: s["reason"] for n, s in stages.items() if s["status"] == "failed"}
    assert rc == 0 and not failed, (failed, output[-2000:])
    assert_complete_report(json.loads((report_dir / "report.json").read_text()), report_dir, NAME)
    for name in ("static", "consistency", "imports", "l0", "train", "export", "deploy-preprocess", "hf_parity"):
        assert stages[name]["status"] == "passed", (name, stages[name]["reason"])
    for name in TRT_STAGES:
        assert stages[name]["status"] == "skipped" and "TensorRT" in stages[name]["reason"], stages[name]
    export = stages["export"]["metrics"]
    assert export["onnx_inputs"] == ["input"] and export["onnx_outputs"] == ["output"]
    assert export["max_abs_diff"] <= 1e-4 and export["dynamic_batch"]
    parity = stages["hf_parity"]["metrics"]
    assert parity["max_abs_features"] <= 1e-4 and parity["max_abs_logits"] <= 1e-4
    pre = stages["deploy-preprocess"]["metrics"]
    assert pre["max_abs_diff"] <= 1e-4 and pre["mask_disagreements"] == 0 and pre["mask_pixels"] > 0
    # what TAO's own deploy loader would feed the engine and the metric (it crashes as TAO's evaluate builds it)
    assert pre["stock_loader_mask_disagreements"] > 0 and pre["stock_loader_max_abs_diff"] > 0.1
    assert "read-only" in pre["stock_loader_mask_error"]


# backbone families under the SegFormer decoder, generated at full size: port name -> (model kind, TAO backbone)
BACKBONE_ROUTES = {"seg_convnext": ("convnext", "convnext_tiny"), "seg_swin": ("swin", "swin_tiny_patch4_window7_224")}


@pytest.fixture(scope="module")
def backbone_ports(tao_workspace_template: Path, tmp_path_factory):
    """SegFormer-b2 (Cityscapes widths, decoder_hidden_size 768), ConvNeXt-tiny, Swin-tiny and a tiny DINOv2 (the
    generated ViT feature pyramid) with --task segmentation."""
    root = tmp_path_factory.mktemp("backbones")
    ws = copy_workspace(tao_workspace_template, root / "ws")
    b2 = make_model_dir(root / "b2", "segformer_semantic", full_size=True, weights=False,
                        id2label=dict(enumerate(CITYSCAPES)))
    ports = [(b2, "seg_b2", ())]
    for name, (kind, _) in BACKBONE_ROUTES.items():
        ports.append((make_model_dir(root / kind, kind, full_size=True, weights=False), name, ("--task", "segmentation")))
    ports.append((make_model_dir(root / "dinov2", "dinov2", weights=False), "seg_dinov2", ("--task", "segmentation")))
    for model, name, extra in ports:
        rc, _, err = call_main("-q", "generate", "--model", str(model), "--name", name, "--workspace", str(ws),
                               "--allow-dirty", *extra)
        assert rc == 0, err
    return ws


def _hf_parity(ws: Path, name: str, report: Path) -> dict:
    rc, out, err = call_main("-q", "verify", "--workspace", str(ws), "--name", name, "--runner", "local",
                             "--device", "cpu", "--stages", "hf_parity", "--report", str(report))
    stage = stages_of(report)["hf_parity"]
    assert rc == 0 and stage["status"] == "passed", (stage["reason"], out + err)
    return stage["metrics"]


def test_segformer_b2_full_model_reproduces_hf(backbone_ports, tmp_path):
    answers = yaml.safe_load((backbone_ports / "tao-pytorch/nvidia_tao_pytorch/cv/seg_b2/.tao-scaffold-answers.yml")
                             .read_text())
    assert answers["backbone"] == "mit_b2" and answers["task_params"]["decoder_embed_dim"] == 768
    metrics = _hf_parity(backbone_ports, "seg_b2", tmp_path)
    assert metrics["max_abs_features"] <= 1e-4 and metrics["max_abs_logits"] <= 1e-4


@pytest.mark.parametrize("name", list(BACKBONE_ROUTES))
def test_backbone_under_the_segformer_decoder_reproduces_hf_features(backbone_ports, tmp_path, name):
    port = backbone_ports / "tao-pytorch/nvidia_tao_pytorch/cv" / name
    answers = yaml.safe_load((port / ".tao-scaffold-answers.yml").read_text())
    assert answers["backbone"] == BACKBONE_ROUTES[name][1] and answers["task_params"]["decoder_source"] == "fresh"
    assert answers["task_params"]["pyramid_channels"] == [96, 192, 384, 768]
    assert any("start from TAO's initialisation" in n and "decoder.*" in n for n in answers["mapping_notes"])
    if name == "seg_swin":  # TAO's pyramid norms 0-2 have no HF counterpart; HF's final norm is norm3
        assert any("backbone.norm0.weight" in n and "no HF counterpart" in n for n in answers["mapping_notes"])
        rows = {tao: hf for tao, hf, _ in answers["weight_mapping"]}
        assert rows["backbone.norm3.weight"] == ["swin.layernorm.weight"] and rows["backbone.norm0.weight"] == []
        build = (port / "model/build.py").read_text()  # the port computes what HF computes (shared partial)
        assert "adapt_to_hf(backbone, experiment_config.dataset.segment.img_size)" in build
        assert answers["hf_adaptations"] == ["swin_no_shift_at_window"]  # post_norm: pooled features only
    metrics = _hf_parity(backbone_ports, name, tmp_path)
    assert metrics["max_abs_features"] <= 1e-4 and "max_abs_logits" not in metrics
    assert metrics["fresh_tensors"] == 17 and "not compared" in metrics["logits"]  # the decoder starts fresh
    assert metrics["feature_scale"] > 0.1  # the features compared are not vanishingly small


# in-process backbone routes: model kind -> (model factory kwargs, TAO backbone, pyramid widths, input side)
IN_PROCESS_ROUTES = {
    "hiera": ({"full_size": True}, "hiera_tiny_224", [96, 192, 384, 768], 224),
    # UperNet (ConvNeXt V2 atto backbone): its backbone under the SegFormer decoder, the UperNet heads dropped
    "upernet": ({}, "convnextv2_atto", [40, 80, 160, 320], 128),
}


@pytest.mark.parametrize("kind", list(IN_PROCESS_ROUTES))
def test_backbone_under_the_segformer_decoder_reproduces_hf_features_in_process(tmp_path, monkeypatch, kind):
    """Hiera-tiny (--task segmentation) and a UperNet (routed by its architecture), checked in-process (no
    generate): the plan's own weight mapping converts a seeded HF model, TAO's SegFormer (backbone_v2 +
    TAOSegFormerHead, scaffolder.convert.tao_models) loads it, and its feature pyramid is compared with the HF maps
    the catalog's hf_features names, through verify's own probe helpers."""
    import torch
    import transformers

    from scaffolder.catalog import family_named
    from scaffolder.convert.hf_keys import checkpoint_view
    from scaffolder.convert.runtime import apply_mapping
    from scaffolder.convert.tao_models import build_segmentation

    monkeypatch.syspath_prepend(str(PROJECT / "scaffolder/verify/probes"))
    import hf_parity_segmentation as probe  # pylint: disable=import-error,import-outside-toplevel

    factory, backbone, widths, side = IN_PROCESS_ROUTES[kind]
    model = make_model_dir(tmp_path / kind, kind, weights=False, **factory)
    info = inspect_model(str(model), offline=True, include_weights_schema=False)
    plan = plan_port(info, f"seg_{kind}", task="segmentation" if kind == "hiera" else None)
    assert plan.task == "segmentation" and plan.task_params["decoder_source"] == "fresh"
    assert (plan.backbone, plan.task_params["pyramid_channels"]) == (backbone, widths)
    rows = {tao: hf for tao, hf, _ in plan.weight_mapping}
    if kind == "hiera":
        assert rows["backbone.head.norm.weight"] == ["hiera.pooler.layernorm.weight"]  # HF's pooler norm: converted
    else:  # the wrapped backbone converted; UperNet's heads and per-stage norms listed as not converted
        assert rows["backbone.downsample_layers.0.0.weight"] == ["backbone.embeddings.patch_embeddings.weight"]
        notes = " ".join(plan.mapping_notes)
        assert "backbone.hidden_states_norms.stage1.weight" in notes and "UperNet's decode head" in notes
        assert "auxiliary_head.convs.0.conv.weight" in notes and "TAO has no UperNet decoder" in notes

    hf_class = getattr(transformers, info.architectures[0])
    hf = hf_class(transformers.AutoConfig.from_pretrained(model)).eval()
    probe.well_conditioned(hf, 0)
    tao = build_segmentation(plan.backbone, plan.num_classes, plan.task_params).eval()
    with torch.no_grad():  # the HF tensors under their checkpoint names, as the port's converter reads them
        state = apply_mapping({k: v.detach() for k, v in checkpoint_view(hf)[0].items()}, plan.weight_mapping)
    load = tao.load_state_dict(state, strict=False)
    assert not load.unexpected_keys and all(k.startswith("decoder.") for k in load.missing_keys), load

    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    spec = family_named(plan.family).key_rules("segmentation").hf_features
    with torch.no_grad():
        hf_maps = probe.hf_pyramid(hf(pixel_values=x, output_hidden_states=True), spec)
        tao_maps = tao.backbone.forward_feature_pyramid(x)
    assert [m.shape[1:] for m in tao_maps] == [(w, side // s, side // s) for w, s in zip(widths, (4, 8, 16, 32))]
    assert [m.shape for m in hf_maps] == [m.shape for m in tao_maps]
    assert max(m.abs().max().item() for m in hf_maps) > 0.1  # not vanishingly small features
    assert max((a - b).abs().max().item() for a, b in zip(hf_maps, tao_maps)) <= 1e-4


def test_dinov2_under_the_segformer_decoder_through_the_vit_pyramid_reproduces_hf_tokens(backbone_ports, tmp_path):
    """Patch-14 DINOv2: the generated simple feature pyramid's stride-16 input (the image resized to the stride-16
    grid) == HF's last_hidden_state patch tokens; TAO's loader fills the ViT, the pyramid and decoder start fresh."""
    cv = backbone_ports / "tao-pytorch/nvidia_tao_pytorch/cv/seg_dinov2"
    answers = yaml.safe_load((cv / ".tao-scaffold-answers.yml").read_text())
    assert answers["backbone_strategy"] == "generated" and answers["backbone"].endswith("_sfp")
    assert "register_vit_pyramid" in (cv / "model/backbone.py").read_text()  # the one partial, both tasks
    assert "build_backbone if name == BACKBONE" in (cv / "model/build.py").read_text()
    metrics = _hf_parity(backbone_ports, "seg_dinov2", tmp_path)
    assert metrics["max_abs_features"] <= 1e-4 and metrics["compared"].startswith("vit_map")
    assert metrics["features_shape"] == [[2, 32, 2, 2]]  # 32 px input -> the stride-16 map
    assert metrics["loaded_tensors"] == metrics["mapped_tensors"] and metrics["fresh_tensors"] == 17 + 32
