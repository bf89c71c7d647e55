"""TensorRT stages, through the generated tao-deploy commands: ``gen_trt_engine``, ``trt_inference``,
``trt_evaluate`` and ``trt_parity`` (native PyTorch vs the engine, via TAO's inferencer).

All four are skipped -- never passed -- when TensorRT or pycuda cannot be imported in the tao-deploy
environment (or with ``--device cpu``); the skip reason says which import failed. They are required
(a skip fails verify) only with ``--device gpu`` or ``--require-trt``.
"""

from __future__ import annotations

from pathlib import Path

from scaffolder.verify import specs as S
from scaffolder.verify.stages.base import Stage, StageFailed, StageRun, StageSkipped
from scaffolder.verify.stages.pytorch import find_onnx


def precisions(ctx) -> list[str]:
    if ctx.options.trt_precisions:
        return [p.lower() for p in ctx.options.trt_precisions]
    spec = ctx.port.deploy_spec("gen_trt_engine")
    value = None
    if spec is not None and spec.is_file():
        try:
            value = S.get(S.load_yaml(spec), "gen_trt_engine.tensorrt.data_type", None)
        except S.SpecError:
            value = None
    return [str(value or "fp32").lower()]


def engines(ctx) -> dict[str, Path]:
    found = ctx.artifact("engines")
    if found:
        return {k: Path(v) for k, v in found.items()}
    folder = ctx.deploy_results_dir / "gen_trt_engine"
    out = {}
    for precision in precisions(ctx):
        path = folder / f"{ctx.port.name}.{precision}.engine"
        if path.is_file() and path.stat().st_size > 0:
            out[precision] = path
    return out


class _TrtStage(Stage):
    def precheck(self, ctx):
        status = ctx.trt()
        if not status.available:
            return StageSkipped(status.reason, required=ctx.options.trt_required)
        if ctx.port.deploy_dir is None:
            return StageSkipped("the port has no tao-deploy package")
        return None

    def deploy_argv(self, ctx, subtask: str, *extra: str) -> list[str]:
        spec = ctx.port.deploy_spec(subtask)
        if spec is None or not spec.is_file():
            raise StageFailed(f"deploy spec for {subtask} is missing ({ctx.rel(spec) if spec else 'no tao-deploy package'})")
        return [ctx.port.name, subtask, "-e", ctx.target(spec), f"results_dir={ctx.target(ctx.deploy_results_dir)}",
                *ctx.task.deploy_overrides(ctx.port, ctx.dataset(), ctx.target, subtask), *extra]


class GenTrtEngineStage(_TrtStage):
    name = "gen_trt_engine"
    priority = 4
    needs_data = True
    title = "NAME gen_trt_engine (tao-deploy): a non-empty engine per precision"
    requires = ("export",)
    early = {"export": "onnx"}

    def precheck(self, ctx):
        skip = super().precheck(ctx)
        if skip is None and find_onnx(ctx) is None:
            return StageSkipped("no ONNX model: export did not run in this verify run")
        return skip

    def run(self, ctx, run: StageRun) -> None:
        run.ensure_console("tao-deploy")
        onnx = find_onnx(ctx)
        folder = ctx.fresh_dir(ctx.deploy_results_dir / "gen_trt_engine")
        built = {}
        for precision in precisions(ctx):
            engine = folder / f"{ctx.port.name}.{precision}.engine"
            argv = self.deploy_argv(ctx, "gen_trt_engine", f"gen_trt_engine.onnx_file={ctx.target(onnx)}",
                                    f"gen_trt_engine.trt_engine={ctx.target(engine)}",
                                    f"gen_trt_engine.tensorrt.data_type={precision.upper()}")
            result = run.command(argv, repo="tao-deploy", console=True)
            run.metrics[f"{precision}_build_seconds"] = round(result.seconds, 1)
            run.require_ok(result, f"{ctx.port.name} gen_trt_engine ({precision})")
            if not engine.is_file() or engine.stat().st_size == 0:
                raise StageFailed(f"gen_trt_engine ({precision}) finished but {ctx.rel(engine)} is missing or empty")
            run.metrics[f"{precision}_engine_mb"] = round(engine.stat().st_size / 2**20, 1)
            run.artifacts[f"engine_{precision}"] = str(engine)
            built[precision] = str(engine)
        ctx.set_artifact("engines", built)


