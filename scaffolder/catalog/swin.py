"""Swin (HF ``swin``) -> TAO backbone_v2 ``swin_*``, adapted to compute what HF Swin computes.

TAO registers Swin T/S/B/L at 224 px (window 7) and B/L at 384 px (window 12); other window or image sizes and
other widths/depths get a generated backbone_v2 entry building TAO's own SwinTransformer with the model's
geometry (the same key rules and HF adaptations apply).
"""

from typing import Any, Mapping

from scaffolder.catalog._types import CLASSIFIER_HEAD, QKV, AnySize, Family, KeyRules, T, classifier, name_token
from scaffolder.catalog._types import detection_backbone, rule, square_image_size, under_segformer, variant

_BLOCK = r"encoder\.layers\.(?P<s>\d+)\.blocks\.(?P<b>\d+)"
_PYRAMID_NORM_WHY = (
    "TAO's feature-pyramid LayerNorms of stages 0-2 have no HF counterpart "
    "(HF SwinModel normalises only the last stage); unit weight, zero bias: unused by classification, under "
    "SegFormer a plain LayerNorm of stages 0-2 that trains from there"
)

EXPORT_NOTE = (
    "torch 2.13: TAO's Swin fails ONNX export with a TorchScript shape-inference assert "
    "(window partition reshapes); export on torch <= 2.11 (TAO's containers / the GPU host) "
    "or skip the export stage on this torch"
)

# timm/TAO Swin size names: (embed_dim, depths, num_heads) -> name
SWIN_SIZES = {
    (96, (2, 2, 6, 2), (3, 6, 12, 24)): "tiny",
    (96, (2, 2, 18, 2), (3, 6, 12, 24)): "small",
    (128, (2, 2, 18, 2), (4, 8, 16, 32)): "base",
    (192, (2, 2, 18, 2), (6, 12, 24, 48)): "large",
}
_HEADS = {96: [3, 6, 12, 24], 128: [4, 8, 16, 32], 192: [6, 12, 24, 48]}


def _swin_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    size = square_image_size(c)
    return {
        "img_size": [size, size],
        "patch_size": int(c["patch_size"]),
        "embed_dim": int(c["embed_dim"]),
        "depths": [int(d) for d in c["depths"]],
        "num_heads": [int(h) for h in c["num_heads"]],
        "window_size": int(c["window_size"]),
        "mlp_ratio": float(c["mlp_ratio"]),
        "qkv_bias": bool(c["qkv_bias"]),
    }


def _swin_name(k: Mapping[str, Any], _config: Mapping[str, Any]) -> str:
    size = SWIN_SIZES.get((k["embed_dim"], tuple(k["depths"]), tuple(k["num_heads"])))
    shape = size or f"w{k['embed_dim']}_d{name_token(k['depths'])}_h{name_token(k['num_heads'])}"
    extra = "" if k["mlp_ratio"] == 4 else f"_mlp{name_token(k['mlp_ratio'])}"
    extra += "" if k["qkv_bias"] else "_noqkvbias"
    return f"swin_{shape}_patch{k['patch_size']}_window{k['window_size']}_{k['img_size'][0]}{extra}"


def _refuse_swin(c: Mapping[str, Any]) -> str | None:
    if c.get("use_absolute_embeddings"):
        return "use_absolute_embeddings: the catalog's Swin rules have no absolute position embedding"
    if len(c["depths"]) != 4 or len(c["num_heads"]) != 4:
        return f"depths {c['depths']} / num_heads {c['num_heads']}: TAO's SwinTransformer has 4 stages"
    if c.get("hidden_act", "gelu") != "gelu":
        return f"hidden_act {c.get('hidden_act')!r}: TAO's SwinTransformer uses exact GELU"
    return None


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
        # backbone_v2 Swin's forward_feature_pyramid: stage i's output *before* patch merging (strides 4..32,
        # widths embed_dim * 2**i) through TAO's norm{i}. HF SwinModel's hidden_states are taken *after* merging,
        # so parity hooks HF's stages: stage 3 through HF's final layernorm (= norm3), stages 0-2 through the
        # unit LayerNorm norm0-2 start as (they have no HF counterpart, see the fill rule).
        "segmentation": under_segformer(lambda c: [int(c["embed_dim"]) * 2**i for i in range(len(c["depths"]))],
                                        "stage_outputs:unit,unit,unit,layernorm",
                                        # post_norm only normalises the pooled feature, which SegFormer never uses
                                        skip_adaptations=("swin_final_norm",)),
        # TAO's RT-DETR has no Swin: the port generates a registered pyramid wrapper (scaffolder/convert/swin_fpn.py)
        "detection": detection_backbone(
            ignore=((r"classifier\..*", "the ImageNet classifier; RT-DETR's heads are trained fresh"),),
            tao_backbone_prefix="body.", backbone_strategy="generated",
            backbone_reason="TAO's RTDETR_BACKBONE_REGISTRY has no Swin: the port's model/backbone.py registers "
                            "{backbone}, stages 1-3 (strides 8/16/32) of TAO's backbone_v2 {backbone} ({geometry})",
            # levels 1-2: the stage outputs before backbone_v2's fresh norm1/norm2 (HF's downsampling inputs);
            # level 3: after HF's final layernorm = TAO's norm3
            hf_features="feature_pyramid:hf=encoder.layers.1.downsample<,encoder.layers.2.downsample<,layernorm>;"
                        "tao=body.norm1<,body.norm2<,body.norm3>",
            notes="backbone_v2's per-level LayerNorms norm1/norm2 (strides 8/16) have no HF counterpart (HF "
                  "normalises only the last stage): they start as identity (weight 1, bias 0) and train with the "
                  "detector; norm3 is HF's final layernorm. hf_parity compares levels 1-2 before norm1/norm2 and "
                  "level 3 after the final layernorm.",
            # measured: the swin_tiny RT-DETR port exports on torch 2.13 (640 px; ONNX Runtime vs PyTorch 2.4e-6)
            export_notes=()),
    },
    export_notes=(EXPORT_NOTE,),
    # TAO's factories build post_norm=False and shift windows even where the map equals the window.
    hf_adaptations=("swin_final_norm", "swin_no_shift_at_window"),
    # TAO's factories fix the image size (attention masks and relative positions are built for it).
    variants=tuple(
        variant(f"swin_{size}_patch4_window{window}_{img}", 8 * embed, embed_dim=embed, depths=list(depths),
                num_heads=_HEADS[embed], window_size=window, image_size=img, patch_size=4, mlp_ratio=4.0,
                qkv_bias=True)
        for (embed, depths, _heads), size in SWIN_SIZES.items()
        for window, img in ((7, 224), (12, 384))
        if window == 7 or size in ("base", "large")
    ),
    # SwinConfig's defaults, for config.json files that omit them
    signature_defaults={"image_size": 224, "patch_size": 4, "embed_dim": 96, "depths": [2, 2, 6, 2],
                        "num_heads": [3, 6, 12, 24], "window_size": 7, "mlp_ratio": 4.0, "qkv_bias": True},
    any_size=AnySize(
        strategy="tao_class",
        cls="nvidia_tao_pytorch.cv.backbone_v2.swin:SwinTransformer",
        kwargs=_swin_kwargs,
        name=_swin_name,
        num_features=lambda k: k["embed_dim"] * 2 ** (len(k["depths"]) - 1),
        refuse=_refuse_swin,
    ),
)
