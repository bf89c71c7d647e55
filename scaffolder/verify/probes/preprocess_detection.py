"""preprocess_parity adapter for detection (see preprocess_parity.py for the contract).

Training side: TAO's RT-DETR dataset (``RTDataset``) with the port's eval transform
(``build_transforms(augmentation, 'val')``: PIL resize to eval_spatial_size, [0, 1]) over ``--images``, through a
COCO JSON listing them; for a Deformable DETR port (its spec has ``input_mean``), TAO deformable_detr's
``ODDataset`` with the evaluate transform (``build_transforms(augmentation, evaluate, 'eval')``: FixedResize to
``evaluate.input_height`` x ``input_width``, the spec's mean/std). Deploy side: the generated ``<Name>Loader`` (a ``DDETRCOCOLoader``) over the same JSON, as
the generated TensorRT evaluate builds it. Stock: TAO's own ``DDETRCOCOLoader`` as TAO's RT-DETR deploy evaluate
builds it (mean 0 / std 1, cv2 INTER_LINEAR on the float array) -- what the generated loader replaces.
"""

from __future__ import annotations

import json
import os
import tempfile

from _common import load_object  # pylint: disable=import-error

TOP1 = False  # detections are not an argmax over one axis
# Where a detector spec keeps its normalisation (DINO / D-DETR; RT-DETR specs have none: [0, 1] input)
NORMALISATION_KEYS = ("dataset.augmentation.input_mean", "dataset.augmentation.input_std")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_JSON = {}


def _listing(images):
    """A COCO JSON naming every image of the folder (no annotations): both sides read the same files."""
    if images not in _JSON:
        from PIL import Image

        entries = []
        for index, name in enumerate(sorted(n for n in os.listdir(images) if n.lower().endswith(IMAGE_SUFFIXES))):
            with Image.open(os.path.join(images, name)) as image:
                entries.append({"id": index + 1, "file_name": name, "width": image.width, "height": image.height})
        path = os.path.join(tempfile.mkdtemp(prefix="det-preprocess-"), "images.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"images": entries, "annotations": [], "categories": [{"id": 0, "name": "object"}]}, handle)
        _JSON[images] = path
    return _JSON[images]


def training_overrides(args):
    return []


def normalisation(cfg):
    aug = cfg.dataset.augmentation
    if "input_mean" in aug:  # DINO / D-DETR specs
        return list(aug.input_mean), list(aug.input_std)
    return None, None  # RT-DETR: [0, 1] input, no mean/std in the spec


def train_tensors(cfg, args):
    if "input_mean" in cfg.dataset.augmentation:  # D-DETR: the evaluate subtask's FixedResize + Normalize
        from nvidia_tao_pytorch.cv.deformable_detr.dataloader.od_dataset import ODDataset
        from nvidia_tao_pytorch.cv.deformable_detr.dataloader.transforms import build_transforms as ddetr_transforms

        dataset = ODDataset(json_file=_listing(args.images), dataset_dir=args.images,
                            transforms=ddetr_transforms(cfg.dataset.augmentation, subtask_config=cfg.evaluate,
                                                        dataset_mode="eval"))
    else:
        from nvidia_tao_pytorch.cv.rtdetr.dataloader.od_dataset import RTDataset
        from nvidia_tao_pytorch.cv.rtdetr.dataloader.transforms import build_transforms

        dataset = RTDataset(_listing(args.images), args.images,
                            transforms=build_transforms(cfg.dataset.augmentation, dataset_mode="val"))
    out = {}
    for index in range(len(dataset)):
        image = dataset[index][0]
        info = dataset.coco.loadImgs(dataset.ids[index])[0]
        out[os.path.realpath(os.path.join(args.images, info["file_name"]))] = image.numpy()
    return out


def _loader_tensors(loader):
    out = {}
    for images, _scales, source_ids, _labels in loader:
        for image, image_id in zip(images, source_ids):
            info = loader.coco.loadImgs(int(image_id))[0]
            out[os.path.realpath(os.path.join(loader.image_dir, info["file_name"]))] = image
    return out


def _kwargs(args, shape):
    import numpy as np

    return {"val_json_file": _listing(args.images), "shape": (1, *shape), "dtype": np.float32, "batch_size": 1,
            "data_format": "channels_first", "image_dir": args.images, "eval_samples": None}


def deploy_tensors(dcfg, args, shape, mean, std):
    kwargs = _kwargs(args, shape)
    if mean is not None:
        kwargs.update(img_mean=mean, image_std=std)
    return _loader_tensors(load_object(args.loader)(**kwargs))


def stock_tensors(args, shape, mean, std):
    stock = load_object("nvidia_tao_deploy.cv.deformable_detr.dataloader:DDETRCOCOLoader")
    return _loader_tensors(stock(img_mean=mean or [0.0, 0.0, 0.0], image_std=std or [1.0, 1.0, 1.0],
                                 **_kwargs(args, shape)))
