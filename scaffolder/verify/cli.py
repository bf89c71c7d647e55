"""``tao-scaffold verify``: run a generated port end to end and enforce its parity gates.

Registered by ``scaffolder.cli`` through :func:`register`. Imports stay light here: the verify machinery
is imported when the command runs.
"""

from __future__ import annotations

import argparse
import os

STAGE_HELP = """\
stages (in order; --stages takes a comma list, or the alias trt):
  static             py_compile + pylint --errors-only over the generated folders and backbone_v2 module
                     (the patched backbone_v2/__init__.py: compiled)
  consistency        cross-phase rules on the files (mean/std, ONNX/engine/checkpoint hand-offs,
                     head width vs model_params_mapping, input size, ONNX names, __init__.py, console_scripts)
  imports            TAO's own module of each repo, then every generated module (backbone_v2 included);
                     missing third-party packages stubbed (tensorrt/pycuda when TensorRT is absent); when
                     TAO's own module does not import: skipped as an environment problem, with the fix
  l0                 the generated L0 tests (tao-pytorch and tao-deploy)
  train              NAME train -e spec, bounded (1 epoch, batch 2, tiny synthetic or --data subset)
  export             NAME export -> ONNX; onnx.checker; ONNX Runtime vs PyTorch, fp32 max abs <= 1e-4
  deploy-preprocess  tao-deploy's numpy loader vs the training eval transform on the same images:
                     tensors (max abs <= 1e-4) and top-1 of the exported model (100%)
  gen_trt_engine     NAME gen_trt_engine (tao-deploy)                    } skipped, never passed,
  trt_inference      NAME inference: result.csv                          } where TensorRT/pycuda
  trt_evaluate       NAME evaluate: results.json                         } cannot be imported;
  trt_parity         PyTorch vs TensorRT: fp32 max abs <= 1e-3, fp16 cos } required with --device gpu

exit code: 0 only if every stage that ran passed and no required stage was skipped; 1 otherwise;
2 for bad input (unknown port, missing workspace, failed preflight).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="run a port end to end (static checks, L0, train, export, parity gates, TensorRT) and report",
        description="Verify a generated port: the stages below, a live stage list, and OUT/report.json + "
                    "OUT/report.md.",
        epilog=STAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workspace", required=True, metavar="DIR", help="folder with tao-core, tao-pytorch, tao-deploy")
    p.add_argument("--name", required=True, help="port name (as given to generate)")
    p.add_argument("--runner", choices=("local", "docker"), default="local",
                   help="local: subprocesses of --python (default); docker: TAO's containers")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="cpu applies the CPU-forcing shim to TAO's commands; auto: gpu if nvidia-smi sees one")
    p.add_argument("--stages", metavar="A,B,...", help="run only these stages (default: all)")
    p.add_argument("--data", metavar="DIR", help="dataset in the task's format (default: a small synthetic one)")
    p.add_argument("--report", metavar="OUT", help="report folder (default: WORKSPACE/.tao-scaffold-verify/NAME)")
    p.add_argument("--model", metavar="MODEL", help="hf_parity: the port's source model folder or hub id (default: "
                   "what the port records -- a hub id, or a folder name generate remembered on this machine)")
    p.add_argument("--python", metavar="PY", help="local runner: interpreter with TAO's dependencies "
                   "(default: the one running tao-scaffold)")
    p.add_argument("--pytorch-image", metavar="IMAGE", help="docker runner: image for tao-pytorch stages "
                   "(default tao-pytorch-base:latest)")
    p.add_argument("--deploy-image", metavar="IMAGE", help="docker runner: image for tao-deploy stages "
                   "(default tao-deploy-base:latest)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="stages run in parallel when independent (default: 2, or 1 on one CPU)")
    p.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="per command (default 3600)")
    p.add_argument("--trt-precision", metavar="P[,P]", help="engines to build and check: fp32, fp16 "
                   "(default: the gen_trt_engine spec's data_type)")
    p.add_argument("--require-trt", action="store_true",
                   help="treat the TensorRT stages as required even with --device cpu")
    p.add_argument("--strict", action="store_true",
                   help="consistency: run-time path findings (TAO's results_dir rewriting) fail instead of warn")
    p.add_argument("--verbose", action="store_true", help="print every output line of the commands")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args, progress) -> int:
    from pathlib import Path

    from scaffolder.verify.context import Options
    from scaffolder.verify.pipeline import gpu_visible, parse_stages, verify

    from scaffolder.errors import ScaffoldError

    device = args.device if args.device != "auto" else ("gpu" if gpu_visible() else "cpu")
    precisions = [p.strip().lower() for p in args.trt_precision.split(",") if p.strip()] if args.trt_precision else []
    unknown = [p for p in precisions if p not in ("fp32", "fp16")]
    if unknown:
        raise ScaffoldError(f"--trt-precision {','.join(unknown)} is not supported",
                            "use fp32 and/or fp16 (INT8 engines need calibration data; build them with the "
                            "deploy spec directly)")
    options = Options(
        runner=args.runner,
        device=device,
        stages=parse_stages(args.stages) if args.stages else [],
        data=Path(args.data).expanduser().absolute() if args.data else None,
        timeout=args.timeout,
        trt_precisions=precisions,
        trt_required=args.require_trt or device == "gpu",
        strict=args.strict,
        verbose=args.verbose,
        jobs=max(1, args.jobs),
        python=args.python,
        model=args.model,
    )
    images = {}
    if args.pytorch_image:
        images["tao-pytorch"] = args.pytorch_image
    if args.deploy_image:
        images["tao-deploy"] = args.deploy_image
    code, _ = verify(Path(args.workspace), args.name, options, report_dir=args.report, progress=progress,
                     images=images or None, quiet=getattr(progress, "quiet", False))
    return code
