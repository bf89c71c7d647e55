"""Detection task_params helpers: the processor size, and the plan of an RT-DETR port whose backbone comes from an
HF classification/backbone checkpoint."""

from __future__ import annotations

from typing import Any, Mapping

from scaffolder.tasks import DETECTION


def backbone_route_params(config: Mapping[str, Any], pre: Mapping[str, Any]) -> dict[str, Any]:
    """TAO's RT-DETR defaults (resnet_50 geometry, 640 px, 300 queries) with only the backbone converted."""
    return {**DETECTION.params, "convert_scope": "backbone", "eval_spatial_size": [640, 640]}


def processor_size(pre: Mapping[str, Any], fallback: int) -> list[int]:
    """[h, w] a detector port evaluates and exports at: the processor's size (a square of its shortest edge)."""
    size = pre.get("size") or {}
    if isinstance(size, Mapping) and size.get("height") and size.get("width"):
        return [int(size["height"]), int(size["width"])]
    if isinstance(size, Mapping) and size.get("shortest_edge"):
        return [int(size["shortest_edge"])] * 2
    if isinstance(size, int):
        return [size, size]
    return [fallback, fallback]
