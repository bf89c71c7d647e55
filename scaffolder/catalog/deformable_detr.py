"""Deformable DETR (HF ``deformable_detr``, single stage) -> TAO's ``deformable_detr`` (``DDModel``).

TAO's deformable_detr has the same layout as HF's (its resnet_50 backbone has HF's timm resnet50 keys), with
two renames that matter: TAO's decoder layer runs cross-attention first (``norm1``) and self-attention second
(``norm2``), and the box-refine heads appear both in the transformer and at the top level. TAO has no two-stage
option, so only ``two_stage: false`` checkpoints are representable. Class ids follow TAO's D-DETR convention:
label 0 is background, ``num_classes`` = max category id + 1 (HF's COCO checkpoints: 91, id 0 "N/A").

Box refinement amplifies fp32 rounding layer by layer (measured with random weights: 7.9e-4 logits in fp32,
7e-6 in fp64, team notes §3b), so its parity gate is fp64.

A D-DETR port renders ``blueprints/detection`` with ``task_params.detector: deformable_detr``: TAO's DDModel,
DeformableDETRModel (criterion, postprocess, COCO mAP) and D-DETR data module, the HF geometry below, evaluation
and export at the processor's size (``FixedResize``), ImageNet mean/std from the processor in every spec.
"""

from __future__ import annotations

from typing import Any, Mapping

from scaffolder.catalog._types import T, Family, KeyRules, TaskRules, Variant, rule
from scaffolder.catalog.detection_params import processor_size
from scaffolder.errors import UnsupportedModelError

_QKV = ("q_proj", "k_proj", "v_proj")
_ENC = r"model\.encoder\.layers\.(?P<l>\d+)"
_DEC = r"model\.decoder\.layers\.(?P<l>\d+)"
_TE, _TD = "model.transformer.encoder.layers.{l}", "model.transformer.decoder.layers.{l}"
_MSDA = r"(?P<m>sampling_offsets|attention_weights|value_proj|output_proj)"

BACKBONE_RULES = KeyRules(  # HF's timm resnet50 and TAO's resnet_50 share their key names
    hf_prefixes=("model.backbone.model.", "model.backbone.conv_encoder.model."),
    rules=(rule(r"(?P<rest>(conv1|bn1|layer[1-4])\..*)", "{rest}"),),
    fill=((r".*num_batches_tracked", 0.0,
           "HF freezes the backbone BatchNorms (no batch counter); TAO builds plain BatchNorm2d when exporting"),),
)
DETECTOR_RULES = (
    rule(r"model\.input_proj\.(?P<rest>.*)", "model.input_proj.{rest}"),
    rule(r"model\.level_embed", "model.transformer.level_embed"),
    rule(rf"model\.reference_points\.{T}", "model.transformer.reference_points.{t}"),
    rule(r"model\.query_position_embeddings\.weight", "model.query_embed.weight"),
    rule(rf"{_ENC}\.self_attn\.{_MSDA}\.{T}", _TE + ".self_attn.{m}.{t}"),
    rule(rf"{_ENC}\.self_attn_layer_norm\.{T}", _TE + ".norm1.{t}"),
    rule(rf"{_ENC}\.(mlp\.)?fc(?P<f>[12])\.{T}", _TE + ".linear{f}.{t}"),
    rule(rf"{_ENC}\.final_layer_norm\.{T}", _TE + ".norm2.{t}"),
    rule(rf"{_DEC}\.self_attn\.(?P<part>q_proj|k_proj|v_proj)\.{T}", _TD + ".self_attn.in_proj_{t}", _QKV),
    rule(rf"{_DEC}\.self_attn\.(o_proj|out_proj)\.{T}", _TD + ".self_attn.out_proj.{t}"),
    rule(rf"{_DEC}\.self_attn_layer_norm\.{T}", _TD + ".norm2.{t}"),  # TAO: cross-attn first (norm1)
    rule(rf"{_DEC}\.encoder_attn\.{_MSDA}\.{T}", _TD + ".cross_attn.{m}.{t}"),
    rule(rf"{_DEC}\.encoder_attn_layer_norm\.{T}", _TD + ".norm1.{t}"),
    rule(rf"{_DEC}\.(mlp\.)?fc(?P<f>[12])\.{T}", _TD + ".linear{f}.{t}"),
    rule(rf"{_DEC}\.final_layer_norm\.{T}", _TD + ".norm3.{t}"),
    # Box refinement: the decoder's per-layer box heads (TAO keeps them in the transformer and at the top level).
    # HF ties its top-level heads (transformers 5: class_embed.N and, without refinement, bbox_embed.N to index 0;
    # with refinement bbox_embed to model.decoder.bbox_embed); rows list every name of a tied tensor
    # (TaskRules.hf_tied_aliases), so checkpoints saved by any version convert.
    rule(r"model\.decoder\.bbox_embed\.(?P<rest>.*)", "model.transformer.decoder.bbox_embed.{rest}"),
    rule(r"bbox_embed\.(?P<rest>.*)", "model.bbox_embed.{rest}"),
    rule(r"class_embed\.(?P<rest>.*)", "model.class_embed.{rest}"),
)


