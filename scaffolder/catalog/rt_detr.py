"""RT-DETR (HF ``rt_detr``, ``rt_detr_v2``) -> TAO's RT-DETR (``RTDETRModel``) with a generated ResNet-vd backbone.

Every HF RT-DETR checkpoint (PekingU/rtdetr_r18vd ... r101vd, rtdetr_v2_*) uses a PaddlePaddle ResNet-vd
backbone, which TAO 7.3 does not have: the port's ``model/backbone.py`` registers one
(``scaffolder/convert/resnet_vd.py``) in ``RTDETR_BACKBONE_REGISTRY``. The rest of the detector is TAO's own
(HybridEncoder, RTDETRTransformer); the two layouts differ only in naming, q/k/v packing into
``nn.MultiheadAttention.in_proj_*`` and HF's tied top-level heads (team notes: tao-7.3-detection-segmentation.md
§3a, measured: 0 missing / 0 unexpected keys, logits 1e-5).
"""

from __future__ import annotations

from typing import Any, Mapping

from scaffolder.catalog._types import BN, T, Family, KeyRules, TaskRules, Variant, rule
from scaffolder.catalog.detection_params import processor_size
from scaffolder.errors import UnsupportedModelError

_STAGE = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"
# HF RTDetrResNetBackbone -> scaffolder/convert/resnet_vd.py (timm ResNet-D naming), relative to the backbone.
BACKBONE_RULES = KeyRules(
    hf_prefixes=("model.backbone.model.",),
    rules=(
        rule(r"embedder\.embedder\.0\.convolution\.weight", "conv1.0.weight"),
        rule(rf"embedder\.embedder\.0\.normalization\.{BN}", "conv1.1.{t}"),
        rule(r"embedder\.embedder\.1\.convolution\.weight", "conv1.3.weight"),
        rule(rf"embedder\.embedder\.1\.normalization\.{BN}", "conv1.4.{t}"),
        rule(r"embedder\.embedder\.2\.convolution\.weight", "conv1.6.weight"),
        rule(rf"embedder\.embedder\.2\.normalization\.{BN}", "bn1.{t}"),
        # shortcut: a 1x1 conv (stride-1 stages) or avg-pool + 1x1 conv (shortcut.1); timm: downsample.{1,2}
        rule(rf"{_STAGE}\.shortcut\.(1\.)?convolution\.weight", "layer{s+1}.{l}.downsample.1.weight"),
        rule(rf"{_STAGE}\.shortcut\.(1\.)?normalization\.{BN}", "layer{s+1}.{l}.downsample.2.{t}"),
        rule(rf"{_STAGE}\.layer\.(?P<c>\d+)\.convolution\.weight", "layer{s+1}.{l}.conv{c+1}.weight"),
        rule(rf"{_STAGE}\.layer\.(?P<c>\d+)\.normalization\.{BN}", "layer{s+1}.{l}.bn{c+1}.{t}"),
    ),
    fill=((r".*num_batches_tracked", 0.0,
           "HF freezes the ResNet-vd BatchNorms (RTDetrFrozenBatchNorm2d keeps no batch counter)"),),
)

