"""Plan step: turn what inspect found (ModelInfo) into the decisions of a port (PortPlan)."""

from __future__ import annotations

import dataclasses
import re

from scaffolder import catalog
from scaffolder.errors import ModelSourceError, ScaffoldError, UnsupportedModelError
from scaffolder.layout import DEFAULT_COPYRIGHT, backbone_module_relpath
from scaffolder.plan import PortPlan
from scaffolder.tasks import BACKBONE_ONLY_PIPELINES, TASKS, TaskSpec, load_object, refusal_for, task_for, task_named

_PLACEHOLDER_LABEL = re.compile(r"^LABEL_\d+$")


def choose_task(info, task: str | None) -> TaskSpec:
    refused = refusal_for(info.architectures)
    if refused:
        raise UnsupportedModelError(f"{info.source}: {refused}",
                                    "port a semantic segmentation (e.g. SegFormer) or classification model instead")
    if task:
        return task_named(task)
    spec = task_for(info.pipeline_tag, info.architectures)
    if spec is not None:
        return spec
    tag = info.pipeline_tag
    arch = ", ".join(info.architectures) or info.model_type
    if tag in BACKBONE_ONLY_PIPELINES:
        raise UnsupportedModelError(
            f"{info.source} is a {tag} model ({arch}) with no task head",
            f"pass --task {'|'.join(TASKS)} to port it as that task's backbone",
        )
    raise UnsupportedModelError(
        f"{info.source} is a {tag or 'untagged'} model ({arch}); tao-scaffold has blueprints for: {', '.join(TASKS)}",
        "pass --task to port its backbone into one of them",
    )


def choose_backbone(info, task: TaskSpec) -> tuple[catalog.Family, catalog.Variant]:
    if info.model_type in catalog.REFUSED_MODEL_TYPES:
        why, route = catalog.REFUSED_MODEL_TYPES[info.model_type]
        raise UnsupportedModelError(f"{info.source} ({info.model_type}): {why}", route)
    family = catalog.family_for(info.model_type)
    if family is None:
        raise UnsupportedModelError(
            f"tao-scaffold has no catalog family for HF model_type {info.model_type!r} "
            f"({', '.join(info.architectures) or 'no architecture'})",
            f"supported families: {', '.join(catalog.known_model_types())}; a new family is one module in "
            "scaffolder/catalog/ (a TAO backbone, a timm architecture or the HF wrapper)",
        )
    if not family.supports(task.name):
        raise UnsupportedModelError(
            f"the catalog's {family.name} family has no {task.name} port (it supports: {', '.join(family.tasks)})",
            f"{task.name} ports exist for: {', '.join(catalog.known_model_types(task.name))}",
        )
    rules = catalog.task_rules(family, task.name)
    if rules is not None and rules.backbone_variant is not None:  # the task generates its own backbone
        try:
            return family, rules.backbone_variant(family, info.config)[0]
        except ValueError as exc:
            raise UnsupportedModelError(
                f"{info.source}: no {task.name} backbone for {info.model_type} with "
                f"{family.describe_config(info.config)}: {exc}",
                f"{task.name} ports exist for: {', '.join(catalog.known_model_types(task.name))}") from exc
    variant = family.match(info.config)
    if variant is None:
        variant = sized_variant(family, info, task)
    elif (rules is not None and rules.registry and variant.strategy == "reuse"
          and variant.backbone not in load_object(rules.registry)):
        raise UnsupportedModelError(
            f"{info.model_type} {variant.backbone}: TAO's {rules.registry.rsplit(':', 1)[-1]} has no entry "
            f"{variant.backbone}, and the {task.name} blueprint builds the registry's backbones",
            f"choose another size for --task {task.name}, or port it with --task classification")
    return family, variant


# Tasks whose blueprint renders a generated backbone_v2 module (tao_class / timm_subclass / hf_wrapper).
GENERATED_BACKBONE_TASKS = ("classification",)


