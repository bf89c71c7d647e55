#!/usr/bin/env python
"""Throughput of each example port's TAO model against the HF model it was ported from (same weights, same input).

    python scripts/bench_port_throughput.py [--workspace WS] [--ports vit,segformer,rtdetr] [--device cuda|cpu]
        [--batch-sizes 1,64] [--detection-max-batch 8] [--precisions fp32,bf16,fp16] [--runs 20] [--warmup 5]
        [--dense-size N] [--json out.json]

For each port (the examples of scripts/bench_verify.py: ``vit`` classification, ``segformer`` segmentation,
``rtdetr`` detection) the two models are built the way verify's hf_parity stage builds them -- the probes'
``build_models`` (scaffolder/verify/probes/hf_parity*.py): the HF model from the example's config.json with seeded
random weights, saved, converted by the port's generated ``utils/hf_checkpoint_converter.py`` and loaded into the
port's ``model/build.py`` model by TAO's own loader. Both run eagerly in eval mode under ``torch.inference_mode``,
in one process, on the same input tensor: fp32, then bf16 and fp16 autocast (weights stay fp32). Per (precision,
batch): ``--warmup`` forwards of each, then ``--runs`` timed forwards alternating HF / port (CUDA events on a GPU,
``time.perf_counter`` on CPU, synchronised), median -> images/s; ratio = port / HF. The outputs' max abs
difference is reported per row: port vs HF at the same precision, and each against HF's fp32 output (a port that
were faster by computing something else would show it here): logits for classification, 1/4-resolution decoder
logits for segmentation, ``pred_logits`` / ``pred_boxes`` for detection with queries matched one to one (the
order of near-tied scores may differ; verify's probe does the same).

Input sizes are the ports' own (224; 512; 640 = RT-DETR's eval_spatial_size, for which TAO precomputes its
anchors); ``--dense-size`` shrinks segmentation/detection inputs for a CPU smoke run. Batch sizes: ``--batch-sizes``
for every port, detection capped at ``--detection-max-batch`` (8). Without ``--workspace`` a temporary workspace is
made (``workspace init --from-pypi 7.3.0`` or the test cache) and the ports are generated there; with it, ports
missing from it are generated into it. TAO's MultiScaleDeformableAttention runs its pure-PyTorch path where its
CUDA op library is absent (verify's shim, scaffolder/verify/shim/tao_scaffold_msda.py); the JSON says which.

Exit 0 when every row was measured, 1 when any build or forward failed (the error is in the row). Not a test: it
never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "scripts"))

from bench_verify import PORTS, generate_port, prepare_workspace  # noqa: E402  pylint: disable=wrong-import-position

PRECISIONS = ("fp32", "bf16", "fp16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="workspace holding (or to receive) the example ports")
    parser.add_argument("--ports", default="vit,segformer,rtdetr", help=f"comma list of {', '.join(sorted(PORTS))}")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--detection-max-batch", type=int, default=8)
    parser.add_argument("--precisions", default=None, help="comma list of fp32, bf16, fp16 (default: all three; "
                        "fp32,bf16 with --device cpu)")
    parser.add_argument("--runs", type=int, default=20, help="timed forwards per model and row (median)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed forwards first (default 5 cuda, 1 cpu)")
    parser.add_argument("--dense-size", type=int, default=None,
                        help="input side for segmentation/detection (multiple of 32; default: the port's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tf32", action="store_true",
                        help="let fp32 convolutions and matmuls use TF32 (PyTorch's cuDNN default); off by default so "
                        "the fp32 rows compare true fp32 outputs (TF32 convs alone move RT-DETR's top-k selection)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    args.ports = [p.strip() for p in args.ports.split(",") if p.strip()]
    unknown = [p for p in args.ports if p not in PORTS]
    if unknown:
        parser.error(f"unknown port(s) {', '.join(unknown)}: choose from {', '.join(sorted(PORTS))}")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.precisions is None:  # CPU autocast fp16 runs slow reference kernels: a CPU run leaves it out unless asked
        args.precisions = ",".join(PRECISIONS if args.device.startswith("cuda") else PRECISIONS[:2])
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    bad = [p for p in args.precisions if p not in PRECISIONS]
    if bad or not args.precisions:
        parser.error(f"--precisions takes {', '.join(PRECISIONS)}")
    args.precisions = [p for p in PRECISIONS if p in args.precisions]  # fp32 first: its HF output is the reference
    if args.runs < 1 or any(b < 1 for b in args.batch_sizes):
        parser.error("--runs and batch sizes must be >= 1")
    return args


# -------------------------------------------------------------------------------------------- models
def port_models(ws: Path, key: str, seed: int, dense_size: int | None):
    """(hf, tao, meta) for the example port ``key`` of ``ws``, built as verify's hf_parity stage builds them."""
    from scaffolder.tasks import hf_auto_class_for, task_named
    from scaffolder.verify.port import load_port
    from scaffolder.verify.tasks import get_task

    example, name, _target = PORTS[key]
    port = load_port(ws, name)
    answers = port.answers
    task = get_task(port.task)
    config_class = task.config_class(port, "tao-pytorch")
    # the example's folder (what generate ran on), as verify --model gives it to the hf_parity stage
    hf_config = next((Path(c) / "config.json" for c in (example, port.workspace.model_folders().get(name, ""),
                                                        answers.get("model", "")) if c and (Path(c) / "config.json").is_file()), None)
    if hf_config is None:
        raise RuntimeError(f"config.json of {answers.get('model')!r} not found (looked in {example})")
    auto_class = hf_auto_class_for(task_named(port.task), answers.get("task_params"), answers.get("architectures"))
    meta = {"port": name, "task": port.task, "hf_config": str(hf_config), "auto_class": auto_class}
    if port.task == "classification":
        import hf_parity  # pylint: disable=import-error

        hf, tao, cfg, _hf_cfg, _conv = hf_parity.build_models(name, config_class, str(hf_config), auto_class, seed)
        size = int(cfg.dataset.img_size)
        meta["input"] = [3, size, size]
    elif port.task == "segmentation":
        import hf_parity_segmentation  # pylint: disable=import-error

        hf, tao, cfg, _report, _conv = hf_parity_segmentation.build_models(name, config_class, str(hf_config), seed)
        size = dense_size or int(cfg.dataset.segment.img_size)
        meta["input"] = [3, size, size]
    elif port.task == "detection":
        import hf_parity_detection  # pylint: disable=import-error
        from scaffolder.verify.shim import tao_scaffold_msda

        tao_scaffold_msda.patch()
        messages: list[str] = []
        hf, tao, _cfg, (height, width), ddetr = hf_parity_detection.build_models(
            name, config_class, str(hf_config), auto_class, seed=seed, max_size=dense_size, messages=messages)
        if messages:
            raise RuntimeError("; ".join(messages))
        meta["input"] = [3, height, width]
        meta["ddetr"] = ddetr  # TAO's Deformable DETR takes the image + a zero padding-mask channel
    else:
        raise RuntimeError(f"no benchmark for task {port.task!r}")
    meta["hf_class"] = type(hf).__name__
    meta["tao_class"] = type(tao).__name__
    meta["hf_params_m"] = round(sum(p.numel() for p in hf.parameters()) / 1e6, 2)
    meta["tao_params_m"] = round(sum(p.numel() for p in tao.parameters()) / 1e6, 2)
    meta["hf_attn_implementation"] = getattr(hf.config, "_attn_implementation", None)
    return hf, tao, meta


