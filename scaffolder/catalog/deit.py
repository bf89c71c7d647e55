"""DeiT (HF ``deit``) -> timm ``deit_*_distilled_patch16_*`` naming, for the generated DeiT backbones (TAO 7.3
has none). HF DeiT always has a distillation token next to CLS; the non-distilled hub checkpoints
(facebook/deit-*-patch16-224) are model_type vit and use the vit family."""

from scaffolder.catalog._types import Family, KeyRules, T, Variant, classifier, rule
from scaffolder.catalog.vit import VIT_BACKBONE_RULES

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


def _variants(suffix: str, signature_extra: dict) -> tuple[Variant, ...]:
    return tuple(
        Variant(
            f"deit_{size}_distilled_patch16_{img}{suffix}",
            width,
            {"hidden_size": width, "num_hidden_layers": 12, "num_attention_heads": heads,
             "intermediate_size": 4 * width, "patch_size": 16, "image_size": img, **signature_extra},
            strategy="timm_subclass",
            timm_name=f"deit_{size}_distilled_patch16_{img}",
        )
        for size, width, heads, img in (("tiny", 192, 3, 224), ("small", 384, 6, 224), ("base", 768, 12, 224),
                                        ("base", 768, 12, 384))
    )


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
)
