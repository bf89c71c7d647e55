"""Weights independent of the installed transformers (run under the pinned 5.6.2 and, in CI, the newest release:
scripts/test.sh's second pass with the overlay from scripts/bootstrap-env.sh).

transformers >= 5.9 renames vision modules in memory (``vit.layers.N.attention.q_proj``) while checkpoint files
keep the old names; 5.23 also stops saving Swin's ``relative_position_index`` buffers. Mappings are derived
against checkpoint names, TAO-computed buffers are optional, and a port's generated converter accepts what
``convert-weights`` accepts (base-model checkpoints, checkpoints without the task head).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers as T

from scaffolder.convert.engine import derive_mapping
from scaffolder.convert.hf_keys import checkpoint_view
from scaffolder.convert.parity import build_tao_model, randomize_
from scaffolder.convert.runtime import apply_mapping, load_hf_state_dict

SMALL_VIT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, image_size=32,
                 patch_size=8)
SMALL_SWIN = dict(image_size=64, patch_size=4, embed_dim=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 4],
                  window_size=2)
SMALL_DINOV2 = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14)


def test_checkpoint_view_gives_the_names_checkpoint_files_carry():
    model = T.ViTForImageClassification(T.ViTConfig(**SMALL_VIT))
    state, in_memory = checkpoint_view(model)
    assert "vit.encoder.layer.0.attention.attention.query.weight" in state
    assert "vit.layers.0.attention.q_proj.weight" not in state
    if "vit.layers.0.attention.q_proj.weight" in model.state_dict():  # a renaming transformers (>= 5.9)
        assert in_memory["vit.encoder.layer.0.attention.attention.query.weight"] == "vit.layers.0.attention.q_proj.weight"


def _saved(model, folder: Path) -> dict:
    model.save_pretrained(folder)
    return load_hf_state_dict(folder)


def _tao_vit(config):
    return build_tao_model("vit_base_patch16", config.num_labels, {
        "img_size": config.image_size, "patch_size": config.patch_size, "embed_dim": config.hidden_size,
        "depth": config.num_hidden_layers, "num_heads": config.num_attention_heads, "mlp_ratio": 2.0})


def test_save_pretrained_checkpoint_converts_completely(tmp_path: Path):
    """What this transformers' save_pretrained writes is exactly what the derived mapping reads."""
    config = T.ViTConfig(num_labels=3, **SMALL_VIT)
    hf = T.ViTForImageClassification(config).eval()
    randomize_(hf, 0)
    tao = _tao_vit(config).eval()
    mapping = derive_mapping(checkpoint_view(hf)[0], tao.state_dict(), "vit")
    assert mapping.ok, mapping.problems()
    converted = apply_mapping(_saved(hf, tmp_path / "vit"), mapping.table())
    assert set(converted) == set(tao.state_dict())
    tao.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert (hf(pixel_values=x).logits - tao(x)).abs().max().item() < 5e-3  # eps 1e-12 vs 1e-6 aside


def test_base_model_checkpoint_and_missing_head_convert(tmp_path: Path):
    """A Dinov2Model checkpoint (no `dinov2.` prefix, no classifier) through the classifier's mapping."""
    config = T.Dinov2Config(**SMALL_DINOV2)
    classifier = T.Dinov2ForImageClassification(config)
    tao = build_tao_model("timm:vit_base_patch14_dinov2", config.num_labels, {
        "img_size": 56, "patch_size": 14, "embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 4.0})
    mapping = derive_mapping(checkpoint_view(classifier)[0], tao.state_dict(), "dinov2")
    base = T.Dinov2Model(config)
    randomize_(base, 1)
    converted = apply_mapping(_saved(base, tmp_path / "base"), mapping.table())
    missing = set(tao.state_dict()) - set(converted)
    assert missing == {"head.weight", "head.bias"}  # the task head: TAO initialises it
    assert torch.equal(converted["cls_token"], base.state_dict()["embeddings.cls_token"])


def test_swin_checkpoint_without_relative_position_index_converts(tmp_path: Path):
    """transformers >= 5.23 saves no relative_position_index; TAO computes it, so the rows are optional."""
    config = T.SwinConfig(num_labels=3, **SMALL_SWIN)
    hf = T.SwinForImageClassification(config)
    tao = build_tao_model("swin_tiny_patch4_window7_224", 3, {
        "img_size": (64, 64), "patch_size": 4, "embed_dim": 24, "depths": (1, 1, 2, 1), "num_heads": (1, 2, 3, 4),
        "window_size": 2, "mlp_ratio": 4.0})
    mapping = derive_mapping(checkpoint_view(hf)[0], tao.state_dict(), "swin")
    assert mapping.ok, mapping.problems()
    saved = {k: v for k, v in _saved(hf, tmp_path / "swin").items() if "relative_position_index" not in k}
    converted = apply_mapping(saved, mapping.table())
    left = set(tao.state_dict()) - set(converted)
    assert left and all(k.endswith("relative_position_index") for k in left)
    result = tao.load_state_dict(converted, strict=False)
    assert set(result.missing_keys) == left and not result.unexpected_keys


def test_mapping_still_refuses_a_checkpoint_missing_real_weights(tmp_path: Path):
    config = T.ViTConfig(num_labels=3, **SMALL_VIT)
    hf = T.ViTForImageClassification(config)
    mapping = derive_mapping(checkpoint_view(hf)[0], _tao_vit(config).state_dict(), "vit")
    saved = {k: v for k, v in _saved(hf, tmp_path / "vit").items() if ".layernorm_before." not in k}
    with pytest.raises(KeyError, match="lacks 4 tensor"):
        apply_mapping(saved, mapping.table())


def test_no_weights_says_what_the_port_will_differ_by():
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    example = Path(__file__).resolve().parent.parent / "examples" / "google-vit-base-patch16-224"
    info = inspect_model(str(example), offline=True, include_weights_schema=False)
    plan = plan_port(info, "vit_noweights", weights=False)
    assert not plan.weight_mapping and not plan.norm_eps
    assert any("1e-12" in note and "--no-weights" in note for note in plan.mapping_notes), plan.mapping_notes
