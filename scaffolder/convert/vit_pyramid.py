"""A ViTDet-style simple feature pyramid over a plain ViT, for TAO's SegFormer decoder and TAO's RT-DETR.

Copied verbatim into each ViT/DINOv2 segmentation or detection port's generated ``model/backbone.py``
(``blueprints/_partials/backbone/vit_pyramid.py.jinja``), and imported by tao-scaffold to derive the weight
mapping, so it stays self-contained: torch, timm and TAO imports only.

A plain ViT has one token map. ViTDet (Li et al., 2022) builds the pyramid from the last one alone, at stride 16:

* stride 16: the ViT's final (layer-normed) patch tokens as an NCHW map. A patch-16 ViT gives it directly; any
  other patch size (DINOv2's 14) reaches it by resizing the *image* to the stride-16 grid first: an H x W input
  is resized (bilinear) to (H // 16 * patch) x (W // 16 * patch), so the patch grid is H // 16 x W // 16
  (``vit_input``). Position embeddings are resampled to that grid as HF does (bicubic, no antialias -- which
  also keeps the graph exportable to ONNX).
* stride 8: one 2x2 transposed conv (width / 2); stride 4: two (width / 4, a channel LayerNorm and GELU
  between them); stride 32: 2x2 max-pool (ceil mode: an odd grid keeps its border).
* every level: a 1x1 conv projection to its output width, then a 3x3 conv, each followed by a channel LayerNorm.

The ViT (``self.vit``) is timm's VisionTransformer -- the architecture TAO's backbone_v2 ViT is, key for key --
so the family's HF -> TAO rules convert it; the pyramid layers (``self.levels``) have no HF counterpart and
start from their initialisation. SegFormer takes the 4 levels (strides 4/8/16/32), RT-DETR the last 3
(``out_indices`` 1, 2, 3; ``out_channels`` lists their widths).
"""

from functools import partial

import torch
from timm.layers import LayerNorm2d, resample_abs_pos_embed
from timm.models._manipulate import checkpoint_seq
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torch.nn import functional as F

from nvidia_tao_pytorch.cv.backbone_v2.backbone_base import BackboneBase

PYRAMID_STRIDES = (4, 8, 16, 32)
MAP_STRIDE = 16  # the stride of the ViT token map every level is built from


def _resample(dim, stride):
    """The layers taking the stride-16 map of width ``dim`` to ``stride``, and the width they give."""
    if stride == 4:
        return nn.Sequential(nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), LayerNorm2d(dim // 2), nn.GELU(),
                             nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2)), dim // 4
    if stride == 8:
        return nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), dim // 2
    if stride == 16:
        return nn.Identity(), dim
    if stride == 32:
        return nn.MaxPool2d(2, stride=2, ceil_mode=True), dim  # an odd (or 1-wide) grid keeps its last row/column
    raise ValueError(f"stride {stride}: the simple feature pyramid has strides {PYRAMID_STRIDES}")


def _level(dim, stride, width):
    resample, channels = _resample(dim, stride)
    return nn.Sequential(resample, nn.Conv2d(channels, width, 1, bias=False), LayerNorm2d(width),
                         nn.Conv2d(width, width, 3, padding=1, bias=False), LayerNorm2d(width))


