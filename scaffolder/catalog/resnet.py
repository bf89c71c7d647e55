"""ResNet (HF ``resnet``) -> TAO backbone_v2 ``resnet_*`` (torchvision naming).

Depths (and widths) TAO does not register -- ResNet-10/14/26/200, or any other layout of four stages -- get a
generated backbone_v2 entry building TAO's own ResNet (a timm ResNet subclass) with the model's geometry.
"""

from typing import Any, Mapping

from scaffolder.catalog._types import BN, AnySize, Family, KeyRules, T, classifier, detection_backbone, name_token
from scaffolder.catalog._types import rule, under_segformer, variant

_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"

BACKBONE_RULES = KeyRules(
    hf_prefixes=("resnet.",),
    rules=(
        rule(r"embedder\.embedder\.convolution\.weight", "conv1.weight"),
        rule(rf"embedder\.embedder\.normalization\.{BN}", "bn1.{t}"),
        rule(rf"{_LAYER}\.shortcut\.convolution\.weight", "layer{s+1}.{l}.downsample.0.weight"),
        rule(rf"{_LAYER}\.shortcut\.normalization\.{BN}", "layer{s+1}.{l}.downsample.1.{t}"),
        rule(rf"{_LAYER}\.layer\.(?P<c>\d+)\.convolution\.weight", "layer{s+1}.{l}.conv{c+1}.weight"),
        rule(rf"{_LAYER}\.layer\.(?P<c>\d+)\.normalization\.{BN}", "layer{s+1}.{l}.bn{c+1}.{t}"),
    ),
    tao_kwargs=(("layers", lambda c: list(c["depths"])),),
)

_BLOCKS = {"basic": ("BasicBlock", 1), "bottleneck": ("Bottleneck", 4)}  # HF layer_type -> (timm block, expansion)
_STANDARD_CHANNELS = [64, 128, 256, 512]  # timm ResNet stage widths before expansion (its stem is always 64)
# ResNetConfig's defaults, for config.json files that omit them
RESNET_DEFAULTS = {"embedding_size": 64, "hidden_sizes": [256, 512, 1024, 2048], "depths": [3, 4, 6, 3],
                   "layer_type": "bottleneck", "downsample_in_first_stage": False, "downsample_in_bottleneck": False}
# The usual layers of a depth (timm's resnetN): other layouts of the same depth spell their layers out
_CANONICAL = {10: (1, 1, 1, 1), 14: (1, 1, 1, 1), 18: (2, 2, 2, 2), 26: (2, 2, 2, 2), 34: (3, 4, 6, 3),
              50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}


def _refuse_resnet(c: Mapping[str, Any]) -> str | None:
    if c["layer_type"] not in _BLOCKS:
        return f"layer_type {c['layer_type']!r} is neither basic nor bottleneck"
    if len(c["depths"]) != 4 or len(c["hidden_sizes"]) != 4:
        return f"{len(c['depths'])} stages: TAO's ResNet has 4"
    if int(c["embedding_size"]) != 64:
        return f"embedding_size {c['embedding_size']}: TAO's (timm) ResNet stem is 64 channels wide"
    if c.get("downsample_in_first_stage"):
        return "downsample_in_first_stage: TAO's (timm) ResNet keeps stride 1 in the first stage"
    if c.get("downsample_in_bottleneck"):
        return "downsample_in_bottleneck: TAO's (timm) ResNet strides the 3x3 convolution, not the first 1x1"
    expansion = _BLOCKS[c["layer_type"]][1]
    if any(int(w) % expansion for w in c["hidden_sizes"]):
        return f"hidden_sizes {c['hidden_sizes']} are not multiples of the bottleneck expansion {expansion}"
    return None


def _resnet_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    block, expansion = _BLOCKS[c["layer_type"]]
    return {"block": block, "layers": [int(d) for d in c["depths"]],
            "channels": [int(w) // expansion for w in c["hidden_sizes"]]}


def _resnet_name(k: Mapping[str, Any], _config: Mapping[str, Any]) -> str:
    depth = (3 if k["block"] == "Bottleneck" else 2) * sum(k["layers"]) + 2
    name = f"resnet_{depth}" + ("" if _CANONICAL.get(depth) == tuple(k["layers"]) else f"_l{name_token(k['layers'])}")
    if k["channels"] != _STANDARD_CHANNELS:
        name += f"_c{name_token(k['channels'])}"
    return name


FAMILY = Family(
    name="resnet",
    model_types=("resnet",),
    backbone_rules=BACKBONE_RULES,
    tasks={
        "classification": classifier(rule(rf"classifier\.1\.{T}", "fc.{t}"), tao_head=r"fc\..*"),
        # TAO's RT-DETR registry resnet_* has backbone_v2's keys: the classification rules carry over unchanged.
        "detection": detection_backbone(ignore=((r"classifier\..*", "the ImageNet classifier; RT-DETR's heads are trained fresh"),)),
        # layer1..layer4 outputs (strides 4..32) = HF hidden_states[1:] (0 is the stem)
        "segmentation": under_segformer(lambda c: c["hidden_sizes"], "hidden_states:1,2,3,4"),
    },
    # TAO's factories fix the widths (64..512 per stage before expansion, stem 64) and timm's stride placement.
    variants=tuple(
        variant(name, 512 * _BLOCKS[kind][1], depths=list(_CANONICAL[depth]), layer_type=kind,
                hidden_sizes=[w * _BLOCKS[kind][1] for w in _STANDARD_CHANNELS], embedding_size=64,
                downsample_in_first_stage=False, downsample_in_bottleneck=False)
        for name, depth, kind in (("resnet_18", 18, "basic"), ("resnet_34", 34, "basic"),
                                  ("resnet_50", 50, "bottleneck"), ("resnet_101", 101, "bottleneck"),
                                  ("resnet_152", 152, "bottleneck"))
    ),
    signature_defaults=RESNET_DEFAULTS,
    any_size=AnySize(
        strategy="tao_class",
        cls="nvidia_tao_pytorch.cv.backbone_v2.resnet:ResNet",
        kwargs=_resnet_kwargs,
        name=_resnet_name,
        num_features=lambda k: k["channels"][-1] * (4 if k["block"] == "Bottleneck" else 1),
        refuse=_refuse_resnet,
        class_kwargs={"block": "timm.models.resnet"},
    ),
)
