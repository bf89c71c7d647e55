"""``train`` and ``export`` through TAO's own entrypoint, and ``deploy-preprocess``.

``train``: ``NAME train -e <experiment_spec.yaml>`` with hydra overrides that bound it (1 epoch, batch 2,
no workers, the verification dataset, results under the work dir); it must leave
``<checkpoint_filename>_latest.pth``. ``export``: ``NAME export`` on that checkpoint, then
``onnx.checker`` and ONNX Runtime vs PyTorch (probes/export_parity.py; gate: max abs diff <= 1e-4 fp32).
``deploy-preprocess``: probes/preprocess_parity.py with the task's adapter (probes/preprocess_<task>.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from scaffolder.layout import pl_model_file
from scaffolder.verify import specs as S
from scaffolder.verify.stages.base import Stage, StageFailed, StageRun, StageSkipped


def checkpoint_stem(ctx) -> str:
    module = ctx.port.pytorch_dir / pl_model_file(ctx.port.name)
    names = S.class_attribute(module, "checkpoint_filename") if module.is_file() else {}
    return next(iter(names.values()), f"{ctx.port.name}_model")


def pytorch_overrides(ctx) -> list[str]:
    overrides = ctx.task.pytorch_overrides(ctx.port, ctx.dataset(), ctx.target)
    if ctx.options.device == "cpu":
        overrides += ctx.task.cpu_overrides
    return overrides


def find_checkpoint(ctx) -> Path | None:
    found = ctx.artifact("checkpoint")
    if found:
        return Path(found)
    candidate = ctx.results_dir / "train" / f"{checkpoint_stem(ctx)}_latest.pth"
    return candidate if candidate.exists() else None


def find_onnx(ctx) -> Path | None:
    found = ctx.artifact("onnx")
    if found:
        return Path(found)
    candidate = ctx.results_dir / "export" / f"{ctx.port.name}.onnx"
    return candidate if candidate.is_file() else None


class TrainStage(Stage):
    name = "train"
    priority = 1
    needs_data = True
    title = "NAME train -e spec, bounded: 1 epoch, batch 2, tiny dataset; must write NAME_model_latest.pth"

    def run(self, ctx, run: StageRun) -> None:
        data = ctx.dataset()
        run.log(f"# tao-scaffold: dataset: {data.description} ({ctx.rel(data.root)})")
        run.metrics["dataset"] = data.description
        run.ensure_console("tao-pytorch")
        results = ctx.fresh_dir(ctx.results_dir / "train")
        argv = [ctx.port.name, "train", "-e", ctx.target(ctx.port.train_spec),
                f"results_dir={ctx.target(ctx.results_dir)}", *pytorch_overrides(ctx),
                "train.num_epochs=1", "train.checkpoint_interval=1", "train.validation_interval=1"]
        result = run.command(argv, repo="tao-pytorch", console=True)
        run.metrics["train_seconds"] = round(result.seconds, 1)
        run.require_ok(result, f"{ctx.port.name} train")
        stem = checkpoint_stem(ctx)
        checkpoint = results / f"{stem}_latest.pth"
        if not checkpoint.exists():
            written = sorted(p.name for p in results.glob("*.pth"))
            raise StageFailed(f"train finished but wrote no {checkpoint.name} in {ctx.rel(results)}",
                              [f"checkpoints written: {', '.join(written) or 'none'}"])
        real = checkpoint.resolve()
        run.metrics["checkpoint_mb"] = round(real.stat().st_size / 2**20, 1)
        run.artifacts["checkpoint"] = str(checkpoint)
        run.artifacts["results_dir"] = str(results)
        ctx.set_artifact("checkpoint", str(checkpoint))


class ExportStage(Stage):
    name = "export"
    priority = 2
    needs_data = True
    title = "NAME export -> ONNX; onnx.checker; ONNX Runtime vs PyTorch (fp32 max abs <= 1e-4)"
    requires = ("train",)

    def precheck(self, ctx):
        if find_checkpoint(ctx) is None:
            return StageSkipped("no checkpoint: train did not run in this verify run and "
                                f"{ctx.rel(ctx.results_dir / 'train')} has none")
        return None

    def run(self, ctx, run: StageRun) -> None:
        checkpoint = find_checkpoint(ctx)
        run.ensure_console("tao-pytorch")
        out_dir = ctx.fresh_dir(ctx.results_dir / "export")
        onnx = out_dir / f"{ctx.port.name}.onnx"
        overrides = pytorch_overrides(ctx)
        argv = [ctx.port.name, "export", "-e", ctx.target(ctx.port.train_spec),
                f"results_dir={ctx.target(ctx.results_dir)}", *overrides,
                f"export.checkpoint={ctx.target(checkpoint)}", f"export.onnx_file={ctx.target(onnx)}"]
        if ctx.options.device == "cpu" or ctx.task.export_on_cpu:
            argv.append("export.on_cpu=True")
        run.metrics["export_device"] = "cpu" if ctx.options.device == "cpu" or ctx.task.export_on_cpu else "gpu"
        if ctx.options.device != "cpu" and ctx.task.export_on_cpu:
            run.log(f"# tao-scaffold: export.on_cpu=True: {ctx.task.export_on_cpu}")
        result = run.command(argv, repo="tao-pytorch", console=True)
        run.metrics["export_seconds"] = round(result.seconds, 1)
        run.require_ok(result, f"{ctx.port.name} export")
        if not onnx.is_file() or onnx.stat().st_size == 0:
            raise StageFailed(f"export finished but {ctx.rel(onnx)} is missing or empty")
        run.metrics["onnx_mb"] = round(onnx.stat().st_size / 2**20, 1)
        run.artifacts["onnx"] = str(onnx)
        ctx.set_artifact("onnx", str(onnx))

        names = _onnx_names(ctx)
        reference = out_dir / "reference_io.npz"
        overrides_file = ctx.write_json("pytorch_overrides.json", overrides)
        args = [
            "--onnx", ctx.target(onnx), "--checkpoint", ctx.target(checkpoint),
            "--pl-module", ctx.task.lightning_module(ctx.port),
            "--config-class", ctx.task.config_class(ctx.port, "tao-pytorch"),
            "--spec", ctx.target(ctx.port.train_spec), "--overrides", ctx.target(overrides_file),
            "--input-names", json.dumps(names[0]), "--output-names", json.dumps(names[1]),
            "--batch", "2", "--tolerance", f"{ctx.options.export_tolerance:g}", "--save-io", ctx.target(reference),
        ]
        if ctx.task.parity_top1():
            args.append("--top1")
        args += ctx.task.export_parity_args(ctx.port)
        result, data = run.probe("export_parity.py", args, repo="tao-pytorch")
        if data.get("crashed"):
            raise StageFailed(f"ONNX parity check crashed: {data.get('error')}", [f"log: {ctx.rel(run.log_path)}"])
        for key in ("max_abs_diff", "tolerance", "cosine_min", "top1_agreement", "dynamic_batch", "onnx_checker",
                    "opset", "onnx_inputs", "onnx_outputs", "input_shape", "gate", "topk", "topk_total", "topk_matched",
                    "topk_min_iou", "topk_max_score_diff"):
            if key in data and data[key] is not None:
                run.metrics[key] = data[key]
        run.metrics["parity_seconds"] = round(result.seconds, 1)
        run.messages += data.get("messages", [])
        if reference.is_file():
            run.artifacts["reference_io"] = str(reference)
            ctx.set_artifact("reference_io", str(reference))
        if run.messages:
            run.reason = run.messages[0]


def _onnx_names(ctx) -> tuple[list[str], list[str]]:
    export = ctx.port.pytorch_dir / "scripts" / "export.py"
    inputs = S.module_constant(export, "INPUT_NAMES", None) or ctx.port.answers.get("input_names") or []
    outputs = S.module_constant(export, "OUTPUT_NAMES", None) or ctx.port.answers.get("output_names") or []
    return list(inputs), list(outputs)


PREPROCESS_PROBE = "preprocess_parity.py"  # the generic driver; the task names its adapter module


class DeployPreprocessStage(Stage):
    name = "deploy-preprocess"
    priority = 3
    needs_data = True
    title = "TAO deploy's numpy loader vs the training eval transform on the same images (tensors + top-1)"
    requires = ("export",)
    early = {"export": "onnx"}  # starts while export's ONNX Runtime parity check still runs

    def precheck(self, ctx):
        if not ctx.task.preprocess_adapter:
            return StageSkipped(f"no preprocessing check for task {ctx.task.name} yet")
        if ctx.port.deploy_dir is None:
            return StageSkipped("the port has no tao-deploy package")
        if find_onnx(ctx) is None:
            return StageSkipped("no ONNX model: export did not run in this verify run")
        return None

    def run(self, ctx, run: StageRun) -> None:
        data = ctx.dataset()
        onnx = find_onnx(ctx)
        overrides_file = ctx.write_json("pytorch_overrides.json", pytorch_overrides(ctx))
        # the deploy specs as the TRT stages run them (e.g. a synthetic dataset's own palette and classes)
        deploy_file = ctx.write_json("deploy_overrides.json",
                                     ctx.task.deploy_overrides(ctx.port, data, ctx.target, "evaluate"))
        specs = [{"label": sub, "path": ctx.target(path)} for sub, path in ctx.port.deploy_specs.items()
                 if sub != "gen_trt_engine"]
        if not specs:
            raise StageFailed("no deploy inference/evaluate spec to compare")
        args = [
            "--adapter", ctx.task.preprocess_adapter,
            "--train-config", ctx.task.config_class(ctx.port, "tao-pytorch"),
            "--train-spec", ctx.target(ctx.port.train_spec), "--train-overrides", ctx.target(overrides_file),
            "--deploy-config", ctx.task.config_class(ctx.port, "tao-deploy"),
            "--deploy-specs", json.dumps(specs), "--deploy-overrides", ctx.target(deploy_file),
            *ctx.task.preprocess_args(ctx.port, data, ctx.target),
            "--onnx", ctx.target(onnx), "--tolerance", f"{ctx.options.preprocess_tolerance:g}",
        ]
        result, out = run.probe(PREPROCESS_PROBE, args, repo="tao-pytorch",
                                extra_pythonpath=[ctx.port.repo("tao-deploy")])
        if out.get("crashed"):
            raise StageFailed(f"preprocessing check crashed: {out.get('error')}", [f"log: {ctx.rel(run.log_path)}"])
        for key in ("images", "max_abs_diff", "top1_agreement", "tolerance", "input_shape", "training_mean",
                    "training_std", "stock_loader_max_abs_diff", "stock_loader_top1_agreement", "image_sizes",
                    *ctx.task.preprocess_metrics):
            if out.get(key) is not None:
                run.metrics[key] = out[key]
        run.metrics["per_spec"] = {
            s["label"]: {k: s.get(k) for k in ("mean", "std", "max_abs_diff", "top1_agreement", "worst_image")}
            for s in out.get("specs", [])
        }
        run.messages += out.get("messages", [])
        if run.messages:
            run.reason = run.messages[0]
