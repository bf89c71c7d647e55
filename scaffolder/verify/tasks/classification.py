"""Classification: class-folder datasets (``train|val|test/<class>/*.png`` + ``classes.txt``)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from scaffolder.errors import ScaffoldError
from scaffolder.verify.consistency_rules import Violation
from scaffolder.verify.port import Port
from scaffolder.verify.specs import module_constant
from scaffolder.verify.tasks.base import Dataset, PathMapper, TaskSupport, hydra_value

IMAGE_SUFFIXES = (".png", ".jpg", ".JPEG")  # what classification_pyt's CLDataset globs
TRAIN_PER_CLASS = 2  # 2 classes x 2 images, batch 2: two optimizer steps
VAL_PER_CLASS = 1  # validation during train: one batch
VERIFY_PER_CLASS = 3  # test: 2 classes x 3 images of different sizes, modes and formats (preprocess, TRT)
SYNTHETIC_CLASSES = 2
TRAINING_INTERPOLATION = "bilinear"  # classification_pyt CLDataAugmentation: TF.resize(..., BILINEAR)


class ClassificationTask(TaskSupport):
    name = "classification"
    preprocess_adapter = "preprocess_classification"
    mean_key = "dataset.augmentation.mean"
    std_key = "dataset.augmentation.std"
    img_size_key = "dataset.img_size"
    num_classes_key = "dataset.num_classes"
    backbone_key = "model.backbone.type"
    cpu_overrides = ("train.precision=fp32",)
    head_in_channels_key = "model.head.in_channels"

    # -- data --------------------------------------------------------------------------------------
    def synthetic_dataset(self, port: Port, dest: Path, img_size: int) -> Dataset:
        """2 classes; train 2 images/class and val 1 image/class (what ``train`` reads: 2 steps + 1 validation
        batch); test 3 images/class of varied sizes, aspect ratios, colour modes (RGB, L, RGBA, P) and formats
        (PNG, JPEG): the verification images of deploy-preprocess and the TensorRT stages."""
        import numpy as np
        from PIL import Image

        s = int(img_size)
        train_shapes = [(s, s), (s + s // 3, s)]
        # (width, height, mode, suffix): square, landscape, portrait, tiny, very wide, grayscale/RGBA/palette
        verify_shapes = [
            [(s, s, "RGB", ".png"), (s * 3 // 2, s, "L", ".png"), (max(s // 3, 8), max(s // 2, 8), "RGB", ".jpg")],
            [(s * 2 // 3, s + s // 5, "RGBA", ".png"), (s * 2, s // 2 + 1, "P", ".png"), (s + 17, s + 5, "RGB", ".jpg")],
        ]
        rng = np.random.default_rng(20240607)
        classes = [f"class_{i}" for i in range(SYNTHETIC_CLASSES)]
        counts: dict[str, int] = {}
        for split in ("train", "val", "test"):
            for label, cls in enumerate(classes):
                folder = dest / split / cls
                folder.mkdir(parents=True, exist_ok=True)
                if split == "train":
                    shapes = [(w, h, "RGB", ".png") for w, h in train_shapes]
                elif split == "val":
                    shapes = [(s + 9 * label, s, "RGB", ".png")][:VAL_PER_CLASS]
                else:
                    shapes = verify_shapes[label]
                for index, (w, h, mode, suffix) in enumerate(shapes):
                    image = Image.fromarray(_pattern(rng, w, h, label), "RGB")
                    if mode != "RGB":
                        image = image.convert(mode) if mode != "P" else image.quantize(64)
                    if mode == "RGBA":
                        alpha = np.linspace(64, 255, w * h).reshape(h, w).astype("uint8")
                        image.putalpha(Image.fromarray(alpha, "L"))
                    path = folder / f"{split}_{index}{suffix}"
                    image.save(path, quality=92) if suffix == ".jpg" else image.save(path)
                    counts[split] = counts.get(split, 0) + 1
        return _class_folder_dataset(dest, classes, counts, synthetic=True, description=(
            f"synthetic: {len(classes)} classes, train {counts['train']} / val {counts['val']} / "
            f"test {counts['test']} images (test: varied sizes, RGB/L/RGBA/P, PNG/JPEG)"
        ))

    def user_dataset(self, port: Port, data: Path, dest: Path) -> Dataset:
        """A bounded view of ``--data`` (symlinks): the first 2 classes that have images, 2 train and 3
        val/test images each; ``classes.txt`` (or the sorted class folders) keeps the full label set."""
        data = data.expanduser().resolve()
        if not (data / "train").is_dir():
            raise ScaffoldError(
                f"--data {data} has no train/ folder",
                "a classification dataset is DIR/train/<class>/*.jpg|png (+ val/, test/, classes.txt)",
            )
        classes_file = data / "classes.txt"
        if classes_file.is_file():
            classes = [line.strip() for line in classes_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            classes = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
        if len(classes) < 2:
            raise ScaffoldError(f"--data {data} has {len(classes)} classes", "a classification dataset needs 2 or more")
        counts: dict[str, int] = {}
        for split in ("train", "val", "test"):
            source = next((data / d for d in (split, "val", "test", "train") if (data / d).is_dir()))
            per_class = {"train": TRAIN_PER_CLASS, "val": VAL_PER_CLASS}.get(split, VERIFY_PER_CLASS)
            taken = 0
            for cls in classes:
                images = sorted(p for p in (source / cls).glob("*") if p.suffix in IMAGE_SUFFIXES)[:per_class]
                if not images:
                    continue
                folder = dest / split / cls
                folder.mkdir(parents=True, exist_ok=True)
                for image in images:
                    os.symlink(image, folder / image.name)
                counts[split] = counts.get(split, 0) + len(images)
                taken += 1
                if taken == SYNTHETIC_CLASSES:
                    break
            if counts.get(split, 0) < min(2, per_class * SYNTHETIC_CLASSES):
                raise ScaffoldError(
                    f"--data {data}: found fewer than 2 images under {source}/<class>/ ({', '.join(IMAGE_SUFFIXES)})",
                    "check the folder layout: DIR/train/<class>/*.jpg",
                )
        return _class_folder_dataset(dest, classes, counts, synthetic=False, description=(
            f"--data {data}: {len(classes)} classes; bounded to train {counts['train']} / val {counts['val']} / "
            f"test {counts['test']} images"
        ))

    # -- commands ----------------------------------------------------------------------------------
    def pytorch_overrides(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        return [
            f"dataset.root_dir={hydra_value(target(data.root))}",
            f"dataset.train_dataset.images_dir={hydra_value(target(data.splits['train']))}",
            f"dataset.val_dataset.images_dir={hydra_value(target(data.splits['val']))}",
            f"dataset.test_dataset.images_dir={hydra_value(target(data.splits['test']))}",
            f"dataset.num_classes={data.num_classes}",
            "dataset.batch_size=2",
            "dataset.workers=0",
        ]

    def deploy_overrides(self, port: Port, data: Dataset, target: PathMapper, subtask: str) -> list[str]:
        return [
            f"dataset.root_dir={hydra_value(target(data.root))}",
            f"dataset.test_dataset.images_dir={hydra_value(target(data.splits['test']))}",
            f"dataset.num_classes={data.num_classes}",
            "dataset.batch_size=1",  # the deploy loaders drop a last partial batch
        ]

    # -- Python objects ----------------------------------------------------------------------------
    def trt_inferencer(self, port: Port) -> str:
        return "nvidia_tao_deploy.cv.classification_tf1.inferencer:ClassificationInferencer"

    # -- checks --------------------------------------------------------------------------------------
    def extra_consistency(self, port: Port, train: dict[str, Any], deploy: dict[str, dict[str, Any]]) -> list[Violation]:
        """The deploy loader must resize like training: bilinear, no aspect-preserving centre crop."""
        out: list[Violation] = []
        if port.deploy_dir is None:
            return out
        loader = port.deploy_dir / "dataloader.py"
        if not loader.is_file():
            return out
        interpolation = module_constant(loader, "INTERPOLATION", None)
        crop = module_constant(loader, "CROP", None)
        if interpolation is not None and interpolation != TRAINING_INTERPOLATION:
            out.append(Violation(
                port.rel(loader), "INTERPOLATION",
                f"deploy loader resizes with {interpolation!r}; training (classification_pyt) resizes "
                f"{TRAINING_INTERPOLATION!r}",
            ))
        if crop in ("center", "random"):
            out.append(Violation(
                port.rel(loader), "CROP",
                f"deploy loader crops ({crop!r}, aspect-preserving resize + crop); training resizes directly to "
                "img_size x img_size",
            ))
        return out

    def preprocess_args(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        return [
            "--data-module", self.data_module(port),
            "--loader", self.deploy_loader(port),
            "--images", target(data.verify_images),
            "--root", target(data.root),
        ]

    def parity_top1(self) -> bool:
        return True

    def check_inference_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        problems: list[str] = []
        found = sorted(results_dir.rglob("result.csv"))
        if not found:
            return [f"no result.csv under {results_dir}"], {}, {}
        path = found[0]
        classes = _classes(data)
        rows = []
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except (OSError, csv.Error) as exc:
            return [f"{path}: unreadable CSV ({exc})"], {}, {"result_csv": str(path)}
        if not rows or path.stat().st_size == 0:
            return [f"{path} is empty"], {}, {"result_csv": str(path)}
        header, body = rows[0], rows[1:]
        if len(header) < 3:
            problems.append(f"{path}: header {header} has fewer than 3 columns (image, label, score)")
        expected = data.counts.get("test", 0)
        if not body:
            problems.append(f"{path} has a header but no rows")
        elif expected and len(body) != expected:
            problems.append(f"{path} has {len(body)} rows for {expected} test images")
        for line, row in enumerate(body, start=2):
            if len(row) < 3:
                problems.append(f"{path}:{line}: {row} has fewer than 3 fields")
                continue
            if classes and row[1] not in classes:
                problems.append(f"{path}:{line}: label {row[1]!r} is not in classes.txt")
            try:
                if not math.isfinite(float(row[2])):
                    raise ValueError
            except ValueError:
                problems.append(f"{path}:{line}: score {row[2]!r} is not a finite number")
        return problems[:20], {"rows": len(body)}, {"result_csv": str(path)}

    def check_evaluate_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        found = sorted(results_dir.rglob("results.json"))
        if not found:
            return [f"no results.json under {results_dir}"], {}, {}
        path = found[0]
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [f"{path}: not valid JSON ({exc})"], {}, {"results_json": str(path)}
        problems = []
        if not isinstance(results, dict) or not results:
            return [f"{path} is empty or not an object"], {}, {"results_json": str(path)}
        accuracies = {k: v for k, v in results.items() if "acc" in k}
        if not accuracies:
            problems.append(f"{path} has no accuracy entry (keys: {', '.join(results)})")
        for key, value in accuracies.items():
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                problems.append(f"{path}: {key} = {value!r} is not a number in [0, 1]")
        expected = data.counts.get("test", 0)
        if "num_images" in results and expected and results["num_images"] != expected:
            problems.append(f"{path}: num_images = {results['num_images']} for {expected} test images")
        metrics = {k: v for k, v in results.items() if isinstance(v, (int, float))}
        return problems, metrics, {"results_json": str(path)}


def _classes(data: Dataset) -> list[str]:
    path = data.root / "classes.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pattern(rng, width: int, height: int, label: int):
    """Smooth gradients, stripes and a disc (so resampling matters) plus mild noise, class-tinted."""
    import numpy as np

    y, x = (np.asarray(a, dtype=np.float32) for a in np.mgrid[0:height, 0:width])
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    phase = rng.uniform(0, 2 * np.pi)
    red = 0.5 + 0.5 * np.sin(2 * np.pi * (3 * u + 2 * v) + phase)
    green = u * (1 - v) + 0.3 * label
    cx, cy, radius = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
    blue = ((u - cx) ** 2 + (v - cy) ** 2 < radius**2).astype("float32") * 0.8 + 0.1 * v
    image = np.stack([red, green, blue], axis=-1) * 220 + rng.normal(0, 12, (height, width, 3))
    return np.asarray(np.clip(image, 0, 255), dtype=np.uint8)


def _class_folder_dataset(dest, classes, counts, *, synthetic, description):
    """Write classes.txt (training order) and describe the train/val/test class-folder tree under ``dest``."""
    (dest / "classes.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    return Dataset(
        root=dest,
        splits={split: dest / split for split in ("train", "val", "test")},
        num_classes=len(classes),
        verify_images=dest / "test",
        synthetic=synthetic,
        description=description,
        counts=counts,
    )
