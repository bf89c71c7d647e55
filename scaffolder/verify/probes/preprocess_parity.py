"""deploy-preprocess: a port's deploy-side loader vs its training eval transform, on the same images.

    python preprocess_parity.py --adapter preprocess_<task> --train-config mod:ExperimentConfig
        --train-spec spec.yaml --train-overrides overrides.json --deploy-config mod:ExperimentConfig
        --deploy-specs '[{"label": "inference", "path": ".../inference.yaml"}, ...]'
        --data-module mod:DataModule --loader mod:Loader --images DIR --root DIR
        [--onnx model.onnx] [--tolerance 1e-4] --out result.json

The task-independent driver. A per-task adapter module (``preprocess_<task>.py`` beside this file) says how
to read each side:

* ``training_overrides(args)``: hydra overrides pointing the data module at ``--images`` / ``--root``;
* ``normalisation(cfg)``: (mean, std) of a composed spec, or (None, None) when the task's spec has none
  (``NORMALISATION_KEYS``: the spec keys they come from, named in the messages);
* ``train_tensors(cfg, args)``: ``{image path: CHW float array}`` from the port's own data module (eval);
* ``deploy_tensors(dcfg, args, shape, mean, std)``: the same from the generated deploy loader;
* ``stock_tensors(args, shape, mean, std)`` (optional): what TAO's stock deploy loader would produce;
* ``extra_metrics(...)`` (optional): task-specific comparisons (e.g. segmentation masks).

The driver checks every deploy spec's mean/std against training, compares tensors per image (max abs),
and with ``--onnx`` runs both tensor sets through the exported model (ONNX Runtime; identical sets once)
to compare the outputs (and top-1 when the adapter says ``TOP1 = True``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os

from _common import compose, read_json, run  # pylint: disable=import-error


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= 1e-9 for x, y in zip(a, b))


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", required=True, help="module beside this file: preprocess_<task>")
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
    return parser.parse_args()


class OnnxPredictor:
    """Runs tensor sets through the exported model; identical sets (e.g. two specs) run once."""

    def __init__(self, path):
        import onnxruntime as ort

        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"]) if path else None
        self.cache = {}

    def input_shape(self, default):
        if self.session is None:
            return default
        dims = self.session.get_inputs()[0].shape
        return list(dims[1:]) if all(isinstance(d, int) and d > 0 for d in dims[1:]) else default

    def __call__(self, tensors):
        import numpy as np

        if self.session is None:
            return None
        batch = np.stack(tensors).astype(np.float32)
        key = hashlib.sha1(batch.tobytes()).hexdigest()
        if key not in self.cache:
            first = self.session.get_inputs()[0]
            fixed = isinstance(first.shape[0], int) and first.shape[0] > 0
            runs = [self.session.run(None, {first.name: batch[i:i + 1]}) for i in range(len(batch))] if fixed \
                else [self.session.run(None, {first.name: batch})]
            self.cache[key] = [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]
        return self.cache[key]


def compare(train, deploy, paths, predict, train_outputs, top1):
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
    out["top1_agreement"] = None
    if train_outputs is not None and common and not shape_mismatch and len(common) == len(paths):
        outputs = predict([deploy[p] for p in paths])
        out["max_output_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(outputs, train_outputs))
        if top1:
            out["top1_agreement"] = float((outputs[0].argmax(axis=-1) == train_outputs[0].argmax(axis=-1)).mean())
            out["max_logit_diff"] = out["max_output_diff"]
    return out


def main():
    args = parse_args()
    adapter = importlib.import_module(args.adapter)
    top1 = getattr(adapter, "TOP1", False)
    norm_keys = getattr(adapter, "NORMALISATION_KEYS", ("mean", "std"))  # the spec keys, for the messages
    messages = []
    overrides = (read_json(args.train_overrides) if args.train_overrides else []) + adapter.training_overrides(args)
    cfg = compose(args.train_config, args.train_spec, overrides)
    train_mean, train_std = adapter.normalisation(cfg)
    train = adapter.train_tensors(cfg, args)
    if not train:
        raise RuntimeError(f"the training eval dataset found no images under {args.images}")
    predict = OnnxPredictor(args.onnx)
    shape = predict.input_shape([3, cfg.export.input_height, cfg.export.input_width])
    paths = sorted(train)
    train_outputs = predict([train[p] for p in paths])

    deploy_overrides = read_json(args.deploy_overrides) if args.deploy_overrides else []
    per_spec = []
    for entry in json.loads(args.deploy_specs):
        dcfg = compose(args.deploy_config, entry["path"], deploy_overrides)
        mean, std = adapter.normalisation(dcfg)
        spec = {"label": entry["label"], "path": entry["path"], "mean": mean, "std": std}
        for what, value, reference in zip(norm_keys, (mean, std), (train_mean, train_std)):
            if not _same(value, reference):
                messages.append(f"{entry['label']} spec ({entry['path']}): {what} {value} != training {what} "
                                f"{reference}")
        deploy = adapter.deploy_tensors(dcfg, args, shape, mean, std)
        spec.update(compare(train, deploy, paths, predict, train_outputs, top1))
        if spec["missing"]:
            messages.append(f"{entry['label']}: the deploy loader did not read {len(spec['missing'])} of the "
                            f"training images (e.g. {spec['missing'][0]})")
        if spec["max_abs_diff"] > args.tolerance:
            messages.append(f"{entry['label']}: deploy-loader tensors differ from the training eval transform by up "
                            f"to {spec['max_abs_diff']:.4g} (> {args.tolerance:g}; worst image {spec['worst_image']})")
        if spec.get("top1_agreement") is not None and spec["top1_agreement"] < 1.0:
            messages.append(f"{entry['label']}: top-1 predictions agree on {spec['top1_agreement']:.0%} of the images "
                            f"(expected 100%)")
        if hasattr(adapter, "extra_metrics"):
            extra, extra_messages = adapter.extra_metrics(cfg, dcfg, args, shape, mean, std)
            spec.update(extra)
            messages += [f"{entry['label']}: {m}" for m in extra_messages]
        per_spec.append(spec)

    stock = {}
    if hasattr(adapter, "stock_tensors"):
        try:
            stock = compare(train, adapter.stock_tensors(args, shape, train_mean, train_std), paths, predict,
                            train_outputs, top1)
        except Exception as exc:  # noqa: BLE001 - informational only
            stock = {"error": f"{type(exc).__name__}: {exc}"}

    worst = max((s["max_abs_diff"] for s in per_spec), default=0.0)
    agreements = [s["top1_agreement"] for s in per_spec if s.get("top1_agreement") is not None]
    result = {
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
        "predictions": "onnxruntime" if predict.session is not None else "none",
        "specs": per_spec,
        "stock_loader_max_abs_diff": stock.get("max_abs_diff"),
        "stock_loader_top1_agreement": stock.get("top1_agreement"),
        "stock_loader_error": stock.get("error"),
    }
    for key in getattr(adapter, "SUMMARY_KEYS", ()):  # task metrics lifted from the worst spec
        values = [s[key] for s in per_spec if s.get(key) is not None]
        result[key] = max(values) if values else None
    return result


def _size(path):
    from PIL import Image

    with Image.open(path) as image:
        return f"{image.size[0]}x{image.size[1]} {image.mode}"


if __name__ == "__main__":
    run(main)
