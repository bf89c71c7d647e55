"""DeiT (HF ``deit``) -> timm ``deit_*_distilled_patch16_*`` naming, for the generated DeiT backbones (TAO 7.3
has none). HF DeiT always has a distillation token next to CLS; the non-distilled hub checkpoints
(facebook/deit-*-patch16-224) are model_type vit and use the vit family."""

from typing import Any, Mapping

from scaffolder.catalog._types import AnySize, Family, KeyRules, T, Variant, classifier, rule
from scaffolder.catalog.vit import VIT_BACKBONE_RULES, VIT_DEFAULTS, VIT_SIZES, refuse_vit, vit_geometry, vit_shape_name

DEIT_BACKBONE_RULES = KeyRules(
    hf_prefixes=("deit.",),
    rules=(rule(r"embeddings\.distillation_token", "dist_token"), *VIT_BACKBONE_RULES.rules),
    ignore=(
        (r"embeddings\.mask_token", "masked-image-modeling token (DeiTForMaskedImageModeling only)"),
        (r"pooler\.dense\..*", "DeiTModel's tanh pooler; the classifiers read the CLS/distillation tokens"),
    ),
    tao_kwargs=VIT_BACKBONE_RULES.tao_kwargs,
)
DEIT_CLASSIFIER = classifier(
    rule(rf"cls_classifier\.{T}", "head.{t}"),  # DeiTForImageClassificationWithTeacher
    rule(rf"classifier\.{T}", "head.{t}"),  # DeiTForImageClassification (CLS head only)
    rule(rf"distillation_classifier\.{T}", "head_dist.{t}"),
    tao_head=r"head(_dist)?\..*",
    hf_features="tokens:0,1",  # HF averages the CLS and distillation heads' logits; timm averages the tokens
)


_CLS_ONLY = ["DeiTForImageClassification"]  # one classifier on the CLS token (catalog convention: name *_cls)
_TIMM = {("tiny", 224), ("small", 224), ("base", 224), ("base", 384)}  # timm's deit_*_distilled_patch16_* entries


def _kwargs(geometry: Mapping[str, Any]) -> dict[str, Any]:
    """timm VisionTransformerDistilled arguments (the generated module's BACKBONE_KWARGS)."""
    kwargs = {k: geometry[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads")}
    if geometry["mlp_ratio"] != 4:
        kwargs["mlp_ratio"] = geometry["mlp_ratio"]
    if not geometry["qkv_bias"]:
        kwargs["qkv_bias"] = False
    return {**kwargs, "dynamic_img_size": True}


def _name(k: Mapping[str, Any], cls_only: bool) -> str:
    shape = vit_shape_name({"mlp_ratio": 4, "qkv_bias": True, **k})
    bias = "" if k.get("qkv_bias", True) else "_noqkvbias"
    return f"deit_{shape}_distilled_patch{k['patch_size']}_{k['img_size']}{bias}{'_cls' if cls_only else ''}"


def _timm_name(k: Mapping[str, Any]) -> str:
    """timm's entry of this size, else the one whose defaults the generated geometry overrides."""
    size = VIT_SIZES.get((k["embed_dim"], k["depth"], k["num_heads"]))
    if (size, k["img_size"]) in _TIMM and k["patch_size"] == 16 and "mlp_ratio" not in k:
        return f"deit_{size}_distilled_patch16_{k['img_size']}"
    return "deit_base_distilled_patch16_224"


def _variants(suffix: str, signature_extra: dict) -> tuple[Variant, ...]:
    return tuple(
        Variant(
            _name(kwargs, bool(suffix)),
            width,
            {"hidden_size": width, "num_hidden_layers": 12, "num_attention_heads": heads,
             "intermediate_size": 4 * width, "patch_size": 16, "image_size": img, **signature_extra},
            strategy="timm_subclass",
            timm_name=_timm_name(kwargs),
            backbone_kwargs=kwargs,
        )
        for size, width, heads, img in (("tiny", 192, 3, 224), ("small", 384, 6, 224), ("base", 768, 12, 224),
                                        ("base", 768, 12, 384))
        for kwargs in (_kwargs({"img_size": img, "patch_size": 16, "embed_dim": width, "depth": 12, "num_heads": heads,
                                "mlp_ratio": 4.0, "qkv_bias": True}),)
    )


def _cls_only(c: Mapping[str, Any]) -> bool:
    return list(c.get("architectures") or []) == _CLS_ONLY


FAMILY = Family(
    name="deit",
    model_types=("deit",),
    backbone_rules=DEIT_BACKBONE_RULES,
    tasks={"classification": DEIT_CLASSIFIER},
    notes="HF DeiT always has a distillation token next to CLS (timm VisionTransformerDistilled); its "
    "non-distilled hub checkpoints (facebook/deit-*-patch16-224) are model_type vit and use the vit family",
    missing_reason="TAO 7.3 has no DeiT backbone",
    variants=(
        # DeiTForImageClassification (e.g. a Trainer fine-tune): one classifier on the CLS token.
        *_variants("_cls", {"architectures": ["DeiTForImageClassification"]}),
        # DeiTForImageClassificationWithTeacher (the facebook/deit-*-distilled-* checkpoints) and DeiTModel:
        # CLS and distillation heads, logits averaged -- timm's VisionTransformerDistilled as is.
        *_variants("", {}),
    ),
    signature_defaults=VIT_DEFAULTS,  # DeiTConfig's defaults are ViTConfig's
    # Other sizes: the same timm VisionTransformerDistilled with the model's geometry.
    any_size=AnySize(
        strategy="timm_subclass",
        cls="timm.models.deit:VisionTransformerDistilled",
        kwargs=lambda c: _kwargs(vit_geometry(c)),
        name=lambda k, c: _name(k, _cls_only(c)),
        num_features=lambda k: k["embed_dim"],
        timm_name=_timm_name,
        refuse=refuse_vit,
    ),
)
