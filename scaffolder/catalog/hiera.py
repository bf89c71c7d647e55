"""Hiera (HF ``hiera``) -> TAO backbone_v2 ``hiera_*``."""

from scaffolder.catalog._types import Family, KeyRules, T, classifier, rule, under_segformer, variant

_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"

FAMILY = Family(
    name="hiera",
    model_types=("hiera",),
    backbone_rules=KeyRules(
        hf_prefixes=("hiera.",),
        rules=(
            rule(r"embeddings\.position_embeddings", "pos_embed"),
            rule(rf"embeddings\.patch_embeddings\.projection\.{T}", "patch_embed.proj.{t}"),
            rule(rf"{_LAYER}\.layernorm_before\.{T}", "blocks.{flat:s,l}.norm1.{t}"),
            rule(rf"{_LAYER}\.layernorm_after\.{T}", "blocks.{flat:s,l}.norm2.{t}"),
            rule(rf"{_LAYER}\.(?P<m>attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2|proj)\.{T}", "blocks.{flat:s,l}.{m}.{t}"),
        ),
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
    ),
    tasks={
        "classification": classifier(
            rule(rf"pooler\.layernorm\.{T}", "head.norm.{t}"),
            rule(rf"classifier\.{T}", "head.fc.{t}"),
            tao_head=r"head\.fc\..*",
        ),
        # backbone_v2 Hiera's forward_feature_pyramid is timm's forward_intermediates (NCHW, no norm): the 4 stage
        # ends, rerolled to maps = HF's reshaped_hidden_states[1:] (NHWC; 0 is the patch embedding).
        "segmentation": under_segformer(
            lambda c: [int(c["embed_dim"] * float(c.get("embed_dim_multiplier", 2.0)) ** i)
                       for i in range(len(c["depths"]))],
            "reshaped_hidden_states:1,2,3,4:nhwc",
            rules=(rule(rf"pooler\.layernorm\.{T}", "backbone.head.norm.{t}"),),
        ),
    },
    variants=(
        variant("hiera_tiny_224", 768, embed_dim=96, depths=[1, 2, 7, 2]),
        variant("hiera_small_224", 768, embed_dim=96, depths=[1, 2, 11, 2]),
        variant("hiera_base_224", 768, embed_dim=96, depths=[2, 3, 16, 3]),
        variant("hiera_base_plus_224", 896, embed_dim=112, depths=[2, 3, 16, 3]),
        variant("hiera_large_224", 1152, embed_dim=144, depths=[2, 6, 36, 4]),
        variant("hiera_huge_224", 2048, embed_dim=256, depths=[2, 6, 36, 4]),
    ),
)
