"""ConvNeXt v1 and v2 (HF ``convnext``, ``convnextv2``) -> TAO backbone_v2 ``convnext_*`` / ``convnextv2_*``.

Widths/depths TAO does not register (e.g. ConvNeXt v1 atto..nano, other depths) get a generated backbone_v2 entry
building TAO's own ConvNeXtV2 class (``use_grn`` off for v1, as TAO's convnext_* do) with the model's geometry.
"""

from typing import Any, Mapping

from scaffolder.catalog._types import CLASSIFIER_HEAD, AnySize, Family, KeyRules, T, classifier, detection_backbone
from scaffolder.catalog._types import name_token, rule, under_segformer, variant

_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"

BACKBONE_RULES = KeyRules(  # v2: GRN instead of layer scale
    hf_prefixes=("convnext.", "convnextv2."),
    rules=(
        rule(rf"embeddings\.patch_embeddings\.{T}", "downsample_layers.0.0.{t}"),
        rule(rf"embeddings\.layernorm\.{T}", "downsample_layers.0.1.{t}"),
        rule(rf"encoder\.stages\.(?P<s>\d+)\.downsampling_layer\.(?P<j>[01])\.{T}", "downsample_layers.{s}.{j}.{t}"),
        rule(rf"{_LAYER}\.layer_scale_parameter", "stages.{s}.{l}.gamma"),
        rule(rf"{_LAYER}\.layernorm\.{T}", "stages.{s}.{l}.norm.{t}"),
        rule(rf"{_LAYER}\.(?P<m>dwconv|pwconv1|pwconv2)\.{T}", "stages.{s}.{l}.{m}.{t}"),
        rule(rf"{_LAYER}\.grn\.weight", "stages.{s}.{l}.grn.gamma"),
        rule(rf"{_LAYER}\.grn\.bias", "stages.{s}.{l}.grn.beta"),
        rule(rf"layernorm\.{T}", "norm.{t}"),
    ),
    tao_kwargs=(("dims", lambda c: list(c["hidden_sizes"])), ("depths", lambda c: list(c["depths"]))),
)
TASKS = {
    "classification": classifier(CLASSIFIER_HEAD),
    # backbone_v2 ConvNeXt's forward_feature_pyramid: the 4 stage outputs = HF hidden_states[1:] (0 is the stem)
    "segmentation": under_segformer(lambda c: c["hidden_sizes"], "hidden_states:1,2,3,4"),
}
_NO_CLASSIFIER = ((r"classifier\..*", "the ImageNet classifier; RT-DETR's heads are trained fresh"),)
# TAO's RT-DETR convnextv2_* (ConvNeXtV2FPN, upsample off) have backbone_v2's keys; their pyramid is the stage
# outputs of stages 1-3 = HF hidden_states[2:5].
V2_TASKS = {**TASKS, "detection": detection_backbone(ignore=_NO_CLASSIFIER)}
# TAO's RT-DETR convnext_* (ConvNeXtFPN) project stages 1-3 to 512/1024/2048 channels with 3x3 convs HF has no
# counterpart of: they start fresh, and the parity compares the stage outputs they project (their inputs).
_PROJECTIONS = r"conv_(512|1024|2048)\.(weight|bias)"
V1_TASKS = {**TASKS, "detection": detection_backbone(
    ignore=_NO_CLASSIFIER, tao_fresh=_PROJECTIONS, hf_features="feature_pyramid:tao=conv_512<,conv_1024<,conv_2048<",
    notes="TAO's convnext_* project stages 1-3 to 512/1024/2048 channels with 3x3 convs (conv_512/1024/2048) "
          "that HF has no counterpart of: they start fresh too; hf_parity compares HF's stage outputs with the "
          "backbone's stage outputs before those projections.")}