def sized_variant(family: catalog.Family, info, task: TaskSpec) -> catalog.Variant:
    """A size no catalog variant lists: the backbone the family generates with the model's own geometry."""
    known = ", ".join(v.backbone for v in family.variants)
    reason = family.missing_reason or f"no TAO {family.name} variant has this geometry"
    found = f"{reason}: {info.model_type} with {family.describe_config(info.config)} matches none of {known}"
    if family.any_size is None:
        raise UnsupportedModelError(found, "choose a model of a listed size, or add its variant to the catalog")
    rules = catalog.task_rules(family, task.name)
    if task.name not in GENERATED_BACKBONE_TASKS and rules is not None and rules.registry:
        return registered_size(family, info, task, rules, found)
    if task.name not in GENERATED_BACKBONE_TASKS:
        raise UnsupportedModelError(
            f"{found}; tao-scaffold generates other sizes for {', '.join(GENERATED_BACKBONE_TASKS)} ports only "
            f"(the {task.name} blueprint builds TAO's registered backbones)",
            f"choose a model of a listed size for --task {task.name}, or port it with --task classification")
    try:
        return family.sized(info.config)
    except ValueError as exc:
        raise UnsupportedModelError(f"{found}, and tao-scaffold cannot generate this size: {exc}",
                                    "choose a model of a listed size, or add its variant to the catalog") from exc


def registered_size(family: catalog.Family, info, task: TaskSpec, rules, found: str) -> catalog.Variant:
    """A size no variant lists, under a task network with its own backbone registry (TaskRules.registry): TAO's
    entry of the name the family spells for this geometry (e.g. RT-DETR's convnextv2_small), else refused."""
    registry_name = rules.registry.rsplit(":", 1)[-1]
    try:
        sized = family.sized(info.config)
    except ValueError as exc:
        raise UnsupportedModelError(f"{found}, and TAO's {registry_name} has no entry for it: {exc}",
                                    f"choose a model of a listed size for --task {task.name}") from exc
    if sized.backbone not in load_object(rules.registry):
        raise UnsupportedModelError(
            f"{found}; TAO's {registry_name} has no entry for this geometry ({sized.backbone}), and the {task.name} "
            "blueprint builds the registry's backbones",
            f"choose a model of a listed size for --task {task.name}, or port it with --task classification")
    return dataclasses.replace(sized, strategy="reuse", backbone_kwargs={}, timm_name=None)


def is_sized(family: catalog.Family, variant: catalog.Variant) -> bool:
    """The variant is a size the catalog does not list (generated with the model's own geometry)."""
    return variant not in family.variants


STRATEGIES = ("reuse", "tao_class", "timm_subclass", "hf_wrapper", "generated")
# Strategies whose backbone is generated into backbone_v2/ and registered there ("generated": in the port's own
# model/backbone.py, registered in its task network's registry on import). tao_class: TAO's own backbone class
# with a geometry TAO registers no factory for.
BACKBONE_V2_STRATEGIES = ("tao_class", "timm_subclass", "hf_wrapper")
HF_WRAPPER_NOTE = (
    "{backbone} wraps a transformers model: transformers must be installed wherever the backbone is built "
    "(training, evaluation, ONNX export); the ONNX file and TensorRT engine do not need it"
)


def strategy_reason(family: catalog.Family, variant: catalog.Variant, info, task: str = "") -> str:
    """Why the port gets its backbone the way it does (shown by inspect, kept in the plan)."""
    rules = catalog.task_rules(family, task) if task else None
    if rules is not None and rules.backbone_variant is not None:
        return rules.backbone_variant(family, info.config)[1]
    geometry = family.describe_config(info.config)
    if rules is not None and rules.backbone_reason and (variant.strategy == "reuse" or not is_sized(family, variant)):
        return rules.backbone_reason.format(backbone=variant.backbone, geometry=geometry)
    if variant.strategy == "reuse":
        if family.reuse_reason:
            return family.reuse_reason.format(backbone=variant.backbone, geometry=geometry)
        return f"TAO backbone_v2 registers {variant.backbone}, matching {geometry}"
    missing = family.missing_reason or f"TAO 7.3 has no {family.name} backbone"
    target = backbone_module_relpath(variant.backbone).split("/", 1)[1]
    if is_sized(family, variant):
        return sized_reason(family, variant, target)
    if variant.strategy == "timm_subclass":
        return (f"{missing}; timm has {variant.timm_name} ({geometry}): generate {target}, "
                f"a subclass of it with TAO's BackboneBase, registered as {variant.backbone}")
    if variant.strategy == "generated":
        return (f"{missing}: the port's model/backbone.py defines {variant.backbone} ({geometry}) and registers it "
                "in TAO's RTDETR_BACKBONE_REGISTRY")
    if variant.strategy == "hf_wrapper":
        arch = ", ".join(info.architectures) or info.model_type
        return (f"{missing}: generate {target}, a BackboneBase that composes the transformers model ({arch}; "
                f"{geometry}), registered as {variant.backbone}; transformers is needed at runtime")
    raise UnsupportedModelError(
        f"catalog variant {variant.backbone} has unknown strategy {variant.strategy!r}",
        f"use one of: {', '.join(STRATEGIES)}",
    )


