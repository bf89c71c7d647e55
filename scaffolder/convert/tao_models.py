"""The TAO-side torch model of each task, as the weight mapping and parity see it.

``scaffolder.tasks.TaskSpec.tao_model_builder`` names one of these per task: ``(target, num_classes,
task_params) -> nn.Module``, where ``target`` is a TAO registry name or ``timm:<name>`` (a generated backbone).
The module's ``state_dict()`` keys are the keys the port's converter must produce.
"""

from __future__ import annotations

from typing import Any, Mapping


def build_classifier(target: str, num_classes: int, task_params: Mapping[str, Any] | None = None,
                     backbone_kwargs: Mapping[str, Any] | None = None):
    """classification_pyt's model is the backbone_v2 backbone with its own linear head; a generated backbone
    (``class:<family>`` / ``timm:<name>``) is built with its ``backbone_kwargs``."""
    from scaffolder.convert.parity import build_tao_model

    return build_tao_model(target, num_classes, backbone_kwargs)


def _msda_without_cuda_ops():
    """TAO's MSDeformAttn loads its CUDA .so in __init__ (unloadable without CUDA / on Python != 3.12, and absent from
    the unpacked wheel); for shapes, parity and benchmarks tao-scaffold builds it without: TAO's pure-PyTorch
    grid_sample path then runs, also for CUDA tensors (verify's shim, ``scaffolder/verify/shim/tao_scaffold_msda.py``)."""
    from scaffolder.verify.shim import tao_scaffold_msda

    tao_scaffold_msda.patch()


def rtdetr_backbone_registry():
    """TAO's RT-DETR backbone registry with tao-scaffold's generated backbones registered: the ResNet-vd variants
    and the Swin feature pyramids (backbone_v2's Swin sizes, under their backbone_v2 names)."""
    from nvidia_tao_pytorch.cv.rtdetr.model.backbone.registry import RTDETR_BACKBONE_REGISTRY

    from scaffolder.catalog.swin import FAMILY as SWIN
    from scaffolder.convert.resnet_vd import RESNET_VD, register_resnet_vd
    from scaffolder.convert.swin_fpn import register_swin_fpn

    for depth in RESNET_VD:
        register_resnet_vd(RTDETR_BACKBONE_REGISTRY, f"resnet_{depth}vd", depth)
    for variant in SWIN.variants:
        register_swin_fpn(RTDETR_BACKBONE_REGISTRY, variant.backbone)
    return RTDETR_BACKBONE_REGISTRY


def build_vit_pyramid(backbone_kwargs: Mapping[str, Any], out_indices=(0, 1, 2, 3)):
    """The generated ViT feature-pyramid backbone (``scaffolder/convert/vit_pyramid.py``) with the plan's kwargs."""
    from scaffolder.convert.vit_pyramid import ViTSimpleFeaturePyramid

    return ViTSimpleFeaturePyramid(out_indices=tuple(out_indices), **dict(backbone_kwargs))


