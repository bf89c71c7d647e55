"""HF -> TAO weight conversion: derived mappings, numerical parity, coverage errors, runtime, checkpoint layout.

Parity cases build the HF model from a transformers config with random (perturbed) weights -- no download --
convert with the derived mapping, load the TAO backbone (real TAO 7.3.0 ``BACKBONE_REGISTRY`` classes, or timm
for backbones TAO lacks) with ``strict=True`` and compare classifier inputs and logits in fp32 (gate 1e-4).

``r.passed``: TAO as TAO builds it matches HF. ``r.mapping_exact``: the converted weights match once the norm
eps (which weights cannot carry) is aligned; where only the former fails, the test pins the eps finding.
Small configs run by default; ``@pytest.mark.slow`` cases use the real hub geometry (one per family).
"""

from __future__ import annotations

import ast
import time
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("nvidia_tao_pytorch.cv.backbone_v2")

from scaffolder import catalog  # noqa: E402
import scaffolder.catalog.deit  # noqa: E402,F401  (catalog.deit below)
from scaffolder.convert import (  # noqa: E402
    WeightConversionError,
    apply_mapping,
    build_tao_model,
    check_parity,
    convert_checkpoint,
    derive_mapping,
    save_tao_checkpoint,
)
from scaffolder.convert import runtime as runtime_module  # noqa: E402
from scaffolder.convert.hf_keys import checkpoint_view  # noqa: E402
from scaffolder.errors import ScaffoldError  # noqa: E402

T = transformers
warnings.filterwarnings("ignore", category=FutureWarning)

TIMINGS: dict[str, float] = {}


def _run(case_id: str, backbone: str, config, **kwargs):
    started = time.perf_counter()
    result = check_parity(backbone, config, seed=0, **kwargs)
    TIMINGS[case_id] = time.perf_counter() - started
    print(f"\n[{case_id}] {TIMINGS[case_id]:.1f}s {result.describe()}")
    return result


def _assert_parity(result, *, eps_finding: bool = False):
    """Mapping exact; the model as TAO builds it passes too unless (only) a reported eps mismatch explains it."""
    assert result.mapping.ok, result.mapping.problems()
    assert result.mapping_exact, result.describe()
    has_eps = any("norm eps differs" in f for f in result.findings)
    assert has_eps == eps_finding, result.describe()
    if not eps_finding:
        assert result.passed, result.describe()


# ---------------------------------------------------------------------------------------------- small configs

SMALL_VIT = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    image_size=32,
    patch_size=8,
)


def test_vit_small():
    r = _run("vit-small", "vit_base_patch16", T.ViTConfig(**SMALL_VIT))
    _assert_parity(r, eps_finding=True)  # HF ViT LayerNorm eps 1e-12, TAO/timm 1e-6
    assert r.mapping.op_counts() == {"concat": 4, "copy": 28}


def test_vit_small_matching_eps_passes_as_is():
    r = _run("vit-small-eps1e-6", "vit_base_patch16", T.ViTConfig(layer_norm_eps=1e-6, **SMALL_VIT))
    _assert_parity(r)
    assert r.max_abs_features <= 1e-4 and r.max_abs_logits <= 1e-4


SMALL_SWIN = dict(
    image_size=256, patch_size=4, embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2], window_size=4
)


def test_swin_small_with_post_norm():
    # Every stage map (64..8) is larger than the window, so HF and TAO both shift windows everywhere.
    r = _run(
        "swin-small+post_norm",
        "swin_tiny_patch4_window7_224",
        T.SwinConfig(**SMALL_SWIN),
        tao_overrides={"post_norm": True},
    )
    _assert_parity(r)
    assert [k for k, _ in r.mapping.filled] == [f"norm{i}.{t}" for i in range(3) for t in ("weight", "bias")]


def test_swin_small_registry_default_drops_final_norm():
    # TAO's swin_* factories build post_norm=False: HF's final LayerNorm (mapped to norm3) never runs.
    r = _run("swin-small-default", "swin_tiny_patch4_window7_224", T.SwinConfig(**SMALL_SWIN))
    assert r.mapping.ok and not r.passed
    assert any(
        "computation dropped" in f and "swin.layernorm -> norm3" in f for f in r.findings
    ), r.describe()


