"""task_params of an RT-DETR port whose backbone comes from an HF classification/backbone checkpoint."""

from __future__ import annotations

from typing import Any, Mapping

from scaffolder.tasks import DETECTION


def backbone_route_params(config: Mapping[str, Any], pre: Mapping[str, Any]) -> dict[str, Any]:
    """TAO's RT-DETR defaults (resnet_50 geometry, 640 px, 300 queries) with only the backbone converted."""
    return {**DETECTION.params, "convert_scope": "backbone", "eval_spatial_size": [640, 640]}
