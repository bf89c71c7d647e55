"""Architecture catalog: what tao-scaffold knows about each HuggingFace vision family, one module per family.

Each module (timm's one-file-per-family habit) declares its :class:`Family`: the HF ``model_type`` values it
covers, how to recognise each size from ``config.json``, the TAO backbone each size maps to (or the backbone
tao-scaffold generates), preprocessing defaults, export notes, the backbone's HF -> TAO key rules, and the
tasks it supports with their per-task rules (:class:`TaskRules`). Code elsewhere asks the catalog; it never
branches on ``model_type`` itself. A new family is a new module listed in ``_FAMILY_MODULES``.

Backbone facts come from the TAO 7.3.0 wheels (the team's reference notes, ``tao-7.3-coverage.md`` §1).
"""

from __future__ import annotations

import importlib

from scaffolder.catalog._types import (
    AnySize,
    HALF_MEAN,
    HALF_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Family,
    KeyRule,
    KeyRules,
    TaskRules,
    Variant,
)

_FAMILY_MODULES = ("vit", "swin", "convnext", "resnet", "hiera", "segformer", "dinov2", "deit", "efficientnet",
                   "cvt", "rt_detr", "deformable_detr", "upernet")


def _collect() -> tuple[Family, ...]:
    found: list[Family] = []
    for name in _FAMILY_MODULES:
        module = importlib.import_module(f"scaffolder.catalog.{name}")
        found.extend(getattr(module, "FAMILIES", None) or (module.FAMILY,))
    return tuple(found)


FAMILIES: tuple[Family, ...] = _collect()
# HF model types tao-scaffold refuses with a reason and the route that works: model_type -> (why, what to do).
from scaffolder.catalog.detr import REFUSED as REFUSED_MODEL_TYPES  # noqa: E402
_BY_MODEL_TYPE: dict[str, Family] = {mt: fam for fam in FAMILIES for mt in fam.model_types}
_BY_NAME: dict[str, Family] = {fam.name: fam for fam in FAMILIES}


def family_for(model_type: str) -> Family | None:
    return _BY_MODEL_TYPE.get(model_type)


def family_named(name: str) -> Family | None:
    return _BY_NAME.get(name)


def task_rules(family: Family, task: str) -> TaskRules | None:
    return family.tasks.get(task)


def known_model_types(task: str | None = None) -> list[str]:
    """HF model types the catalog covers (for ``task``: those whose family supports it)."""
    return sorted(mt for mt, fam in _BY_MODEL_TYPE.items() if task is None or fam.supports(task))


def all_backbones() -> list[str]:
    """Every TAO backbone name the catalog can choose (for consistency checks against the registry)."""
    return [v.backbone for fam in FAMILIES for v in fam.variants if v.strategy == "reuse"]


__all__ = ["FAMILIES", "REFUSED_MODEL_TYPES", "AnySize", "Family",
           "HALF_MEAN", "HALF_STD", "IMAGENET_MEAN", "IMAGENET_STD", "KeyRule", "KeyRules",
           "TaskRules", "Variant", "all_backbones", "family_for", "family_named", "known_model_types", "task_rules"]