def test_swin_small_last_stage_equal_to_window_diverges():
    # 128 px: last stage is 4x4 == window. HF (like the original classification Swin) disables the shift
    # there; TAO's detection-style Swin still shifts (with its mask), so blocks 3.1 differ.
    config = T.SwinConfig(**{**SMALL_SWIN, "image_size": 128})
    r = _run("swin-small-128", "swin_tiny_patch4_window7_224", config, tao_overrides={"post_norm": True})
    assert r.mapping.ok and not r.passed
    assert any("first divergence" in f and "layers.3.blocks.1" in f for f in r.findings), r.describe()


@pytest.mark.parametrize("model_type", ["convnext", "convnextv2"])
def test_convnext_small(model_type):
    config = T.AutoConfig.for_model(
        model_type, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 2, 1], image_size=64
    )
    backbone = "convnext_tiny" if model_type == "convnext" else "convnextv2_tiny"
    r = _run(f"{model_type}-small", backbone, config)
    _assert_parity(r, eps_finding=True)  # HF final LayerNorm eps = config.layer_norm_eps (1e-12); TAO 1e-6
    if model_type == "convnextv2":
        assert "stages.0.0.grn.gamma" in r.mapping.tao_keys()


@pytest.mark.parametrize(
    "backbone,layer_type,hidden_sizes",
    [("resnet_50", "bottleneck", [256, 512, 1024, 2048]), ("resnet_18", "basic", [64, 128, 256, 512])],
)
def test_resnet_small(backbone, layer_type, hidden_sizes):
    config = T.ResNetConfig(
        depths=[1, 1, 1, 1], layer_type=layer_type, hidden_sizes=hidden_sizes, image_size=64
    )
    config.image_size = 64
    r = _run(f"resnet-small-{layer_type}", backbone, config)
    _assert_parity(r)


def test_hiera_small():
    config = T.HieraConfig(embed_dim=16, depths=[1, 2, 2, 1], num_heads=[1, 2, 4, 8], image_size=[64, 64])
    r = _run("hiera-small", "hiera_tiny_224", config)
    _assert_parity(r)
    # stages.S.layers.L -> blocks.<global index>: derived from the HF schema ({flat:s,l})
    assert "blocks.5.norm1.weight" in r.mapping.tao_keys()
    assert any("forward_pre_logits returns" in f for f in r.findings)  # TAO Hiera: unpooled tokens


def test_segformer_small():
    config = T.SegformerConfig(
        hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2], image_size=64
    )
    r = _run("segformer-small", "mit_b0", config)
    _assert_parity(r, eps_finding=True)  # HF MiT norms eps 1e-5 (torch default), TAO mit_* 1e-6
    assert r.mapping.op_counts()["concat"] == 8  # key/value -> kv, per block


SMALL_DINOV2 = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14)


def test_dinov2_small_to_timm():
    r = _run("dinov2-small-timm", "timm:vit_base_patch14_dinov2", T.Dinov2Config(**SMALL_DINOV2))
    _assert_parity(r)
    assert r.max_abs_logits is None and "head input width differs" in r.mapping.skipped_head.reason
    assert [k for k, _ in r.mapping.ignored] == ["dinov2.embeddings.mask_token"]


def test_dinov2_swiglu_small_to_tao():
    r = _run(
        "dinov2-swiglu-small-tao",
        "vit_large_patch14_dinov2_swiglu",
        T.Dinov2Config(use_swiglu_ffn=True, **SMALL_DINOV2),
    )
    _assert_parity(r)


def test_dinov2_with_registers_small_to_tao():
    config = T.Dinov2WithRegistersConfig(use_swiglu_ffn=True, num_register_tokens=4, **SMALL_DINOV2)
    r = _run("dinov2-reg-small-tao", "vit_giant_patch14_reg4_dinov2_swiglu", config)
    _assert_parity(r)
    assert "reg_token" in r.mapping.tao_keys()


DEIT_FAMILY = catalog.Family(
    name="deit", model_types=("deit",), variants=(), backbone_rules=catalog.deit.DEIT_BACKBONE_RULES,
    tasks={"classification": catalog.deit.DEIT_CLASSIFIER}
)


