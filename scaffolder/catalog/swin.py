"""Swin (HF ``swin``) -> TAO backbone_v2 ``swin_*``, adapted to compute what HF Swin computes."""

from scaffolder.catalog._types import CLASSIFIER_HEAD, QKV, Family, KeyRules, T, classifier, rule, variant

_BLOCK = r"encoder\.layers\.(?P<s>\d+)\.blocks\.(?P<b>\d+)"
_PYRAMID_NORM_WHY = (
    "TAO's feature-pyramid LayerNorms of stages 0-2 have no HF counterpart "
    "(HF SwinModel normalises only the last stage); identity init, unused by classification"
)

EXPORT_NOTE = (
    "torch 2.13: TAO's Swin fails ONNX export with a TorchScript shape-inference assert "
    "(window partition reshapes); export on torch <= 2.11 (TAO's containers / the GPU host) "
    "or skip the export stage on this torch"
)

FAMILY = Family(
    name="swin",
    model_types=("swin",),
    backbone_rules=KeyRules(
        hf_prefixes=("swin.",),
        rules=(
            rule(rf"embeddings\.patch_embeddings\.projection\.{T}", "patch_embed.proj.{t}"),
            rule(rf"embeddings\.norm\.{T}", "patch_embed.norm.{t}"),
            rule(rf"{_BLOCK}\.layernorm_before\.{T}", "layers.{s}.blocks.{b}.norm1.{t}"),
            rule(
                rf"{_BLOCK}\.attention\.self\.(?P<m>relative_position_bias_table|relative_position_index)",
                "layers.{s}.blocks.{b}.attn.{m}",
            ),
            rule(rf"{_BLOCK}\.attention\.self\.(?P<part>query|key|value)\.{T}", "layers.{s}.blocks.{b}.attn.qkv.{t}",
                 concat=QKV),
            rule(rf"{_BLOCK}\.attention\.output\.dense\.{T}", "layers.{s}.blocks.{b}.attn.proj.{t}"),
            rule(rf"{_BLOCK}\.layernorm_after\.{T}", "layers.{s}.blocks.{b}.norm2.{t}"),
            rule(rf"{_BLOCK}\.intermediate\.dense\.{T}", "layers.{s}.blocks.{b}.mlp.fc1.{t}"),
            rule(rf"{_BLOCK}\.output\.dense\.{T}", "layers.{s}.blocks.{b}.mlp.fc2.{t}"),
            rule(r"encoder\.layers\.(?P<s>\d+)\.downsample\.(?P<m>reduction|norm)\.(?P<t>weight|bias)",
                 "layers.{s}.downsample.{m}.{t}"),
            # HF's final LayerNorm normalises the last stage's output: TAO calls that norm3 (its feature-pyramid
            # norm of stage 3) and, when built with post_norm=True, post_norm (applied before pooling).
            rule(rf"layernorm\.{T}", ("norm3.{t}", "post_norm.{t}")),
        ),
        ignore=((r"embeddings\.mask_token", "masked-image-modeling token (SwinForMaskedImageModeling only)"),),
        fill=((r"norm[0-2]\.weight", 1.0, _PYRAMID_NORM_WHY), (r"norm[0-2]\.bias", 0.0, _PYRAMID_NORM_WHY)),
        tao_computed=(r"layers\.\d+\.blocks\.\d+\.attn\.relative_position_index",),
        tao_kwargs=(
            ("img_size", lambda c: (c["image_size"], c["image_size"])),
            ("patch_size", lambda c: c["patch_size"]),
            ("embed_dim", lambda c: c["embed_dim"]),
            ("depths", lambda c: tuple(c["depths"])),
            ("num_heads", lambda c: tuple(c["num_heads"])),
            ("window_size", lambda c: c["window_size"]),
            ("mlp_ratio", lambda c: c["mlp_ratio"]),
        ),
    ),
    tasks={
        "classification": classifier(CLASSIFIER_HEAD),
    },
    export_notes=(EXPORT_NOTE,),
    # TAO's factories build post_norm=False and shift windows even where the map equals the window.
    hf_adaptations=("swin_final_norm", "swin_no_shift_at_window"),
    variants=(
        variant("swin_tiny_patch4_window7_224", 768, embed_dim=96, depths=[2, 2, 6, 2], window_size=7),
        variant("swin_small_patch4_window7_224", 768, embed_dim=96, depths=[2, 2, 18, 2], window_size=7),
        variant("swin_base_patch4_window7_224", 1024, embed_dim=128, depths=[2, 2, 18, 2], window_size=7),
        variant("swin_base_patch4_window12_384", 1024, embed_dim=128, depths=[2, 2, 18, 2], window_size=12),
        variant("swin_large_patch4_window7_224", 1536, embed_dim=192, depths=[2, 2, 18, 2], window_size=7),
        variant("swin_large_patch4_window12_384", 1536, embed_dim=192, depths=[2, 2, 18, 2], window_size=12),
    ),
)
