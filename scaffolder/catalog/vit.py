"""ViT (HF ``vit``) -> TAO backbone_v2 ``vit_*`` (timm VisionTransformer naming).

TAO registers ViT-B/16, L/16 and H/14 at 224 px; any other size (ViT-Ti/S, /32, 384 px, a 2-layer toy, and the
non-distilled DeiT checkpoints, which are model_type vit) gets a generated backbone_v2 entry that builds TAO's own
VisionTransformer (a timm VisionTransformer subclass) with the model's geometry.
"""

from typing import Any, Mapping

from scaffolder.catalog._types import HALF_MEAN, HALF_STD, QKV, CLASSIFIER_HEAD, AnySize, Family, KeyRules, T
from scaffolder.catalog._types import classifier, mlp_ratio, name_token, rule, square_image_size, variant
from scaffolder.catalog._vit_pyramid import pyramid_detection, pyramid_segmentation

_LAYER = r"encoder\.layer\.(?P<i>\d+)"

# Also the base of DeiT's rules (deit.py): the same encoder under another prefix.
VIT_BACKBONE_RULES = KeyRules(
    hf_prefixes=("vit.",),
    rules=(
        rule(r"embeddings\.cls_token", "cls_token"),
        rule(r"embeddings\.position_embeddings", "pos_embed"),
        rule(rf"embeddings\.patch_embeddings\.projection\.{T}", "patch_embed.proj.{t}"),
        rule(rf"{_LAYER}\.attention\.attention\.(?P<part>query|key|value)\.{T}", "blocks.{i}.attn.qkv.{t}", concat=QKV),
        rule(rf"{_LAYER}\.attention\.output\.dense\.{T}", "blocks.{i}.attn.proj.{t}"),
        rule(rf"{_LAYER}\.layernorm_before\.{T}", "blocks.{i}.norm1.{t}"),
        rule(rf"{_LAYER}\.layernorm_after\.{T}", "blocks.{i}.norm2.{t}"),
        rule(rf"{_LAYER}\.intermediate\.dense\.{T}", "blocks.{i}.mlp.fc1.{t}"),
        rule(rf"{_LAYER}\.output\.dense\.{T}", "blocks.{i}.mlp.fc2.{t}"),
        rule(rf"layernorm\.{T}", "norm.{t}"),
    ),
    ignore=((r"pooler\.dense\..*", "ViTModel's tanh pooler; ViTForImageClassification classifies the CLS token"),),
    tao_kwargs=(
        ("img_size", lambda c: c["image_size"]),
        ("patch_size", lambda c: c["patch_size"]),
        ("embed_dim", lambda c: c["hidden_size"]),
        ("depth", lambda c: c["num_hidden_layers"]),
        ("num_heads", lambda c: c["num_attention_heads"]),
        ("mlp_ratio", lambda c: c["intermediate_size"] / c["hidden_size"]),
    ),
)

# timm's ViT size names: (embed_dim, depth, num_heads) -> name (mlp_ratio 4)
VIT_SIZES = {(192, 12, 3): "tiny", (384, 12, 6): "small", (768, 12, 12): "base", (1024, 24, 16): "large",
             (1280, 32, 16): "huge"}
# ViTConfig's defaults, for config.json files that omit them
VIT_DEFAULTS = {"image_size": 224, "patch_size": 16, "hidden_size": 768, "num_hidden_layers": 12,
                "num_attention_heads": 12, "intermediate_size": 3072, "qkv_bias": True}


def vit_geometry(c: Mapping[str, Any]) -> dict[str, Any]:
    """timm VisionTransformer arguments of an HF ViT/DeiT config (also DeiT's generated sizes)."""
    return {
        "img_size": square_image_size(c),
        "patch_size": int(c["patch_size"]),
        "embed_dim": int(c["hidden_size"]),
        "depth": int(c["num_hidden_layers"]),
        "num_heads": int(c["num_attention_heads"]),
        "mlp_ratio": mlp_ratio(c["intermediate_size"], c["hidden_size"]),
        "qkv_bias": bool(c.get("qkv_bias", True)),
    }


def vit_shape_name(k: Mapping[str, Any]) -> str:
    """"small" for timm's named sizes, else the width/depth/heads (and a non-4 MLP ratio) spelled out."""
    size = VIT_SIZES.get((k["embed_dim"], k["depth"], k["num_heads"])) if k["mlp_ratio"] == 4 else None
    if size:
        return size
    mlp = "" if k["mlp_ratio"] == 4 else f"_mlp{name_token(k['mlp_ratio'])}"
    return f"w{k['embed_dim']}_d{k['depth']}_h{k['num_heads']}{mlp}"


def refuse_vit(c: Mapping[str, Any]) -> str | None:
    if c.get("hidden_act", "gelu") != "gelu":
        return f"hidden_act {c.get('hidden_act')!r}: TAO's VisionTransformer uses exact GELU"
    if int(c["hidden_size"]) % int(c["num_attention_heads"]):
        return f"hidden_size {c['hidden_size']} is not a multiple of num_attention_heads {c['num_attention_heads']}"
    return None


def _tao_vit_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    return {**vit_geometry(c), "dynamic_img_size": True, "final_norm": True}  # as TAO's vit_* factories


def _tao_vit_name(k: Mapping[str, Any], _config: Mapping[str, Any]) -> str:
    bias = "" if k["qkv_bias"] else "_noqkvbias"
    return f"vit_{vit_shape_name(k)}_patch{k['patch_size']}_{k['img_size']}{bias}"


FAMILY = Family(
    name="vit",
    model_types=("vit",),
    backbone_rules=VIT_BACKBONE_RULES,
    tasks={
        "classification": classifier(CLASSIFIER_HEAD),
        # under SegFormer / RT-DETR through the generated simple feature pyramid (catalog/_vit_pyramid.py)
        "segmentation": pyramid_segmentation(eps_default=1e-12),  # ViTConfig.layer_norm_eps
        "detection": pyramid_detection(eps_default=1e-12),
    },
    mean=HALF_MEAN,
    std=HALF_STD,
    # TAO's factories build 224 px position embeddings (no img_size argument reaches them from the spec).
    variants=tuple(
        variant(name, width, hidden_size=width, patch_size=patch, num_hidden_layers=depth, num_attention_heads=heads,
                intermediate_size=4 * width, image_size=224, qkv_bias=True)
        for name, width, patch, depth, heads in (("vit_base_patch16", 768, 16, 12, 12),
                                                 ("vit_large_patch16", 1024, 16, 24, 16),
                                                 ("vit_huge_patch14", 1280, 14, 32, 16))
    ),
    signature_defaults=VIT_DEFAULTS,
    any_size=AnySize(
        strategy="tao_class",
        cls="nvidia_tao_pytorch.cv.backbone_v2.vit:VisionTransformer",
        kwargs=_tao_vit_kwargs,
        name=_tao_vit_name,
        num_features=lambda k: k["embed_dim"],
        refuse=refuse_vit,
    ),
)
