"""Architecture catalog: what tao-scaffold knows about each HuggingFace vision family.

One declarative entry per family (in the spirit of optimum's ``model_configs.py``): the HF ``model_type``
values it covers, how to recognise each size variant from ``config.json``, the TAO ``backbone_v2`` name and
feature width that variant maps to, preprocessing defaults, and known export problems. Code elsewhere asks
the catalog; it never branches on ``model_type`` itself.

Backbone facts come from the TAO 7.3.0 wheels (see ``shared/reference/tao-7.3-coverage.md`` §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Variant:
    """One size of a family: the config values that identify it and what TAO calls it."""

    backbone: str  # TAO backbone_v2 registry name (or the name of a backbone tao-scaffold generates)
    num_features: int  # pre-logit width == classification head.in_channels
    signature: Mapping[str, Any]  # config.json key -> value; all must match
    strategy: str = "reuse"  # reuse | timm_subclass | hf_wrapper
    timm_name: str | None = None  # timm architecture a generated backbone subclasses


@dataclass(frozen=True)
class KeyRule:
    """One HF -> TAO state-dict key rename, applied by ``scaffolder.convert.engine``.

    ``pattern`` is a regex matched (``fullmatch``) against the HF key after a base-model prefix
    (``KeyRules.hf_prefixes``) is stripped. ``target`` is a template for the TAO key: ``{g}`` is the
    named group ``g``, ``{g+1}`` / ``{g-1}`` shift a numeric group, ``{flat:a,b}`` is the rank of the
    numeric tuple (a, b) among every HF key matched by a ``flat`` rule (stage/layer -> global block
    index). A tuple of targets fans one HF tensor out to every listed TAO key that exists.
    ``concat`` lists the values of group ``part`` in the order they are concatenated (dim
    ``KeyRules.concat_dim``) into one TAO tensor: q/k/v -> qkv.
    """

    pattern: str
    target: str | tuple[str, ...]
    concat: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyRules:
    """How a family's HF state dict becomes a TAO backbone state dict (declarative; one engine applies it)."""

    rules: tuple[KeyRule, ...]
    # Base-model prefixes ("vit."): present in *ForImageClassification checkpoints, absent in base-model ones.
    hf_prefixes: tuple[str, ...] = ()
    ignore: tuple[tuple[str, str], ...] = ()  # (HF key regex, why it has no TAO counterpart)
    fill: tuple[tuple[str, float, str], ...] = ()  # (TAO key regex, constant, why TAO has it and HF not)
    tao_head: str = r"head\..*"  # TAO classifier-head keys (skipped when the class count differs)
    concat_dim: int = 0
    # Parity: the HF tensor equal to TAO's classifier input. "classifier_input" (what HF feeds its
    # ``classifier``) or "pooler_output" (base-model output) when HF's head consumes something else.
    hf_features: str = "classifier_input"
    # Parity with reduced configs: TAO/timm constructor kwarg -> function of the HF config dict.
    tao_kwargs: tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...] = ()


def _k(pattern: str, target: str | tuple[str, ...], concat: tuple[str, ...] = ()) -> KeyRule:
    return KeyRule(pattern, target, concat)


_T = r"(?P<t>weight|bias)"  # parameter name of a Linear/Conv/LayerNorm
_QKV = ("query", "key", "value")