def test_deit_small_to_timm_distilled():
    config = T.DeiTConfig(
        architectures=["DeiTForImageClassificationWithTeacher"], **{**SMALL_VIT, "image_size": 32}
    )
    r = _run("deit-small-timm", "timm:deit_base_distilled_patch16_224", config, family=DEIT_FAMILY)
    _assert_parity(r, eps_finding=True)  # HF DeiT eps 1e-12, timm 1e-6
    assert {"dist_token", "head_dist.weight"} <= set(r.mapping.tao_keys())


# ------------------------------------------------------------------------------------------------ full size


@pytest.mark.slow
def test_vit_base_full():  # google/vit-base-patch16-224
    _assert_parity(_run("vit-base-full", "vit_base_patch16", T.ViTConfig()), eps_finding=True)


@pytest.mark.slow
def test_swin_tiny_full():  # microsoft/swin-tiny-patch4-window7-224, at 448 px so no stage equals the window
    r = _run(
        "swin-tiny-full-448",
        "swin_tiny_patch4_window7_224",
        T.SwinConfig(),
        tao_overrides={"post_norm": True},
        image_size=448,
        batch_size=1,
    )
    _assert_parity(r)


@pytest.mark.slow
def test_swin_tiny_full_registry_default_is_not_hf():  # the swin reuse as TAO builds it, at 224 px
    r = _run("swin-tiny-full-224-default", "swin_tiny_patch4_window7_224", T.SwinConfig(), batch_size=1)
    assert r.mapping.ok and not r.passed
    assert any("computation dropped" in f for f in r.findings)


@pytest.mark.slow
def test_convnext_tiny_full():  # facebook/convnext-tiny-224
    _assert_parity(_run("convnext-tiny-full", "convnext_tiny", T.ConvNextConfig()), eps_finding=True)


@pytest.mark.slow
def test_convnextv2_tiny_full():  # facebook/convnextv2-tiny-1k-224
    _assert_parity(_run("convnextv2-tiny-full", "convnextv2_tiny", T.ConvNextV2Config()), eps_finding=True)


@pytest.mark.slow
def test_resnet50_full():  # microsoft/resnet-50
    _assert_parity(_run("resnet-50-full", "resnet_50", T.ResNetConfig()))


@pytest.mark.slow
def test_hiera_tiny_full():  # facebook/hiera-tiny-224-hf
    _assert_parity(_run("hiera-tiny-full", "hiera_tiny_224", T.HieraConfig(depths=[1, 2, 7, 2])))


@pytest.mark.slow
def test_mit_b0_full():  # nvidia/mit-b0
    _assert_parity(_run("mit-b0-full", "mit_b0", T.SegformerConfig()), eps_finding=True)


@pytest.mark.slow
def test_dinov2_base_full():  # facebook/dinov2-base (image_size 518) -> timm vit_base_patch14_dinov2
    r = _run("dinov2-base-full", "timm:vit_base_patch14_dinov2", T.Dinov2Config(image_size=518), batch_size=1)
    _assert_parity(r)


# ------------------------------------------------------------------------------ coverage errors, head, layout


def _small_vit_pair(num_labels=2):
    hf = T.ViTForImageClassification(T.ViTConfig(num_labels=num_labels, **SMALL_VIT)).eval()
    overrides = {kw: fn(hf.config.to_dict()) for kw, fn in catalog.family_for("vit").backbone_rules.tao_kwargs}
    return hf, overrides


def _checkpoint_state(model) -> dict:
    """The model's tensors under checkpoint key names: what ``save_pretrained`` and hub files hold (newer
    transformers renames modules in memory only)."""
    return {k: v.detach() for k, v in checkpoint_view(model)[0].items()}


