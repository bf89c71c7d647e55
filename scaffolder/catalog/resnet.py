"""ResNet (HF ``resnet``) -> TAO backbone_v2 ``resnet_*`` (torchvision naming)."""

from scaffolder.catalog._types import BN, Family, KeyRules, T, classifier, detection_backbone, rule, under_segformer, variant

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
    variants=(
        variant("resnet_18", 512, depths=[2, 2, 2, 2], layer_type="basic"),
        variant("resnet_34", 512, depths=[3, 4, 6, 3], layer_type="basic"),
        variant("resnet_50", 2048, depths=[3, 4, 6, 3], layer_type="bottleneck"),
        variant("resnet_101", 2048, depths=[3, 4, 23, 3], layer_type="bottleneck"),
        variant("resnet_152", 2048, depths=[3, 8, 36, 3], layer_type="bottleneck"),
    ),
)
