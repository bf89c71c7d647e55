"""Plain ViTs (HF ``vit``, ``dinov2``) under TAO's SegFormer decoder and TAO's RT-DETR, through a generated
ViTDet-style simple feature pyramid (``scaffolder/convert/vit_pyramid.py``, rendered into the port's
``model/backbone.py`` by ``blueprints/_partials/backbone/vit_pyramid.py.jinja``).

A plain ViT has one token map (stride = its patch), where SegFormer wants 4 maps at strides 4/8/16/32 and
RT-DETR 3 at 8/16/32. The wrapper builds all of them from the ViT's last, layer-normed patch tokens at stride 16
(a patch-14 DINOv2 sees the image resized to the stride-16 grid). The ViT is timm's VisionTransformer with the
family's generated geometry (``AnySize.kwargs``: what TAO's ViT / the generated DINOv2 backbone build), so the
family's HF -> TAO key rules convert it unchanged; the pyramid layers (``levels.*``) start fresh.
"""

from __future__ import annotations

from typing import Any, Mapping

from scaffolder.catalog._types import SEGFORMER_BACKBONE_PREFIX, Family, TaskRules, Variant, name_token

PYRAMID_SUFFIX = "_sfp"  # registry name of the wrapper: the ViT's backbone name + this
PYRAMID_CHANNELS = [256, 256, 256, 256]  # level widths, strides 4/8/16/32 (ViTDet's out_channels)
HF_FEATURES = "vit_map"  # parity: HF's last_hidden_state patch tokens (NCHW) vs the wrapper's stride-16 map
WRAPPER_PREFIX = "vit."  # the ViT inside the wrapper; the pyramid is `levels.`
CLASSIFIER_IGNORED = ((r"classifier\..*", "the HF classifier head; the task's decoder/detector starts fresh"),)
NOTE = ("the ViT is converted by the family's rules; the simple feature pyramid (levels.*, a ViTDet neck over the "
        "ViT's stride-16 tokens) has no HF counterpart and starts fresh")


def is_vit_pyramid(backbone: str) -> bool:
    """The plan's backbone is the generated ViT feature-pyramid wrapper."""
    return str(backbone).endswith(PYRAMID_SUFFIX)


def _variant(family: Family, config: Mapping[str, Any], *, eps_default: float, task: str) -> tuple[Variant, str]:
    """The wrapper around the family's ViT of this config: (variant, why). ValueError: no such ViT."""
    if family.any_size is None:
        raise ValueError(f"the {family.name} family generates no ViT geometry")
    if config.get("use_swiglu_ffn"):
        raise ValueError("the generated feature pyramid wraps timm's plain-MLP ViT; a SwiGLU DINOv2 has no "
                         "pyramid route (port it with --task classification, on TAO's SwiGLU DINOv2)")
    vit = family.sized(config)  # raises ValueError with the reason (SwiGLU DINOv2, non-GELU, ...)
    listed = family.match(config)
    eps = float(config.get("layer_norm_eps", eps_default))
    name = (listed.backbone if listed is not None else vit.backbone) + ("" if eps == eps_default else
                                                                        f"_eps{name_token(eps)}") + PYRAMID_SUFFIX
    kwargs = {**vit.backbone_kwargs, "layer_norm_eps": eps, "out_channels": list(PYRAMID_CHANNELS)}
    where = ("model/backbone.py builds it and registers it in TAO's RTDETR_BACKBONE_REGISTRY (3 levels, strides "
             "8/16/32)" if task == "detection" else "model/backbone.py builds it for the port's SegFormer (4 levels, "
             "strides 4/8/16/32)")
    patch = int(vit.backbone_kwargs.get("patch_size", 16))
    grid = "" if patch == 16 else f"; the patch-{patch} ViT sees the image resized to the stride-16 grid"
    why = (f"TAO has no {task} entry for a plain ViT: generate {name}, timm's VisionTransformer with the HF model's "
           f"geometry ({vit.backbone}) and a ViTDet simple feature pyramid over its stride-16 tokens{grid}; {where}")
    return Variant(backbone=name, num_features=PYRAMID_CHANNELS[-1], signature={}, strategy="generated",
                   backbone_kwargs=kwargs), why


def pyramid_segmentation(eps_default: float) -> TaskRules:
    """A plain ViT family under TAO's SegFormer decoder: the wrapper is SegFormer's ``backbone``."""
    return TaskRules(
        tao_backbone_prefix=SEGFORMER_BACKBONE_PREFIX + WRAPPER_PREFIX,
        ignore=CLASSIFIER_IGNORED,
        tao_fresh=r"decoder\..*|backbone\.levels\..*",
        hf_features=HF_FEATURES,
        plan_params=lambda c, _pre=None: {"pyramid_channels": list(PYRAMID_CHANNELS), "decoder_source": "fresh"},
        backbone_variant=lambda family, config: _variant(family, config, eps_default=eps_default,
                                                         task="segmentation"),
        plan_notes=(NOTE + "; TAO's SegFormer decoder (TAOSegFormerHead) starts fresh",),
    )


def pyramid_detection(eps_default: float) -> TaskRules:
    """A plain ViT family under TAO's RT-DETR (backbone converted for ``model.pretrained_backbone_path``)."""
    from scaffolder.catalog.detection_params import backbone_route_params  # pylint: disable=import-outside-toplevel

    return TaskRules(
        tao_backbone_prefix=WRAPPER_PREFIX,
        ignore=CLASSIFIER_IGNORED,
        tao_fresh=r"levels\..*",
        hf_features=HF_FEATURES,
        plan_params=backbone_route_params,
        backbone_variant=lambda family, config: _variant(family, config, eps_default=eps_default, task="detection"),
        plan_notes=(NOTE + "; RT-DETR's encoder, decoder and heads are initialised by TAO",),
    )