def _save(state_dict, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return path


def test_convert_checkpoint_from_save_pretrained_dir_matches_hf(tmp_path):
    hf, overrides = _small_vit_pair()
    hf.save_pretrained(tmp_path / "hf")
    tao = build_tao_model("vit_base_patch16", 2, overrides).eval()
    state_dict, report = convert_checkpoint(tmp_path / "hf", "vit", tao.state_dict(), num_classes=2)
    assert report.mapping.ok and report.mapping.skipped_head is None
    tao.load_state_dict(state_dict, strict=True)
    for module in tao.modules():  # align eps (the one known non-weight difference) to compare exactly
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = hf.config.layer_norm_eps
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (hf(pixel_values=x).logits - tao(x)).abs().max().item() <= 1e-4


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    hf, overrides = _small_vit_pair()
    sd = _checkpoint_state(hf)
    del sd["vit.encoder.layer.1.attention.attention.key.bias"]
    del sd["vit.layernorm.weight"]
    sd["vit.encoder.layer.0.extra_adapter.weight"] = torch.zeros(4, 4)
    path = _save(sd, tmp_path / "broken.safetensors")
    schema = {
        k: tuple(v.shape) for k, v in build_tao_model("vit_base_patch16", 2, overrides).state_dict().items()
    }
    with pytest.raises(WeightConversionError) as err:
        convert_checkpoint(path, "vit", schema, num_classes=2)
    message = str(err.value)
    assert isinstance(err.value, ScaffoldError)
    assert "missing TAO keys" in message and "norm.weight" in message
    assert "blocks.1.attn.qkv.bias" in message  # concat with a part missing
    assert "unexpected HF keys" in message and "vit.encoder.layer.0.extra_adapter.weight" in message
    assert err.value.missing == ["norm.weight"]
    assert err.value.unexpected == ["vit.encoder.layer.0.extra_adapter.weight"]
    assert "\n" not in message


def test_wrong_size_is_a_shape_error():
    hf, overrides = _small_vit_pair()
    tao_schema = build_tao_model("vit_base_patch16", 2, {**overrides, "mlp_ratio": 4}).state_dict()
    mapping = derive_mapping(_checkpoint_state(hf), tao_schema, "vit")
    assert not mapping.ok
    assert any(
        e.startswith("blocks.0.mlp.fc1.weight (256, 64)") for e in mapping.shape_errors
    ), mapping.shape_errors


def test_class_count_mismatch_skips_head_and_says_so(tmp_path):
    hf, overrides = _small_vit_pair(num_labels=3)
    path = _save(_checkpoint_state(hf), tmp_path / "model.safetensors")
    tao = build_tao_model("vit_base_patch16", 5, overrides)
    state_dict, report = convert_checkpoint(path, "vit", tao.state_dict(), num_classes=5)
    skip = report.mapping.skipped_head
    assert skip is not None and "class count differs (HF 3, TAO 5)" in skip.reason
    assert set(skip.tao_keys) == {"head.weight", "head.bias"}
    assert set(skip.hf_keys) == {"classifier.weight", "classifier.bias"}
    assert "head" in report.text() and "class count differs" in report.text()
    result = tao.load_state_dict(state_dict, strict=False)
    assert sorted(result.missing_keys) == ["head.bias", "head.weight"] and not result.unexpected_keys
    # num_classes overrides a schema built with another class count
    _, report10 = convert_checkpoint(
        path, "vit", build_tao_model("vit_base_patch16", 3, overrides).state_dict(), num_classes=10
    )
    assert "class count differs (HF 3, TAO 10)" in report10.mapping.skipped_head.reason


def test_base_model_checkpoint_without_prefix_or_head(tmp_path):
    # facebook/dinov2-base is a Dinov2Model: keys have no "dinov2." prefix and there is no classifier.
    base = T.Dinov2Model(T.Dinov2Config(**SMALL_DINOV2))
    path = _save(_checkpoint_state(base), tmp_path / "model.safetensors")
    schema = build_tao_model(
        "timm:vit_base_patch14_dinov2",
        7,
        {kw: fn(base.config.to_dict()) for kw, fn in catalog.family_for("dinov2").backbone_rules.tao_kwargs},
    ).state_dict()
    state_dict, report = convert_checkpoint(path, "dinov2", schema, num_classes=7)
    assert "no classifier" in report.mapping.skipped_head.reason
    assert "blocks.1.attn.qkv.weight" in state_dict and "head.weight" not in state_dict


def test_render_is_a_python_literal_equal_to_the_table():
    hf, overrides = _small_vit_pair()
    mapping = derive_mapping(
        _checkpoint_state(hf), build_tao_model("vit_base_patch16", 2, overrides).state_dict(), "vit"
    )
    source = mapping.render()
    namespace: dict = {}
    exec(compile(source, "<mapping>", "exec"), namespace)  # noqa: S102 -- our own rendering
    assert namespace["MAPPING"] == mapping.table()
    tree = ast.parse(source)
    ast.literal_eval(tree.body[0].value)  # a pure literal: no calls, no names
    assert (
        "blocks.0.attn.qkv.weight",
        (
            "vit.encoder.layer.0.attention.attention.query.weight",
            "vit.encoder.layer.0.attention.attention.key.weight",
            "vit.encoder.layer.0.attention.attention.value.weight",
        ),
        (("concat", 0),),
    ) in namespace["MAPPING"]


def test_runtime_is_self_contained():
    source = Path(runtime_module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"glob", "json", "os", "torch", "safetensors"}, imported
    assert "scaffolder" not in source
    # Embedded verbatim in another module, it works on its own.
    assert "__future__" not in imported  # a __future__ import would be a SyntaxError once embedded mid-file
    namespace: dict = {"__name__": "generated_converter"}
    embedded = "MAPPING = []\n\n" + source  # as a generated converter embeds it
    exec(compile(embedded, "hf_checkpoint_converter.py", "exec"), namespace)  # noqa: S102
    hf = {
        "q": torch.ones(2, 3),
        "k": torch.zeros(2, 3),
        "v": torch.full((2, 3), 2.0),
        "g": torch.ones(1, 1, 1, 4),
    }
    table = [
        ("qkv", ("q", "k", "v"), (("concat", 0),)),
        ("gamma", ("g",), (("copy", None), ("reshape", (4,)))),
        ("t", ("q",), (("copy", None), ("permute", (1, 0)))),
        ("norm0.weight", (), (("fill", (1.0, (3,))),)),
    ]
    out = namespace["apply_mapping"](hf, table)
    assert out["qkv"].shape == (6, 3) and out["qkv"][4:].eq(2).all()
    assert out["gamma"].shape == (4,) and out["t"].shape == (3, 2) and out["norm0.weight"].eq(1).all()
    with pytest.raises(KeyError, match="lacks 1 tensor"):
        apply_mapping({"q": hf["q"]}, [("qk", ("q", "k"), (("concat", 0),))])


def test_saved_checkpoint_loads_through_tao_pretrained_backbone_path(tmp_path):
    from nvidia_tao_pytorch.core.utils.ptm_utils import load_pretrained_weights
    from nvidia_tao_pytorch.cv.classification_pyt.model.utils import cls_parser, ptm_adapter

    hf, overrides = _small_vit_pair()
    tao = build_tao_model("vit_base_patch16", 2, overrides)
    state_dict, _ = convert_checkpoint(
        _save(_checkpoint_state(hf), tmp_path / "m.safetensors"), "vit", tao.state_dict(), num_classes=2
    )
    saved = save_tao_checkpoint(state_dict, tmp_path / "out" / "backbone.pth", "classification")
    assert set(saved) == {"state_dict"}  # plain layout: no key would be rewritten by cls_parser
    # exactly what classification_pyt's build_model does with model.backbone.pretrained_backbone_path
    loaded = load_pretrained_weights(
        str(tmp_path / "out" / "backbone.pth"), parser=cls_parser, ptm_adapter=ptm_adapter
    )
    assert set(loaded) == set(state_dict)
    result = tao.load_state_dict(loaded, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    # keys cls_parser would mangle ("module", "model.", "backbone." prefixes) use TAO's own layout instead
    tricky = {"model.x": torch.zeros(1), "blocks.0.module.w": torch.ones(1), "backbone.y": torch.ones(2)}
    saved = save_tao_checkpoint(tricky, tmp_path / "tricky.pth", "classification")
    assert saved["tao_model"] == "classification"
    loaded = load_pretrained_weights(str(tmp_path / "tricky.pth"), parser=cls_parser, ptm_adapter=ptm_adapter)
    assert set(loaded) == set(tricky)


def test_every_family_with_rules_compiles_and_catalog_backbones_exist():
    from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY

    import re

    for family in catalog.FAMILIES:
        for task in family.tasks:
            rules = family.key_rules(task)
            for rule in rules.rules if rules else ():
                re.compile(rule.pattern)
        for variant in family.variants:
            if variant.strategy == "reuse":
                assert variant.backbone in BACKBONE_REGISTRY._obj_map  # pylint: disable=protected-access


def teardown_module(_module):
    if TIMINGS:
        print("\nparity seconds per case: " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()))
