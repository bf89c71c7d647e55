"""Swin feature pyramids for TAO's RT-DETR (its ``RTDETR_BACKBONE_REGISTRY`` has no Swin).

Copied verbatim into a Swin detection port's generated ``model/backbone.py`` (which registers the port's size in
``RTDETR_BACKBONE_REGISTRY``), and imported by tao-scaffold to derive the weight mapping, so it stays
self-contained: torch and TAO imports only.

A thin wrapper over TAO's backbone_v2 Swin of the same name (``body``): its feature pyramid at ``out_indices``
(default stages 1-3: strides 8/16/32), each level normalised by backbone_v2's per-level LayerNorm ``norm{i}``, as
the list of NCHW maps RT-DETR's HybridEncoder takes, with their widths as ``out_channels``.
"""

from torch import nn

from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY


class SwinFPN(nn.Module):
    """TAO's backbone_v2 Swin ``name`` as an RT-DETR backbone (``forward_feature_pyramid``, ``out_channels``)."""

    def __init__(self, name, out_indices=(1, 2, 3), freeze_at=None, freeze_norm=False, activation_checkpoint=False,
                 export=False):  # pylint: disable=unused-argument  # export: RT-DETR passes it; Swin has no BN
        super().__init__()
        self.return_idx = list(out_indices)
        self.body = BACKBONE_REGISTRY.get(name)(num_classes=0, out_indices=tuple(self.return_idx),
                                                freeze_at=freeze_at, freeze_norm=freeze_norm,
                                                activation_checkpoint=activation_checkpoint)
        self.out_channels = [int(self.body.num_inter_features[i]) for i in self.return_idx]

    def forward_feature_pyramid(self, x):
        """The levels at ``out_indices`` (backbone_v2 returns a dict ``p{i}`` in stage order)."""
        levels = self.body.forward_feature_pyramid(x)
        return [levels[f"p{i}"] for i in self.return_idx]

    def forward(self, x):
        return self.forward_feature_pyramid(x)


def register_swin_fpn(registry, name):
    """Register ``name`` -> the RT-DETR pyramid of backbone_v2's ``name`` (idempotent: re-imports are fine)."""
    if name in registry:
        return registry.get(name)

    def factory(out_indices=(1, 2, 3), **kwargs):
        return SwinFPN(name, out_indices, **kwargs)

    factory.__name__ = name
    factory.__doc__ = f"backbone_v2 {name} feature pyramid (strides 8/16/32 for out_indices 1, 2, 3)."
    registry.register(factory)
    return factory
