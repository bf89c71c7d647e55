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
    # ONNX names the TAO network's exporter writes (the deploy side binds to them)
    input_names: tuple[str, ...] = ("input",)
    output_names: tuple[str, ...] = ("output",)
    # module:function(plan) raising ScaffoldError when a plan's task facts contradict each other or the catalog
    # (a reviewed port.yml is user input); "" when the task has nothing to check.
    plan_check: str = ""
    # Weight mapping of a checkpoint whose architecture is not one of this task's (a backbone ported under the
    # task's head): True derives it from the checkpoint's own class (its real keys; the task's auto class may not
    # even cover the model type), False from the task's auto class (classification's parity relies on its head).
    mapping_from_own_architecture: bool = False
    # HF architecture suffixes whose models belong to a TAO network no blueprint covers yet: suffix -> the line
    # that says so (the planner refuses them instead of porting their backbone).
    refused_architectures: Mapping[str, str] = field(default_factory=dict)

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

DETECTION = TaskSpec(
    name="detection",
    summary="object detection on TAO's RT-DETR or Deformable DETR (its model, criterion, postprocess, COCO data "
            "module)",
    pipeline_tags=("object-detection",),
    architecture_suffixes=("ForObjectDetection",),
    hf_auto_class="AutoModelForObjectDetection",
    tao_network="rtdetr",
    tao_model="rtdetr",
    tao_model_builder="scaffolder.convert.tao_models:build_detector",
    verify_support="scaffolder.verify.tasks.detection:DetectionTask",
    # The detector's geometry (defaults: TAO's RT-DETR r50 config); the planner fills them from the HF model
    # (scaffolder/catalog/rt_detr.py, deformable_detr.py). One blueprint renders both detectors.
    params={
        "detector": "rtdetr",  # TAO network the port reuses: rtdetr | deformable_detr
        "convert_scope": "model",  # "model": full detector from HF | "backbone": HF backbone, detector fresh
        "eval_spatial_size": [640, 640],  # [h, w]; TAO precomputes anchors for it, export uses it
        "num_queries": 300,
        "num_select": 300,
        "hidden_dim": 256,
        "nheads": 8,
        "enc_layers": 1,
        "dec_layers": 6,
        "dim_feedforward": 1024,
        "expansion": 1.0,
        "feat_channels": [256, 256, 256],
        "return_interm_indices": [1, 2, 3],
        "dn_number": 100,
        "first_category_id": 0,  # COCO category_id of classmap line 0 (RT-DETR: 0; D-DETR: 1, label 0 = background)
        # Deformable DETR only (TAO's deformable_detr model section); RT-DETR ports keep these defaults
        "num_feature_levels": 3,
        "with_box_refine": False,
        "enc_n_points": 4,
        "dec_n_points": 4,
        "dropout_ratio": 0.0,
    },
    plan_check="scaffolder.convert.tao_models:check_detection_plan",
    input_names=("inputs",),  # TAO's rtdetr / deformable_detr export.py
    output_names=("pred_logits", "pred_boxes"),
)


SEGMENTATION = TaskSpec(
    name="segmentation",
    summary="semantic segmentation: a backbone_v2 backbone under TAO's SegFormer decoder (segformer trainer)",
    pipeline_tags=("image-segmentation",),
    architecture_suffixes=("ForSemanticSegmentation",),
    hf_auto_class="AutoModelForSemanticSegmentation",
    tao_network="segformer",
    # TAO's segformer loads train.pretrained_model_path with its own key matcher (segformer/utils/checkpoint.py),
    # which calls load_pretrained_weights without a ptm_adapter: a checkpoint carrying `tao_model` would crash
    # there, so converted segmentation checkpoints are a plain {"state_dict": ...}.
    tao_model="",
    tao_model_builder="scaffolder.convert.tao_models:build_segmentation",
    mapping_from_own_architecture=True,
    verify_support="scaffolder.verify.tasks.segmentation:SegmentationTask",
    params={
        "pyramid_channels": [],  # the backbone's 4 feature-map widths (strides 4/8/16/32) = decode_head.in_channels
        "feature_strides": [4, 8, 16, 32],
        "decoder_embed_dim": 256,  # decode_head.decoder_params.embed_dim (HF decoder_hidden_size)
        "decoder_source": "fresh",  # "converted": the HF checkpoint has the SegFormer decoder; "fresh": TAO init
        "palette": [],  # [{label_id, rgb, seg_class, mapping_class}], one per class (dataset.segment.palette)
        "label_transform": "None",  # TAO's non-optional string: "norm" divides masks by 255, "None" does not
    },
    plan_check="scaffolder.convert.tao_models:check_segmentation_plan",
    refused_architectures={
        "ForUniversalSegmentation": "is an instance/panoptic segmentation model; TAO runs those as its "
        "mask2former / oneformer networks, which no tao-scaffold blueprint covers yet",
        "ForInstanceSegmentation": "is an instance segmentation model; TAO runs those as its mask2former / "
        "oneformer networks, which no tao-scaffold blueprint covers yet",
    },
)

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (CLASSIFICATION, DETECTION, SEGMENTATION)}
# HF pipeline tags of models that have features but no task head: any task can host their backbone.
BACKBONE_ONLY_PIPELINES = ("feature-extraction", "image-feature-extraction")


def hf_auto_class_for(spec: TaskSpec, task_params: Mapping[str, Any] | None, architectures) -> str:
    """The transformers auto class that rebuilds the HF model a port converts from: the task's own, or -- for a
    port that converts only a backbone (``task_params.convert_scope: backbone``) -- the checkpoint's classifier
    or base model."""
    if (task_params or {}).get("convert_scope") != "backbone":
        return spec.hf_auto_class
    if any(str(a).endswith("ForImageClassification") for a in architectures or ()):
        return "AutoModelForImageClassification"
    return "AutoModel"


# The `tao_model` a converted checkpoint carries per detector: TAO's deformable_detr train reads a plain
# {"state_dict"} (its loader has no tao_model adapter).
DETECTOR_TAO_MODELS = {"rtdetr": "rtdetr", "deformable_detr": ""}


def tao_model_for(spec: TaskSpec, task_params: Mapping[str, Any] | None) -> str:
    """The ``tao_model`` a converted checkpoint of this port carries (TaskSpec.tao_model, per detector)."""
    if spec.name == DETECTION.name:
        return DETECTOR_TAO_MODELS.get((task_params or {}).get("detector", "rtdetr"), spec.tao_model)
    return spec.tao_model


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


def refusal_for(architectures: list[str] | tuple[str, ...]) -> str | None:
    """Why no task can port a model of these architectures (e.g. Mask2Former), or None."""
    for spec in TASKS.values():
        for arch in architectures:
            for suffix, why in spec.refused_architectures.items():
                if arch.endswith(suffix):
                    return f"{arch} {why}"
    return None
