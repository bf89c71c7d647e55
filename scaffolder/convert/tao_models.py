"""The TAO-side torch model of each task, as the weight mapping and parity see it.

``scaffolder.tasks.TaskSpec.tao_model_builder`` names one of these per task: ``(target, num_classes,
task_params) -> nn.Module``, where ``target`` is a TAO registry name or ``timm:<name>`` (a generated backbone).
The module's ``state_dict()`` keys are the keys the port's converter must produce.
"""

from __future__ import annotations

from typing import Any, Mapping


def build_classifier(target: str, num_classes: int, task_params: Mapping[str, Any] | None = None):
    """classification_pyt's model is the backbone_v2 backbone with its own linear head."""
    from scaffolder.convert.parity import build_tao_model

    return build_tao_model(target, num_classes)
