"""preprocess_parity adapter for semantic segmentation (see preprocess_parity.py for the contract).

Training side: the port's data module (TAO segformer's SFDataModule, ``setup("test")``: SFDataset without
augmentation) over ``--root``/``images/<split>`` with ``--images`` = ``root/images/<split>``: image tensors and
class-id masks. Deploy side: the generated loader built the way the generated tao-deploy scripts build it (engine
input shape, the deploy spec's mean/std, palette and label_transform, batch 1). Masks are compared pixel by pixel
(``mask_disagreements``, must be 0). Stock: TAO's SegformerLoader built as TAO's segformer evaluate builds it --
what the generated loader replaces (its numbers are reported, not gated).

Importing TAO's deploy loaders needs ``tensorrt`` (``nvidia_tao_deploy.utils``); where it is absent (a CPU
tao-pytorch environment) inert stubs stand in for it: only NumPy/PIL code runs here.
"""

from __future__ import annotations

import os
import sys

from _common import load_object  # pylint: disable=import-error

TOP1 = False  # per-pixel logits: compared as outputs (max abs), masks as class ids
NORMALISATION_KEYS = ("dataset.segment.augmentation.mean", "dataset.segment.augmentation.std")
SUMMARY_KEYS = ("mask_disagreements", "mask_pixels", "stock_loader_mask_disagreements", "stock_loader_mask_error")
_MASKS: dict[str, dict] = {}  # side -> {image path: (H, W) class ids}
_SEGMENT: dict = {}  # "train" -> the training spec's dataset.segment (the stock loader is built from it)
_STOCK_ERROR: dict = {}


def _stub_tensorrt():
    try:
        import tensorrt  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        from import_modules import StubFinder  # pylint: disable=import-error,import-outside-toplevel

        sys.meta_path.insert(0, StubFinder({"tensorrt", "pycuda"}))


def _split(args):
    return os.path.basename(os.path.normpath(args.images))


def training_overrides(args):
    return [f"dataset.segment.root_dir={args.root}", f"dataset.segment.test_split={_split(args)}"]


def normalisation(cfg):
    augmentation = cfg.dataset.segment.augmentation
    return list(augmentation.mean), list(augmentation.std)


def train_tensors(cfg, args):
    data_module = load_object(args.data_module)(cfg.dataset.segment)
    data_module.setup(stage="test")
    dataset = data_module.test_dataset
    _SEGMENT["train"] = cfg.dataset.segment
    images, masks = {}, {}
    for index in range(len(dataset)):
        item = dataset[index]
        path = os.path.realpath(os.path.join(args.images, item["name"]))
        images[path] = item["img"].numpy()
        masks[path] = item["mask"].numpy().reshape(item["mask"].shape[-2:])
    _MASKS["train"] = masks
    return images


def _collect(loader, side):
    images, masks = {}, {}
    for index, (batch, labels) in enumerate(loader):
        for j in range(len(batch)):
            path = os.path.realpath(str(loader.image_paths[index * loader.batch_size + j]))
            images[path] = batch[j]
            masks[path] = labels[j]
    _MASKS[side] = masks
    return images


def deploy_tensors(dcfg, args, shape, mean, std):
    import numpy as np

    _stub_tensorrt()
    segment = dcfg.dataset.segment
    loader = load_object(args.loader)(
        shape, args.images, os.path.join(args.root, "masks", _split(args)), palette=list(segment.palette),
        label_transform=segment.label_transform, image_mean=mean, image_std=std, batch_size=1, dtype=np.float32,
    )
    return _collect(loader, "deploy")


def _stock_target_classes(segment):
    """TAO deploy's segformer evaluate build_target_class_list (dp cv/segformer/scripts/evaluate.py), whose module
    cannot be imported without TAO deploy's service dependencies."""
    from nvidia_tao_deploy.cv.unet.proto.utils import TargetClass  # pylint: disable=import-outside-toplevel

    label_id = {p["seg_class"]: p["label_id"] for p in segment.palette}
    calibrated = {p["seg_class"]: label_id[p["mapping_class"]] for p in segment.palette}
    train_ids = {value: index for index, value in enumerate(sorted(set(calibrated.values())))}
    return [TargetClass(p["seg_class"], label_id=p["label_id"], train_id=train_ids[calibrated[p["seg_class"]]])
            for p in segment.palette]


def stock_tensors(args, shape, mean, std):
    """TAO's SegformerLoader as TAO's evaluate builds it; with a non-`norm` label_transform it fails on a
    read-only array, so the masks are read again without target_classes (its other divergences remain)."""
    import numpy as np

    _stub_tensorrt()
    segment = _SEGMENT["train"]
    stock = load_object("nvidia_tao_deploy.cv.segformer.dataloader:SegformerLoader")

    def build(target_classes):
        return stock(shape=shape, image_data_source=[args.images],
                     label_data_source=[os.path.join(args.root, "masks", _split(args))],
                     num_classes=int(segment.num_classes), target_classes=target_classes,
                     label_transform=segment.label_transform, dtype=np.float32, batch_size=1, is_inference=False,
                     keep_ratio=False, image_mean=np.array(mean) * 255, image_std=np.array(std) * 255)

    try:
        images = _collect(build(_stock_target_classes(segment)), "stock")
        _STOCK_ERROR.pop("error", None)
    except ValueError as exc:  # measured: "assignment destination is read-only"
        _STOCK_ERROR["error"] = f"{type(exc).__name__}: {exc}"
        images = _collect(build(None), "stock")
    # SegformerLoader does not divide by 255 (its mean/std are x255): same units as training
    return images


def extra_metrics(cfg, dcfg, args, shape, mean, std):
    """Mask class ids, deploy vs training: pixel disagreements (gate: 0); TAO's stock loader's count alongside."""
    import numpy as np

    train, deploy = _MASKS.get("train", {}), _MASKS.get("deploy", {})
    messages, disagreements, pixels, worst = [], 0, 0, None
    for path, reference in train.items():
        candidate = deploy.get(path)
        if candidate is None:
            continue
        if candidate.shape != reference.shape:
            messages.append(f"mask {os.path.basename(path)}: deploy shape {candidate.shape} != training {reference.shape}")
            continue
        wrong = int((candidate != reference).sum())
        pixels += reference.size
        if wrong and (worst is None or wrong > worst[1]):
            worst = (os.path.basename(path), wrong)
        disagreements += wrong
    if disagreements:
        messages.append(f"deploy masks differ from the training masks on {disagreements} of {pixels} pixels "
                        f"(worst {worst[0]}: {worst[1]})")
    out = {"mask_disagreements": disagreements, "mask_pixels": pixels}
    if "stock" not in _MASKS:
        try:
            stock_tensors(args, shape, mean, std)
        except Exception as exc:  # noqa: BLE001 - informational only
            _STOCK_ERROR["error"] = f"{type(exc).__name__}: {exc}"
    stock = _MASKS.get("stock", {})
    if stock:
        out["stock_loader_mask_disagreements"] = int(sum(
            (stock[p] != m).sum() if stock[p].shape == m.shape else m.size for p, m in train.items() if p in stock))
    if _STOCK_ERROR.get("error"):
        out["stock_loader_mask_error"] = _STOCK_ERROR["error"]
    return out, messages
