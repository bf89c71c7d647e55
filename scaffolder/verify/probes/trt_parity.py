"""Native PyTorch vs TensorRT on the same inputs, through TAO's own TensorRT inferencer.

    python trt_parity.py --engine model.engine --reference io.npz --inferencer mod:Cls
        --precision fp32|fp16 [--fp32-tolerance 1e-3] [--fp16-cosine 0.999] [--top1] --out result.json

``io.npz`` is written by export_parity.py (``inputs`` and the PyTorch ``output_<i>``). The engine runs the
same inputs through the inferencer the generated deploy scripts use. Gates: fp32 max abs diff <= 1e-3;
fp16 cosine >= 0.999 (per sample) and, with ``--top1``, 100% top-1 agreement.
"""

from __future__ import annotations

import argparse

from _common import compare, load_object, run  # pylint: disable=import-error


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--inferencer", required=True)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--fp32-tolerance", type=float, default=1e-3)
    parser.add_argument("--fp16-cosine", type=float, default=0.999)
    parser.add_argument("--top1", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import numpy as np
    import tensorrt as trt  # pylint: disable=import-error

    reference = np.load(args.reference)
    inputs = reference["inputs"]
    expected = reference["output_0"]
    inferencer_class = load_object(args.inferencer)
    inferencer = inferencer_class(args.engine, data_format="channel_first", batch_size=len(inputs))
    dtype = trt.nptype(inferencer.input_tensors[0].tensor_dtype)
    got = np.asarray(inferencer.infer(inputs.astype(dtype)))
    got = got.reshape(-1, *expected.shape[1:])[: len(inputs)]
    stats = compare(expected, got, top1=args.top1)
    messages = []
    precision = args.precision.lower()
    if stats.get("shape_mismatch"):
        messages.append(f"TensorRT output shape {stats['candidate_shape']} != PyTorch {stats['shape']}")
    elif precision == "fp32":
        if stats["max_abs_diff"] > args.fp32_tolerance:
            messages.append(f"fp32 engine vs PyTorch max abs diff {stats['max_abs_diff']:.3g} > {args.fp32_tolerance:g}")
    else:
        if stats["cosine_min"] < args.fp16_cosine:
            messages.append(f"{precision} engine vs PyTorch cosine {stats['cosine_min']:.5f} < {args.fp16_cosine}")
        if args.top1 and stats.get("top1_agreement", 1.0) < 1.0:
            messages.append(f"{precision} engine top-1 agrees with PyTorch on {stats['top1_agreement']:.0%} of inputs")
    return {"ok": not messages, "messages": messages, "precision": precision, "tensorrt": trt.__version__, **stats}


if __name__ == "__main__":
    run(main)