_VIT_RULES = KeyRules(
    hf_prefixes=("vit.",),
    rules=(
        _k(r"embeddings\.cls_token", "cls_token"),
        _k(r"embeddings\.position_embeddings", "pos_embed"),
        _k(rf"embeddings\.patch_embeddings\.projection\.{_T}", "patch_embed.proj.{t}"),
        _k(
            rf"encoder\.layer\.(?P<i>\d+)\.attention\.attention\.(?P<part>query|key|value)\.{_T}",
            "blocks.{i}.attn.qkv.{t}",
            concat=_QKV,
        ),
        _k(rf"encoder\.layer\.(?P<i>\d+)\.attention\.output\.dense\.{_T}", "blocks.{i}.attn.proj.{t}"),
        _k(rf"encoder\.layer\.(?P<i>\d+)\.layernorm_before\.{_T}", "blocks.{i}.norm1.{t}"),
        _k(rf"encoder\.layer\.(?P<i>\d+)\.layernorm_after\.{_T}", "blocks.{i}.norm2.{t}"),
        _k(rf"encoder\.layer\.(?P<i>\d+)\.intermediate\.dense\.{_T}", "blocks.{i}.mlp.fc1.{t}"),
        _k(rf"encoder\.layer\.(?P<i>\d+)\.output\.dense\.{_T}", "blocks.{i}.mlp.fc2.{t}"),
        _k(rf"layernorm\.{_T}", "norm.{t}"),
        _k(rf"classifier\.{_T}", "head.{t}"),
    ),
    ignore=(
        (r"pooler\.dense\..*", "ViTModel's tanh pooler; ViTForImageClassification classifies the CLS token"),
    ),
    tao_kwargs=(
        ("img_size", lambda c: c["image_size"]),
        ("patch_size", lambda c: c["patch_size"]),
        ("embed_dim", lambda c: c["hidden_size"]),
        ("depth", lambda c: c["num_hidden_layers"]),
        ("num_heads", lambda c: c["num_attention_heads"]),
        ("mlp_ratio", lambda c: c["intermediate_size"] / c["hidden_size"]),
    ),
)

_SWIN_BLOCK = r"encoder\.layers\.(?P<s>\d+)\.blocks\.(?P<b>\d+)"
_SWIN_RULES = KeyRules(
    hf_prefixes=("swin.",),
    rules=(
        _k(rf"embeddings\.patch_embeddings\.projection\.{_T}", "patch_embed.proj.{t}"),
        _k(rf"embeddings\.norm\.{_T}", "patch_embed.norm.{t}"),
        _k(rf"{_SWIN_BLOCK}\.layernorm_before\.{_T}", "layers.{s}.blocks.{b}.norm1.{t}"),
        _k(
            rf"{_SWIN_BLOCK}\.attention\.self\.(?P<m>relative_position_bias_table|relative_position_index)",
            "layers.{s}.blocks.{b}.attn.{m}",
        ),
        _k(
            rf"{_SWIN_BLOCK}\.attention\.self\.(?P<part>query|key|value)\.{_T}",
            "layers.{s}.blocks.{b}.attn.qkv.{t}",
            concat=_QKV,
        ),
        _k(rf"{_SWIN_BLOCK}\.attention\.output\.dense\.{_T}", "layers.{s}.blocks.{b}.attn.proj.{t}"),
        _k(rf"{_SWIN_BLOCK}\.layernorm_after\.{_T}", "layers.{s}.blocks.{b}.norm2.{t}"),
        _k(rf"{_SWIN_BLOCK}\.intermediate\.dense\.{_T}", "layers.{s}.blocks.{b}.mlp.fc1.{t}"),
        _k(rf"{_SWIN_BLOCK}\.output\.dense\.{_T}", "layers.{s}.blocks.{b}.mlp.fc2.{t}"),
        _k(
            r"encoder\.layers\.(?P<s>\d+)\.downsample\.(?P<m>reduction|norm)\.(?P<t>weight|bias)",
            "layers.{s}.downsample.{m}.{t}",
        ),
        # HF's final LayerNorm normalises the last stage's output: TAO calls that norm3 (its feature-pyramid
        # norm of stage 3) and, when built with post_norm=True, post_norm (applied before pooling).
        _k(rf"layernorm\.{_T}", ("norm3.{t}", "post_norm.{t}")),
        _k(rf"classifier\.{_T}", "head.{t}"),
    ),
    ignore=((r"embeddings\.mask_token", "masked-image-modeling token (SwinForMaskedImageModeling only)"),),
    fill=(
        (
            r"norm[0-2]\.weight",
            1.0,
            "TAO's feature-pyramid LayerNorms of stages 0-2 have no HF counterpart "
            "(HF SwinModel normalises only the last stage); identity init, unused by classification",
        ),
        (
            r"norm[0-2]\.bias",
            0.0,
            "TAO's feature-pyramid LayerNorms of stages 0-2 have no HF counterpart "
            "(HF SwinModel normalises only the last stage); identity init, unused by classification",
        ),
    ),
    tao_kwargs=(
        ("img_size", lambda c: (c["image_size"], c["image_size"])),
        ("patch_size", lambda c: c["patch_size"]),
        ("embed_dim", lambda c: c["embed_dim"]),
        ("depths", lambda c: tuple(c["depths"])),
        ("num_heads", lambda c: tuple(c["num_heads"])),
        ("window_size", lambda c: c["window_size"]),
        ("mlp_ratio", lambda c: c["mlp_ratio"]),
    ),
)