def build_detector(target: str, num_classes: int, task_params: Mapping[str, Any] | None = None,
                   backbone_kwargs: Mapping[str, Any] | None = None):
    """TAO's RT-DETR model (``RTDETRModel``) with the port's geometry, or only its backbone when the port converts
    the backbone alone (``convert_scope: backbone``); ``deformable_detr`` builds TAO's ``DDModel``.

    The D-DETR model is built as TAO trains and evaluates it (``export=False``: FrozenBatchNorm2d backbone, no
    ``num_batches_tracked``, 4-channel input = image + padding mask): TAO's D-DETR train pairs
    ``train.pretrained_model_path`` tensors with the model's by *sorted key position*, so the converted checkpoint
    must hold exactly the training model's keys."""
    from scaffolder.tasks import DETECTION

    params = DETECTION.params_from(task_params)
    _msda_without_cuda_ops()
    if params["detector"] == "deformable_detr":
        from nvidia_tao_pytorch.cv.deformable_detr.model.build_nn_model import DDModel

        return DDModel(num_classes=num_classes, backbone=target, num_queries=params["num_queries"],
                       hidden_dim=params["hidden_dim"], nheads=params["nheads"], enc_layers=params["enc_layers"],
                       dec_layers=params["dec_layers"], dim_feedforward=params["dim_feedforward"],
                       num_feature_levels=params["num_feature_levels"],
                       return_interm_indices=list(params["return_interm_indices"]),
                       with_box_refine=bool(params["with_box_refine"]), enc_n_points=params["enc_n_points"],
                       dec_n_points=params["dec_n_points"], activation_checkpoint=False, export=False,
                       dropout_ratio=0.0)
    registry = rtdetr_backbone_registry()
    if backbone_kwargs:  # a generated ViT feature pyramid (what the port's model/backbone.py registers)
        from scaffolder.convert.vit_pyramid import register_vit_pyramid

        register_vit_pyramid(registry, target, dict(backbone_kwargs))
    if params["convert_scope"] == "backbone":
        return registry.get(target)(params["return_interm_indices"])
    from nvidia_tao_pytorch.cv.rtdetr.model.build_nn_model import RTDETRModel

    return RTDETRModel(
        backbone_name=target, num_classes=num_classes, out_indices=params["return_interm_indices"],
        hidden_dim=params["hidden_dim"], nhead=params["nheads"], num_encoder_layers=params["enc_layers"],
        dim_feedforward=params["dim_feedforward"], expansion=params["expansion"],
        eval_spatial_size=params["eval_spatial_size"], feat_channels=params["feat_channels"],
        num_queries=params["num_queries"], num_decoder_layers=params["dec_layers"],
        num_denoising=params["dn_number"],
    )


DETECTORS = ("rtdetr", "deformable_detr")


