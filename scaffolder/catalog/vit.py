"""ViT (HF ``vit``) -> TAO backbone_v2 ``vit_*`` (timm VisionTransformer naming)."""

from scaffolder.catalog._types import HALF_MEAN, HALF_STD, QKV, CLASSIFIER_HEAD, Family, KeyRules, T, classifier
from scaffolder.catalog._types import rule, variant

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

FAMILY = Family(
    name="vit",
    model_types=("vit",),
    backbone_rules=VIT_BACKBONE_RULES,
    tasks={"classification": classifier(CLASSIFIER_HEAD)},
    mean=HALF_MEAN,
    std=HALF_STD,
    variants=(
        variant("vit_base_patch16", 768, hidden_size=768, patch_size=16, num_hidden_layers=12),
        variant("vit_large_patch16", 1024, hidden_size=1024, patch_size=16, num_hidden_layers=24),
        variant("vit_huge_patch14", 1280, hidden_size=1280, patch_size=14, num_hidden_layers=32),
    ),
)