def sized_reason(family: catalog.Family, variant: catalog.Variant, target: str) -> str:
    """"no TAO variant of this size; generating <class> from <source> with <geometry>" (inspect shows it)."""
    spec = family.any_size
    module, cls = spec.cls.split(":")
    kwargs = ", ".join(f"{k}={v}" for k, v in variant.backbone_kwargs.items())
    registered = ", ".join(v.backbone for v in family.variants if v.strategy == "reuse")
    if variant.strategy == "tao_class":
        source = f"TAO's {module.rsplit('.', 1)[-1]}.py"
        what = f"no TAO {family.name} variant of this size (TAO registers {registered or 'none'})"
    else:
        source = f"timm {variant.timm_name}"
        missing = family.missing_reason or f"TAO 7.3 has no {family.name} backbone"
        what = f"{missing}, and no catalog variant of this size"
    return f"{what}; generating {cls} from {source} with {kwargs}: {target}, registered as {variant.backbone}"


def export_notes(family: catalog.Family, variant: catalog.Variant, task: str = "") -> list[str]:
    rules = family.tasks.get(task)
    notes = list(family.export_notes if rules is None or rules.export_notes is None else rules.export_notes)
    if variant.strategy == "hf_wrapper":
        notes.append(HF_WRAPPER_NOTE.format(backbone=variant.backbone))
    return notes


def image_std(info) -> tuple[list[float], str | None]:
    """The std TAO must divide by once, and a note when it differs from the preprocessor's image_std.

    transformers' EfficientNetImageProcessor with ``include_top`` (its default) normalises a second time by
    ``image_std`` ((x - mean) / std / std); TAO normalises once, so the equivalent std is std squared. Applied only
    while the inspected std is still the raw preprocessor value, so a fix upstream is never applied twice.
    """
    std = [float(v) for v in info.image_std]
    pre = info.preprocessor or {}
    raw = pre.get("image_std")
    twice = str(pre.get("image_processor_type", "")).startswith("EfficientNetImageProcessor") and pre.get(
        "include_top", True
    )
    if not (twice and isinstance(raw, list) and [float(v) for v in raw] == std):
        return std, None
    squared = [round(v * v, 8) for v in std]
    return squared, (f"preprocessing: the HF processor (include_top) divides by image_std twice, TAO once: "
                     f"std {std} -> {squared} in the specs")


def class_labels(info, num_classes: int | None) -> tuple[int, list[str]]:
    """Class count and names: --num-classes wins; HF id2label supplies names when it is real and fits."""
    labels = [info.id2label[i] for i in sorted(info.id2label)] if info.id2label else []
    if labels and all(_PLACEHOLDER_LABEL.match(str(label)) for label in labels):
        labels = []
    count = num_classes or len(labels) or info.num_labels or 2
    if len(labels) != count:
        labels = [f"class_{i}" for i in range(count)]
    return count, [str(label) for label in labels]


def palette(class_names: list[str]) -> list[dict]:
    """TAO's dataset.segment.palette for masks that store the class id in each pixel (grayscale id PNGs, the
    layout of ADE20K/Cityscapes label maps): label_id i has value [i]. RGB-coloured masks: edit ``rgb``."""
    seen: dict[str, int] = {}
    entries = []
    for index, label in enumerate(class_names):
        name = label if label not in seen else f"{label}_{index}"  # TAO keys classes by name
        seen[name] = index
        entries.append({"label_id": index, "rgb": [index], "seg_class": name, "mapping_class": name})
    return entries


