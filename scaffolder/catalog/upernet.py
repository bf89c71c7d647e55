"""UperNet (HF ``upernet``) with a ConvNeXt / ConvNeXt V2 backbone: its backbone under TAO's SegFormer decoder.

HF ``UperNetForSemanticSegmentation`` wraps an AutoBackbone (``backbone.*``: ConvNextBackbone /
ConvNextV2Backbone, the classification model's tensors without its final norm, plus one LayerNorm per output stage,
``backbone.hidden_states_norms.stageN``) under a UperNet head (``decode_head.*``: PSP + FPN) and an auxiliary FCN
head (``auxiliary_head.*``). TAO has no UperNet decoder, so the port converts the backbone only and TAO's SegFormer
decoder starts fresh. TAO's ConvNeXt feature pyramid applies no per-stage norm, so ``hidden_states_norms`` have no
TAO counterpart: they are dropped (listed in the plan), and the SegFormer decoder reads the stage outputs before
them -- HF's ``hidden_states[1:]``, which hf_parity compares. Other UperNet backbones (Swin, ResNet, ...) are not
mapped yet: the plan refuses them naming the backbone's model_type.
"""

from dataclasses import replace
from typing import Any, Mapping

from scaffolder.catalog import convnext
from scaffolder.catalog._types import Family, KeyRules, under_segformer

_BACKBONES = {"convnext": convnext.FAMILIES[0], "convnextv2": convnext.FAMILIES[1]}
_DROPPED_NORMS_WHY = (
    "UperNet backbone's per-stage output LayerNorms: TAO's ConvNeXt feature pyramid has no per-stage norm, so "
    "TAO's SegFormer decoder reads the stage outputs before them (not converted)"
)


def _widths(config: Mapping[str, Any]) -> list[int]:
    """Stage widths from a UperNet config (its backbone_config) or a variant signature (already the backbone's)."""
    backbone = config.get("backbone_config") if isinstance(config.get("backbone_config"), Mapping) else config
    return [int(w) for w in backbone.get("hidden_sizes", convnext.CONVNEXT_DEFAULTS["hidden_sizes"])]


SEGMENTATION = replace(
    under_segformer(
        _widths,
        "hidden_states:1,2,3,4",  # the backbone's hidden_states (UperNet passes them on): stem, then the 4 stages
        ignore=(
            (r"decode_head\..*", "UperNet's decode head (PSP + FPN): TAO has no UperNet decoder, so it is not "
                                 "converted and TAO's SegFormer decoder starts fresh"),
            (r"auxiliary_head\..*", "UperNet's auxiliary FCN head (training loss only): not converted"),
        ),
    ),
    notes="backbone converted; UperNet's decode_head and auxiliary_head are not converted (TAO has no UperNet "
          "decoder): TAO's SegFormer decoder (TAOSegFormerHead) starts fresh",
)

FAMILY = Family(
    name="upernet",
    model_types=("upernet",),
    signature_source="backbone_config",
    signature_defaults=convnext.CONVNEXT_DEFAULTS,
    # a variant per TAO ConvNeXt backbone, told apart by the wrapped backbone's model_type
    variants=tuple(replace(v, signature={**v.signature, "model_type": model_type})
                   for model_type, family in _BACKBONES.items() for v in family.variants),
    backbone_rules=replace(
        convnext.BACKBONE_RULES,
        hf_prefixes=("backbone.",),
        ignore=((r"hidden_states_norms\..*", _DROPPED_NORMS_WHY),),
        # ConvNextBackbone has no final (pooled-feature) LayerNorm; TAO's ConvNeXt has one the pyramid never uses
        fill=((r"norm\.weight", 1.0, "TAO's pooled-feature LayerNorm: the UperNet backbone has none and the feature "
                                     "pyramid does not use it; unit weight"),
              (r"norm\.bias", 0.0, "TAO's pooled-feature LayerNorm (unused by the feature pyramid); zero bias")),
    ),
    tasks={"segmentation": SEGMENTATION},
    default_image_size=512,
    missing_reason=("tao-scaffold maps UperNet's backbone for ConvNeXt / ConvNeXt V2 backbones of a size TAO "
                    "registers (other UperNet backbones, e.g. swin or resnet: not yet; port that backbone's own "
                    "checkpoint with --task segmentation)"),
    notes="UperNet: the wrapped ConvNeXt backbone is ported under TAO's SegFormer decoder; the UperNet heads are not",
)
