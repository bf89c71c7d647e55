"""ONNX checks and ONNX Runtime vs native PyTorch on the same inputs.

    python export_parity.py --onnx model.onnx --checkpoint ckpt.pth --pl-module mod:Cls
        --config-class mod:ExperimentConfig --spec spec.yaml --overrides overrides.json
        --input-names '["input"]' --output-names '["output"]' [--batch 2] [--tolerance 1e-4]
        [--top1] [--detections-topk K] [--save-io io.npz] --out result.json

The native model is loaded the way the generated export script loads it
(``PlModel.load_from_checkpoint(..., experiment_spec=cfg, export=True).model``), so both sides are the
same network; the inputs are seeded standard-normal tensors (already normalised images) with a batch of
2, which exercises the dynamic batch axis of an ``export.batch_size: -1`` model.

``--detections-topk K`` (detectors whose raw outputs amplify fp32 rounding, e.g. Deformable DETR's box refinement):
when the raw ``pred_logits`` / ``pred_boxes`` differ by more than the tolerance, the gate is the post-processed
top-K (sigmoid over queries x classes, as TAO's post-processing): every ONNX Runtime detection must have a PyTorch
one among the PyTorch top-2K with the same label, box IoU >= 0.99 and |score difference| <= 1e-3.
"""

from __future__ import annotations

import argparse
import json

from _common import compare, compose, load_object, read_json, run  # pylint: disable=import-error


IOU_MIN, SCORE_TOL = 0.99, 1e-3


def _top_detections(logits, boxes, k):
    """(labels, scores, boxes cxcywh) of the top-k sigmoid scores over queries x classes, per image."""
    import numpy as np

    batch, _, classes = logits.shape
    prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    flat = prob.reshape(batch, -1)
    k = min(k, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(flat, order, axis=1)
    return order % classes, scores, np.stack([boxes[b][order[b] // classes] for b in range(batch)])


def _iou(a, b):
    """IoU of two cxcywh boxes."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else float(inter == union)


def topk_agreement(ref_logits, ref_boxes, got_logits, got_boxes, k):
    """Each candidate top-k detection matched to an unused reference one (top-2k) with the same label,
    IoU >= IOU_MIN and |score difference| <= SCORE_TOL (greedy, in the candidate's score order)."""
    ref = _top_detections(ref_logits, ref_boxes, 2 * k)
    got = _top_detections(got_logits, got_boxes, k)
    matched = total = 0
    min_iou, max_score = 1.0, 0.0
    for b in range(got[0].shape[0]):
        used = set()
        for label, score, box in zip(got[0][b], got[1][b], got[2][b]):
            total += 1
            best = None
            for j, (rlabel, rscore, rbox) in enumerate(zip(ref[0][b], ref[1][b], ref[2][b])):
                if j in used or rlabel != label or abs(rscore - score) > SCORE_TOL:
                    continue
                iou = _iou(box, rbox)
                if iou >= IOU_MIN:
                    best = (j, iou, abs(rscore - score))
                    break
            if best is not None:
                used.add(best[0])
                matched += 1
                min_iou, max_score = min(min_iou, best[1]), max(max_score, best[2])
    return {"topk": int(got[0].shape[1]), "topk_total": total, "topk_matched": matched, "topk_min_iou": min_iou,
            "topk_max_score_diff": max_score}


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
    parser.add_argument("--detections-topk", type=int, default=0)
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
    result["gate"] = "raw"
    if worst > args.tolerance and args.detections_topk and len(native) >= 2 and len(onnx_out) >= 2:
        result["gate"] = "topk"
        result.update(topk_agreement(native[0], native[1], onnx_out[0], onnx_out[1], args.detections_topk))
        if result["topk_matched"] != result["topk_total"]:
            messages.append(f"ONNX Runtime vs PyTorch raw max abs diff {worst:.3g} > {args.tolerance:g} and only "
                            f"{result['topk_matched']}/{result['topk_total']} top-{result['topk']} detections agree "
                            f"(label, IoU >= {IOU_MIN}, |score| <= {SCORE_TOL:g})")
    elif worst > args.tolerance:
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