class _EngineConsumer(_TrtStage):
    requires = ("gen_trt_engine",)

    def precheck(self, ctx):
        skip = super().precheck(ctx)
        if skip is None and not engines(ctx):
            return StageSkipped("no TensorRT engine: gen_trt_engine did not run in this verify run")
        return skip


class _DeployCommandStage(_EngineConsumer):
    """Runs one tao-deploy command (``subtask``) on the first engine, then the task's check of its outputs."""

    subtask = ""
    folder = ""

    def check_outputs(self, ctx, out: Path):
        raise NotImplementedError

    def run(self, ctx, run: StageRun) -> None:
        run.ensure_console("tao-deploy")
        precision, engine = next(iter(engines(ctx).items()))
        out = ctx.fresh_dir(ctx.deploy_results_dir / self.folder)
        result = run.command(self.deploy_argv(ctx, self.subtask, f"{self.subtask}.trt_engine={ctx.target(engine)}"),
                             repo="tao-deploy", console=True)
        run.require_ok(result, f"{ctx.port.name} {self.subtask} ({precision} engine)")
        problems, metrics, artifacts = self.check_outputs(ctx, out)
        run.metrics.update(metrics)
        run.artifacts.update(artifacts)
        run.messages += problems


class TrtInferenceStage(_DeployCommandStage):
    name = "trt_inference"
    priority = 6
    needs_data = True
    title = "NAME inference (tao-deploy) on the test images: the task's outputs non-empty and well formed"
    subtask, folder = "inference", "trt_inference"

    def check_outputs(self, ctx, out: Path):
        return ctx.task.check_inference_outputs(out, ctx.dataset())


class TrtEvaluateStage(_DeployCommandStage):
    name = "trt_evaluate"
    priority = 7
    needs_data = True
    title = "NAME evaluate (tao-deploy) on the labelled test images: the task's metrics non-empty and well formed"
    subtask, folder = "evaluate", "trt_evaluate"

    def check_outputs(self, ctx, out: Path):
        return ctx.task.check_evaluate_outputs(out, ctx.dataset())


class TrtParityStage(_EngineConsumer):
    name = "trt_parity"
    priority = 5
    title = "PyTorch vs TensorRT on the same inputs: fp32 max abs <= 1e-3; fp16 cosine >= 0.999 + top-1"

    def precheck(self, ctx):
        skip = super().precheck(ctx)
        if skip is None and not ctx.artifact("reference_io") and not (
                ctx.results_dir / "export" / "reference_io.npz").is_file():
            return StageSkipped("no PyTorch reference outputs: export parity did not run")
        return skip

    def run(self, ctx, run: StageRun) -> None:
        reference = ctx.artifact("reference_io") or str(ctx.results_dir / "export" / "reference_io.npz")
        for precision, engine in engines(ctx).items():
            args = ["--engine", ctx.target(engine), "--reference", ctx.target(Path(reference)),
                    "--inferencer", ctx.task.trt_inferencer(ctx.port), "--precision", precision,
                    "--fp32-tolerance", f"{ctx.options.trt_fp32_tolerance:g}",
                    "--fp16-cosine", f"{ctx.options.trt_fp16_cosine:g}"]
            if ctx.task.parity_top1():
                args.append("--top1")
            _, data = run.probe("trt_parity.py", args, repo="tao-deploy", tag=precision)
            if data.get("crashed"):
                run.messages.append(f"{precision}: TensorRT parity check crashed: {data.get('error')}")
                continue
            for key in ("max_abs_diff", "cosine_min", "top1_agreement"):
                if data.get(key) is not None:
                    run.metrics[f"{precision}_{key}"] = data[key]
            run.messages += data.get("messages", [])
        if run.messages:
            run.reason = run.messages[0]
