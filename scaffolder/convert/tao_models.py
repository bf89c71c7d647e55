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


def _msda_without_cuda_ops():
    """TAO's MSDeformAttn loads its CUDA .so in __init__ (unloadable without CUDA / on Python != 3.12); for shapes
    and CPU parity tao-scaffold builds it without (TAO's pure-PyTorch grid_sample path then runs)."""
    import nvidia_tao_pytorch.cv.deformable_detr.model.ops.functions as functions

    original = functions.load_ops

    def load_ops(ops_dir, lib_name):
        try:
            original(ops_dir, lib_name)
        except OSError:
            pass

    functions.load_ops = load_ops


def rtdetr_backbone_registry():
    """TAO's RT-DETR backbone registry with tao-scaffold's generated ResNet-vd variants registered."""
    from nvidia_tao_pytorch.cv.rtdetr.model.backbone.registry import RTDETR_BACKBONE_REGISTRY

    from scaffolder.convert.resnet_vd import RESNET_VD, register_resnet_vd

    for depth in RESNET_VD:
        register_resnet_vd(RTDETR_BACKBONE_REGISTRY, f"resnet_{depth}vd", depth)
    return RTDETR_BACKBONE_REGISTRY


def build_detector(target: str, num_classes: int, task_params: Mapping[str, Any] | None = None):
    """TAO's RT-DETR model (``RTDETRModel``) with the port's geometry, or only its backbone when the port converts
    the backbone alone (``convert_scope: backbone``); ``deformable_detr`` builds TAO's ``DDModel``."""
    from scaffolder.tasks import DETECTION

    params = DETECTION.params_from(task_params)
    _msda_without_cuda_ops()
    if params["detector"] == "deformable_detr":
        from nvidia_tao_pytorch.cv.deformable_detr.model.build_nn_model import DDModel

        return DDModel(num_classes=num_classes, backbone=target, num_queries=params["num_queries"],
                       hidden_dim=params["hidden_dim"], nheads=params["nheads"], enc_layers=params["enc_layers"],
                       dec_layers=params["dec_layers"], dim_feedforward=params["dim_feedforward"],
                       activation_checkpoint=False, export=True, dropout_ratio=0.0)
    registry = rtdetr_backbone_registry()
    if params["convert_scope"] == "backbone":
        return registry.get(target)(params["return_interm_indices"])
    from nvidia_tao_pytorch.cv.rtdetr.model.build_nn_model import RTDETRModel

    return RTDETRModel(
        backbone_name=target, num_classes=num_classes, out_indices=params["return_interm_indices"],
        hidden_dim=params["hidden_dim"], nhead=params["nheads"], num_encoder_layers=params["enc_layers"],
        dim_feedforward=params["dim_feedforward"], expansion=params["expansion"],
        eval_spatial_size=params["eval_spatial_size"], feat_channels=params["feat_channels"],
        num_queries=params["num_queries"], num_decoder_layers=params["dec_layers"],
        num_denoising=params["dn_number"],
    )
