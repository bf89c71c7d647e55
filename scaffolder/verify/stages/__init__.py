"""Verify's stages, in the order of the porting workflow (``STAGES``)."""

from __future__ import annotations

from scaffolder.verify.stages.base import Stage, StageFailed, StageRun, StageSkipped
from scaffolder.verify.stages.checks import ConsistencyStage, ImportsStage, L0Stage
from scaffolder.verify.stages.pytorch import DeployPreprocessStage, ExportStage, TrainStage
from scaffolder.verify.stages.static import StaticStage
from scaffolder.verify.stages.weights import HfParityStage
from scaffolder.verify.stages.trt import GenTrtEngineStage, TrtEvaluateStage, TrtInferenceStage, TrtParityStage

STAGES: tuple[type[Stage], ...] = (
    StaticStage,
    ConsistencyStage,
    ImportsStage,
    L0Stage,
    TrainStage,
    ExportStage,
    DeployPreprocessStage,
    HfParityStage,
    GenTrtEngineStage,
    TrtInferenceStage,
    TrtEvaluateStage,
    TrtParityStage,
)
STAGE_NAMES = tuple(s.name for s in STAGES)
TRT_STAGES = ("gen_trt_engine", "trt_inference", "trt_evaluate", "trt_parity")
ALIASES = {"trt": TRT_STAGES, "all": STAGE_NAMES}

__all__ = ["ALIASES", "STAGES", "STAGE_NAMES", "TRT_STAGES", "Stage", "StageFailed", "StageRun", "StageSkipped"]