# HF num_feature_levels -> TAO return_interm_indices: HF takes timm stages 2-4 (layer2..layer4) and adds
# num_feature_levels - 3 stride-2 convs; TAO's index i is layer{i+1} and index 4 its one extra conv
# (deformable_detr/model/build_nn_model.py). Other level counts have no TAO equivalent.
_LEVELS = {3: [1, 2, 3], 4: [1, 2, 3, 4]}
# What TAO's DDModel hard-codes (build_nn_model.py: activation="relu", PositionEmbeddingSine, one nhead and one
# dim_feedforward for encoder and decoder).
_TAO_FIXED = {"activation_function": "relu", "position_embedding_type": "sine", "dilation": False}
_FIX = "choose a checkpoint with TAO's Deformable DETR geometry (SenseTime/deformable-detr, ...-with-box-refine)"
# HF label 0 of a COCO-style detector is a placeholder ("N/A"): TAO's D-DETR convention, 0 = background.
_BACKGROUND = {"n/a", "na", "background", "__background__", "bg", "no object", "none", ""}


def _backbone_name(config: Mapping[str, Any]) -> str | None:
    """The timm backbone of an HF Deformable DETR config, or None when it is not a timm backbone."""
    nested = config.get("backbone_config")
    if isinstance(nested, Mapping):
        return str(nested.get("backbone")) if nested.get("model_type") == "timm_backbone" else None
    if config.get("use_timm_backbone", True):
        return str(config.get("backbone") or "resnet50")
    return None


def first_category_id(config: Mapping[str, Any]) -> int:
    """1 when HF label 0 is a background placeholder (COCO checkpoints: "N/A") or unnamed, else 0."""
    labels = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    name = labels.get(0)
    if name is None or name.strip().lower() in _BACKGROUND or name.startswith("LABEL_"):
        return 1
    return 0


def plan_params(config: Mapping[str, Any], pre: Mapping[str, Any]) -> dict[str, Any]:
    """The port's geometry on TAO's deformable_detr; refuses what TAO's DDModel cannot build."""
    if config.get("two_stage"):
        raise UnsupportedModelError(
            "deformable_detr with two_stage=true: TAO's deformable_detr has no two-stage option "
            "(its config has with_box_refine but no two_stage flag), so the encoder proposals cannot be built",
            "use a single-stage checkpoint (SenseTime/deformable-detr, ...-with-box-refine) or port the backbone "
            "with --task detection")
    backbone = _backbone_name(config)
    if backbone != "resnet50":
        raise UnsupportedModelError(
            f"deformable_detr with backbone {backbone or 'a non-timm backbone'!r}: TAO's deformable_detr builds "
            "resnet_50 (its torchvision layout, HF's timm resnet50 keys) and gc_vit only", _FIX)
    for key, tao_value in _TAO_FIXED.items():
        if config.get(key, tao_value) != tao_value:
            raise UnsupportedModelError(f"deformable_detr with {key}={config.get(key)!r}: TAO's DDModel fixes it "
                                        f"to {tao_value!r} (build_nn_model.py)", _FIX)
    for enc, dec, what in (("encoder_attention_heads", "decoder_attention_heads", "nheads"),
                           ("encoder_ffn_dim", "decoder_ffn_dim", "dim_feedforward")):
        if int(config.get(enc, 8 if "heads" in enc else 1024)) != int(config.get(dec, 8 if "heads" in dec else 1024)):
            raise UnsupportedModelError(f"deformable_detr with {enc}={config.get(enc)} and {dec}={config.get(dec)}: "
                                        f"TAO's DDModel has one {what} for the encoder and the decoder", _FIX)
    levels = int(config.get("num_feature_levels", 4))
    if levels not in _LEVELS:
        raise UnsupportedModelError(
            f"deformable_detr with num_feature_levels={levels}: TAO's backbone levels (return_interm_indices) "
            f"reproduce HF's only for {sorted(_LEVELS)} levels (timm stages 2-4 plus extra stride-2 convs)", _FIX)
    queries = int(config.get("num_queries", 300))
    labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 91))
    return {
        "detector": "deformable_detr",
        "convert_scope": "model",
        "eval_spatial_size": processor_size(pre, 800),  # evaluate/inference FixedResize == export size
        "num_queries": queries,
        # HF's post_process_object_detection and TAO's D-DETR module keep the top 100 (of queries x classes)
        "num_select": min(100, queries * labels),
        "hidden_dim": int(config.get("d_model", 256)),
        "nheads": int(config.get("encoder_attention_heads", 8)),
        "enc_layers": int(config.get("encoder_layers", 6)),
        "dec_layers": int(config.get("decoder_layers", 6)),
        "dim_feedforward": int(config.get("encoder_ffn_dim", 1024)),
        "num_feature_levels": levels,
        "return_interm_indices": list(_LEVELS[levels]),
        "with_box_refine": bool(config.get("with_box_refine", False)),
        "enc_n_points": int(config.get("encoder_n_points", 4)),
        "dec_n_points": int(config.get("decoder_n_points", 4)),
        "dropout_ratio": float(config.get("dropout", 0.1)),
        "first_category_id": first_category_id(config),
    }


FAMILY = Family(
    name="deformable_detr",
    model_types=("deformable_detr",),
    backbone_rules=BACKBONE_RULES,
    default_image_size=800,
    notes="single stage only (two_stage false); with_box_refine maps to model.with_box_refine",
    reuse_reason="TAO's deformable_detr builds {backbone} itself (cv/deformable_detr/model/resnet.py, HF's timm "
                 "resnet50 key names)",
    tasks={
        "detection": TaskRules(
            rules=DETECTOR_RULES,
            tao_backbone_prefix="model.backbone.0.body.",
            hf_tied_aliases=True,
            tao_head=r"model\.class_embed\..*",
            hf_features="detections_fp64",
            plan_params=plan_params,
        ),
    },
    variants=(Variant(backbone="resnet_50", num_features=2048, signature={}, strategy="reuse"),),
)