_CONVNEXT_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"
_CONVNEXT_RULES = KeyRules(  # ConvNeXt v1 and v2 (v2: GRN instead of layer scale)
    hf_prefixes=("convnext.", "convnextv2."),
    rules=(
        _k(rf"embeddings\.patch_embeddings\.{_T}", "downsample_layers.0.0.{t}"),
        _k(rf"embeddings\.layernorm\.{_T}", "downsample_layers.0.1.{t}"),
        _k(
            rf"encoder\.stages\.(?P<s>\d+)\.downsampling_layer\.(?P<j>[01])\.{_T}",
            "downsample_layers.{s}.{j}.{t}",
        ),
        _k(rf"{_CONVNEXT_LAYER}\.layer_scale_parameter", "stages.{s}.{l}.gamma"),
        _k(rf"{_CONVNEXT_LAYER}\.layernorm\.{_T}", "stages.{s}.{l}.norm.{t}"),
        _k(rf"{_CONVNEXT_LAYER}\.(?P<m>dwconv|pwconv1|pwconv2)\.{_T}", "stages.{s}.{l}.{m}.{t}"),
        _k(rf"{_CONVNEXT_LAYER}\.grn\.weight", "stages.{s}.{l}.grn.gamma"),
        _k(rf"{_CONVNEXT_LAYER}\.grn\.bias", "stages.{s}.{l}.grn.beta"),
        _k(rf"layernorm\.{_T}", "norm.{t}"),
        _k(rf"classifier\.{_T}", "head.{t}"),
    ),
    tao_kwargs=(("dims", lambda c: list(c["hidden_sizes"])), ("depths", lambda c: list(c["depths"]))),
)

_RESNET_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"
_BN = r"(?P<t>weight|bias|running_mean|running_var|num_batches_tracked)"
_RESNET_RULES = KeyRules(
    hf_prefixes=("resnet.",),
    rules=(
        _k(r"embedder\.embedder\.convolution\.weight", "conv1.weight"),
        _k(rf"embedder\.embedder\.normalization\.{_BN}", "bn1.{t}"),
        _k(rf"{_RESNET_LAYER}\.shortcut\.convolution\.weight", "layer{s+1}.{l}.downsample.0.weight"),
        _k(rf"{_RESNET_LAYER}\.shortcut\.normalization\.{_BN}", "layer{s+1}.{l}.downsample.1.{t}"),
        _k(rf"{_RESNET_LAYER}\.layer\.(?P<c>\d+)\.convolution\.weight", "layer{s+1}.{l}.conv{c+1}.weight"),
        _k(rf"{_RESNET_LAYER}\.layer\.(?P<c>\d+)\.normalization\.{_BN}", "layer{s+1}.{l}.bn{c+1}.{t}"),
        _k(rf"classifier\.1\.{_T}", "fc.{t}"),
    ),
    tao_head=r"fc\..*",
    tao_kwargs=(("layers", lambda c: list(c["depths"])),),
)

_HIERA_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"
_HIERA_RULES = KeyRules(
    hf_prefixes=("hiera.",),
    rules=(
        _k(r"embeddings\.position_embeddings", "pos_embed"),
        _k(rf"embeddings\.patch_embeddings\.projection\.{_T}", "patch_embed.proj.{t}"),
        _k(rf"{_HIERA_LAYER}\.layernorm_before\.{_T}", "blocks.{flat:s,l}.norm1.{t}"),
        _k(rf"{_HIERA_LAYER}\.layernorm_after\.{_T}", "blocks.{flat:s,l}.norm2.{t}"),
        _k(
            rf"{_HIERA_LAYER}\.(?P<m>attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2|proj)\.{_T}",
            "blocks.{flat:s,l}.{m}.{t}",
        ),
        _k(rf"pooler\.layernorm\.{_T}", "head.norm.{t}"),
        _k(rf"classifier\.{_T}", "head.fc.{t}"),
    ),
    tao_head=r"head\.fc\..*",
    tao_kwargs=(
        ("img_size", lambda c: tuple(c["image_size"])),
        ("embed_dim", lambda c: c["embed_dim"]),
        ("num_heads", lambda c: c["num_heads"][0]),
        ("stages", lambda c: tuple(c["depths"])),
        ("q_pool", lambda c: c["num_query_pool"]),
        ("q_stride", lambda c: tuple(c["query_stride"])),
        ("mask_unit_size", lambda c: tuple(c["masked_unit_size"])),
        ("mask_unit_attn", lambda c: tuple(c["masked_unit_attention"])),
        ("dim_mul", lambda c: c["embed_dim_multiplier"]),
        ("mlp_ratio", lambda c: c["mlp_ratio"]),
        ("patch_kernel", lambda c: tuple(c["patch_size"])),
        ("patch_stride", lambda c: tuple(c["patch_stride"])),
        ("patch_padding", lambda c: tuple(c["patch_padding"])),
    ),
)

