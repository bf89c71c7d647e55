"""hf_parity: the port's generated weight converter reproduces the HF model (fp32 max abs <= 1e-4)."""

from __future__ import annotations

import shutil
from pathlib import Path

from scaffolder.tasks import hf_auto_class_for, task_named
from scaffolder.verify.stages.base import Stage, StageFailed, StageRun, StageSkipped

TOLERANCE = 1e-4


def _hf_config(ctx) -> Path | None:
    """config.json of the port's source model, never from the network: ``verify --model``; the recorded model
    as a folder (ports of older versions recorded paths); the folder generate recorded on this machine
    (the port records only its name); the HF cache for a hub id."""
    model = str(ctx.port.answers.get("model", ""))
    candidates = [ctx.options.model] if ctx.options.model else []
    candidates += [model, ctx.port.workspace.model_folders().get(ctx.port.name, "")] if model else []
    for candidate in filter(None, candidates):
        local = Path(candidate).expanduser()
        if (local / "config.json").is_file():
            return local / "config.json"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(ctx.options.model or model, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id or cache simply means "not available"
        return None
    return Path(cached) if isinstance(cached, str) else None


def _hf_features(family: str, task: str) -> str:
    from scaffolder.catalog import family_named

    fam = family_named(family)
    rules = fam.key_rules(task) if fam else None
    return rules.hf_features if rules else "classifier_input"


class HfParityStage(Stage):
    name = "hf_parity"
    priority = 8
    title = "HF model (random weights) -> generated converter -> TAO model: features/logits fp32 max abs <= 1e-4"

    def precheck(self, ctx):
        answers = ctx.port.answers
        if not answers.get("weight_mapping"):
            return StageSkipped("the port has no HF weight mapping (generated with --no-weights, or no rules for "
                                f"family {answers.get('family')!r})", required=False)
        if _hf_config(ctx) is None:
            return StageSkipped(f"config.json of {ctx.options.model or answers.get('model')!r} is neither a local "
                                "folder nor in the HF cache (pass the model folder with --model)", required=False)
        return None

    def run(self, ctx, run: StageRun) -> None:
        answers = ctx.port.answers
        task = ctx.port.task
        config = ctx.probe_dir / "hf_model" / "config.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_hf_config(ctx), config)
        args = ["--name", ctx.port.name, "--config-class", ctx.task.config_class(ctx.port, "tao-pytorch"),
                "--hf-config", ctx.target(config), "--hf-features", _hf_features(str(answers.get("family", "")), task),
                "--auto-class", hf_auto_class_for(task_named(task), answers.get("task_params"),
                                                  answers.get("architectures")),
                "--tolerance", f"{TOLERANCE:g}"]
        result, data = run.probe(ctx.task.hf_parity_probe, args, repo="tao-pytorch")
        if data.get("crashed"):
            raise StageFailed(f"HF parity check crashed: {data.get('error')}", [f"log: {ctx.rel(run.log_path)}"])
        for key in ("tolerance", *ctx.task.hf_parity_metrics):
            if data.get(key) is not None:
                run.metrics[key] = data[key]
        run.metrics["parity_seconds"] = round(result.seconds, 1)
        run.messages += data.get("messages", [])
        if run.messages:
            run.reason = run.messages[0]