class ViTSimpleFeaturePyramid(BackboneBase):
    """A timm VisionTransformer (``vit``) with a ViTDet simple feature pyramid (``levels``) over its last tokens.

    ``forward_feature_pyramid(x)``: the maps of ``out_indices`` (0..3 = strides 4, 8, 16, 32), NCHW, widths
    ``out_channels``. ``forward_vit_map(x)``: the stride-16 map all levels are built from (the ViT's final-norm
    patch tokens). ``vit_input(x)``: the image the ViT sees.
    """

    def __init__(self, out_channels=(256, 256, 256, 256), out_indices=(0, 1, 2, 3), layer_norm_eps=1e-6,
                 activation_checkpoint=False, freeze_at=None, freeze_norm=False, export=False, **vit_kwargs):
        """Build the ViT with ``vit_kwargs`` (timm VisionTransformer arguments; ``layer_norm_eps``: its norms' eps)
        and the pyramid levels of ``out_indices`` with widths ``out_channels`` (one per stride 4/8/16/32)."""
        super().__init__(in_chans=vit_kwargs.get("in_chans", 3), num_classes=0,
                         activation_checkpoint=activation_checkpoint, freeze_at=freeze_at, freeze_norm=freeze_norm,
                         export=export)
        vit_kwargs.pop("num_classes", None)
        vit_kwargs.setdefault("dynamic_img_size", True)  # patch_embed keeps the NHWC grid
        self.vit = VisionTransformer(num_classes=0, norm_layer=partial(nn.LayerNorm, eps=layer_norm_eps),
                                     **vit_kwargs)
        dim = self.vit.embed_dim
        self.patch_size = int(self.vit.patch_embed.patch_size[0])
        self.out_indices = [int(i) for i in out_indices]
        self.out_channels = [int(out_channels[i]) for i in self.out_indices]
        self.levels = nn.ModuleList(_level(dim, PYRAMID_STRIDES[i], int(out_channels[i])) for i in self.out_indices)

    def get_stage_dict(self):
        """Stages for `freeze_at`: 0 the patch embedding, 1-N the ViT blocks (the pyramid only with "all")."""
        stages = {0: self.vit.patch_embed}
        for index, block in enumerate(self.vit.blocks, start=1):
            stages[index] = block
        return stages

    @torch.jit.ignore
    def get_classifier(self):
        """No classifier: this backbone feeds a decoder."""
        return nn.Identity()

    def reset_classifier(self, num_classes=0, **kwargs):
        """No classifier to reset."""

    def vit_input(self, x):
        """The image resized so that the ViT's patch grid is the stride-16 grid (unchanged for patch 16)."""
        height, width = x.shape[-2] // MAP_STRIDE * self.patch_size, x.shape[-1] // MAP_STRIDE * self.patch_size
        if (height, width) == tuple(x.shape[-2:]):
            return x
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)

    def forward_vit_map(self, x):
        """The ViT's final layer-normed patch tokens as a (B, C, H / 16, W / 16) map."""
        vit = self.vit
        tokens = vit.patch_embed(self.vit_input(x))  # (B, h, w, C)
        batch, height, width, dim = tokens.shape
        pos_embed = vit.pos_embed
        if (height, width) != tuple(vit.patch_embed.grid_size):  # HF's resampling: bicubic, no antialias
            pos_embed = resample_abs_pos_embed(pos_embed, new_size=(height, width), old_size=vit.patch_embed.grid_size,
                                               num_prefix_tokens=vit.num_prefix_tokens, antialias=False)
        prefix = [t.expand(batch, -1, -1) for t in (vit.cls_token, vit.reg_token) if t is not None]
        tokens = vit.pos_drop(torch.cat(prefix + [tokens.reshape(batch, -1, dim)], dim=1) + pos_embed)
        tokens = vit.norm_pre(vit.patch_drop(tokens))
        if self.activation_checkpoint and self.training and not torch.jit.is_scripting():
            tokens = checkpoint_seq(vit.blocks, tokens)
        else:
            tokens = vit.blocks(tokens)
        tokens = vit.norm(tokens)[:, vit.num_prefix_tokens:]
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)

    def forward_feature_pyramid(self, x, indices=None, **kwargs):
        """The pyramid levels of ``out_indices``, NCHW (strides 4/8/16/32 for indices 0/1/2/3)."""
        stride16 = self.forward_vit_map(x)
        return [level(stride16) for level in self.levels]

    def forward_pre_logits(self, x):
        """The stride-16 map (this backbone has no pooled features)."""
        return self.forward_vit_map(x)

    def forward(self, x):
        """The pyramid levels (as ``forward_feature_pyramid``)."""
        return self.forward_feature_pyramid(x)


def register_vit_pyramid(registry, name, vit_kwargs):
    """Register ``name`` -> the pyramid over a ViT of ``vit_kwargs`` in an RT-DETR backbone registry (RT-DETR calls
    it with ``out_indices`` first; idempotent: re-imports are fine)."""
    if name in registry:
        return registry.get(name)

    def factory(out_indices=(1, 2, 3), **kwargs):
        return ViTSimpleFeaturePyramid(out_indices=out_indices, **{**vit_kwargs, **kwargs})

    factory.__name__ = name
    factory.__doc__ = f"{name}: a ViT with a simple feature pyramid (strides 8/16/32 for out_indices 1, 2, 3)."
    registry.register(factory)
    return factory
