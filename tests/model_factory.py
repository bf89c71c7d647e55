"""Test model factories: HF model folders built from transformers config classes, with seeded random weights.

    from tests.model_factory import make_model_dir, populate_hub_cache, KINDS

``make_model_dir(dest, kind)`` writes ``config.json``, ``preprocessor_config.json`` (not for ``bert``) and, unless
``weights=False``, ``model.safetensors`` (or shards plus ``model.safetensors.index.json`` with ``max_shard_size``)
via ``save_pretrained``. Tiny geometry by default (fast; for inspect-style tests); ``full_size=True`` reproduces the
geometry of the hub model named in ``KINDS`` so the catalog matches it (e.g. ``vit_base_patch16``). The
preprocessor files carry the values of those hub models (ViT: mean/std 0.5; the others ImageNet mean/std); for
tiny models with a fixed ``image_size`` (vit, deit, swin, dinov2, efficientnet) its sizes are scaled to match.

``populate_hub_cache(cache_dir, repo_id, src_dir)`` lays a model folder out in the huggingface_hub cache layout
(``models--org--name/{blobs,snapshots/<sha>,refs/main}``) so hub-id code paths run offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
RESCALE = 0.00392156862745098  # 1/255 as transformers serialises it

# Legacy feature-extractor files (as on the hub for the older checkpoints).
_VIT_PRE = {
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "ViTFeatureExtractor",
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 2,
    "size": 224,
}
_SWIN_PRE = {**_VIT_PRE, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "resample": 3}
_CONVNEXT_PRE = {
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "ConvNextFeatureExtractor",
    "image_mean": IMAGENET_MEAN,
    "image_std": IMAGENET_STD,
    "resample": 3,
    "size": 224,
}
_CONVNEXTV2_PRE = {
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": IMAGENET_MEAN,
    "image_processor_type": "ConvNextImageProcessor",
    "image_std": IMAGENET_STD,
    "resample": 3,
    "rescale_factor": RESCALE,
    "size": {"shortest_edge": 224},
}
# BitImageProcessor(size={"shortest_edge": 256}) with ImageNet mean/std: Hiera's and DINOv2's hub processors.
_BIT_PRE = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": IMAGENET_MEAN,
    "image_processor_type": "BitImageProcessor",
    "image_std": IMAGENET_STD,
    "resample": 3,
    "rescale_factor": RESCALE,
    "size": {"shortest_edge": 256},
}
_SEGFORMER_PRE = {
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "SegformerFeatureExtractor",
    "image_mean": IMAGENET_MEAN,
    "image_std": IMAGENET_STD,
    "reduce_labels": False,
    "resample": 2,
    "size": 512,
}
_DEIT_PRE = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "DeiTFeatureExtractor",
    "image_mean": IMAGENET_MEAN,
    "image_std": IMAGENET_STD,
    "resample": 3,
    "size": 256,
}
# EfficientNetImageProcessor as the conversion script saved it for b0 (crop_size is its unused default).
_EFFICIENTNET_PRE = {
    "crop_size": {"height": 289, "width": 289},
    "do_center_crop": False,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": IMAGENET_MEAN,
    "image_processor_type": "EfficientNetImageProcessor",
    "image_std": [0.47853944, 0.4732864, 0.47434163],
    "include_top": True,
    "resample": 0,
    "rescale_factor": RESCALE,
    "rescale_offset": False,
    "size": {"height": 224, "width": 224},
}


@dataclass(frozen=True)
class Kind:
    config_class: str  # transformers config class
    model_class: str  # transformers model class (the config's architectures)
    hub_id: str  # the hub model whose geometry full_size reproduces
    tiny: dict[str, Any]
    full: dict[str, Any] = field(default_factory=dict)
    preprocessor: dict[str, Any] | None = None
    classifier: bool = True  # has a label head (id2label written)


KINDS: dict[str, Kind] = {
    "vit": Kind(
        "ViTConfig",
        "ViTForImageClassification",
        "google/vit-base-patch16-224",
        tiny=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        ),
        preprocessor=_VIT_PRE,
    ),
    "deit": Kind(
        "DeiTConfig",
        "DeiTForImageClassificationWithTeacher",
        "facebook/deit-base-distilled-patch16-224",
        tiny=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        ),
        preprocessor=_DEIT_PRE,
    ),
    "swin": Kind(
        "SwinConfig",
        "SwinForImageClassification",
        "microsoft/swin-tiny-patch4-window7-224",
        tiny=dict(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=2),
        full=dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7),
        preprocessor=_SWIN_PRE,
    ),
    "convnext": Kind(
        "ConvNextConfig",
        "ConvNextForImageClassification",
        "facebook/convnext-tiny-224",
        tiny=dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2),
        full=dict(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
        preprocessor=_CONVNEXT_PRE,
    ),
    "convnextv2": Kind(
        "ConvNextV2Config",
        "ConvNextV2ForImageClassification",
        "facebook/convnextv2-tiny-1k-224",
        tiny=dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2),
        full=dict(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
        preprocessor=_CONVNEXTV2_PRE,
    ),
    "resnet": Kind(
        "ResNetConfig",
        "ResNetForImageClassification",
        "microsoft/resnet-50",
        tiny=dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
        full=dict(
            embedding_size=64,
            hidden_sizes=[256, 512, 1024, 2048],
            depths=[3, 4, 6, 3],
            layer_type="bottleneck",
        ),
        preprocessor=_CONVNEXT_PRE,
    ),
    "hiera": Kind(
        "HieraConfig",
        "HieraForImageClassification",
        "facebook/hiera-tiny-224-in1k-hf",
        tiny=dict(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]),
        full=dict(embed_dim=96, depths=[1, 2, 7, 2], num_heads=[1, 2, 4, 8]),
        preprocessor=_BIT_PRE,
    ),
    "segformer": Kind(
        "SegformerConfig",
        "SegformerForImageClassification",
        "nvidia/mit-b0",
        tiny=dict(
            hidden_sizes=[8, 16, 24, 32],
            num_attention_heads=[1, 1, 1, 1],
            depths=[1, 1, 1, 1],
            decoder_hidden_size=16,
            reshape_last_stage=False,
        ),
        full=dict(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], reshape_last_stage=False),
        preprocessor=_SEGFORMER_PRE,
    ),
    # nvidia/segformer-b2-finetuned-cityscapes-1024-1024 (b2 widths, decoder_hidden_size 768); tiny = reduced b0
    "segformer_semantic": Kind(
        "SegformerConfig",
        "SegformerForSemanticSegmentation",
        "nvidia/segformer-b2-finetuned-cityscapes-1024-1024",
        tiny=dict(hidden_sizes=[8, 16, 40, 64], num_attention_heads=[1, 2, 5, 8], depths=[1, 1, 1, 1],
                  decoder_hidden_size=32),
        full=dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3], decoder_hidden_size=768),
        preprocessor={**_SEGFORMER_PRE, "size": 1024},
    ),
    "mask2former": Kind(
        "Mask2FormerConfig",
        "Mask2FormerForUniversalSegmentation",
        "facebook/mask2former-swin-tiny-coco-panoptic",
        tiny={},
        preprocessor=None,
        classifier=False,
    ),
    # tiny: a ConvNeXt V2 atto backbone (the smallest size TAO registers) under a narrow UperNet head
    "upernet": Kind(
        "UperNetConfig",
        "UperNetForSemanticSegmentation",
        "openmmlab/upernet-convnext-tiny",
        tiny=dict(backbone_config={"model_type": "convnextv2", "hidden_sizes": [40, 80, 160, 320],
                                   "depths": [2, 2, 6, 2], "out_features": ["stage1", "stage2", "stage3", "stage4"]},
                  hidden_size=32, auxiliary_channels=16),
        full=dict(backbone_config={"model_type": "convnext", "hidden_sizes": [96, 192, 384, 768],
                                   "depths": [3, 3, 9, 3], "out_features": ["stage1", "stage2", "stage3", "stage4"]}),
        preprocessor=_SEGFORMER_PRE,
    ),
    "dinov2": Kind(
        "Dinov2Config",
        "Dinov2Model",
        "facebook/dinov2-small",
        tiny=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14),
        full=dict(
            hidden_size=384, num_hidden_layers=12, num_attention_heads=6, image_size=518, patch_size=14
        ),
        preprocessor=_BIT_PRE,
        classifier=False,
    ),
    "efficientnet": Kind(
        "EfficientNetConfig",
        "EfficientNetForImageClassification",
        "google/efficientnet-b0",
        tiny=dict(width_coefficient=0.1, depth_coefficient=0.1, image_size=32, hidden_dim=64),
        full=dict(
            width_coefficient=1.0,
            depth_coefficient=1.0,
            image_size=224,
            hidden_dim=1280,
            dropout_rate=0.2,
            depthwise_padding=[],
        ),
        preprocessor=_EFFICIENTNET_PRE,
    ),
    "bert": Kind(
        "BertConfig",
        "BertForMaskedLM",
        "google-bert/bert-base-uncased",
        tiny=dict(
            vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
        ),
        preprocessor=None,
        classifier=False,
    ),
}


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in class-index order, from timm's package data (WordNet lemmas).

    These are the strings of HF's ``imagenet-1k-id2label.json`` (the classic ``synset_words`` text), e.g.
    0 -> "tench, Tinca tinca", 134 and 517 -> "crane".
    """
    import timm.data

    info = Path(timm.data.__file__).parent / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text(encoding="utf-8").split()
    lemmas = dict(
        line.split("\t", 1)
        for line in (info / "imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines()
        if "\t" in line
    )
    labels = tuple(lemmas[s].strip() for s in synsets)
    assert len(labels) == 1000, len(labels)
    return labels


def imagenet_id2label() -> dict[int, str]:
    return dict(enumerate(imagenet_labels()))


def make_model_dir(
    dest: Path,
    kind: str,
    *,
    weights: bool = True,
    num_labels: int | None = None,
    id2label: dict[int, str] | None = None,
    full_size: bool = False,
    seed: int = 0,
    max_shard_size: str | int | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write a HF model folder for ``kind`` (one of ``KINDS``) into ``dest`` and return ``dest``.

    Labels: ``id2label`` wins; else ``num_labels`` generic labels; else 1000 ImageNet labels for full-size
    classifiers and 3 for tiny ones. Kinds without a label head (dinov2, bert) write no labels unless asked.
    ``max_shard_size`` (e.g. ``"20KB"``) shards the weights and writes ``model.safetensors.index.json``.
    ``overrides`` change config fields of the tiny (or full) geometry, e.g. another size of the family; the
    preprocessor follows a tiny model's ``image_size`` and an overridden one.
    """
    import torch
    import transformers
    from transformers.utils import logging as tf_logging

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    spec = KINDS[kind]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    kwargs: dict[str, Any] = {**(spec.full if full_size else spec.tiny), **(overrides or {})}
    labels: dict[int, str] | None = None
    if id2label is not None:
        labels = {int(k): str(v) for k, v in id2label.items()}
    elif num_labels is not None:
        labels = {i: f"LABEL_{i}" for i in range(num_labels)}
    elif spec.classifier:
        labels = imagenet_id2label() if full_size else {0: "cat", 1: "dog", 2: "bird"}
    if labels is not None:
        kwargs["id2label"] = labels
        kwargs["label2id"] = {v: k for k, v in labels.items()}
    config = getattr(transformers, spec.config_class)(**kwargs)
    config.architectures = [spec.model_class]

    progress = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        if weights:
            torch.manual_seed(seed)
            model = getattr(transformers, spec.model_class)(config).eval()
            save_kwargs = {"max_shard_size": max_shard_size} if max_shard_size is not None else {}
            model.save_pretrained(dest, **save_kwargs)
        else:
            config.save_pretrained(dest)
    finally:
        if progress:
            tf_logging.enable_progress_bar()
    if spec.preprocessor is not None:
        pre = spec.preprocessor
        tiny_size = kwargs.get("image_size")
        if (not full_size or "image_size" in (overrides or {})) and isinstance(tiny_size, int) and tiny_size != 224:
            pre = _scaled_preprocessor(pre, tiny_size / 224)
        (dest / "preprocessor_config.json").write_text(
            json.dumps(pre, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return dest


def _scaled_preprocessor(pre: dict[str, Any], ratio: float) -> dict[str, Any]:
    """The hub preprocessor with its size/crop_size scaled to a tiny model's image_size (same shapes)."""
    out = dict(pre)
    for key in ("size", "crop_size"):
        value = pre.get(key)
        if isinstance(value, int):
            out[key] = round(value * ratio)
        elif isinstance(value, dict):
            out[key] = {k: round(v * ratio) for k, v in value.items()}
    return out


def populate_hub_cache(
    cache_dir: Path,
    repo_id: str,
    src_dir: Path,
    *,
    commit: str | None = None,
    ref: str = "main",
    files: list[str] | None = None,
) -> Path:
    """Lay ``src_dir``'s files out as huggingface_hub's cache does and return the snapshot folder.

    ``cache_dir/models--org--name/blobs/<sha256>``, ``snapshots/<commit>/<file>`` symlinked to the blob (copied
    where symlinks are unavailable) and ``refs/<ref>`` holding the commit.
    """
    storage = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    commit = commit or hashlib.sha1(f"{repo_id}@{ref}".encode()).hexdigest()
    snapshot = storage / "snapshots" / commit
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    names = files if files is not None else sorted(p.name for p in Path(src_dir).iterdir() if p.is_file())
    for name in names:
        data = (Path(src_dir) / name).read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        if link.exists() or link.is_symlink():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:
            shutil.copyfile(blob, link)
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / ref).write_text(commit, encoding="utf-8")
    return snapshot


# -- detectors -------------------------------------------------------------------------------------------
RTDETR_PREPROCESSOR = {
    "do_convert_annotations": True, "do_normalize": False, "do_pad": False, "do_rescale": True, "do_resize": True,
    "format": "coco_detection", "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "RTDetrImageProcessor",
    "image_std": [0.229, 0.224, 0.225], "resample": 2, "rescale_factor": 1 / 255,
}
_VD_BACKBONES = {18: ("basic", [2, 2, 2, 2], [64, 128, 256, 512]), 34: ("basic", [3, 4, 6, 3], [64, 128, 256, 512]),
                 50: ("bottleneck", [3, 4, 6, 3], [256, 512, 1024, 2048])}


def make_rtdetr_dir(dest: Path, *, depth: int = 18, num_queries: int = 30, decoder_layers: int = 1, size: int = 256,
                    num_labels: int = 3, v2: bool = False, **overrides: Any) -> Path:
    """config.json + preprocessor_config.json of an RT-DETR(v2) ResNet-vd detector (reduced geometry, no weights).

    r18/r34-vd use PekingU's r18vd encoder widths (128/256/512 in, expansion 0.5); RT-DETRv2 needs >= 2 decoder
    layers to build in transformers 5.6 (its tied-heads regex finds nothing to tie with one).
    """
    from transformers import RTDetrConfig, RTDetrResNetConfig, RTDetrV2Config

    layer_type, depths, widths = _VD_BACKBONES[depth]
    backbone = RTDetrResNetConfig(layer_type=layer_type, depths=depths, hidden_sizes=widths,
                                  out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
    extra = {"encoder_in_channels": widths[1:], "hidden_expansion": 0.5} if depth in (18, 34) else {}
    config_class = RTDetrV2Config if v2 else RTDetrConfig
    labels = {i: f"object_{i}" for i in range(num_labels)}
    config = config_class(backbone_config=backbone, num_queries=num_queries, decoder_layers=decoder_layers,
                          id2label=labels, label2id={v: k for k, v in labels.items()}, **{**extra, **overrides})
    config.architectures = ["RTDetrV2ForObjectDetection" if v2 else "RTDetrForObjectDetection"]
    dest.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(dest)
    (dest / "preprocessor_config.json").write_text(
        json.dumps({**RTDETR_PREPROCESSOR, "size": {"height": size, "width": size}}, indent=2), encoding="utf-8")
    return dest


DDETR_PREPROCESSOR = {
    "do_convert_annotations": True, "do_normalize": True, "do_pad": True, "do_rescale": True, "do_resize": True,
    "format": "coco_detection", "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "DeformableDetrImageProcessor",
    "image_std": [0.229, 0.224, 0.225], "resample": 2, "rescale_factor": 1 / 255,
}


def make_ddetr_dir(dest: Path, *, num_queries: int = 20, encoder_layers: int = 1, decoder_layers: int = 2,
                   d_model: int = 128, ffn_dim: int = 256, size: int = 192, num_objects: int = 3,
                   with_box_refine: bool = True, **overrides: Any) -> Path:
    """config.json + preprocessor_config.json of a single-stage Deformable DETR (HF's timm resnet50 backbone, a
    reduced transformer, no weights). Labels follow HF's COCO checkpoints: id 0 is "N/A" (TAO's background),
    objects are 1..num_objects, so num_labels = num_objects + 1."""
    from transformers import DeformableDetrConfig

    labels = {0: "N/A", **{i: f"object_{i}" for i in range(1, num_objects + 1)}}
    config = DeformableDetrConfig(
        num_queries=num_queries, encoder_layers=encoder_layers, decoder_layers=decoder_layers, d_model=d_model,
        encoder_ffn_dim=ffn_dim, decoder_ffn_dim=ffn_dim, with_box_refine=with_box_refine, two_stage=False,
        use_pretrained_backbone=False, id2label=labels, label2id={v: k for k, v in labels.items()}, **overrides)
    config.architectures = ["DeformableDetrForObjectDetection"]
    dest.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(dest)
    (dest / "preprocessor_config.json").write_text(
        json.dumps({**DDETR_PREPROCESSOR, "size": {"shortest_edge": size, "longest_edge": size * 5 // 3}}, indent=2),
        encoding="utf-8")
    return dest