def check_detection_plan(plan) -> None:
    """A detection plan's detector facts must be ones the blueprint renders (port.yml is user input)."""
    from scaffolder.errors import ScaffoldError

    params = plan.task_params
    fix = "re-plan with tao-scaffold inspect"
    detector = params.get("detector")
    if detector not in DETECTORS:
        raise ScaffoldError(f"task_params.detector {detector!r} is not one of {', '.join(DETECTORS)}", fix)
    size = params.get("eval_spatial_size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 32 <= v <= 8192 for v in size)):
        raise ScaffoldError(f"task_params.eval_spatial_size {size!r} is not [height, width] (32..8192 px)", fix)
    for key in ("num_queries", "num_select", "hidden_dim", "nheads", "enc_layers", "dec_layers", "dim_feedforward",
                "dn_number", "num_feature_levels", "enc_n_points", "dec_n_points"):
        value = params.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
            raise ScaffoldError(f"task_params.{key} {value!r} is not a count", fix)
    if not isinstance(params.get("with_box_refine"), bool):
        raise ScaffoldError(f"task_params.with_box_refine {params.get('with_box_refine')!r} is not true/false", fix)
    for key in ("expansion", "dropout_ratio"):
        value = params.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 16:
            raise ScaffoldError(f"task_params.{key} {value!r} is not a number in 0..16", fix)
    if params.get("first_category_id") not in (0, 1):
        raise ScaffoldError(f"task_params.first_category_id {params.get('first_category_id')!r} is neither 0 nor 1",
                            "0: COCO category_id k is label k; 1: label 0 is background (TAO's D-DETR convention)")
    if params.get("convert_scope") not in ("model", "backbone"):
        raise ScaffoldError(f"task_params.convert_scope {params.get('convert_scope')!r} is neither 'model' nor "
                            "'backbone'", fix)
    if detector == "deformable_detr":
        indices = params.get("return_interm_indices")
        if not isinstance(indices, list) or len(indices) != params["num_feature_levels"]:
            raise ScaffoldError(f"task_params.return_interm_indices {indices!r} must list num_feature_levels="
                                f"{params['num_feature_levels']} levels (TAO's DDModel checks it)", fix)
        if params["convert_scope"] != "model":
            raise ScaffoldError("a deformable_detr port converts the whole detector (convert_scope: model)", fix)
        if params["first_category_id"] and plan.num_classes < 2:
            raise ScaffoldError(f"num_classes={plan.num_classes} with label 0 as background leaves no object class",
                                "D-DETR's num_classes is the highest category_id + 1")


def build_segmentation(target: str, num_classes: int, task_params: Mapping[str, Any] | None = None,
                       backbone_kwargs: Mapping[str, Any] | None = None):
    """TAO's SegFormer layout: ``backbone`` = backbone_v2 ``target`` without a head (or, with ``backbone_kwargs``,
    the generated ViT feature pyramid), ``decoder`` = TAOSegFormerHead over its 4 feature maps -- the keys TAO's
    segformer checkpoints and loaders use."""
    from torch import nn

    from nvidia_tao_pytorch.cv.segformer.model.decode_heads.segformer_head import TAOSegFormerHead
    from scaffolder.convert.parity import build_tao_model

    params = dict(task_params or {})

    class PortSegFormer(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = build_vit_pyramid(backbone_kwargs) if backbone_kwargs else build_tao_model(target, 0)
            self.decoder = TAOSegFormerHead(
                in_channels=list(params["pyramid_channels"]), embedding_dim=int(params["decoder_embed_dim"]),
                output_nc=num_classes, feature_strides=list(params.get("feature_strides") or [4, 8, 16, 32]),
            )

        def forward(self, x):  # as the generated build.py: feature dicts ({"p0": ...}) in order
            features = self.backbone.forward_feature_pyramid(x)
            return self.decoder(list(features.values()) if isinstance(features, dict) else features)

    return PortSegFormer()


def check_segmentation_plan(plan) -> None:
    """A segmentation plan's decoder facts must fit its backbone and its classes (port.yml is user input)."""
    from scaffolder.catalog import family_named
    from scaffolder.errors import ScaffoldError

    params = plan.task_params
    widths = list(params.get("pyramid_channels") or [])
    strides = list(params.get("feature_strides") or [])
    from scaffolder.catalog._vit_pyramid import is_vit_pyramid

    if plan.backbone_strategy != "reuse" and not (plan.backbone_strategy == "generated" and is_vit_pyramid(plan.backbone)):
        raise ScaffoldError(
            f"TAO's SegFormer decoder needs a backbone_v2 backbone with a 4-level feature pyramid; {plan.backbone} "
            f"would be generated ({plan.backbone_strategy}) and has no forward_feature_pyramid",
            "port a convnext, convnextv2, swin, resnet, hiera, segformer (MiT), vit or dinov2 model with --task "
            "segmentation",
        )
    if len(widths) != 4 or len(strides) != 4 or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ScaffoldError(
            f"task_params.pyramid_channels {widths} / feature_strides {strides}: TAO's SegFormer decoder takes "
            "4 feature maps (strides 4, 8, 16, 32)", "list the backbone's 4 stage widths in task_params.pyramid_channels")
    pyramid = list((plan.backbone_kwargs or {}).get("out_channels") or []) if is_vit_pyramid(plan.backbone) else None
    if pyramid is not None and pyramid != widths:
        raise ScaffoldError(
            f"task_params.pyramid_channels {widths} do not match {plan.backbone}'s level widths "
            f"(backbone_kwargs.out_channels {pyramid}): the decoder's linear_c layers would not fit the pyramid",
            f"set task_params.pyramid_channels: {pyramid} (or re-plan with tao-scaffold inspect)")
    family = family_named(plan.family)
    rules = family.tasks.get(plan.task) if family else None
    variant = next((v for v in family.variants if v.backbone == plan.backbone), None) if family else None
    if rules is not None and rules.plan_params is not None and variant is not None:
        try:
            expected = rules.plan_params(dict(variant.signature))["pyramid_channels"]
        except KeyError:  # the variant signature does not spell the widths (e.g. resnet): nothing to compare
            expected = None
        if expected is not None and list(expected) != widths:
            raise ScaffoldError(
                f"task_params.pyramid_channels {widths} do not match {plan.backbone}'s feature pyramid {list(expected)}: "
                "the decoder's linear_c layers would not fit the backbone's feature maps",
                f"set task_params.pyramid_channels: {list(expected)} (or re-plan with tao-scaffold inspect)",
            )
    palette = list(params.get("palette") or [])
    if palette and len(palette) != plan.num_classes:
        raise ScaffoldError(f"task_params.palette has {len(palette)} entries for num_classes={plan.num_classes}",
                            "give one palette entry per class (or re-plan with tao-scaffold inspect)")
    if params.get("decoder_source") not in ("converted", "fresh"):
        raise ScaffoldError(f"task_params.decoder_source {params.get('decoder_source')!r} is neither 'converted' "
                            "nor 'fresh'", "re-plan with tao-scaffold inspect")
