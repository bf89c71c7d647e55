"""DINOv2 (HF ``dinov2``, ``dinov2_with_registers``) -> timm VisionTransformer naming (TAO's DINOV2 and the
generated ``vit_*_patch14_dinov2_mlp`` backbones)."""

from typing import Any, Mapping

from scaffolder.catalog._types import CLASSIFIER_HEAD, QKV, AnySize, Family, KeyRules, T, Variant, classifier
from scaffolder.catalog._types import name_token, rule, square_image_size
from scaffolder.catalog._vit_pyramid import pyramid_detection, pyramid_segmentation

_LAYER = r"encoder\.layer\.(?P<i>\d+)"


def _mlp_ratio(c: Mapping[str, Any]) -> float:
    """timm's mlp_ratio for HF's MLP; SwiGLU: HF packs 2 x round8(2/3 * hidden * mlp_ratio) into weights_in."""
    if not c.get("use_swiglu_ffn"):
        return c["mlp_ratio"]
    hidden = (int(int(c["hidden_size"] * c["mlp_ratio"]) * 2 / 3) + 7) // 8 * 8
    return 2 * hidden / c["hidden_size"]


BACKBONE_RULES = KeyRules(
    hf_prefixes=("dinov2.", "dinov2_with_registers."),
    rules=(
        rule(r"embeddings\.cls_token", "cls_token"),
        rule(r"embeddings\.register_tokens", "reg_token"),
        rule(r"embeddings\.position_embeddings", "pos_embed"),
        rule(rf"embeddings\.patch_embeddings\.projection\.{T}", "patch_embed.proj.{t}"),
        rule(rf"{_LAYER}\.(?P<m>norm1|norm2)\.{T}", "blocks.{i}.{m}.{t}"),
        rule(rf"{_LAYER}\.attention\.attention\.(?P<part>query|key|value)\.{T}", "blocks.{i}.attn.qkv.{t}", concat=QKV),
        rule(rf"{_LAYER}\.attention\.output\.dense\.{T}", "blocks.{i}.attn.proj.{t}"),
        rule(rf"{_LAYER}\.layer_scale(?P<n>[12])\.lambda1", "blocks.{i}.ls{n}.gamma"),
        rule(rf"{_LAYER}\.mlp\.(?P<m>fc1|fc2)\.{T}", "blocks.{i}.mlp.{m}.{t}"),
        rule(rf"{_LAYER}\.mlp\.weights_in\.{T}", "blocks.{i}.mlp.fc1.{t}"),  # SwiGLU, packed [x, gate]
        rule(rf"{_LAYER}\.mlp\.weights_out\.{T}", "blocks.{i}.mlp.fc2.{t}"),
        rule(rf"layernorm\.{T}", "norm.{t}"),
    ),
    ignore=((r"embeddings\.mask_token", "masked-image-modeling token, used only by DINOv2 pretraining"),),
    tao_kwargs=(
        ("img_size", lambda c: c["image_size"]),
        ("patch_size", lambda c: c["patch_size"]),
        ("embed_dim", lambda c: c["hidden_size"]),
        ("depth", lambda c: c["num_hidden_layers"]),
        ("num_heads", lambda c: c["num_attention_heads"]),
        ("mlp_ratio", _mlp_ratio),
        ("reg_tokens", lambda c: c.get("num_register_tokens", 0)),
    ),
)
_SIZES = {(384, 12, 6): "small", (768, 12, 12): "base", (1024, 24, 16): "large"}  # timm vit_*_patch14_dinov2
# Dinov2Config's defaults, for config.json files that omit them
DINOV2_DEFAULTS = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "patch_size": 14,
                   "image_size": 518, "mlp_ratio": 4, "use_swiglu_ffn": False, "qkv_bias": True}