_QKV = ("q_proj", "k_proj", "v_proj")
_ENC = r"model\.encoder\.(aifi|encoder)\.(?P<a>\d+)\.layers\.(?P<l>\d+)"
_DEC = r"model\.decoder\.layers\.(?P<l>\d+)"
_TE = "model.encoder.encoder.{a}.layers.{l}"
_TD = "model.decoder.decoder.layers.{l}"
# HF RTDetrModel's encoder/decoder/heads -> TAO RTDETRModel keys (absolute). Patterns accept both transformers 5's
# module names and the checkpoint names save_pretrained writes (and the Hub files use): encoder.encoder.N /
# encoder.aifi.N, self_attn.out_proj / o_proj, fc1 / mlp.fc1 (transformers conversion_mapping "rt_detr").
DETECTOR_RULES = (
    rule(rf"model\.encoder_input_proj\.(?P<n>\d+)\.(?P<j>[01])\.{BN}", "model.encoder.input_proj.{n}.{j}.{t}"),
    rule(rf"{_ENC}\.self_attn\.(?P<part>q_proj|k_proj|v_proj)\.{T}", _TE + ".self_attn.in_proj_{t}", _QKV),
    rule(rf"{_ENC}\.self_attn\.(o_proj|out_proj)\.{T}", _TE + ".self_attn.out_proj.{t}"),
    rule(rf"{_ENC}\.self_attn_layer_norm\.{T}", _TE + ".norm1.{t}"),
    rule(rf"{_ENC}\.final_layer_norm\.{T}", _TE + ".norm2.{t}"),
    rule(rf"{_ENC}\.(mlp\.)?fc(?P<f>[12])\.{T}", _TE + ".linear{f}.{t}"),
    rule(r"model\.encoder\.(?P<rest>(lateral_convs|fpn_blocks|downsample_convs|pan_blocks)\..*)", "model.encoder.{rest}"),
    rule(r"model\.decoder_input_proj\.(?P<n>\d+)\.0\.weight", "model.decoder.input_proj.{n}.conv.weight"),
    rule(rf"model\.decoder_input_proj\.(?P<n>\d+)\.1\.{BN}", "model.decoder.input_proj.{n}.norm.{t}"),
    rule(rf"{_DEC}\.self_attn\.(?P<part>q_proj|k_proj|v_proj)\.{T}", _TD + ".self_attn.in_proj_{t}", _QKV),
    rule(rf"{_DEC}\.self_attn\.(o_proj|out_proj)\.{T}", _TD + ".self_attn.out_proj.{t}"),
    rule(rf"{_DEC}\.self_attn_layer_norm\.{T}", _TD + ".norm1.{t}"),
    rule(rf"{_DEC}\.encoder_attn\.(?P<m>sampling_offsets|attention_weights|value_proj|output_proj)\.{T}",
         _TD + ".cross_attn.{m}.{t}"),
    rule(rf"{_DEC}\.encoder_attn_layer_norm\.{T}", _TD + ".norm2.{t}"),
    rule(rf"{_DEC}\.(mlp\.)?fc(?P<f>[12])\.{T}", _TD + ".linear{f}.{t}"),
    rule(rf"{_DEC}\.final_layer_norm\.{T}", _TD + ".norm3.{t}"),
    rule(r"model\.decoder\.query_pos_head\.(?P<rest>.*)", "model.decoder.query_pos_head.{rest}"),
    rule(r"model\.decoder\.class_embed\.(?P<rest>.*)", "model.decoder.dec_score_head.{rest}"),
    rule(r"model\.decoder\.bbox_embed\.(?P<rest>.*)", "model.decoder.dec_bbox_head.{rest}"),
    rule(r"model\.(?P<m>denoising_class_embed|enc_output|enc_score_head|enc_bbox_head)\.(?P<rest>.*)",
         "model.decoder.{m}.{rest}"),
)
DETECTOR_IGNORE = (
    (r"(class_embed|bbox_embed)\..*",
     "RTDetrForObjectDetection ties its top-level heads to model.decoder.class_embed / bbox_embed (same tensors)"),
    (r"model\.decoder\.layers\.\d+\.encoder_attn\.n_points_scale",
     "RT-DETRv2 constant buffer (1/n_points per level); TAO's MSDeformAttn divides by n_points itself"),
)
# Class-count dependent TAO tensors: skipped (TAO initialises them) when the port's class count differs from HF's.
DETECTOR_HEAD = r"model\.decoder\.(dec_score_head|enc_score_head|denoising_class_embed)\..*"

# What TAO's RTDETRModel hard-codes (build_nn_model.py passes no decoder nhead/ffn/points; HybridEncoder builds
# round(3 * depth_mult) RepVGG blocks): an HF config with other values cannot be represented.
_TAO_FIXED = {"decoder_attention_heads": 8, "decoder_ffn_dim": 1024, "decoder_n_points": 4,
              "num_feature_levels": 3, "feat_strides": [8, 16, 32], "encode_proj_layers": [2],
              "learn_initial_query": False, "decoder_activation_function": "relu", "normalize_before": False}
_V2_DEFAULT_DECODER = {"decoder_method": "default", "decoder_offset_scale": 0.5}
_FIX = "choose a checkpoint with TAO's RT-DETR geometry (PekingU/rtdetr_r18vd, r34vd, r50vd)"


