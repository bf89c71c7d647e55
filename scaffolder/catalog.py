"""Architecture catalog: what tao-scaffold knows about each HuggingFace vision family.

One declarative entry per family (in the spirit of optimum's ``model_configs.py``): the HF ``model_type``
values it covers, how to recognise each size variant from ``config.json``, the TAO ``backbone_v2`` name and
feature width that variant maps to, preprocessing defaults, and known export problems. Code elsewhere asks
the catalog; it never branches on ``model_type`` itself.

Backbone facts come from the TAO 7.3.0 wheels (see ``shared/reference/tao-7.3-coverage.md`` §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Variant:
    """One size of a family: the config values that identify it and what TAO calls it."""

    backbone: str  # TAO backbone_v2 registry name (or the name of a backbone tao-scaffold generates)
    num_features: int  # pre-logit width == classification head.in_channels
    signature: Mapping[str, Any]  # config.json key -> value; all must match
    strategy: str = "reuse"  # reuse | timm_subclass | hf_wrapper
    timm_name: str | None = None  # timm architecture a generated backbone subclasses


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    variants: tuple[Variant, ...]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    default_image_size: int = 224
    export_notes: tuple[str, ...] = ()
    notes: str = ""
    # Why a variant with no TAO equivalent gets the strategy it gets (shown in the plan).
    missing_reason: str = ""

    def match(self, config: Mapping[str, Any]) -> Variant | None:
        for variant in self.variants:
            if all(_normalise(config.get(key)) == _normalise(value) for key, value in variant.signature.items()):
                return variant
        return None

    def describe_config(self, config: Mapping[str, Any]) -> str:
        keys = sorted({k for v in self.variants for k in v.signature})
        return ", ".join(f"{k}={config.get(k)!r}" for k in keys)


def _normalise(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _v(backbone: str, num_features: int, **signature: Any) -> Variant:
    return Variant(backbone=backbone, num_features=num_features, signature=signature)


SWIN_EXPORT_NOTE = (
    "torch 2.13: TAO's Swin fails ONNX export with a TorchScript shape-inference assert "
    "(window partition reshapes); export on torch <= 2.11 (TAO's containers / the GPU host) "
    "or skip the export stage on this torch"
)

FAMILIES: tuple[Family, ...] = (
    Family(
        name="vit",
        model_types=("vit",),
        mean=HALF_MEAN,
        std=HALF_STD,
        variants=(
            _v("vit_base_patch16", 768, hidden_size=768, patch_size=16, num_hidden_layers=12),
            _v("vit_large_patch16", 1024, hidden_size=1024, patch_size=16, num_hidden_layers=24),
            _v("vit_huge_patch14", 1280, hidden_size=1280, patch_size=14, num_hidden_layers=32),
        ),
    ),
    Family(
        name="swin",
        model_types=("swin",),
        export_notes=(SWIN_EXPORT_NOTE,),
        variants=(
            _v("swin_tiny_patch4_window7_224", 768, embed_dim=96, depths=[2, 2, 6, 2], window_size=7),
            _v("swin_small_patch4_window7_224", 768, embed_dim=96, depths=[2, 2, 18, 2], window_size=7),
            _v("swin_base_patch4_window7_224", 1024, embed_dim=128, depths=[2, 2, 18, 2], window_size=7),
            _v("swin_base_patch4_window12_384", 1024, embed_dim=128, depths=[2, 2, 18, 2], window_size=12),
            _v("swin_large_patch4_window7_224", 1536, embed_dim=192, depths=[2, 2, 18, 2], window_size=7),
            _v("swin_large_patch4_window12_384", 1536, embed_dim=192, depths=[2, 2, 18, 2], window_size=12),
        ),
    ),
    Family(
        name="convnext",
        model_types=("convnext",),
        variants=(
            _v("convnext_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            _v("convnext_small", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3]),
            _v("convnext_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            _v("convnext_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            _v("convnext_xlarge", 2048, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 3, 27, 3]),
        ),
    ),
    Family(
        name="convnextv2",
        model_types=("convnextv2",),
        variants=(
            _v("convnextv2_atto", 320, hidden_sizes=[40, 80, 160, 320], depths=[2, 2, 6, 2]),
            _v("convnextv2_femto", 384, hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 6, 2]),
            _v("convnextv2_pico", 512, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 6, 2]),
            _v("convnextv2_nano", 640, hidden_sizes=[80, 160, 320, 640], depths=[2, 2, 8, 2]),
            _v("convnextv2_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            _v("convnextv2_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            _v("convnextv2_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            _v("convnextv2_huge", 2816, hidden_sizes=[352, 704, 1408, 2816], depths=[3, 3, 27, 3]),
        ),
    ),
    Family(
        name="resnet",
        model_types=("resnet",),
        variants=(
            _v("resnet_18", 512, depths=[2, 2, 2, 2], layer_type="basic"),
            _v("resnet_34", 512, depths=[3, 4, 6, 3], layer_type="basic"),
            _v("resnet_50", 2048, depths=[3, 4, 6, 3], layer_type="bottleneck"),
            _v("resnet_101", 2048, depths=[3, 4, 23, 3], layer_type="bottleneck"),
            _v("resnet_152", 2048, depths=[3, 8, 36, 3], layer_type="bottleneck"),
        ),
    ),
    Family(
        name="hiera",
        model_types=("hiera",),
        variants=(
            _v("hiera_tiny_224", 768, embed_dim=96, depths=[1, 2, 7, 2]),
            _v("hiera_small_224", 768, embed_dim=96, depths=[1, 2, 11, 2]),
            _v("hiera_base_224", 768, embed_dim=96, depths=[2, 3, 16, 3]),
            _v("hiera_base_plus_224", 896, embed_dim=112, depths=[2, 3, 16, 3]),
            _v("hiera_large_224", 1152, embed_dim=144, depths=[2, 6, 36, 4]),
            _v("hiera_huge_224", 2048, embed_dim=256, depths=[2, 6, 36, 4]),
        ),
    ),
    Family(
        name="segformer",
        model_types=("segformer",),
        notes="MiT encoder of SegFormer; classification ports use the encoder only",
        variants=(
            _v("mit_b0", 256, hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2]),
            _v("mit_b1", 512, hidden_sizes=[64, 128, 320, 512], depths=[2, 2, 2, 2]),
            _v("mit_b2", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3]),
            _v("mit_b3", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 18, 3]),
            _v("mit_b4", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 8, 27, 3]),
            _v("mit_b5", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 6, 40, 3]),
        ),
    ),
    Family(
        name="dinov2",
        model_types=("dinov2",),
        default_image_size=518,
        notes="TAO registers only SwiGLU DINOv2 large/giant; HF small/base/large use a plain MLP",
        missing_reason="TAO 7.3 has no plain-MLP DINOv2 backbone (its dinov2 entries are SwiGLU large/giant)",
        variants=(
            Variant(
                "vit_large_patch14_dinov2_swiglu",
                1024,
                {"hidden_size": 1024, "patch_size": 14, "use_swiglu_ffn": True},
            ),
        ),
    ),
    Family(
        name="dinov2_with_registers",
        model_types=("dinov2_with_registers",),
        default_image_size=518,
        variants=(
            Variant(
                "vit_giant_patch14_reg4_dinov2_swiglu",
                1536,
                {"hidden_size": 1536, "patch_size": 14, "num_register_tokens": 4, "use_swiglu_ffn": True},
            ),
        ),
    ),
)

_BY_MODEL_TYPE: dict[str, Family] = {mt: fam for fam in FAMILIES for mt in fam.model_types}


def family_for(model_type: str) -> Family | None:
    return _BY_MODEL_TYPE.get(model_type)


def known_model_types() -> list[str]:
    return sorted(_BY_MODEL_TYPE)


def all_backbones() -> list[str]:
    """Every TAO backbone name the catalog can choose (for consistency checks against the registry)."""
    return [v.backbone for fam in FAMILIES for v in fam.variants if v.strategy == "reuse"]
