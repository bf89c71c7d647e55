"""EfficientNet (HF ``efficientnet``): TAO 7.3 has none; the port generates a timm ``tf_efficientnet_b*``
subclass. No weight-conversion rules yet."""

from scaffolder.catalog._types import Family, TaskRules, Variant

FAMILY = Family(
    name="efficientnet",
    model_types=("efficientnet",),
    tasks={"classification": TaskRules()},
    notes="HF EfficientNet was converted from the TF checkpoints: TF 'same' padding and BN eps 1e-3, which "
    "timm's tf_efficientnet_* reproduce (efficientnet_* pads symmetrically, eps 1e-5)",
    missing_reason="TAO 7.3 has no EfficientNet backbone (efficientvit is a different architecture)",
    export_notes=(
        "tf_efficientnet pads 'same' per input size (timm Conv2dSame): the ONNX graph is traced at the spec's "
        "image size, so export and build the engine at that size",
    ),
    variants=tuple(
        Variant(
            f"tf_efficientnet_b{b}",
            width,
            {"width_coefficient": wc, "depth_coefficient": dc, "hidden_dim": width},
            strategy="timm_subclass",
            timm_name=f"tf_efficientnet_b{b}",
            backbone_kwargs={"channel_multiplier": wc, "depth_multiplier": dc},  # timm's _gen_efficientnet
        )
        for b, wc, dc, width in (
            (0, 1.0, 1.0, 1280), (1, 1.0, 1.1, 1280), (2, 1.1, 1.2, 1408), (3, 1.2, 1.4, 1536),
            (4, 1.4, 1.8, 1792), (5, 1.6, 2.2, 2048), (6, 1.8, 2.6, 2304), (7, 2.0, 3.1, 2560),
        )
    ),
)