def _mlp_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    """timm VisionTransformer arguments of a plain-MLP DINOv2 (as timm's vit_*_patch14_dinov2 builds it)."""
    kwargs = {"img_size": square_image_size(c), "patch_size": int(c["patch_size"]), "embed_dim": int(c["hidden_size"]),
              "depth": int(c["num_hidden_layers"]), "num_heads": int(c["num_attention_heads"])}
    if float(c["mlp_ratio"]) != 4:
        kwargs["mlp_ratio"] = float(c["mlp_ratio"])
    if not c.get("qkv_bias", True):
        kwargs["qkv_bias"] = False
    return {**kwargs, "init_values": 1e-5, "dynamic_img_size": True}  # layer scale (its value comes with the weights)


def _mlp_name(k: Mapping[str, Any], _config: Mapping[str, Any]) -> str:
    size = _SIZES.get((k["embed_dim"], k["depth"], k["num_heads"])) if "mlp_ratio" not in k else None
    shape = size or f"w{k['embed_dim']}_d{k['depth']}_h{k['num_heads']}" + (
        f"_mlp{name_token(k['mlp_ratio'])}" if "mlp_ratio" in k else "")
    extra = ("" if k["img_size"] == 518 else f"_{k['img_size']}") + ("" if k.get("qkv_bias", True) else "_noqkvbias")
    return f"vit_{shape}_patch{k['patch_size']}_dinov2_mlp{extra}"


def _mlp_timm_name(k: Mapping[str, Any]) -> str:
    """timm's entry of this size, else the one whose defaults the generated geometry overrides."""
    return f"vit_{_SIZES.get((k['embed_dim'], k['depth'], k['num_heads']), 'base')}_patch14_dinov2"


def _refuse_mlp(c: Mapping[str, Any]) -> str | None:
    if c.get("use_swiglu_ffn"):
        return "a SwiGLU DINOv2 of this size: TAO registers SwiGLU ViT-L/14 only, and timm's plain-MLP DINOv2 differs"
    if c.get("hidden_act", "gelu") != "gelu":
        return f"hidden_act {c.get('hidden_act')!r}: timm's DINOv2 uses exact GELU"
    return None


# HF's classifier consumes [CLS, mean(patch tokens)] (2*hidden); timm/TAO heads consume CLS only.
TASKS = {"classification": classifier(CLASSIFIER_HEAD, hf_features="pooler_output")}
# Plain-MLP DINOv2 under SegFormer / RT-DETR through the generated simple feature pyramid (catalog/_vit_pyramid.py);
# dinov2_with_registers (SwiGLU giant only) keeps classification.
PYRAMID_TASKS = {"segmentation": pyramid_segmentation(eps_default=1e-6),  # Dinov2Config.layer_norm_eps
                 "detection": pyramid_detection(eps_default=1e-6)}

FAMILIES = (
    Family(
        name="dinov2",
        model_types=("dinov2",),
        backbone_rules=BACKBONE_RULES,
        tasks={**TASKS, **PYRAMID_TASKS},
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
                    backbone_kwargs=_mlp_kwargs({"hidden_size": width, "num_hidden_layers": depth,
                                                 "num_attention_heads": heads, "patch_size": 14, "image_size": 518,
                                                 "mlp_ratio": 4}),
                )
                for (width, depth, heads), size in _SIZES.items()
            ),
        ),
        signature_defaults=DINOV2_DEFAULTS,
        # Other plain-MLP sizes: timm's DINOv2 VisionTransformer with the model's geometry.
        any_size=AnySize(
            strategy="timm_subclass",
            cls="timm.models.vision_transformer:VisionTransformer",
            kwargs=_mlp_kwargs,
            name=_mlp_name,
            num_features=lambda k: k["embed_dim"],
            timm_name=_mlp_timm_name,
            refuse=_refuse_mlp,
        ),
    ),
    Family(
        name="dinov2_with_registers",
        model_types=("dinov2_with_registers",),
        backbone_rules=BACKBONE_RULES,
        tasks=TASKS,
        default_image_size=518,
        variants=(
            Variant(
                "vit_giant_patch14_reg4_dinov2_swiglu",
                1536,
                {"hidden_size": 1536, "patch_size": 14, "num_register_tokens": 4, "use_swiglu_ffn": True},
            ),
        ),
    ),
)