_MIT_BLOCK = r"encoder\.block\.(?P<s>\d+)\.(?P<l>\d+)"
_SEGFORMER_RULES = KeyRules(
    hf_prefixes=("segformer.",),
    rules=(
        _k(rf"encoder\.patch_embeddings\.(?P<s>\d+)\.proj\.{_T}", "patch_embed{s+1}.proj.{t}"),
        _k(rf"encoder\.patch_embeddings\.(?P<s>\d+)\.layer_norm\.{_T}", "patch_embed{s+1}.norm.{t}"),
        _k(rf"{_MIT_BLOCK}\.layer_norm_1\.{_T}", "block{s+1}.{l}.norm1.{t}"),
        _k(rf"{_MIT_BLOCK}\.layer_norm_2\.{_T}", "block{s+1}.{l}.norm2.{t}"),
        _k(rf"{_MIT_BLOCK}\.attention\.self\.query\.{_T}", "block{s+1}.{l}.attn.q.{t}"),
        _k(
            rf"{_MIT_BLOCK}\.attention\.self\.(?P<part>key|value)\.{_T}",
            "block{s+1}.{l}.attn.kv.{t}",
            concat=("key", "value"),
        ),
        _k(rf"{_MIT_BLOCK}\.attention\.self\.sr\.{_T}", "block{s+1}.{l}.attn.sr.{t}"),
        _k(rf"{_MIT_BLOCK}\.attention\.self\.layer_norm\.{_T}", "block{s+1}.{l}.attn.norm.{t}"),
        _k(rf"{_MIT_BLOCK}\.attention\.output\.dense\.{_T}", "block{s+1}.{l}.attn.proj.{t}"),
        _k(rf"{_MIT_BLOCK}\.mlp\.dense1\.{_T}", "block{s+1}.{l}.mlp.fc1.{t}"),
        _k(rf"{_MIT_BLOCK}\.mlp\.dwconv\.dwconv\.{_T}", "block{s+1}.{l}.mlp.dwconv.dwconv.{t}"),
        _k(rf"{_MIT_BLOCK}\.mlp\.dense2\.{_T}", "block{s+1}.{l}.mlp.fc2.{t}"),
        _k(rf"encoder\.layer_norm\.(?P<s>\d+)\.{_T}", "norm{s+1}.{t}"),
        _k(rf"classifier\.{_T}", "head.{t}"),
    ),
    ignore=(
        (
            r"decode_head\..*",
            "SegFormer's all-MLP segmentation decoder; the classification port keeps the MiT encoder",
        ),
    ),
    tao_kwargs=(
        ("embed_dims", lambda c: list(c["hidden_sizes"])),
        ("depths", lambda c: list(c["depths"])),
        ("num_heads", lambda c: list(c["num_attention_heads"])),
        ("sr_ratios", lambda c: list(c["sr_ratios"])),
        ("mlp_ratios", lambda c: list(c["mlp_ratios"])),
    ),
)

