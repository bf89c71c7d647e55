"""ONNX checks and ONNX Runtime vs native PyTorch on the same inputs.

    python export_parity.py --onnx model.onnx --checkpoint ckpt.pth --pl-module mod:Cls
        --config-class mod:ExperimentConfig --spec spec.yaml --overrides overrides.json
        --input-names '["input"]' --output-names '["output"]' [--batch 2] [--tolerance 1e-4]
        [--top1] [--save-io io.npz] --out result.json

The native model is loaded the way the generated export script loads it
(``PlModel.load_from_checkpoint(..., experiment_spec=cfg, export=True).model``), so both sides are the
same network; the inputs are seeded standard-normal tensors (already normalised images) with a batch of
2, which exercises the dynamic batch axis of an ``export.batch_size: -1`` model.
"""

from __future__ import annotations

import argparse
import json

from _common import compare, compose, load_object, read_json, run  # pylint: disable=import-error


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--pl-module", required=True)
    parser.add_argument("--config-class", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--overrides", default="")
    parser.add_argument("--input-names", default="[]")
    parser.add_argument("--output-names", default="[]")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--top1", action="store_true")
    parser.add_argument("--save-io", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import numpy as np
    import onnx

    messages = []
    result = {"tolerance": args.tolerance, "batch": args.batch}
    onnx.checker.check_model(args.onnx)
    result["onnx_checker"] = "ok"
    graph = onnx.load(args.onnx, load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    result["onnx_inputs"] = [i.name for i in inputs]
    result["onnx_outputs"] = [o.name for o in graph.output]
    result["opset"] = max((o.version for o in onnx.load(args.onnx, load_external_data=False).opset_import
                           if o.domain in ("", "ai.onnx")), default=None)
    for kind, expected, actual in (("input", json.loads(args.input_names), result["onnx_inputs"]),
                                   ("output", json.loads(args.output_names), result["onnx_outputs"])):
        if expected and list(expected) != list(actual):
            messages.append(f"ONNX {kind} names {actual} != expected {expected} (export script / plan)")
    dims = inputs[0].type.tensor_type.shape.dim
    batch_dim = dims[0]
    result["dynamic_batch"] = bool(batch_dim.dim_param) or batch_dim.dim_value <= 0
    shape = [d.dim_value for d in dims[1:]]
    if any(v <= 0 for v in shape):
        cfg_shape = None
    else:
        cfg_shape = shape
    overrides = read_json(args.overrides) if args.overrides else []
    cfg = compose(args.config_class, args.spec, overrides)
    if cfg_shape is None:
        cfg_shape = [cfg.export.input_channel, cfg.export.input_height, cfg.export.input_width]
    batch = args.batch if result["dynamic_batch"] else max(batch_dim.dim_value, 1)
    result["input_shape"] = [batch, *cfg_shape]

    import torch

    pl_class = load_object(args.pl_module)
    pl_model = pl_class.load_from_checkpoint(args.checkpoint, map_location="cpu", experiment_spec=cfg, export=True)
    model = pl_model.model.eval()
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal(result["input_shape"]).astype(np.float32)
    with torch.no_grad():
        native = model(torch.from_numpy(x))
    native = [native] if isinstance(native, torch.Tensor) else list(native.values() if isinstance(native, dict) else native)
    native = [t.detach().cpu().numpy() for t in native]

    import onnxruntime as ort

    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})
    if len(onnx_out) != len(native):
        messages.append(f"ONNX has {len(onnx_out)} outputs, the PyTorch model returns {len(native)}")
    per_output = []
    worst = 0.0
    for index, (ref, got) in enumerate(zip(native, onnx_out)):
        stats = compare(ref, got, top1=args.top1 and index == 0)
        stats["name"] = result["onnx_outputs"][index] if index < len(result["onnx_outputs"]) else str(index)
        per_output.append(stats)
        if stats.get("shape_mismatch"):
            messages.append(f"output {stats['name']}: ONNX shape {stats['candidate_shape']} != PyTorch {stats['shape']}")
            continue
        worst = max(worst, stats["max_abs_diff"])
    result["outputs"] = per_output
    result["max_abs_diff"] = worst
    if per_output and "top1_agreement" in per_output[0]:
        result["top1_agreement"] = per_output[0]["top1_agreement"]
    result["cosine_min"] = min((o.get("cosine_min", 1.0) for o in per_output), default=1.0)
    if worst > args.tolerance:
        messages.append(f"ONNX Runtime vs PyTorch max abs diff {worst:.3g} > {args.tolerance:g} (fp32)")
    spec_batch = getattr(getattr(cfg, "export", None), "batch_size", None)
    if not result["dynamic_batch"] and spec_batch in (None, -1):
        messages.append(f"ONNX input batch axis is fixed ({batch_dim.dim_value}) but export.batch_size is {spec_batch}")
    if args.save_io:
        np.savez(args.save_io, inputs=x, **{f"output_{i}": o for i, o in enumerate(native)})
        result["reference_io"] = args.save_io
    result["ok"] = not messages
    result["messages"] = messages
    return result


if __name__ == "__main__":
    run(main)
