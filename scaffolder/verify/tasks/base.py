"""The per-task part of verify: what differs between classification, detection and segmentation.

Everything else (runners, stage order, static checks, imports, L0, the TAO commands, ONNX parity, TRT
checks, the report) is task-independent and lives in ``scaffolder.verify.stages``. A task blueprint adds
one :class:`TaskSupport` subclass and registers it in ``scaffolder.verify.tasks.TASKS``; it provides:

* the data: :meth:`synthetic_dataset` (a tiny dataset in the task's own on-disk format) and
  :meth:`user_dataset` (a bounded view of ``--data``), both returning a :class:`Dataset`;
* the hydra overrides that point TAO's commands at that data (:meth:`pytorch_overrides`,
  :meth:`deploy_overrides`);
* the spec keys the cross-phase rules compare (:attr:`mean_key`, :attr:`std_key`, :attr:`img_size_key`, ...)
  plus any extra task rules (:meth:`extra_consistency`);
* the deploy-preprocess probe (a script in ``scaffolder/verify/probes``) and its arguments;
* the checks on TensorRT inference/evaluation outputs (:meth:`check_inference_outputs`,
  :meth:`check_evaluate_outputs`);
* the Python objects verify loads (Lightning module, data module, deploy loader, TRT inferencer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from scaffolder.layout import PACKAGES

if TYPE_CHECKING:  # pragma: no cover
    from scaffolder.verify.consistency_rules import Violation
    from scaffolder.verify.port import Port

PathMapper = Callable[[Path], str]  # host path -> path as the runner's commands see it
_PLAIN = re.compile(r"[A-Za-z0-9_./+@:-]+")


def hydra_value(value: str) -> str:
    """A value for a hydra ``key=value`` override: quoted when it holds anything but path characters."""
    value = str(value)
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Dataset:
    root: Path
    splits: dict[str, Path]  # train / val / test folders in the task's format
    num_classes: int
    verify_images: Path  # folder of images the preprocessing / parity checks use
    synthetic: bool
    description: str
    counts: dict[str, int] = field(default_factory=dict)


class TaskSupport:
    """Base class: a task declares its spec keys and implements the data/commands/objects hooks.

    Every spec key defaults to None: the cross-phase rule that reads it is skipped for a task that does not
    set it (RT-DETR specs have no mean/std, say), so no task inherits another task's layout.
    """

    name = "base"
    # Spec keys compared across phases (training spec vs deploy specs vs schema defaults vs plan).
    mean_key: str | None = None
    std_key: str | None = None
    img_size_key: str | None = None
    num_classes_key: str | None = None
    backbone_key: str | None = None
    # Set by tasks whose head consumes the backbone's pooled features: its width == model_params_mapping.
    head_in_channels_key: str | None = None
    # Names of the schema constants in the generated default_config.py that hold the defaults.
    mean_constant = "IMAGE_MEAN"
    std_constant = "IMAGE_STD"
    # deploy-preprocess: the adapter module of probes/preprocess_parity.py (probes/preprocess_<task>.py) and
    # the task-specific metrics it reports (lifted into the stage's metrics)
    preprocess_adapter: str | None = None
    preprocess_metrics: tuple[str, ...] = ()
    # hf_parity: the probe (probes/<file>) comparing the HF model with the converted TAO model, and the metrics
    # of its result the stage reports
    hf_parity_probe = "hf_parity.py"
    hf_parity_metrics: tuple[str, ...] = ("max_abs_features", "max_abs_logits", "logits", "mapped_tensors",
                                          "norm_eps_overrides", "features_shape")
    # Hydra overrides every CPU run of the task's PyTorch commands needs (keys its schema must have)
    cpu_overrides: tuple[str, ...] = ()
    # export: why the task's export runs on CPU on every device (``export.on_cpu=True``), or None. Set where the
    # GPU export writes a graph ONNX Runtime cannot run (so export's ONNX Runtime parity gate could not check it).
    export_on_cpu: str | None = None

    def for_port(self, port: Port) -> TaskSupport:
        """The support for this port: itself, or a variant for the TAO network the port's plan chose (detection
        renders RT-DETR or Deformable DETR from one blueprint)."""
        return self

    # -- data --------------------------------------------------------------------------------------
    def synthetic_dataset(self, port: Port, dest: Path, img_size: int) -> Dataset:
        raise NotImplementedError

    def user_dataset(self, port: Port, data: Path, dest: Path) -> Dataset:
        raise NotImplementedError

    # -- commands ----------------------------------------------------------------------------------
    def pytorch_overrides(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        raise NotImplementedError

    def deploy_overrides(self, port: Port, data: Dataset, target: PathMapper, subtask: str) -> list[str]:
        raise NotImplementedError

    # -- Python objects (module:attribute) ------------------------------------------------------------
    # Every blueprint names these the same way (model/NAME_pl_model.py, dataloader/NAME_data_module.py, the
    # deploy dataloader.py), so the defaults serve all tasks.
    def lightning_module(self, port: Port) -> str:
        return f"{port.pytorch_package}.model.{port.name}_pl_model:{port.class_name}PlModel"

    def data_module(self, port: Port) -> str:
        return f"{port.pytorch_package}.dataloader.{port.name}_data_module:{port.class_name}DataModule"

    def deploy_loader(self, port: Port) -> str:
        return f"{port.deploy_package}.dataloader:{port.class_name}Loader"

    def trt_inferencer(self, port: Port) -> str:
        raise NotImplementedError

    def config_class(self, port: Port, repo: str) -> str:
        return f"{PACKAGES[repo]}.config.{port.name}.default_config:ExperimentConfig"

    # -- checks --------------------------------------------------------------------------------------
    def extra_consistency(self, port: Port, train: dict[str, Any], deploy: dict[str, dict[str, Any]]) -> list[Violation]:
        return []

    def preprocess_args(self, port: Port, data: Dataset, target: PathMapper) -> list[str]:
        return []

    def parity_top1(self) -> bool:
        """Whether argmax over the first output's last axis is a meaningful prediction (classification)."""
        return False

    def export_parity_args(self, port: Port) -> list[str]:
        """Extra arguments of probes/export_parity.py for this port (e.g. a detection top-k gate)."""
        return []

    def check_inference_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        """(problems, metrics, artifacts) for the output of the TensorRT `inference` command."""
        return [], {}, {}

    def check_evaluate_outputs(self, results_dir: Path, data: Dataset) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        """(problems, metrics, artifacts) for the output of the TensorRT `evaluate` command."""
        return [], {}, {}
