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
    assert "('blocks.0.attn.qkv.weight'," in source and "('concat', 0)" in source  # q/k/v fused
    assert "import scaffolder" not in source and "from scaffolder" not in source  # runs without tao-scaffold
    assert 'MAPPED_BACKBONE = "vit_base_patch16"' in source
    assert '"blocks.0.norm1": 1e-12' in source  # HF's LayerNorm eps recorded for the TAO modules


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
