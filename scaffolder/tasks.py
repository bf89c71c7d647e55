"""The task registry: every fact about a tao-scaffold task, declared once.

A task is what a port *does* (classification, segmentation, detection). Each :class:`TaskSpec` says which HF
models route to it, which HF auto class rebuilds them for parity, which TAO network the port reuses, where its
blueprint and verify support live, and which task-only fields its plan section (``PortPlan.task_params``) has.
The planner, ``copier.yml`` (checked by a contract test), convert and verify all ask this module; none keeps a
task list of its own. Adding a task: one entry here, one ``blueprints/<name>/`` tree, one
``scaffolder/verify/tasks/<name>.py`` TaskSupport and its catalog rules.

This module imports nothing heavy: builders and verify classes are named as ``module:attribute`` strings.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from scaffolder.errors import ScaffoldError, UnsupportedModelError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    summary: str
    # HF routing: pipeline tags and architecture-class suffixes that plan this task without --task.
    pipeline_tags: tuple[str, ...]
    architecture_suffixes: tuple[str, ...]
    # The HF auto class that rebuilds a model of this task from its config (weight mapping, parity).
    hf_auto_class: str
    # TAO's reference network the blueprint reuses, and the `tao_model` a converted checkpoint carries.
    tao_network: str
    tao_model: str
    # module:function building the TAO-side torch model for the mapping/parity: (target, num_classes, plan-like)
    tao_model_builder: str
    # module:class of the verify TaskSupport
    verify_support: str
    # Task-only plan fields (PortPlan.task_params): name -> default.
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blueprint(self) -> str:
        return f"blueprints/{self.name}"

    def accepts_architecture(self, architectures: list[str] | tuple[str, ...]) -> bool:
        return any(arch.endswith(suffix) for arch in architectures for suffix in self.architecture_suffixes)

    def params_from(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The task section with defaults filled; unknown keys refused (the plan is a reviewed file)."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ScaffoldError(f"task_params of a {self.name} port has unknown keys: {', '.join(unknown)}",
                                f"{self.name} ports take: {', '.join(self.params) or 'none'}")
        return {key: given.get(key, default) for key, default in self.params.items()}


def load_object(ref: str) -> Any:
    """``module:attribute`` -> the object (imports the module)."""
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


CLASSIFICATION = TaskSpec(
    name="classification",
    summary="image classification on a TAO backbone_v2 backbone (classification_pyt head and trainer)",
    pipeline_tags=("image-classification",),
    architecture_suffixes=("ForImageClassification", "ForImageClassificationWithTeacher"),
    hf_auto_class="AutoModelForImageClassification",
    tao_network="classification_pyt",
    tao_model="classification",
    tao_model_builder="scaffolder.convert.tao_models:build_classifier",
    verify_support="scaffolder.verify.tasks.classification:ClassificationTask",
    params={},  # the linear head consumes the backbone's pooled features (PortPlan.num_features)
)

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (CLASSIFICATION,)}
# HF pipeline tags of models that have features but no task head: any task can host their backbone.
BACKBONE_ONLY_PIPELINES = ("feature-extraction", "image-feature-extraction")


def task_names() -> list[str]:
    return list(TASKS)


def task_named(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UnsupportedModelError(f"task {name!r} has no blueprint yet",
                                    f"available: {', '.join(TASKS)}") from None


def task_for(pipeline_tag: str, architectures: list[str] | tuple[str, ...]) -> TaskSpec | None:
    """The task an HF model routes to without --task (architecture first: it is what the checkpoint holds)."""
    for spec in TASKS.values():
        if spec.accepts_architecture(architectures):
            return spec
    for spec in TASKS.values():
        if pipeline_tag in spec.pipeline_tags:
            return spec
    return None