def task_params(spec: TaskSpec, family: catalog.Family, info, class_names: list[str]) -> dict:
    """The task's plan section: what the catalog derives from the HF config and preprocessor, plus the task's
    own facts."""
    rules = catalog.task_rules(family, spec.name)
    params = (dict(rules.plan_params(info.config, info.preprocessor or {}))
              if rules is not None and rules.plan_params is not None else {})
    if "palette" in spec.params:
        params["palette"] = palette(class_names)
    return params


def hf_adaptations(family, task: str) -> list[str]:
    """The family's HF adaptations a ``task`` port applies (TaskRules.skip_adaptations drops the others)."""
    rules = family.tasks.get(task)
    skipped = rules.skip_adaptations if rules is not None else ()
    return [a for a in family.hf_adaptations if a not in skipped]


def plan_port(info, name: str, *, task: str | None = None, num_classes: int | None = None,
              config_layout: str = "vendored", tao_version: str = "7.3.0", copyright: str = DEFAULT_COPYRIGHT,
              weights: bool = True, progress=lambda _msg: None) -> PortPlan:
    """The complete plan of a port -- every decision, the derived weight mapping included.

    The one writer of a plan: cli, generate and update call this (or read a reviewed port.yml) and never
    patch the result.
    """
    spec = choose_task(info, task)
    family, variant = choose_backbone(info, spec)
    count, names = class_labels(info, num_classes)
    std, std_note = image_std(info)
    plan = PortPlan(
        name=name,
        task=spec.name,
        task_params=task_params(spec, family, info, names),
        model=info.recorded_source,
        model_type=info.model_type,
        architectures=list(info.architectures),
        pipeline_tag=info.pipeline_tag,
        family=family.name,
        backbone=variant.backbone,
        backbone_strategy=catalog.task_rules(family, spec.name).backbone_strategy or variant.strategy,
        strategy_reason=strategy_reason(family, variant, info, spec.name),
        timm_name=variant.timm_name or "",
        backbone_kwargs=dict(variant.backbone_kwargs),
        num_features=variant.num_features,
        img_size=int(info.image_size),
        in_channels=int(info.num_channels or 3),
        mean=[float(v) for v in info.image_mean],
        std=std,
        num_classes=count,
        class_names=names,
        input_names=list(spec.input_names),
        output_names=list(spec.output_names),
        export_notes=export_notes(family, variant, spec.name) + ([std_note] if std_note else []),
        hf_adaptations=(hf_adaptations(family, spec.name) if variant.strategy in ("reuse", "tao_class")
                        and not catalog.task_rules(family, spec.name).backbone_strategy else []),
        config_layout=config_layout,
        tao_version=tao_version,
        copyright=copyright,
    )
    if not weights:
        plan.mapping_notes = ["weights not derived (--no-weights): no converter, no hf_parity, and norm layers keep "
                              "TAO's default eps where HF's differs (a ViT then computes with 1e-6 instead of HF's "
                              "1e-12, ~5e-4 off HF); regenerate without --no-weights to record HF's eps"]
        return plan
    from scaffolder.convert.port_mapping import mapping_for_plan

    try:
        mapping = mapping_for_plan(plan, info.config, progress)
    except ScaffoldError:
        raise
    except Exception as exc:  # transformers/TAO reject the config (string eps, 7 heads for 768 wide, ...)
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelSourceError(f"cannot build {info.source}'s model from its config.json to map its weights: "
                               f"{type(exc).__name__}: {detail}",
                               "fix config.json, or pass --no-weights to plan without a weight mapping") from exc
    if mapping is None:
        plan.mapping_notes = [f"no HF weight-conversion rules for family {plan.family!r} ({plan.task}); "
                              "converter not derived"]
        return plan
    return dataclasses.replace(plan, weight_mapping=mapping.rows, norm_eps=dict(mapping.norm_eps),
                               mapping_notes=list(mapping.notes))  # re-validated with the mapping
