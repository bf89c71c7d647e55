"""Semantic segmentation: TAO segformer's layout (``images/<split>/*``, ``masks/<split>/*``, a palette)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from scaffolder.errors import ScaffoldError
from scaffolder.verify.consistency_rules import Violation
from scaffolder.verify.port import Port
from scaffolder.verify.specs import get, module_constant
from scaffolder.verify.tasks.base import Dataset, PathMapper, TaskSupport, hydra_value

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# RGB palette: the harder case for a deploy loader (TAO's stock one converts masks to grayscale)
SYNTHETIC_PALETTE = ((0, 0, 0), (220, 20, 60), (0, 128, 255), (250, 170, 30))
TRAIN_IMAGES = VAL_IMAGES = 2  # batch 2: one optimizer step, one validation batch (TAO needs >= batch size)
# CDDataAugmentation (training, every split): images bicubic, masks nearest
TRAINING_INTERPOLATION = {"IMAGE_INTERPOLATION": "bicubic", "MASK_INTERPOLATION": "nearest"}


def synthetic_palette() -> list[dict[str, Any]]:
    return [{"label_id": i, "rgb": list(rgb), "seg_class": f"class_{i}", "mapping_class": f"class_{i}"}
            for i, rgb in enumerate(SYNTHETIC_PALETTE)]


def palette_override(palette: list[dict[str, Any]]) -> str:
    """``dataset.segment.palette=[{...}, ...]`` in hydra's override grammar, without spaces: TAO's launcher
    re-splits the command line on whitespace."""
    entries = ",".join(
        "{label_id:%d,rgb:[%s],seg_class:%s,mapping_class:%s}"
        % (e["label_id"], ",".join(str(int(v)) for v in e["rgb"]), e["seg_class"], e["mapping_class"])
        for e in palette
    )
    return f"dataset.segment.palette=[{entries}]"


class SegmentationTask(TaskSupport):
    name = "segmentation"
    preprocess_adapter = "preprocess_segmentation"
    preprocess_metrics = ("mask_disagreements", "mask_pixels", "stock_loader_mask_disagreements",
                          "stock_loader_mask_error")
    hf_parity_probe = "hf_parity_segmentation.py"
    hf_parity_metrics = ("max_abs_features", "max_abs_logits", "logits", "mapped_tensors", "norm_eps_overrides",
                         "features_shape", "feature_scale", "input_shape", "loaded_tensors", "fresh_tensors",
                         "compared")
    mean_key = "dataset.segment.augmentation.mean"
    std_key = "dataset.segment.augmentation.std"
    img_size_key = "dataset.segment.img_size"  # the generic rule also holds export.input_{width,height} to it
    num_classes_key = "dataset.segment.num_classes"
    backbone_key = "model.backbone.type"

    # -- data --------------------------------------------------------------------------------------
    def synthetic_dataset(self, port: Port, dest: Path, img_size: int) -> Dataset:
        """4 classes, RGB palette masks. train/val 2 images each (what ``train`` reads at batch 2); test 4 images
        of different sizes, aspect ratios, colour modes (RGB, L, RGBA) and formats (PNG, JPEG, masks always PNG):
        the images of deploy-preprocess (image tensors and mask ids) and of the TensorRT stages."""
        import numpy as np
        from PIL import Image

        s = int(img_size)
        shapes = {
            "train": [(s, s, "RGB", ".png"), (s + s // 3, s, "RGB", ".jpg")],
            "val": [(s + 9, s, "RGB", ".png"), (s, s + 7, "RGB", ".png")],
            "test": [(s, s, "RGB", ".png"), (s * 3 // 2, s, "L", ".png"), (max(s // 2 + 3, 8), s + 5, "RGB", ".jpg"),
                     (s * 2, s // 2 + 1, "RGBA", ".png")],
        }
        rng = np.random.default_rng(20240607)
        colours = np.array(SYNTHETIC_PALETTE, np.uint8)
        counts: dict[str, int] = {}
        for split, specs in shapes.items():
            (dest / "images" / split).mkdir(parents=True, exist_ok=True)
            (dest / "masks" / split).mkdir(parents=True, exist_ok=True)
            for index, (w, h, mode, suffix) in enumerate(specs):
                y, x = np.mgrid[0:h, 0:w]
                ids = ((x * 4 // w) + (y * 3 // h) + index) % len(colours)  # blocks + a disc: resampling matters
                ids[(x - w * 0.5) ** 2 + (y - h * 0.4) ** 2 < (min(w, h) * 0.25) ** 2] = (index + 1) % len(colours)
                pixels = np.clip(colours[ids] * 0.7 + rng.normal(0, 20, (h, w, 3)) + 30, 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels, "RGB")
                if mode == "L":
                    image = image.convert("L")
                elif mode == "RGBA":
                    image.putalpha(Image.fromarray(np.linspace(64, 255, w * h).reshape(h, w).astype("uint8"), "L"))
                stem = f"{split}_{index:03d}"
                image.save(dest / "images" / split / f"{stem}{suffix}", **({"quality": 92} if suffix == ".jpg" else {}))
                Image.fromarray(colours[ids], "RGB").save(dest / "masks" / split / f"{stem}.png")
                counts[split] = counts.get(split, 0) + 1
        palette = synthetic_palette()
        (dest / "palette.json").write_text(json.dumps(palette), encoding="utf-8")
        return _dataset(dest, len(palette), counts, synthetic=True, description=(
            f"synthetic: {len(palette)} classes (RGB palette masks), train {counts['train']} / val {counts['val']} / "
            f"test {counts['test']} images (test: varied sizes, RGB/L/RGBA, PNG/JPEG)"))

    def user_dataset(self, port: Port, data: Path, dest: Path) -> Dataset:
        """A bounded view of ``--data`` (symlinks, same stems): 2 train, 2 val and 4 test image/mask pairs; the
        spec's palette and class count stay as generated (the data must match them)."""
        data = data.expanduser().resolve()
        if not (data / "images" / "train").is_dir() or not (data / "masks" / "train").is_dir():
            raise ScaffoldError(f"--data {data} has no images/train and masks/train folders",
                                "a segmentation dataset is DIR/images/<split>/* + DIR/masks/<split>/* (same stems)")
        counts: dict[str, int] = {}
        for split, wanted in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES), ("test", 4)):
            source = next((s for s in (split, "val", "train") if (data / "images" / s).is_dir()
                           and (data / "masks" / s).is_dir()))
            masks = {p.stem: p for p in (data / "masks" / source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
            pairs = [(p, masks[p.stem]) for p in sorted((data / "images" / source).iterdir())
                     if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks][:wanted]
            if len(pairs) < min(wanted, 2):
                raise ScaffoldError(f"--data {data}: fewer than 2 image/mask pairs with the same stem under "
                                    f"images/{source} and masks/{source}", "check the dataset layout and names")
            for kind in ("images", "masks"):
                (dest / kind / split).mkdir(parents=True, exist_ok=True)
            for image, mask in pairs:
                os.symlink(image, dest / "images" / split / image.name)
                os.symlink(mask, dest / "masks" / split / mask.name)
            counts[split] = len(pairs)
        classes = int(port.answers.get("num_classes") or 0)
        return _dataset(dest, classes, counts, synthetic=False, description=(
            f"--data {data}: bounded to train {counts['train']} / val {counts['val']} / test {counts['test']} "
            "image/mask pairs; palette and classes from the spec"))

    # -- commands ----------------------------------------------------------------------------------
    def _data_overrides(self, data: Dataset, target: PathMapper) -> list[str]:
        out = [f"dataset.segment.root_dir={hydra_value(target(data.root))}",
               f"dataset.segment.num_classes={data.num_classes}"]
        palette = data.root / "palette.json"
        if data.synthetic and palette.is_file():
            out += [palette_override(json.loads(palette.read_text(encoding="utf-8"))),
                    "dataset.segment.label_transform=None"]
        return out

    def pytorch_overrides(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        return [
            *self._data_overrides(data, target),
            "dataset.segment.train_split=train",
            "dataset.segment.validation_split=val",
            "dataset.segment.test_split=test",
            "dataset.segment.predict_split=test",
            "dataset.segment.batch_size=2",
            "dataset.segment.workers=0",
        ]

    def deploy_overrides(self, port: Port, data: Dataset, target: PathMapper, subtask: str) -> list[str]:
        return [
            *self._data_overrides(data, target),
            "dataset.segment.validation_split=test",  # tao-deploy evaluate reads validation_split
            "dataset.segment.predict_split=test",
            "dataset.segment.batch_size=1",  # the deploy loaders drop a last partial batch
        ]

    # -- Python objects ----------------------------------------------------------------------------
    def trt_inferencer(self, port: Port) -> str:
        return "nvidia_tao_deploy.cv.segformer.inferencer:SegformerInferencer"

    # -- checks --------------------------------------------------------------------------------------
    def extra_consistency(self, port: Port, train: dict[str, Any], deploy: dict[str, dict[str, Any]]) -> list[Violation]:
        """Decoder widths agree with model_params_mapping in every spec; the deploy loader resizes like training."""
        out: list[Violation] = []
        config_dir = port.config_dirs.get("tao-pytorch")
        mapping_file = config_dir / "model_params_mapping.py" if config_dir is not None else None
        table = module_constant(mapping_file, "map_params", None) if mapping_file and mapping_file.is_file() else None
        backbone = get(train, self.backbone_key, None) if train else None
        widths = (table or {}).get("decode_head", {}).get("in_channels", {}).get(backbone)
        key = "model.decode_head.in_channels"
        docs = {port.rel(port.train_spec): train}
        docs.update({port.rel(port.deploy_specs[sub]): doc for sub, doc in deploy.items() if sub in port.deploy_specs})
        for where, doc in docs.items():
            value = get(doc, key, None) if doc else None
            if widths is not None and isinstance(value, list) and list(value) != list(widths):
                out.append(Violation(where, key, f"{value} but {backbone}'s feature maps are {list(widths)} "
                                                 "(model_params_mapping.py): the decoder would not fit the backbone"))
        loader = port.deploy_dir / "dataloader.py" if port.deploy_dir is not None else None
        if loader is not None and loader.is_file():
            for constant, expected in TRAINING_INTERPOLATION.items():
                value = module_constant(loader, constant, None)
                if value is not None and value != expected:
                    out.append(Violation(port.rel(loader), constant, f"deploy loader resizes with {value!r}; training "
                                                                     f"(CDDataAugmentation) uses {expected!r}"))
        return out

    def preprocess_args(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        return [
            "--data-module", self.data_module(port),
            "--loader", self.deploy_loader(port),
            "--images", target(data.verify_images),
            "--root", target(data.root),
        ]

    def check_inference_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        from PIL import Image

        masks = sorted(results_dir.rglob("mask_labels/*.png"))
        if not masks:
            return [f"no mask_labels/*.png under {results_dir}"], {}, {}
        problems = []
        expected = data.counts.get("test", 0)
        if expected and len(masks) != expected:
            problems.append(f"{len(masks)} masks for {expected} test images")
        for path in masks:
            with Image.open(path) as mask:
                values = set(mask.getdata())
            if max(values) >= data.num_classes:
                problems.append(f"{path.name}: class id {max(values)} >= num_classes {data.num_classes}")
        return problems[:20], {"masks": len(masks)}, {"mask_labels": str(masks[0].parent)}

    def check_evaluate_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        found = sorted(results_dir.rglob("results.json"))
        if not found:
            return [f"no results.json under {results_dir}"], {}, {}
        path = found[0]
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [f"{path}: not valid JSON ({exc})"], {}, {"results_json": str(path)}
        miou = results.get("mean_iou") if isinstance(results, dict) else None
        problems = []
        if not isinstance(miou, (int, float)) or not (math.isnan(miou) or 0.0 <= miou <= 1.0):
            problems.append(f"{path}: mean_iou = {miou!r} is not a number in [0, 1]")
        expected = data.counts.get("test", 0)
        if expected and results.get("num_images") != expected:
            problems.append(f"{path}: num_images = {results.get('num_images')} for {expected} test images")
        metrics = {k: v for k, v in results.items() if isinstance(v, (int, float))}
        return problems, metrics, {"results_json": str(path)}


def _dataset(dest: Path, num_classes: int, counts: dict[str, int], *, synthetic: bool, description: str) -> Dataset:
    return Dataset(
        root=dest,
        splits={split: dest / "images" / split for split in ("train", "val", "test")},
        num_classes=num_classes,
        verify_images=dest / "images" / "test",
        synthetic=synthetic,
        description=description,
        counts=counts,
    )
