"""ViT / DINOv2 under TAO's SegFormer decoder and RT-DETR through the generated simple feature pyramid
(scaffolder/catalog/_vit_pyramid.py, scaffolder/convert/vit_pyramid.py): plans, in-process parity on tiny
configs, ONNX export, refusals. The generated ports' hf_parity stage runs in test_segmentation.py (DINOv2) and
test_detection.py (ViT)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tests.model_factory import make_model_dir

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "scaffolder" / "verify" / "probes"))  # the probes' own helpers, as verify runs them

STRIDES = {"segmentation": (4, 8, 16, 32), "detection": (8, 16, 32)}


def _plan(model: Path, task: str):
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    return plan_port(inspect_model(str(model), offline=True, include_weights_schema=False), "vit_pyr", task=task)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit_pyramid")
    return {kind: make_model_dir(root / kind, kind, weights=False) for kind in ("vit", "dinov2")}


@pytest.mark.parametrize("task", ["segmentation", "detection"])
@pytest.mark.parametrize("kind", ["vit", "dinov2"])
def test_plan_generates_the_pyramid_and_converts_only_the_vit(tiny, kind, task):
    plan = _plan(tiny[kind], task)
    assert plan.backbone_strategy == "generated" and plan.backbone.endswith("_sfp")
    assert plan.backbone_kwargs["out_channels"] == [256, 256, 256, 256]
    assert plan.backbone_kwargs["layer_norm_eps"] == (1e-12 if kind == "vit" else 1e-6)  # HF's, not timm's 1e-6
    assert "simple feature pyramid" in plan.strategy_reason and "stride-16" in plan.strategy_reason
    assert ("resized to the stride-16 grid" in plan.strategy_reason) == (plan.backbone_kwargs["patch_size"] != 16)
    assert "starts fresh" in plan.mapping_notes[0] and "levels.*" in plan.mapping_notes[0]
    prefix = "backbone.vit." if task == "segmentation" else "vit."
    assert plan.weight_mapping and all(row[0].startswith(prefix) for row in plan.weight_mapping)
    assert not plan.norm_eps  # the wrapper builds its norms with HF's eps
    if task == "segmentation":
        assert plan.task_params["pyramid_channels"] == [256] * 4 and plan.task_params["decoder_source"] == "fresh"
        from scaffolder.errors import ScaffoldError
        from scaffolder.plan import PortPlan

        answers = plan.answers()
        answers["task_params"]["pyramid_channels"] = [64, 128, 256, 256]  # a reviewed port.yml edited by hand
        with pytest.raises(ScaffoldError, match=r"do not match .*_sfp's level widths"):
            PortPlan.from_answers(answers)
    else:
        assert plan.task_params["convert_scope"] == "backbone" and plan.task_params["detector"] == "rtdetr"


@pytest.mark.parametrize("kind", ["vit", "dinov2"])
def test_converted_vit_reproduces_hf_tokens_at_the_pyramid_input(tiny, kind):
    """HF's last_hidden_state patch tokens (after its final layernorm, NCHW) == the wrapper's stride-16 map, at the
    model's own size and at one that resamples the position embeddings (and, for patch 14 / 8, resizes the image)."""
    import torch
    import transformers
    from _common import vit_map_pair, well_conditioned

    from scaffolder.convert.hf_keys import checkpoint_view
    from scaffolder.convert.runtime import apply_mapping
    from scaffolder.convert.tao_models import build_vit_pyramid

    for task in ("segmentation", "detection"):
        plan = _plan(tiny[kind], task)
        config = transformers.AutoConfig.from_pretrained(tiny[kind])
        torch.manual_seed(0)
        hf = getattr(transformers, config.architectures[0])(config).eval()
        well_conditioned(hf, 0)
        converted = apply_mapping(checkpoint_view(hf)[0], plan.weight_mapping)
        indices = [STRIDES["segmentation"].index(s) for s in STRIDES[task]]
        wrapper = build_vit_pyramid(plan.backbone_kwargs, indices).eval()
        converted = {k.removeprefix("backbone."): v for k, v in converted.items()}
        missing, unexpected = wrapper.load_state_dict(converted, strict=False)
        assert not unexpected and missing and all(k.startswith("levels.") for k in missing)
        for size in (32, 96):
            x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
            hf_map, tao_map = vit_map_pair(hf, wrapper, x)
            assert tao_map.shape == (2, config.hidden_size, size // 16, size // 16)
            assert (hf_map - tao_map).abs().max().item() <= 1e-4 and hf_map.abs().max().item() > 0.5
            with torch.no_grad():
                levels = wrapper.forward_feature_pyramid(x)
            assert [tuple(t.shape[1:]) for t in levels] == [(256, size // s, size // s) for s in STRIDES[task]]
        assert wrapper.out_channels == [256] * len(STRIDES[task])
        with torch.no_grad():  # a wrong weight shows: the comparison is not vacuous
            wrapper.vit.blocks[-1].mlp.fc2.bias[0] += 0.1
        assert (vit_map_pair(hf, wrapper, x)[0] - vit_map_pair(hf, wrapper, x)[1]).abs().max().item() > 1e-4


def test_pyramid_exports_to_onnx_off_its_native_size():
    """Position embeddings resampled HF's way (no antialias): the graph exports and ONNX Runtime agrees."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from scaffolder.convert.tao_models import build_vit_pyramid

    kwargs = {"img_size": 28, "patch_size": 14, "embed_dim": 32, "depth": 1, "num_heads": 2, "init_values": 1e-5,
              "dynamic_img_size": True, "layer_norm_eps": 1e-6, "out_channels": [256] * 4}
    model = build_vit_pyramid(kwargs, (1, 2, 3)).eval()
    x = torch.rand(1, 3, 96, 96)
    buffer = io.BytesIO()
    torch.onnx.export(model, x, buffer, opset_version=17, dynamo=False, input_names=["inputs"])
    outputs = ort.InferenceSession(buffer.getvalue()).run(None, {"inputs": x.numpy()})
    with torch.no_grad():
        reference = [t.numpy() for t in model(x)]
    assert [o.shape for o in outputs] == [(1, 256, 12, 12), (1, 256, 6, 6), (1, 256, 3, 3)]
    assert max(float(np.abs(a - b).max()) for a, b in zip(outputs, reference)) <= 1e-4


def test_swiglu_dinov2_has_no_pyramid_route(tmp_path):
    from scaffolder.errors import UnsupportedModelError

    model = make_model_dir(tmp_path / "swiglu", "dinov2", weights=False, overrides={"use_swiglu_ffn": True})
    with pytest.raises(UnsupportedModelError, match="no segmentation backbone for dinov2.*SwiGLU DINOv2 has no pyramid route"):
        _plan(model, "segmentation")


@pytest.mark.parametrize("kind, name", [("vit", "vit_base_patch16_sfp"), ("dinov2", "vit_small_patch14_dinov2_mlp_sfp")])
def test_hub_sizes_name_the_pyramid_after_the_families_backbone(kind, name, tmp_path):
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    info = inspect_model(str(make_model_dir(tmp_path / kind, kind, weights=False, full_size=True)), offline=True,
                         include_weights_schema=False)
    plan = plan_port(info, "vit_pyr", task="detection", weights=False)
    assert plan.backbone == name and plan.task_params["eval_spatial_size"] == [640, 640]
    assert plan.backbone_kwargs["patch_size"] == (16 if kind == "vit" else 14)