# timm's ConvNeXt size names: (depths, dims) -> name
CONVNEXT_SIZES = {
    ((2, 2, 6, 2), (40, 80, 160, 320)): "atto", ((2, 2, 6, 2), (48, 96, 192, 384)): "femto",
    ((2, 2, 6, 2), (64, 128, 256, 512)): "pico", ((2, 2, 8, 2), (80, 160, 320, 640)): "nano",
    ((3, 3, 9, 3), (96, 192, 384, 768)): "tiny", ((3, 3, 27, 3), (96, 192, 384, 768)): "small",
    ((3, 3, 27, 3), (128, 256, 512, 1024)): "base", ((3, 3, 27, 3), (192, 384, 768, 1536)): "large",
    ((3, 3, 27, 3), (256, 512, 1024, 2048)): "xlarge", ((3, 3, 27, 3), (352, 704, 1408, 2816)): "huge",
}

# ConvNextConfig / ConvNextV2Config defaults, for config.json files that omit them
CONVNEXT_DEFAULTS = {"hidden_sizes": [96, 192, 384, 768], "depths": [3, 3, 9, 3], "patch_size": 4}


def _any_size(prefix: str, v2: bool) -> AnySize:
    def kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
        depths, dims = [int(d) for d in c["depths"]], [int(w) for w in c["hidden_sizes"]]
        if len(depths) != 4 or len(dims) != 4:
            raise ValueError(f"depths {depths} / hidden_sizes {dims}: TAO's ConvNeXtV2 has 4 stages")
        if int(c.get("patch_size", 4)) != 4:
            raise ValueError(f"patch_size {c.get('patch_size')}: TAO's ConvNeXtV2 stem is 4x4")
        # v1: layer scale (a gamma per block) when HF has one -- its value comes with the weights
        scale = 0.0 if v2 or float(c.get("layer_scale_init_value", 1e-6)) <= 0 else 1e-6
        return {"depths": depths, "dims": dims, "use_grn": v2, "layer_scale_init_value": scale}

    def name(k: Mapping[str, Any], _config: Mapping[str, Any]) -> str:
        size = CONVNEXT_SIZES.get((tuple(k["depths"]), tuple(k["dims"])))
        shape = size or f"w{name_token(k['dims'])}_d{name_token(k['depths'])}"
        return f"{prefix}_{shape}" + ("" if v2 or k["layer_scale_init_value"] else "_nolayerscale")

    return AnySize(strategy="tao_class", cls="nvidia_tao_pytorch.cv.backbone_v2.convnext_v2:ConvNeXtV2",
                   kwargs=kwargs, name=name, num_features=lambda k: k["dims"][-1])


FAMILIES = (
    Family(
        name="convnext",
        model_types=("convnext",),
        backbone_rules=BACKBONE_RULES,
        tasks=V1_TASKS,
        variants=(
            variant("convnext_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            variant("convnext_small", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3]),
            variant("convnext_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            variant("convnext_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            variant("convnext_xlarge", 2048, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 3, 27, 3]),
        ),
        signature_defaults=CONVNEXT_DEFAULTS,
        any_size=_any_size("convnext", v2=False),
    ),
    Family(
        name="convnextv2",
        model_types=("convnextv2",),
        backbone_rules=BACKBONE_RULES,
        tasks=V2_TASKS,
        variants=(
            variant("convnextv2_atto", 320, hidden_sizes=[40, 80, 160, 320], depths=[2, 2, 6, 2]),
            variant("convnextv2_femto", 384, hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 6, 2]),
            variant("convnextv2_pico", 512, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 6, 2]),
            variant("convnextv2_nano", 640, hidden_sizes=[80, 160, 320, 640], depths=[2, 2, 8, 2]),
            variant("convnextv2_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            variant("convnextv2_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            variant("convnextv2_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            variant("convnextv2_huge", 2816, hidden_sizes=[352, 704, 1408, 2816], depths=[3, 3, 27, 3]),
        ),
        signature_defaults=CONVNEXT_DEFAULTS,
        any_size=_any_size("convnextv2", v2=True),
    ),
)
