"""Detection (TAO RT-DETR, Deformable DETR): COCO JSON datasets (``images/`` + ``annotations.json``), category_id =
label.

RT-DETR uses ``category_id`` as the class index as is (``od_dataset.py``), so labels are 0-based and contiguous
(``task_params.first_category_id`` = 0); TAO's D-DETR/DINO treat id 0 as background and start at 1. One
blueprint renders both detectors (``task_params.detector``): :class:`DetectionTask` is RT-DETR's support and
:meth:`DetectionTask.for_port` hands a ``deformable_detr`` port to :class:`DeformableDetrTask` (its spec layout:
list-valued ``val_data_sources``, ``input_mean``/``input_std``, FixedResize evaluation at the export size).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scaffolder.errors import ScaffoldError
from scaffolder.verify import specs as S
from scaffolder.verify.consistency_rules import Violation
from scaffolder.verify.port import Port
from scaffolder.verify.tasks.base import Dataset, PathMapper, TaskSupport, hydra_value

SYNTHETIC_CLASSES = 3
# batch 2: one optimizer step and one validation batch (RT-DETR steps cost seconds each on CPU)
IMAGE_SIZE_KEY = "dataset.augmentation.eval_spatial_size"
_COLOURS = [(230, 40, 40), (40, 200, 60), (50, 80, 230), (220, 200, 40)]


def _first_id(port: Port) -> int:
    return int((port.answers.get("task_params") or {}).get("first_category_id", 0))


class DetectionTask(TaskSupport):
    name = "detection"
    num_classes_key = "dataset.num_classes"
    backbone_key = "model.backbone"
    preprocess_adapter = "preprocess_detection"
    hf_parity_probe = "hf_parity_detection.py"
    # On CUDA, TAO's MSDeformAttn exports as the TensorRT plugin op MultiscaleDeformableAttnPlugin_TRT (and needs
    # TAO's CUDA .so): ONNX Runtime cannot run that graph. On CPU it exports as GridSample ops, which ONNX Runtime
    # runs and TensorRT builds as well.
    export_on_cpu = ("the GPU export writes TensorRT's MultiscaleDeformableAttnPlugin_TRT op, which ONNX Runtime "
                     "cannot run; on CPU deformable attention exports as GridSample (TensorRT builds it too)")
    hf_parity_metrics = ("max_abs_logits", "max_abs_boxes", "query_order_swaps", "fp64_max_abs_logits",
                         "fp64_max_abs_boxes", "fp64_gate", "parity_input", "scope", "max_abs_features",
                         "mapped_tensors", "tao_keys_loaded", "tao_keys_sorted_match", "compared")

    def for_port(self, port: Port) -> TaskSupport:
        if (port.answers.get("task_params") or {}).get("detector") == "deformable_detr":
            return DeformableDetrTask()
        return self

    # -- data --------------------------------------------------------------------------------------
    def synthetic_dataset(self, port: Port, dest: Path, img_size: int) -> Dataset:
        """3 classes; train/val: 4 JPEGs (two sizes) with 1-3 solid boxes each; test: 4 images of other sizes and
        modes (L, RGBA, PNG) for the deploy-side checks. ``category_id`` starts at the port's first id."""
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(20240607)
        first = _first_id(port)
        s = int(img_size)
        shapes = {"train": [(s + s // 4, s), (s, s + s // 4)], "val": [(s + 9, s), (s, s - 7)],
                  # varied sizes, modes and formats: deploy-preprocess, TRT inference/evaluate
                  "test": [(s * 2, s + s // 2), (s // 2 + 3, s // 2), (s + 17, s + 5), (s, s)]}
        counts = {}
        for split, sizes in shapes.items():
            images, annotations = [], []
            (dest / split / "images").mkdir(parents=True, exist_ok=True)
            for index, (w, h) in enumerate(sizes):
                pixels = rng.normal(110, 20, (h, w, 3)).clip(0, 255).astype(np.uint8)
                for box in range(1 + index % 3):
                    label = int(rng.integers(SYNTHETIC_CLASSES))
                    bw, bh = int(rng.integers(w // 6, w // 2)), int(rng.integers(h // 6, h // 2))
                    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                    pixels[y0:y0 + bh, x0:x0 + bw] = _COLOURS[label % len(_COLOURS)]
                    annotations.append({"id": len(annotations) + 1, "image_id": index + 1,
                                        "category_id": label + first, "bbox": [x0, y0, bw, bh], "area": bw * bh,
                                        "iscrowd": 0})
                image = Image.fromarray(pixels)
                name = f"{split}_{index}.jpg"
                if split == "test" and index == 1:
                    image, name = image.convert("L"), f"{split}_{index}.png"
                elif split == "test" and index == 2:
                    image, name = image.convert("RGBA"), f"{split}_{index}.png"
                image.save(dest / split / "images" / name, **({"quality": 92} if name.endswith(".jpg") else {}))
                images.append({"id": index + 1, "file_name": name, "width": w, "height": h})
            categories = [{"id": k + first, "name": f"class_{k}"} for k in range(SYNTHETIC_CLASSES)]
            (dest / split / "annotations.json").write_text(
                json.dumps({"images": images, "annotations": annotations, "categories": categories}), encoding="utf-8")
            counts[split] = len(images)
        return self._dataset(dest, counts, first, synthetic=True, description=(
            f"synthetic COCO: {SYNTHETIC_CLASSES} classes (category_id {first}..{first + SYNTHETIC_CLASSES - 1}), "
            f"train {counts['train']} / val {counts['val']} / test {counts['test']} images (test: varied sizes, "
            "L/RGBA, PNG/JPEG)"))

    def user_dataset(self, port: Port, data: Path, dest: Path) -> Dataset:
        """``--data DIR`` with ``train/`` and ``val/`` (optionally ``test/``) each holding ``images/`` and
        ``annotations.json`` (COCO); used in place (TAO reads only what the JSON lists)."""
        data = data.expanduser().resolve()
        for split in ("train", "val"):
            if not (data / split / "annotations.json").is_file() or not (data / split / "images").is_dir():
                raise ScaffoldError(f"--data {data} has no {split}/annotations.json + {split}/images/",
                                    "a detection dataset is DIR/{train,val}/{images/, annotations.json} (COCO)")
        splits = {"train": data / "train", "val": data / "val", "test": data / ("test" if (data / "test").is_dir()
                                                                               else "val")}
        counts = {split: len(json.loads((path / "annotations.json").read_text(encoding="utf-8"))["images"])
                  for split, path in splits.items()}
        categories = json.loads((splits["train"] / "annotations.json").read_text(encoding="utf-8"))["categories"]
        (dest / "classmap.txt").parent.mkdir(parents=True, exist_ok=True)
        (dest / "classmap.txt").write_text("".join(f"{c['name']}\n" for c in sorted(categories, key=lambda c: c["id"])),
                                           encoding="utf-8")
        return Dataset(root=dest, splits=splits, num_classes=max(c["id"] for c in categories) + 1,
                       verify_images=splits["test"] / "images", synthetic=False, counts=counts,
                       description=f"--data {data}: COCO, {len(categories)} categories")

    def _dataset(self, dest: Path, counts: dict[str, int], first: int, *, synthetic: bool, description: str) -> Dataset:
        (dest / "classmap.txt").write_text("".join(f"class_{k}\n" for k in range(SYNTHETIC_CLASSES)), encoding="utf-8")
        splits = {split: dest / split for split in ("train", "val", "test")}
        # the model's class count: the highest category_id + 1 (D-DETR's background 0 included)
        return Dataset(root=dest, splits=splits, num_classes=SYNTHETIC_CLASSES + first,
                       verify_images=dest / "test" / "images", synthetic=synthetic, description=description,
                       counts=counts)

    # -- commands ----------------------------------------------------------------------------------
    val_sources_key = "dataset.val_data_sources"  # RT-DETR: one {image_dir, json_file}; D-DETR: a list of them

    def _data_overrides(self, data: Dataset, target: PathMapper) -> list[str]:
        def source(split):
            return target(data.splits[split] / "images"), target(data.splits[split] / "annotations.json")

        val_images, val_json = source("val")
        test_images, test_json = source("test")
        return [
            f"{self.val_sources_key}.image_dir={hydra_value(val_images)}",
            f"{self.val_sources_key}.json_file={hydra_value(val_json)}",
            f"dataset.test_data_sources.image_dir={hydra_value(test_images)}",
            f"dataset.test_data_sources.json_file={hydra_value(test_json)}",
            f"dataset.infer_data_sources.image_dir=[{hydra_value(test_images)}]",
            f"dataset.infer_data_sources.classmap={hydra_value(target(data.root / 'classmap.txt'))}",
            f"dataset.num_classes={data.num_classes}",  # highest category_id + 1 (D-DETR: background 0 included)
            "dataset.dataset_type=default",
            "dataset.workers=0",
            "dataset.pin_memory=false",
        ]

    def pytorch_overrides(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        train_images, train_json = target(data.splits["train"] / "images"), target(data.splits["train"] / "annotations.json")
        size = (port.answers.get("task_params") or {}).get("eval_spatial_size") or [port.answers.get("img_size", 640)] * 2
        return [
            # element 0 of the spec's source list (TAO's launcher joins argv into one command line: no flow mappings)
            f"dataset.train_data_sources.0.image_dir={hydra_value(train_images)}",
            f"dataset.train_data_sources.0.json_file={hydra_value(train_json)}",
            *self._data_overrides(data, target),
            "dataset.batch_size=2",
            # training resizes to a random multi_scales entry (up to 800 px): pin it to the evaluation size
            f"dataset.augmentation.multi_scales=[{max(size)}]",
            "train.activation_checkpoint=false",
            "model.dn_number=10",  # denoising queries exercise the same code; 100 of them only cost CPU time
            "train.enable_ema=false",
        ]

    def deploy_overrides(self, port: Port, data: Dataset, target: PathMapper, subtask: str) -> list[str]:
        return [*self._data_overrides(data, target), "dataset.batch_size=1"]

    # -- Python objects ----------------------------------------------------------------------------
    def trt_inferencer(self, port: Port) -> str:
        return "nvidia_tao_deploy.cv.deformable_detr.inferencer:DDETRInferencer"

    # -- checks --------------------------------------------------------------------------------------
    def extra_consistency(self, port: Port, train: dict[str, Any], deploy: dict[str, dict[str, Any]]) -> list[Violation]:
        """RT-DETR precomputes its anchors for eval_spatial_size: the ONNX input must be exactly that size, and
        every deploy spec must evaluate at the training spec's size."""
        out: list[Violation] = []
        planned = (port.answers.get("task_params") or {}).get("eval_spatial_size")
        size = S.get(train, IMAGE_SIZE_KEY)
        if size is S.MISSING:
            size = planned
        if not size:
            return out
        size = [int(v) for v in size]
        exported = [S.get(train, "export.input_height"), S.get(train, "export.input_width")]
        if all(v is not S.MISSING for v in exported) and [int(v) for v in exported] != size:
            out.append(Violation(port.rel(port.train_spec), "export.input_height/input_width",
                                 f"{exported[0]}x{exported[1]} but {IMAGE_SIZE_KEY} = {size}: RT-DETR's anchors are "
                                 "precomputed for eval_spatial_size, another export size fails or mis-detects"))
        for sub, doc in deploy.items():
            value = S.get(doc, IMAGE_SIZE_KEY)
            if value is not S.MISSING and [int(v) for v in value] != size:
                out.append(Violation(port.rel(port.deploy_spec(sub)), IMAGE_SIZE_KEY,
                                     f"{list(value)} but the training spec has {size}"))
        return out

    def preprocess_args(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        return ["--data-module", self.data_module(port), "--loader", self.deploy_loader(port),
                "--images", target(data.verify_images), "--root", target(data.root)]

    def check_inference_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        labels = sorted(results_dir.rglob("labels/*.txt"))
        expected = data.counts.get("test", 0)
        problems = [] if len(labels) == expected else [f"{len(labels)} label files under {results_dir} for "
                                                       f"{expected} test images"]
        classes = set((data.root / "classmap.txt").read_text(encoding="utf-8").split("\n")) - {""} \
            if (data.root / "classmap.txt").is_file() else set()
        rows = 0
        for path in labels:
            for line in path.read_text(encoding="utf-8").splitlines():
                rows += 1
                name = line.split(" ")[0]
                if classes and name not in classes:
                    problems.append(f"{path.name}: class {name!r} is not a classmap line")
        return problems[:20], {"label_files": len(labels), "detections": rows}, {
            "labels_dir": str(labels[0].parent) if labels else ""}

    def check_evaluate_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        found = sorted(results_dir.rglob("results.json"))
        if not found:
            return [f"no results.json under {results_dir}"], {}, {}
        results = json.loads(found[0].read_text(encoding="utf-8"))
        problems = [f"{found[0]}: {k} = {v!r} is not in [0, 1] (or -1: no such objects)"
                    for k, v in results.items()
                    if not isinstance(v, (int, float)) or not (math.isclose(v, -1) or 0.0 <= v <= 1.0)]
        if not any(k.startswith("AP") or "mAP" in k for k in results):
            problems.append(f"{found[0]} has no AP entry (keys: {', '.join(results)})")
        return problems, {k: v for k, v in results.items() if isinstance(v, (int, float))}, {
            "results_json": str(found[0])}


class DeformableDetrTask(DetectionTask):
    """A port on TAO's deformable_detr: ImageNet-style mean/std in every spec, evaluation/inference at the export
    size (FixedResize), category_id 0 = background (``first_category_id`` 1), 4-channel training input."""

    name = "detection"
    mean_key = "dataset.augmentation.input_mean"
    std_key = "dataset.augmentation.input_std"
    val_sources_key = "dataset.val_data_sources.0"
    # deploy-preprocess compares the evaluate spec's FixedResize; TRT evaluate / inference read these
    size_keys = (("evaluate.input_height", "evaluate.input_width"),
                 ("inference.input_height", "inference.input_width"))

    def for_port(self, port: Port) -> TaskSupport:
        return self

    def pytorch_overrides(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        train_images, train_json = target(data.splits["train"] / "images"), target(data.splits["train"] / "annotations.json")
        planned = (port.answers.get("task_params") or {}).get("eval_spatial_size")
        size = max(planned or [port.answers.get("img_size", 800)])
        return [
            f"dataset.train_data_sources.0.image_dir={hydra_value(train_images)}",
            f"dataset.train_data_sources.0.json_file={hydra_value(train_json)}",
            *self._data_overrides(data, target),
            "dataset.batch_size=2",
            # TAO's resize ladder goes up to 800 x 1333 (and pads to it): one scale, the evaluation size
            f"dataset.augmentation.scales=[{size}]",
            f"dataset.augmentation.train_random_resize=[{size}]",
            f"dataset.augmentation.train_random_crop_min={size // 2}",
            f"dataset.augmentation.train_random_crop_max={size}",
            f"dataset.augmentation.random_resize_max_size={size}",
            f"dataset.augmentation.test_random_resize={size}",
            "train.activation_checkpoint=false",
        ]

    def export_parity_args(self, port: Port) -> list[str]:
        """Box refinement amplifies fp32 rounding (ORT vs PyTorch ~5e-3 raw, team notes section 4): when the raw
        outputs differ by more than the tolerance, the gate is the post-processed top-k (same label, IoU >= 0.99,
        |score| <= 1e-3)."""
        num_select = int((port.answers.get("task_params") or {}).get("num_select") or 100)
        return ["--detections-topk", str(num_select)]

    def extra_consistency(self, port: Port, train: dict[str, Any], deploy: dict[str, dict[str, Any]]) -> list[Violation]:
        """The engine's input size (export.input_*) is the size PyTorch evaluate/inference resize to and the size
        the deploy specs evaluate at: a mismatch makes the TensorRT engine see other inputs than PyTorch did."""
        out: list[Violation] = []
        exported = [S.get(train, "export.input_height"), S.get(train, "export.input_width")]
        if any(v is S.MISSING for v in exported):
            planned = (port.answers.get("task_params") or {}).get("eval_spatial_size")
            if not planned:
                return out
            exported = [int(v) for v in planned]
        exported = [int(v) for v in exported]
        for path, doc in [(port.train_spec, train), *((port.deploy_spec(sub), doc) for sub, doc in deploy.items())]:
            for height_key, width_key in self.size_keys:
                value = [S.get(doc, height_key), S.get(doc, width_key)]
                if all(v is not S.MISSING and v is not None for v in value) and [int(v) for v in value] != exported:
                    out.append(Violation(port.rel(path), f"{height_key}/{width_key.rsplit('.', 1)[1]}",
                                         f"{value[0]}x{value[1]} but export.input_height/width = "
                                         f"{exported[0]}x{exported[1]}: PyTorch and TensorRT would see other inputs"))
        return out
