"""Plan step: turn what inspect found (ModelInfo) into the decisions of a port (PortPlan)."""

from __future__ import annotations

import re

from scaffolder import catalog
from scaffolder.errors import UnsupportedModelError
from scaffolder.plan import TASKS, PortPlan

# HF pipeline tags -> tao-scaffold task blueprints.
TASK_FOR_PIPELINE = {"image-classification": "classification"}
# Tags whose models can be ported as a classifier when the user asks for it.
BACKBONE_ONLY_PIPELINES = {"feature-extraction", "image-feature-extraction"}
_PLACEHOLDER_LABEL = re.compile(r"^LABEL_\d+$")


def choose_task(info, task: str | None) -> str:
    if task:
        if task not in TASKS:
            raise UnsupportedModelError(f"task {task!r} has no blueprint yet", f"available: {', '.join(TASKS)}")
        return task
    tag = info.pipeline_tag
    if tag in TASK_FOR_PIPELINE:
        return TASK_FOR_PIPELINE[tag]
    arch = ", ".join(info.architectures) or info.model_type
    if tag in BACKBONE_ONLY_PIPELINES:
        raise UnsupportedModelError(
            f"{info.source} is a {tag} model ({arch}) with no task head",
            "pass --task classification to port it as a classifier on its features",
        )
    raise UnsupportedModelError(
        f"{info.source} is a {tag or 'untagged'} model ({arch}); tao-scaffold has blueprints for: {', '.join(TASKS)}",
        "pass --task to port its backbone into one of them",
    )


def choose_backbone(info) -> tuple[catalog.Family, catalog.Variant]:
    family = catalog.family_for(info.model_type)
    if family is None:
        raise UnsupportedModelError(
            f"TAO 7.3 has no backbone_v2 entry for HF model_type {info.model_type!r} "
            f"({', '.join(info.architectures) or 'no architecture'})",
            f"ported families: {', '.join(catalog.known_model_types())}; new backbones are not generated yet",
        )
    variant = family.match(info.config)
    if variant is None:
        known = ", ".join(v.backbone for v in family.variants)
        reason = family.missing_reason or f"no TAO {family.name} variant has this geometry"
        raise UnsupportedModelError(
            f"{reason}: {info.model_type} with {family.describe_config(info.config)} matches none of {known}",
            "choose a model of a listed size, or wait for new-backbone generation",
        )
    return family, variant


def class_labels(info, num_classes: int | None) -> tuple[int, list[str]]:
    """Class count and names: --num-classes wins; HF id2label supplies names when it is real and fits."""
    labels = [info.id2label[i] for i in sorted(info.id2label)] if info.id2label else []
    if labels and all(_PLACEHOLDER_LABEL.match(str(label)) for label in labels):
        labels = []
    count = num_classes or len(labels) or info.num_labels or 2
    if len(labels) != count:
        labels = [f"class_{i}" for i in range(count)]
    return count, [str(label) for label in labels]


def make_plan(info, name: str, *, task: str | None = None, num_classes: int | None = None,
              config_layout: str = "vendored", tao_version: str = "7.3.0") -> PortPlan:
    task = choose_task(info, task)
    family, variant = choose_backbone(info)
    count, names = class_labels(info, num_classes)
    return PortPlan(
        name=name,
        task=task,
        model=info.source,
        model_type=info.model_type,
        architectures=list(info.architectures),
        pipeline_tag=info.pipeline_tag,
        family=family.name,
        backbone=variant.backbone,
        backbone_strategy=variant.strategy,
        strategy_reason=f"TAO backbone_v2 registers {variant.backbone}, matching {family.describe_config(info.config)}",
        timm_name=variant.timm_name or "",
        head_in_channels=variant.num_features,
        img_size=int(info.image_size),
        in_channels=int(info.num_channels or 3),
        mean=[float(v) for v in info.image_mean],
        std=[float(v) for v in info.image_std],
        num_classes=count,
        class_names=names,
        export_notes=list(family.export_notes),
        config_layout=config_layout,
        tao_version=tao_version,
    )