def forwards(task: str, hf, tao, ddetr: bool = False):
    """(hf_call, tao_call, outputs(hf_result, tao_result) -> (hf_tensors, tao_tensors))."""
    if task == "detection":
        import torch

        def tao_call(x):
            return tao(torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)) if ddetr else tao(x)

        return (lambda x: hf(pixel_values=x), tao_call,
                lambda h, t: ((h.logits, h.pred_boxes), (t["pred_logits"], t["pred_boxes"])))
    return lambda x: hf(pixel_values=x), tao, lambda h, t: ((h.logits,), (t,))


def differences(task: str, a, b) -> dict:
    """max abs difference of two output tuples (detection: queries matched one to one, as verify's probe)."""
    a = [t.detach().float() for t in a]
    b = [t.detach().float() for t in b]
    if any(x.shape != y.shape for x, y in zip(a, b)):
        return {"shape_mismatch": [[list(x.shape), list(y.shape)] for x, y in zip(a, b)]}
    if task == "detection":
        import hf_parity_detection  # pylint: disable=import-error

        to_np = [t.double().cpu().numpy() for t in (*a, *b)]
        logits, boxes, swaps = hf_parity_detection.matched_diff(*to_np)
        return {"max_abs": max(logits, boxes), "max_abs_logits": logits, "max_abs_boxes": boxes,
                "query_swaps": swaps, "index_max_abs": max((x - y).abs().max().item() for x, y in zip(a, b))}
    return {"max_abs": max((x - y).abs().max().item() for x, y in zip(a, b))}