_DINOV2_LAYER = r"encoder\.layer\.(?P<i>\d+)"
_DINOV2_RULES = KeyRules(  # -> timm VisionTransformer naming (vit_*_patch14_dinov2 and TAO's DINOV2)
    hf_prefixes=("dinov2.", "dinov2_with_registers."),
    rules=(
        _k(r"embeddings\.cls_token", "cls_token"),
        _k(r"embeddings\.register_tokens", "reg_token"),
        _k(r"embeddings\.position_embeddings", "pos_embed"),
        _k(rf"embeddings\.patch_embeddings\.projection\.{_T}", "patch_embed.proj.{t}"),
        _k(rf"{_DINOV2_LAYER}\.(?P<m>norm1|norm2)\.{_T}", "blocks.{i}.{m}.{t}"),
        _k(
            rf"{_DINOV2_LAYER}\.attention\.attention\.(?P<part>query|key|value)\.{_T}",
            "blocks.{i}.attn.qkv.{t}",
            concat=_QKV,
        ),
        _k(rf"{_DINOV2_LAYER}\.attention\.output\.dense\.{_T}", "blocks.{i}.attn.proj.{t}"),
        _k(rf"{_DINOV2_LAYER}\.layer_scale(?P<n>[12])\.lambda1", "blocks.{i}.ls{n}.gamma"),
        _k(rf"{_DINOV2_LAYER}\.mlp\.(?P<m>fc1|fc2)\.{_T}", "blocks.{i}.mlp.{m}.{t}"),
        _k(rf"{_DINOV2_LAYER}\.mlp\.weights_in\.{_T}", "blocks.{i}.mlp.fc1.{t}"),  # SwiGLU, packed [x, gate]
        _k(rf"{_DINOV2_LAYER}\.mlp\.weights_out\.{_T}", "blocks.{i}.mlp.fc2.{t}"),
        _k(rf"layernorm\.{_T}", "norm.{t}"),
        _k(rf"classifier\.{_T}", "head.{t}"),
    ),
    ignore=((r"embeddings\.mask_token", "masked-image-modeling token, used only by DINOv2 pretraining"),),
    # HF's classifier consumes [CLS, mean(patch tokens)] (2*hidden); timm/TAO heads consume CLS only.
    hf_features="pooler_output",
    tao_kwargs=(
        ("img_size", lambda c: c["image_size"]),
        ("patch_size", lambda c: c["patch_size"]),
        ("embed_dim", lambda c: c["hidden_size"]),
        ("depth", lambda c: c["num_hidden_layers"]),
        ("num_heads", lambda c: c["num_attention_heads"]),
        ("mlp_ratio", lambda c: _dinov2_mlp_ratio(c)),
        ("reg_tokens", lambda c: c.get("num_register_tokens", 0)),
    ),
)


# DeiT (HF model_type "deit": DeiTForImageClassificationWithTeacher / DeiTForImageClassification) -> timm
# deit_*_distilled_patch16_* naming, for the generated DeiT backbones (TAO 7.3 has none): the deit family entry
# takes ``key_rules=DEIT_KEY_RULES``.
DEIT_KEY_RULES = KeyRules(
    hf_prefixes=("deit.",),
    rules=(
        _k(r"embeddings\.distillation_token", "dist_token"),
        *_VIT_RULES.rules[:-1],
        _k(rf"cls_classifier\.{_T}", "head.{t}"),  # DeiTForImageClassificationWithTeacher
        _k(rf"classifier\.{_T}", "head.{t}"),  # DeiTForImageClassification (CLS head only)
        _k(rf"distillation_classifier\.{_T}", "head_dist.{t}"),
    ),
    ignore=(
        (r"embeddings\.mask_token", "masked-image-modeling token (DeiTForMaskedImageModeling only)"),
        (r"pooler\.dense\..*", "DeiTModel's tanh pooler; the classifiers read the CLS/distillation tokens"),
    ),
    tao_head=r"head(_dist)?\..*",
    hf_features="tokens:0,1",  # HF averages the CLS and distillation heads' logits; timm averages the tokens
    tao_kwargs=_VIT_RULES.tao_kwargs,
)


