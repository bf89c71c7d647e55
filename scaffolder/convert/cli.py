"""`tao-scaffold convert-weights`: HF checkpoint -> a file `model.backbone.pretrained_backbone_path` loads.

Kept import-light: torch, transformers and TAO load only when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scaffolder.errors import ScaffoldError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-weights",
        help="convert HF weights into a TAO checkpoint for a generated port",
        description="Map every TAO parameter of the port's backbone to exactly one HF tensor (the mapping is "
        "derived from both state dicts with the catalog's rules), fail listing missing/unexpected keys, and "
        "write a checkpoint for model.backbone.pretrained_backbone_path.",
    )
    p.add_argument("--name", required=True, help="port name")
    p.add_argument("--workspace", required=True, metavar="DIR")
    p.add_argument("--hf-weights", required=True, metavar="PATH_OR_ID",
                   help="safetensors/bin file, model folder, or hub id (uses the HF cache; honours HF_HUB_OFFLINE)")
    p.add_argument("--out", required=True, metavar="ckpt.pth", help="checkpoint to write")
    p.add_argument("--num-classes", type=int, help="TAO head size (default: the port's dataset.num_classes)")
    p.set_defaults(func=run)


def _weights_path(source: str) -> Path:
    path = Path(source).expanduser()
    if path.exists():
        return path
    from scaffolder.hf_inspect import inspect_model  # hub id: resolve through huggingface_hub

    info = inspect_model(source)
    if not info.weight_files:
        raise ScaffoldError(f"{source} has no safetensors weights in the local HF cache",
                            "download them once (huggingface-cli download) or pass a local file/folder")
    return info.local_dir


def run(args, progress) -> int:
    from scaffolder.lock import workspace_lock
    from scaffolder.workspace import Workspace

    workspace = Workspace.open(Path(args.workspace))
    with workspace_lock(workspace.root, progress):  # the port's files must not change while they are read
        return _convert(args, workspace, progress)


def _convert(args, workspace, progress) -> int:
    from scaffolder.plan import PortPlan, read_answers
    from scaffolder.tasks import load_object, tao_model_for, task_named

    plan = PortPlan.from_answers({k: v for k, v in read_answers(workspace.root, args.name).items()
                                  if not k.startswith("_")})
    spec = task_named(plan.task)
    backbone, family = plan.backbone, plan.family or plan.model_type
    num_classes = args.num_classes or int(plan.num_classes)
    weights = _weights_path(args.hf_weights)

    # The port's own backbone code (new backbones live in the workspace) wins over installed TAO.
    for repo in ("tao-pytorch", "tao-core"):
        sys.path.insert(0, str(workspace.repo(repo)))
    progress(f"build: TAO {plan.task} model on {backbone} ({num_classes} classes) for its state-dict schema")
    from scaffolder.convert.checkpoint import convert_checkpoint, save_tao_checkpoint

    # a backbone generated in the port's own module (the ViT feature pyramid) is built from its plan kwargs
    generated = plan.backbone_strategy == "generated" and plan.backbone_kwargs
    extra = {"backbone_kwargs": plan.backbone_kwargs} if generated else {}
    tao = load_object(spec.tao_model_builder)(backbone, num_classes, plan.task_params, **extra)
    tao_schema = {k: tuple(v.shape) for k, v in tao.state_dict().items()}
    progress(f"convert: {weights}")
    from scaffolder.catalog import family_named

    fam = family_named(plan.family)
    rules = fam.key_rules(plan.task) if fam else None
    if rules is not None and rules.hf_tied_aliases and plan.weight_mapping and num_classes == int(plan.num_classes):
        # A checkpoint file keeps one name per tied HF tensor, so a fresh derivation from it cannot see the ties:
        # the port's own table (derived from the HF model, every name of a tied tensor listed) converts it.
        state_dict = _convert_with_plan_rows(weights, plan, tao_schema)
        text = (f"converted {weights}: {len(state_dict)} TAO tensors through the port's weight mapping "
                f"({plan.family}: rows of tied HF tensors take the first name the checkpoint has)")
    else:
        state_dict, report = convert_checkpoint(weights, family, tao_schema, num_classes=num_classes, task=plan.task)
        text = report.text()
    save_tao_checkpoint(state_dict, Path(args.out), tao_model_for(spec, plan.task_params))
    print(text)
    load_key = ("train.pretrained_model_path" if (plan.task_params or {}).get("convert_scope") == "model"
                else "model.backbone.pretrained_backbone_path")
    print(f"wrote {args.out}: set {load_key} to it")
    return 0


def _convert_with_plan_rows(weights, plan, tao_schema):
    from scaffolder.convert.checkpoint import WeightConversionError
    from scaffolder.convert.runtime import apply_mapping, load_hf_state_dict

    try:
        state_dict = apply_mapping(load_hf_state_dict(weights), plan.weight_mapping)
    except KeyError as exc:
        raise WeightConversionError(f"HF checkpoint {weights} does not cover the port's mapping: {exc.args[0]}",
                                    "check that the checkpoint is the port's architecture and size") from None
    missing = sorted(set(tao_schema) - set(state_dict))
    wrong = sorted(k for k in state_dict if k in tao_schema and tuple(state_dict[k].shape) != tao_schema[k])
    if missing or wrong:
        raise WeightConversionError(f"the converted tensors do not fit the TAO model: {len(missing)} missing "
                                    f"(e.g. {missing[:3]}), {len(wrong)} mis-shaped (e.g. {wrong[:3]})",
                                    "regenerate the port (tao-scaffold generate) so its mapping matches the model")
    return state_dict