# -------------------------------------------------------------------------------------------- timing
class Timer:
    def __init__(self, device):
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def __call__(self, fn, x):
        """(seconds, output) of one forward."""
        if self.cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3, out
        t0 = time.perf_counter()
        out = fn(x)
        return time.perf_counter() - t0, out


def autocast(device, precision):
    import torch

    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision])


def bench_port(key, hf, tao, meta, args, device) -> list[dict]:
    import torch

    task = meta["task"]
    hf.to(device)
    tao.to(device)
    hf_call, tao_call, outputs = forwards(task, hf, tao, meta.get("ddetr", False))
    timer = Timer(device)
    warmup = args.warmup if args.warmup is not None else (5 if device.type == "cuda" else 1)
    batches = sorted({min(b, args.detection_max_batch) if task == "detection" else b for b in args.batch_sizes})
    rows = []
    for batch in batches:
        gen = torch.Generator().manual_seed(args.seed + batch)
        shape = (batch, *meta["input"])
        x = (torch.rand(shape, generator=gen) if task == "detection" else torch.randn(shape, generator=gen)).to(device)
        reference = None  # HF's fp32 output: the fp32 row's (first), else one extra forward
        if "fp32" not in args.precisions:
            try:
                with torch.inference_mode():
                    reference = outputs(hf_call(x), tao_call(x))[0]
            except Exception as exc:  # noqa: BLE001
                print(f"  {key} batch {batch}: fp32 reference failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        for precision in args.precisions:
            row = {"port": key, "task": task, "precision": precision, "batch": batch}
            try:
                with torch.inference_mode(), autocast(device, precision):
                    for _ in range(warmup):
                        hf_call(x)
                        tao_call(x)
                    timer.sync()
                    hf_s, tao_s = [], []
                    for _ in range(args.runs):  # alternating, so drifts (clocks, other load) hit both alike
                        seconds, hf_result = timer(hf_call, x)
                        hf_s.append(seconds)
                        seconds, tao_result = timer(tao_call, x)
                        tao_s.append(seconds)
                    hf_out, tao_out = outputs(hf_result, tao_result)  # the last timed forwards' outputs
                    if precision == "fp32":
                        reference = hf_out
                hf_med, tao_med = statistics.median(hf_s), statistics.median(tao_s)
                row.update(hf_ms=round(hf_med * 1e3, 4), port_ms=round(tao_med * 1e3, 4),
                           hf_images_per_s=round(batch / hf_med, 2), port_images_per_s=round(batch / tao_med, 2),
                           ratio=round(hf_med / tao_med, 3),
                           hf_ms_spread=[round(min(hf_s) * 1e3, 3), round(max(hf_s) * 1e3, 3)],
                           port_ms_spread=[round(min(tao_s) * 1e3, 3), round(max(tao_s) * 1e3, 3)],
                           diff=differences(task, hf_out, tao_out))
                if reference is not None:
                    row["port_vs_hf_fp32"] = differences(task, reference, tao_out)
                    row["hf_vs_hf_fp32"] = differences(task, reference, hf_out)
                    row["output_scale"] = max(t.detach().float().abs().max().item() for t in reference)
            except Exception as exc:  # noqa: BLE001 - e.g. out of memory, an op without a half kernel
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(format_row(row), flush=True)
        del x, reference
    return rows


# -------------------------------------------------------------------------------------------- output
HEADER = (f"{'port':<10} {'prec':<5} {'batch':>5} {'HF img/s':>10} {'port img/s':>10} {'ratio':>6}  "
          f"{'max|d| port-HF':>14} {'vs HF fp32: port / HF':>23}")


def _fmt(diff):
    if not diff:
        return "-"
    if "shape_mismatch" in diff:
        return "shape!"
    return f"{diff['max_abs']:.2e}"


def format_row(row: dict) -> str:
    if "error" in row:
        return f"{row['port']:<10} {row['precision']:<5} {row['batch']:>5}  ERROR {row['error']}"
    vs = f"{_fmt(row.get('port_vs_hf_fp32'))} / {_fmt(row.get('hf_vs_hf_fp32'))}"
    return (f"{row['port']:<10} {row['precision']:<5} {row['batch']:>5} {row['hf_images_per_s']:>10.1f} "
            f"{row['port_images_per_s']:>10.1f} {row['ratio']:>5.2f}x  {_fmt(row['diff']):>14} {vs:>23}")


def environment(device) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
           "cpus": os.cpu_count(), "float32_matmul_precision": torch.get_float32_matmul_precision(),
           "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "cudnn_benchmark": torch.backends.cudnn.benchmark}
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    else:
        env["threads"] = torch.get_num_threads()
    return env


def main(argv=None) -> int:
    args = parse_args(argv)
    tmp = None
    if args.workspace is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
        example, name, _ = PORTS[args.ports[0]]
        ws = prepare_workspace(tmp, example, name)
    else:
        ws = args.workspace.resolve()
    try:
        from scaffolder.workspace import Workspace

        existing = set()
        try:
            from scaffolder.verify.port import find_ports

            existing = set(find_ports(Workspace.open(ws)))
        except Exception:  # noqa: BLE001 - an unreadable workspace fails below, at load_port
            pass
        for key in args.ports:
            example, name, _ = PORTS[key]
            if name not in existing:
                generate_port(ws, example, name, allow_dirty=True)
                existing.add(name)
        # The workspace's TAO repos (and the ports in them) shadow any installed TAO; the probes import _common.
        sys.path[:0] = [str(ws / "tao-core"), str(ws / "tao-pytorch"),
                        str(PROJECT / "scaffolder" / "verify" / "probes")]
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # save_pretrained's shard bars
        device = torch.device(args.device)
        # Both models run under the same flags; fp32 means fp32 unless --tf32 (autocast rows are unaffected).
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32
        env = environment(device)
        print(f"bench_port_throughput: {env}", flush=True)
        print(HEADER)
        results = {"environment": env, "settings": {
            "batch_sizes": args.batch_sizes, "detection_max_batch": args.detection_max_batch,
            "precisions": args.precisions, "runs": args.runs,
            "warmup": args.warmup if args.warmup is not None else (5 if device.type == "cuda" else 1),
            "dense_size": args.dense_size, "seed": args.seed, "workspace": str(ws),
            "timing": "CUDA events" if device.type == "cuda" else "time.perf_counter"}, "models": {}, "rows": []}
        failed = False
        for key in args.ports:
            t0 = time.monotonic()
            try:
                hf, tao, meta = port_models(ws, key, args.seed, args.dense_size)
            except Exception as exc:  # noqa: BLE001
                failed = True
                results["models"][key] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                print(f"{key:<10} build failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            meta["build_seconds"] = round(time.monotonic() - t0, 1)
            rows = bench_port(key, hf, tao, meta, args, device)
            if meta["task"] == "detection":
                from scaffolder.verify.shim import tao_scaffold_msda

                meta["msda"] = (f"TAO's CUDA op library {'loaded' if tao_scaffold_msda.op_registered() else 'absent'}; "
                                f"{tao_scaffold_msda.fallback_calls()} CUDA forwards took TAO's pure-PyTorch path "
                                "(CPU tensors always do)")
            meta["bench_seconds"] = round(time.monotonic() - t0, 1)
            results["models"][key] = meta
            results["rows"] += rows
            failed = failed or any("error" in r for r in rows)
            del hf, tao
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print()
        print("ratio = port images/s / HF images/s (>= 1.0: the port is at least as fast); max|d|: outputs' max abs "
              "difference")
        for key, meta in results["models"].items():
            print(f"  {key}: {json.dumps(meta)}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            print(f"wrote {args.json}")
        return 1 if failed else 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
