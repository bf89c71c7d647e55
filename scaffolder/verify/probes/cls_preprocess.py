"""deploy-preprocess for classification: TAO deploy's numpy loader vs the training eval transform.

    python cls_preprocess.py --train-config mod:ExperimentConfig --train-spec spec.yaml
        --train-overrides overrides.json --deploy-config mod:ExperimentConfig
        --deploy-specs '[{"label": "inference", "path": ".../inference.yaml"}, ...]'
        --data-module mod:DataModule --loader mod:Loader --images DIR --root DIR
        [--onnx model.onnx] [--tolerance 1e-4] --out result.json

Training side: the port's own data module (``setup("test")``: classification_pyt's CLDataset, split
``val``, i.e. the eval transform) over ``--images``. Deploy side, once per deploy spec: the generated
deploy loader built the way the generated deploy scripts build it (engine input shape, the spec's
``dataset.augmentation.mean/std``, batch 1, float32), over the same files. Per file the two tensors are
compared (max abs diff); with ``--onnx`` both tensor sets are also classified by the exported model
(ONNX Runtime) and the top-1 predictions compared. For reference the stock TAO loader defaults
(bicubic, aspect-preserving resize + centre crop) are measured the same way (``stock_*`` metrics): that is
what the generated loader must not do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os

from _common import compose, load_object, read_json, run  # pylint: disable=import-error


def _same(a, b):
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= 1e-9 for x, y in zip(a, b))


def _loader_tensors(loader):
    out = {}
    for index, (images, _labels) in enumerate(loader):
        for j in range(len(images)):
            path = os.path.realpath(str(loader.image_paths[index * loader.batch_size + j]))
            out[path] = images[j]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-config", required=True)
    parser.add_argument("--train-spec", required=True)
    parser.add_argument("--train-overrides", default="")
    parser.add_argument("--deploy-config", required=True)
    parser.add_argument("--deploy-specs", required=True)
    parser.add_argument("--deploy-overrides", default="")
    parser.add_argument("--data-module", required=True)
    parser.add_argument("--loader", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--onnx", default="")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import numpy as np

    messages = []
    overrides = (read_json(args.train_overrides) if args.train_overrides else []) + [
        f"dataset.root_dir={args.root}", f"dataset.val_dataset.images_dir={args.images}"]
    cfg = compose(args.train_config, args.train_spec, overrides)
    train_mean = list(cfg.dataset.augmentation.mean)
    train_std = list(cfg.dataset.augmentation.std)
    data_module = load_object(args.data_module)(cfg.dataset)
    data_module.setup(stage="test")
    dataset = data_module.test_dataset
    train = {}
    for index in range(len(dataset)):
        item = dataset[index]
        train[os.path.realpath(item["name"])] = item["img"].numpy()
    if not train:
        raise RuntimeError(f"the training eval dataset found no images under {args.images}")

    session = None
    shape = [3, cfg.export.input_height, cfg.export.input_width]
    if args.onnx:
        import onnxruntime as ort

        session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
        dims = session.get_inputs()[0].shape
        if all(isinstance(d, int) and d > 0 for d in dims[1:]):
            shape = list(dims[1:])

    cache = {}

    def predict(tensors):
        if session is None:
            return None
        batch = np.stack(tensors).astype(np.float32)
        key = hashlib.sha1(batch.tobytes()).hexdigest()  # identical tensor sets (e.g. two specs) run once
        if key in cache:
            return cache[key]
        name = session.get_inputs()[0].name
        if isinstance(session.get_inputs()[0].shape[0], int) and session.get_inputs()[0].shape[0] > 0:
            logits = np.concatenate([session.run(None, {name: batch[i:i + 1]})[0] for i in range(len(batch))])
        else:
            logits = session.run(None, {name: batch})[0]
        cache[key] = logits
        return logits

    loader_module = load_object(args.loader.split(":")[0] + ":")
    loader_class = load_object(args.loader)
    if hasattr(loader_module, "read_class_mapping"):
        mapping = loader_module.read_class_mapping(args.root, args.images)
    else:
        mapping = {d: i for i, d in enumerate(sorted(os.listdir(args.images)))}
    paths = sorted(train)
    train_logits = predict([train[p] for p in paths])
    train_top1 = None if train_logits is None else train_logits.argmax(axis=-1)

    deploy_overrides = read_json(args.deploy_overrides) if args.deploy_overrides else []
    per_spec = []
    for entry in json.loads(args.deploy_specs):
        dcfg = compose(args.deploy_config, entry["path"], deploy_overrides)
        mean = list(dcfg.dataset.augmentation.mean)
        std = list(dcfg.dataset.augmentation.std)
        spec = {"label": entry["label"], "path": entry["path"], "mean": mean, "std": std}
        if not _same(mean, train_mean):
            messages.append(f"{entry['label']} spec ({entry['path']}): dataset.augmentation.mean {mean} != training "
                            f"dataset.augmentation.mean {train_mean}")
        if not _same(std, train_std):
            messages.append(f"{entry['label']} spec ({entry['path']}): dataset.augmentation.std {std} != training "
                            f"dataset.augmentation.std {train_std}")
        loader = loader_class(shape, [args.images], mapping, batch_size=1, image_mean=mean, image_std=std,
                              dtype=np.float32)
        deploy = _loader_tensors(loader)
        spec.update(_compare(train, deploy, paths, predict, train_logits, train_top1))
        if spec["missing"]:
            messages.append(f"{entry['label']}: the deploy loader did not read {len(spec['missing'])} of the "
                            f"training images (e.g. {spec['missing'][0]})")
        if spec["max_abs_diff"] > args.tolerance:
            messages.append(f"{entry['label']}: deploy-loader tensors differ from the training eval transform by up "
                            f"to {spec['max_abs_diff']:.4g} (> {args.tolerance:g}; worst image {spec['worst_image']})")
        if spec.get("top1_agreement") is not None and spec["top1_agreement"] < 1.0:
            messages.append(f"{entry['label']}: top-1 predictions agree on {spec['top1_agreement']:.0%} of the images "
                            f"(expected 100%)")
        per_spec.append(spec)

    # What TAO's stock classification deploy loader would feed the engine (bicubic + centre crop).
    stock = {}
    try:
        stock_class = load_object("nvidia_tao_deploy.cv.classification_tf1.dataloader:ClassificationLoader")
        stock_loader = stock_class(shape, [args.images], mapping, is_inference=True, data_format="channels_first",
                                   mode="torch", batch_size=1, image_mean=train_mean, image_std=train_std,
                                   dtype=np.float32)
        stock = _compare(train, _loader_tensors(stock_loader), paths, predict, train_logits, train_top1)
    except Exception as exc:  # noqa: BLE001 - informational only
        stock = {"error": f"{type(exc).__name__}: {exc}"}

    worst = max((s["max_abs_diff"] for s in per_spec), default=0.0)
    agreements = [s["top1_agreement"] for s in per_spec if s.get("top1_agreement") is not None]
    return {
        "ok": not messages and bool(per_spec),
        "messages": messages if per_spec else ["no deploy spec to compare"],
        "images": len(paths),
        "image_sizes": sorted({f"{_size(p)}" for p in paths}),
        "input_shape": shape,
        "tolerance": args.tolerance,
        "training_mean": train_mean,
        "training_std": train_std,
        "max_abs_diff": worst,
        "top1_agreement": min(agreements) if agreements else None,
        "predictions": "onnxruntime" if session is not None else "none",
        "specs": per_spec,
        "stock_loader_max_abs_diff": stock.get("max_abs_diff"),
        "stock_loader_top1_agreement": stock.get("top1_agreement"),
        "stock_loader_error": stock.get("error"),
    }


def _size(path):
    from PIL import Image

    with Image.open(path) as image:
        return f"{image.size[0]}x{image.size[1]} {image.mode}"


def _compare(train, deploy, paths, predict, train_logits, train_top1):
    import numpy as np

    missing = [p for p in paths if p not in deploy]
    common = [p for p in paths if p in deploy]
    worst, worst_image, shape_mismatch = 0.0, None, []
    for path in common:
        a, b = train[path], deploy[path]
        if a.shape != b.shape:
            shape_mismatch.append(path)
            worst, worst_image = float("inf"), path
            continue
        diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
        if diff > worst:
            worst, worst_image = diff, path
    out = {"missing": missing, "compared": len(common), "max_abs_diff": worst,
           "worst_image": os.path.basename(worst_image) if worst_image else None, "shape_mismatch": shape_mismatch}
    if train_logits is not None and common and not shape_mismatch and len(common) == len(paths):
        logits = predict([deploy[p] for p in paths])
        out["top1_agreement"] = float((logits.argmax(axis=-1) == train_top1).mean())
        out["max_logit_diff"] = float(np.abs(logits - train_logits).max())
    else:
        out["top1_agreement"] = None
    return out


if __name__ == "__main__":
    run(main)
