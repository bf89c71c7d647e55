"""ResNet-vd feature pyramids for TAO's RT-DETR (HF ``rt_detr`` checkpoints are all r18/34/50/101-vd).

Copied verbatim into each RT-DETR port's generated ``model/backbone.py`` (which registers the port's variant
in ``RTDETR_BACKBONE_REGISTRY``), and imported by tao-scaffold to derive the weight mapping, so it stays
self-contained: torch, timm and TAO imports only.

The layout is timm's ResNet-D (deep 3x3 stem 32-32-64, average-pool projection shortcut), which is PaddlePaddle's
ResNet-vd. One difference remains (transformers PR #29077): paddle's r18/r34-vd project the shortcut of the
first block of stage 1 with a 1x1 conv + BN even though its width does not change; timm's resnet18d/34d keep an
identity there. ``first_block_projection`` adds that projection (as ``downsample.1`` / ``downsample.2``, the
key layout of timm's other avg-down shortcuts).
"""

from timm.models.resnet import BasicBlock, Bottleneck
from torch import nn

from nvidia_tao_pytorch.cv.rtdetr.model.backbone.resnet import ResNetFPN

# depth -> (block, blocks per stage, stage widths, first block projects its shortcut)
RESNET_VD = {
    18: (BasicBlock, [2, 2, 2, 2], [64, 128, 256, 512], True),
    34: (BasicBlock, [3, 4, 6, 3], [64, 128, 256, 512], True),
    50: (Bottleneck, [3, 4, 6, 3], [256, 512, 1024, 2048], False),
    101: (Bottleneck, [3, 4, 23, 3], [256, 512, 1024, 2048], False),
}


class ResNetVdFPN(ResNetFPN):
    """TAO's RT-DETR ResNetFPN with the vd stem and shortcuts (``forward_feature_pyramid``, ``out_channels``)."""

    def __init__(self, *args, first_block_projection=False, **kwargs):
        super().__init__(*args, stem_type="deep", stem_width=32, avg_down=True, **kwargs)
        if first_block_projection:
            block = self.layer1[0]
            width = block.conv1.in_channels
            out = (block.conv3 if isinstance(block, Bottleneck) else block.conv2).out_channels
            block.downsample = nn.Sequential(nn.Identity(), nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out))


def resnet_vd(depth, out_indices=(1, 2, 3), **kwargs):
    """The ResNet-``depth``-vd feature pyramid with TAO's RT-DETR backbone arguments (freeze_at, export, ...)."""
    block, layers, channels, projection = RESNET_VD[depth]
    return ResNetVdFPN(
        num_classes=0,
        out_channels=channels,
        block=block,
        layers=layers,
        return_idx=list(out_indices),
        first_block_projection=projection,
        **kwargs,
    )


def register_resnet_vd(registry, name, depth):
    """Register ``name`` -> ResNet-``depth``-vd in an RT-DETR backbone registry (idempotent: re-imports are fine)."""
    if name in registry:
        return registry.get(name)

    def factory(out_indices=(1, 2, 3), **kwargs):
        return resnet_vd(depth, out_indices, **kwargs)

    factory.__name__ = name
    factory.__doc__ = f"ResNet-{depth}-vd feature pyramid (strides 8/16/32 for out_indices 1, 2, 3)."
    registry.register(factory)
    return factory
