"""Deformable DETR (HF ``deformable_detr``, single stage) -> TAO's ``deformable_detr`` (``DDModel``).

TAO's deformable_detr has the same layout as HF's (its resnet_50 backbone has HF's timm resnet50 keys), with
two renames that matter: TAO's decoder layer runs cross-attention first (``norm1``) and self-attention second
(``norm2``), and the box-refine heads appear both in the transformer and at the top level. TAO has no two-stage
option, so only ``two_stage: false`` checkpoints are representable. Class ids follow TAO's D-DETR convention:
label 0 is background, ``num_classes`` = max category id + 1 (HF's COCO checkpoints: 91, id 0 "N/A").

Box refinement amplifies fp32 rounding layer by layer (measured with random weights: 7.9e-4 logits in fp32,
7e-6 in fp64, team notes §3b), so its parity gate is fp64.
"""

from __future__ import annotations

from typing import Any, Mapping

from scaffolder.catalog._types import T, Family, KeyRules, TaskRules, Variant, rule
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
    rule(r"model\.decoder\.bbox_embed\.(?P<rest>.*)",
         ("model.transformer.decoder.bbox_embed.{rest}", "model.bbox_embed.{rest}")),
    rule(r"class_embed\.(?P<rest>.*)", "model.class_embed.{rest}"),
)


def plan_params(config: Mapping[str, Any], pre: Mapping[str, Any]) -> dict[str, Any]:
    if config.get("two_stage"):
        raise UnsupportedModelError(
            "deformable_detr with two_stage=true: TAO's deformable_detr has no two-stage option "
            "(its config has with_box_refine but no two_stage flag), so the encoder proposals cannot be built",
            "use a single-stage checkpoint (SenseTime/deformable-detr, ...-with-box-refine) or port the backbone "
            "with --task detection")
    # Weights and parity are supported (catalog rules, fp64 gate); the blueprint has only the RT-DETR detector.
    raise UnsupportedModelError(
        "deformable_detr (single stage): tao-scaffold converts its weights to TAO's deformable_detr "
        "(scaffolder.convert, fp64 parity), but blueprints/detection renders only TAO's RT-DETR detector yet",
        "port an RT-DETR checkpoint, or the backbone with --task detection (RT-DETR with that backbone)")


FAMILY = Family(
    name="deformable_detr",
    model_types=("deformable_detr",),
    backbone_rules=BACKBONE_RULES,
    default_image_size=800,
    notes="single stage only (two_stage false); with_box_refine maps to model.with_box_refine",
    tasks={
        "detection": TaskRules(
            rules=DETECTOR_RULES,
            tao_backbone_prefix="model.backbone.0.body.",
            ignore=((r"bbox_embed\..*",
                     "DeformableDetrForObjectDetection ties bbox_embed to model.decoder.bbox_embed (box refinement)"),),
            tao_head=r"model\.class_embed\..*",
            hf_features="detections_fp64",
            plan_params=plan_params,
        ),
    },
    variants=(Variant(backbone="resnet_50", num_features=2048, signature={}, strategy="reuse"),),
)