def _dinov2_mlp_ratio(c: Mapping[str, Any]) -> float:
    """timm's mlp_ratio for HF's MLP; SwiGLU: HF packs 2 x round8(2/3 * hidden * mlp_ratio) into weights_in."""
    if not c.get("use_swiglu_ffn"):
        return c["mlp_ratio"]
    hidden = (int(int(c["hidden_size"] * c["mlp_ratio"]) * 2 / 3) + 7) // 8 * 8
    return 2 * hidden / c["hidden_size"]


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    variants: tuple[Variant, ...]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    default_image_size: int = 224
    export_notes: tuple[str, ...] = ()
    notes: str = ""
    # Why a variant with no TAO equivalent gets the strategy it gets (shown in the plan).
    missing_reason: str = ""
    # Changes the port's build_model makes so a reused TAO backbone computes what the HF model computes
    # (blueprints/_partials/classification/hf_adaptations.py.jinja implements each name).
    hf_adaptations: tuple[str, ...] = ()
    # HF state dict -> TAO state dict (scaffolder.convert); None: weight conversion not supported yet.
    key_rules: KeyRules | None = None

    def match(self, config: Mapping[str, Any]) -> Variant | None:
        for variant in self.variants:
            if all(_normalise(config.get(key)) == _normalise(value) for key, value in variant.signature.items()):
                return variant
        return None

    def describe_config(self, config: Mapping[str, Any]) -> str:
        keys = sorted({k for v in self.variants for k in v.signature})
        return ", ".join(f"{k}={config.get(k)!r}" for k in keys)