def plan_params(config: Mapping[str, Any], pre: Mapping[str, Any]) -> dict[str, Any]:
    """The port's detector geometry from the HF config; refuses what TAO's RTDETRModel cannot build."""
    model_type = config.get("model_type", "rt_detr")
    for key, tao_value in _TAO_FIXED.items():
        value = config.get(key, tao_value)
        if key == "decoder_n_points" and isinstance(value, (list, tuple)):
            value = value[0] if len(set(value)) == 1 else list(value)
        if _norm(value) != _norm(tao_value):
            raise UnsupportedModelError(
                f"{model_type} with {key}={value!r}: TAO's RT-DETR fixes it to {tao_value!r} (build_nn_model.py)", _FIX)
    if model_type == "rt_detr_v2":
        for key, default in _V2_DEFAULT_DECODER.items():
            if config.get(key, default) != default:
                raise UnsupportedModelError(
                    f"rt_detr_v2 with {key}={config.get(key)!r}: only the default decoder ({key}={default!r}) "
                    "equals TAO's RT-DETR decoder (v1 sampling)",
                    "use a checkpoint with RT-DETRv2's default decoder settings")
    encoder_dim, d_model = int(config.get("encoder_hidden_dim", 256)), int(config.get("d_model", 256))
    if encoder_dim != d_model:
        raise UnsupportedModelError(
            f"{model_type} with encoder_hidden_dim={encoder_dim} and d_model={d_model}: TAO's RTDETRModel uses one "
            "hidden_dim for the encoder and the decoder (r101vd's 384/256 cannot be built)", _FIX)
    size = processor_size(pre, 640)
    queries = int(config.get("num_queries", 300))
    return {
        "detector": "rtdetr",
        "convert_scope": "model",
        "eval_spatial_size": size,
        "num_queries": queries,
        "num_select": queries,
        "hidden_dim": d_model,
        "nheads": int(config.get("encoder_attention_heads", 8)),
        "enc_layers": int(config.get("encoder_layers", 1)),
        "dec_layers": int(config.get("decoder_layers", 6)),
        "dim_feedforward": int(config.get("encoder_ffn_dim", 1024)),
        "expansion": float(config.get("hidden_expansion", 1.0)),
        "feat_channels": [encoder_dim] * 3,
        "return_interm_indices": [1, 2, 3],
        "dn_number": int(config.get("num_denoising", 100)),
        "first_category_id": 0,
    }


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _vd(depth: int, layer_type: str, depths: list[int], width: int) -> Variant:
    return Variant(backbone=f"resnet_{depth}vd", num_features=width,
                   signature={"layer_type": layer_type, "depths": depths, "embedding_size": 64}, strategy="generated")


FAMILY = Family(
    name="rt_detr",
    model_types=("rt_detr", "rt_detr_v2"),
    signature_source="backbone_config",
    signature_defaults={"layer_type": "bottleneck", "depths": [3, 4, 6, 3], "embedding_size": 64},  # RTDetrResNetConfig
    backbone_rules=BACKBONE_RULES,
    mean=(0.0, 0.0, 0.0),  # RTDetrImageProcessor: rescale to [0, 1], do_normalize false
    std=(1.0, 1.0, 1.0),
    default_image_size=640,
    missing_reason="TAO 7.3's RT-DETR has no ResNet-vd backbone (its resnet_* are the 7x7-stem torchvision layout)",
    notes="RT-DETRv2 with its default decoder computes what v1 computes (measured: identical logits)",
    tasks={
        "detection": TaskRules(
            rules=DETECTOR_RULES,
            tao_backbone_prefix="model.backbone.",
            ignore=DETECTOR_IGNORE,
            tao_head=DETECTOR_HEAD,
            hf_features="detections",
            plan_params=plan_params,
        ),
    },
    variants=(
        _vd(18, "basic", [2, 2, 2, 2], 512),
        _vd(34, "basic", [3, 4, 6, 3], 512),
        _vd(50, "bottleneck", [3, 4, 6, 3], 2048),
        _vd(101, "bottleneck", [3, 4, 23, 3], 2048),
    ),
)
