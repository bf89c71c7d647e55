"""Weights of a generated port: convert-weights and the hf_parity verify stage, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from scaffolder.cli import main
from tests.model_factory import make_model_dir

NAME = "vit_weights"


@pytest.fixture(scope="module")
def vit_port(tmp_path_factory, tao_workspace_template):
    """A ViT-B port generated from a local model folder with real (random) safetensors weights."""
    import shutil

    root = tmp_path_factory.mktemp("port")
    workspace = root / "ws"
    shutil.copytree(tao_workspace_template, workspace, symlinks=True)
    model = make_model_dir(root / "vit", "vit", full_size=True, weights=True, num_labels=3)
    assert main(["-q", "generate", "--model", str(model), "--name", NAME, "--workspace", str(workspace)]) == 0
    return workspace, model


def test_generated_converter_embeds_the_derived_mapping(vit_port):
    workspace, _ = vit_port
    source = (workspace / f"tao-pytorch/nvidia_tao_pytorch/cv/{NAME}/utils/hf_checkpoint_converter.py").read_text()
    assert '("blocks.0.attn.qkv.weight",' in source and '("concat", 0)' in source  # q/k/v fused
    assert "import scaffolder" not in source and "from scaffolder" not in source  # runs without tao-scaffold
    assert 'MAPPED_BACKBONE = "vit_base_patch16"' in source
    assert '"blocks.0.norm1": 1.0e-12' in source  # HF's LayerNorm eps recorded for the TAO modules


def test_hf_parity_stage_passes_at_1e4(vit_port, tmp_path):
    workspace, _ = vit_port
    report = tmp_path / "report"
    code = main(["-q", "verify", "--workspace", str(workspace), "--name", NAME, "--runner", "local",
                 "--device", "cpu", "--stages", "hf_parity", "--report", str(report)])
    stages = {s["name"]: s for s in json.loads((report / "report.json").read_text())["stages"]}
    assert code == 0, stages["hf_parity"]
    metrics = stages["hf_parity"]["metrics"]
    assert stages["hf_parity"]["status"] == "passed"
    assert metrics["max_abs_features"] <= 1e-4 and metrics["max_abs_logits"] <= 1e-4


def test_convert_weights_writes_a_checkpoint_tao_loads(vit_port, tmp_path, capsys):
    workspace, model = vit_port
    out = tmp_path / "ckpt.pth"
    assert main(["-q", "convert-weights", "--name", NAME, "--workspace", str(workspace),
                 "--hf-weights", str(model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "152 TAO tensors" in printed  # 150 backbone + converted head (3 = 3 classes) and "24 concat" in printed
    state = torch.load(out, map_location="cpu", weights_only=False)["state_dict"]
    assert state["blocks.0.attn.qkv.weight"].shape == (2304, 768)


def test_convert_weights_lists_missing_keys(vit_port, tmp_path, capsys):
    workspace, model = vit_port
    broken = tmp_path / "broken"
    broken.mkdir()
    tensors = load_file(str(model / "model.safetensors"))
    del tensors["vit.encoder.layer.3.attention.attention.key.weight"]
    save_file(tensors, str(broken / "model.safetensors"))
    (broken / "config.json").write_text((model / "config.json").read_text())
    code = main(["convert-weights", "--name", NAME, "--workspace", str(workspace),
                 "--hf-weights", str(broken), "--out", str(tmp_path / "x.pth")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "x.pth").exists()
    assert "blocks.3.attn.qkv.weight" in err or "layer.3.attention.attention.key.weight" in err


def _dinov2_base(dest: Path) -> Path:
    """facebook/dinov2-base geometry (plain MLP, 768, patch 14, 518; preprocessor crops to 224)."""
    from transformers import Dinov2Config

    Dinov2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, patch_size=14, image_size=518,
                 architectures=["Dinov2Model"]).save_pretrained(dest)
    (dest / "preprocessor_config.json").write_text(json.dumps({
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        "size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224}}))
    return dest


@pytest.mark.parametrize("kind", ["dinov2-base", "deit"])
def test_new_backbone_ports_reproduce_hf(kind, tao_workspace, tmp_path):
    """TAO has no backbone for these: generate writes one, and its converted weights reproduce HF."""
    if kind == "dinov2-base":
        model, extra = _dinov2_base(tmp_path / "dinov2"), ["--task", "classification", "--num-classes", "10"]
    else:
        model, extra = make_model_dir(tmp_path / "deit", "deit", full_size=True, weights=False), []
    name = kind.replace("-", "_") + "_port"
    assert main(["-q", "generate", "--model", str(model), "--name", name, "--workspace", str(tao_workspace),
                 *extra]) == 0
    report = tmp_path / "report"
    code = main(["-q", "verify", "--workspace", str(tao_workspace), "--name", name, "--runner", "local",
                 "--device", "cpu", "--stages", "hf_parity", "--report", str(report)])
    stage = {s["name"]: s for s in json.loads((report / "report.json").read_text())["stages"]}["hf_parity"]
    assert code == 0 and stage["status"] == "passed", stage
    assert stage["metrics"]["max_abs_features"] <= 1e-4


@pytest.fixture(scope="module")
def reuse_workspace(tmp_path_factory, tao_workspace_template):
    import shutil

    workspace = tmp_path_factory.mktemp("reuse") / "ws"
    shutil.copytree(tao_workspace_template, workspace, symlinks=True)
    return workspace


@pytest.mark.parametrize("kind", ["swin", "convnext", "convnextv2", "resnet", "hiera", "segformer"])
def test_reused_tao_backbone_ports_reproduce_hf(kind, reuse_workspace, tmp_path):
    """Full-size geometry of each family TAO already has: generated port + converter == HF at 1e-4.

    Swin needs the catalog's hf_adaptations (final norm, no shift at window-sized maps) and MiT/ConvNeXt
    HF's norm eps; without them these fail."""
    model = make_model_dir(tmp_path / kind, kind, full_size=True, weights=False)
    name = f"{kind}_port"
    assert main(["-q", "generate", "--model", str(model), "--name", name, "--workspace", str(reuse_workspace),
                 "--allow-dirty"]) == 0
    report = tmp_path / "report"
    code = main(["-q", "verify", "--workspace", str(reuse_workspace), "--name", name, "--runner", "local",
                 "--device", "cpu", "--stages", "hf_parity", "--report", str(report)])
    stage = {s["name"]: s for s in json.loads((report / "report.json").read_text())["stages"]}["hf_parity"]
    assert code == 0 and stage["status"] == "passed", stage
    assert stage["metrics"]["max_abs_features"] <= 1e-4 and stage["metrics"]["max_abs_logits"] <= 1e-4