def _normalise(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _v(backbone: str, num_features: int, **signature: Any) -> Variant:
    return Variant(backbone=backbone, num_features=num_features, signature=signature)


SWIN_EXPORT_NOTE = (
    "torch 2.13: TAO's Swin fails ONNX export with a TorchScript shape-inference assert "
    "(window partition reshapes); export on torch <= 2.11 (TAO's containers / the GPU host) "
    "or skip the export stage on this torch"
)

FAMILIES: tuple[Family, ...] = (
    Family(
        name="vit",
        key_rules=_VIT_RULES,
        model_types=("vit",),
        mean=HALF_MEAN,
        std=HALF_STD,
        variants=(
            _v("vit_base_patch16", 768, hidden_size=768, patch_size=16, num_hidden_layers=12),
            _v("vit_large_patch16", 1024, hidden_size=1024, patch_size=16, num_hidden_layers=24),
            _v("vit_huge_patch14", 1280, hidden_size=1280, patch_size=14, num_hidden_layers=32),
        ),
    ),
    Family(
        name="swin",
        key_rules=_SWIN_RULES,
        model_types=("swin",),
        export_notes=(SWIN_EXPORT_NOTE,),
        # TAO's factories build post_norm=False and shift windows even where the map equals the window.
        hf_adaptations=("swin_final_norm", "swin_no_shift_at_window"),
        variants=(
            _v("swin_tiny_patch4_window7_224", 768, embed_dim=96, depths=[2, 2, 6, 2], window_size=7),
            _v("swin_small_patch4_window7_224", 768, embed_dim=96, depths=[2, 2, 18, 2], window_size=7),
            _v("swin_base_patch4_window7_224", 1024, embed_dim=128, depths=[2, 2, 18, 2], window_size=7),
            _v("swin_base_patch4_window12_384", 1024, embed_dim=128, depths=[2, 2, 18, 2], window_size=12),
            _v("swin_large_patch4_window7_224", 1536, embed_dim=192, depths=[2, 2, 18, 2], window_size=7),
            _v("swin_large_patch4_window12_384", 1536, embed_dim=192, depths=[2, 2, 18, 2], window_size=12),
        ),
    ),
    Family(
        name="convnext",
        key_rules=_CONVNEXT_RULES,
        model_types=("convnext",),
        variants=(
            _v("convnext_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            _v("convnext_small", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3]),
            _v("convnext_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            _v("convnext_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            _v("convnext_xlarge", 2048, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 3, 27, 3]),
        ),
    ),
    Family(
        name="convnextv2",
        key_rules=_CONVNEXT_RULES,
        model_types=("convnextv2",),
        variants=(
            _v("convnextv2_atto", 320, hidden_sizes=[40, 80, 160, 320], depths=[2, 2, 6, 2]),
            _v("convnextv2_femto", 384, hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 6, 2]),
            _v("convnextv2_pico", 512, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 6, 2]),
            _v("convnextv2_nano", 640, hidden_sizes=[80, 160, 320, 640], depths=[2, 2, 8, 2]),
            _v("convnextv2_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            _v("convnextv2_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            _v("convnextv2_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            _v("convnextv2_huge", 2816, hidden_sizes=[352, 704, 1408, 2816], depths=[3, 3, 27, 3]),
        ),
    ),
    Family(
        name="resnet",
        key_rules=_RESNET_RULES,
        model_types=("resnet",),
        variants=(
            _v("resnet_18", 512, depths=[2, 2, 2, 2], layer_type="basic"),
            _v("resnet_34", 512, depths=[3, 4, 6, 3], layer_type="basic"),
            _v("resnet_50", 2048, depths=[3, 4, 6, 3], layer_type="bottleneck"),
            _v("resnet_101", 2048, depths=[3, 4, 23, 3], layer_type="bottleneck"),
            _v("resnet_152", 2048, depths=[3, 8, 36, 3], layer_type="bottleneck"),
        ),
    ),
    Family(
        name="hiera",
        key_rules=_HIERA_RULES,
        model_types=("hiera",),
        variants=(
            _v("hiera_tiny_224", 768, embed_dim=96, depths=[1, 2, 7, 2]),
            _v("hiera_small_224", 768, embed_dim=96, depths=[1, 2, 11, 2]),
            _v("hiera_base_224", 768, embed_dim=96, depths=[2, 3, 16, 3]),
            _v("hiera_base_plus_224", 896, embed_dim=112, depths=[2, 3, 16, 3]),
            _v("hiera_large_224", 1152, embed_dim=144, depths=[2, 6, 36, 4]),
            _v("hiera_huge_224", 2048, embed_dim=256, depths=[2, 6, 36, 4]),
        ),
    ),
    Family(
        name="segformer",
        key_rules=_SEGFORMER_RULES,
        model_types=("segformer",),
        notes="MiT encoder of SegFormer; classification ports use the encoder only",
        variants=(
            _v("mit_b0", 256, hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2]),
            _v("mit_b1", 512, hidden_sizes=[64, 128, 320, 512], depths=[2, 2, 2, 2]),
            _v("mit_b2", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3]),
            _v("mit_b3", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 18, 3]),
            _v("mit_b4", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 8, 27, 3]),
            _v("mit_b5", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 6, 40, 3]),
        ),
    ),
    Family(
        name="dinov2",
        key_rules=_DINOV2_RULES,
        model_types=("dinov2",),
        default_image_size=518,
        notes="TAO registers only SwiGLU DINOv2 large/giant; HF small/base/large use a plain MLP",
        missing_reason="TAO 7.3 has no plain-MLP DINOv2 backbone (its dinov2 entries are SwiGLU large/giant)",
        variants=(
            Variant(
                "vit_large_patch14_dinov2_swiglu",
                1024,
                {"hidden_size": 1024, "patch_size": 14, "use_swiglu_ffn": True},
            ),
            # HF dinov2-small/base/large: plain-MLP ViT with layer scale and no register tokens, which TAO lacks.
            # Generated backbones subclass timm's vit_*_patch14_dinov2 (init_values=1e-5, 518 px, patch 14;
            # pooled "token" = HF pooler_output, the layer-normed CLS token).
            *(
                Variant(
                    f"vit_{size}_patch14_dinov2_mlp",
                    width,
                    {"hidden_size": width, "num_hidden_layers": depth, "num_attention_heads": heads, "patch_size": 14,
                     "image_size": 518, "mlp_ratio": 4, "use_swiglu_ffn": False},
                    strategy="timm_subclass",
                    timm_name=f"vit_{size}_patch14_dinov2",
                )
                for size, width, depth, heads in (("small", 384, 12, 6), ("base", 768, 12, 12), ("large", 1024, 24, 16))
            ),
        ),
    ),
    Family(
        name="dinov2_with_registers",
        key_rules=_DINOV2_RULES,
        model_types=("dinov2_with_registers",),
        default_image_size=518,
        variants=(
            Variant(
                "vit_giant_patch14_reg4_dinov2_swiglu",
                1536,
                {"hidden_size": 1536, "patch_size": 14, "num_register_tokens": 4, "use_swiglu_ffn": True},
            ),
        ),
    ),
    # --- families TAO 7.3 lacks: tao-scaffold generates the backbone (strategy timm_subclass / hf_wrapper) ---
    Family(
        name="deit",
        key_rules=DEIT_KEY_RULES,
        model_types=("deit",),
        notes="HF DeiT always has a distillation token next to CLS (timm VisionTransformerDistilled); its "
        "non-distilled hub checkpoints (facebook/deit-*-patch16-224) are model_type vit and use the vit family",
        missing_reason="TAO 7.3 has no DeiT backbone",
        variants=(
            # DeiTForImageClassification (e.g. a Trainer fine-tune): one classifier on the CLS token.
            *(
                Variant(
                    f"deit_{size}_distilled_patch16_{img}_cls",
                    width,
                    {"hidden_size": width, "num_hidden_layers": 12, "num_attention_heads": heads,
                     "intermediate_size": 4 * width, "patch_size": 16, "image_size": img,
                     "architectures": ["DeiTForImageClassification"]},
                    strategy="timm_subclass",
                    timm_name=f"deit_{size}_distilled_patch16_{img}",
                )
                for size, width, heads, img in (
                    ("tiny", 192, 3, 224), ("small", 384, 6, 224), ("base", 768, 12, 224), ("base", 768, 12, 384)
                )
            ),
            # DeiTForImageClassificationWithTeacher (the facebook/deit-*-distilled-* checkpoints) and DeiTModel:
            # CLS and distillation heads, logits averaged -- timm's VisionTransformerDistilled as is.
            *(
                Variant(
                    f"deit_{size}_distilled_patch16_{img}",
                    width,
                    {"hidden_size": width, "num_hidden_layers": 12, "num_attention_heads": heads,
                     "intermediate_size": 4 * width, "patch_size": 16, "image_size": img},
                    strategy="timm_subclass",
                    timm_name=f"deit_{size}_distilled_patch16_{img}",
                )
                for size, width, heads, img in (
                    ("tiny", 192, 3, 224), ("small", 384, 6, 224), ("base", 768, 12, 224), ("base", 768, 12, 384)
                )
            ),
        ),
    ),
    Family(
        name="efficientnet",
        model_types=("efficientnet",),
        notes="HF EfficientNet was converted from the TF checkpoints: TF 'same' padding and BN eps 1e-3, which "
        "timm's tf_efficientnet_* reproduce (efficientnet_* pads symmetrically, eps 1e-5)",
        missing_reason="TAO 7.3 has no EfficientNet backbone (efficientvit is a different architecture)",
        export_notes=(
            "tf_efficientnet pads 'same' per input size (timm Conv2dSame): the ONNX graph is traced at the spec's "
            "image size, so export and build the engine at that size",
        ),
        variants=tuple(
            Variant(
                f"tf_efficientnet_b{b}",
                width,
                {"width_coefficient": wc, "depth_coefficient": dc, "hidden_dim": width},
                strategy="timm_subclass",
                timm_name=f"tf_efficientnet_b{b}",
            )
            for b, wc, dc, width in (
                (0, 1.0, 1.0, 1280), (1, 1.0, 1.1, 1280), (2, 1.1, 1.2, 1408), (3, 1.2, 1.4, 1536),
                (4, 1.4, 1.8, 1792), (5, 1.6, 2.2, 2048), (6, 1.8, 2.6, 2304), (7, 2.0, 3.1, 2560),
            )
        ),
    ),
    Family(
        name="cvt",
        model_types=("cvt",),
        notes="the generated backbone composes transformers' CvtForImageClassification (CvtConfig defaults = cvt-13)",
        missing_reason="TAO 7.3 has no CvT backbone and timm has no CvT architecture",
        variants=(
            Variant(
                "cvt_13_hf",
                384,
                {"embed_dim": [64, 192, 384], "depth": [1, 2, 10], "num_heads": [1, 3, 6]},
                strategy="hf_wrapper",
            ),
        ),
    ),
)

_BY_MODEL_TYPE: dict[str, Family] = {mt: fam for fam in FAMILIES for mt in fam.model_types}


def family_for(model_type: str) -> Family | None:
    return _BY_MODEL_TYPE.get(model_type)


def known_model_types() -> list[str]:
    return sorted(_BY_MODEL_TYPE)


def all_backbones() -> list[str]:
    """Every TAO backbone name the catalog can choose (for consistency checks against the registry)."""
    return [v.backbone for fam in FAMILIES for v in fam.variants if v.strategy == "reuse"]
