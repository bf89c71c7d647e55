"""The port plan: every decision tao-scaffold makes about a port, in one reviewable object.

``PortPlan`` is the pipeline's single data object (inspect -> plan -> render -> patch -> format -> verify).
Serialised as ``port.yml`` it is also a valid Copier data file: each field is a question in ``copier.yml``,
so ``copier copy <tao-scaffold> <workspace> --data-file port.yml`` renders exactly what ``generate`` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaffolder import __version__
from scaffolder.errors import ScaffoldError, WorkspaceError
from scaffolder.layout import answers_relpath
from scaffolder.naming import pascal_case, validate_name
from scaffolder.tasks import TASKS, task_named
# Plan fields renamed by later tool versions: old name -> new name (answers files of older ports still load).
_RENAMED = {"head_in_channels": "num_features"}
PLAN_HEADER = (
    "# tao-scaffold port plan. Review and edit, then:\n"
    "#   tao-scaffold generate --plan port.yml --workspace DIR\n"
    "# or, with plain Copier:  copier copy <tao-scaffold checkout> DIR --data-file port.yml\n"
)


@dataclass
class PortPlan:
    # identity
    name: str
    task: str
    class_name: str = ""
    # source model
    model: str = ""  # hub id or local folder, as given
    model_type: str = ""
    architectures: list[str] = field(default_factory=list)
    pipeline_tag: str = ""
    # architecture decision (from the catalog)
    family: str = ""
    backbone: str = ""
    backbone_strategy: str = "reuse"  # reuse | timm_subclass | hf_wrapper
    strategy_reason: str = ""
    timm_name: str = ""
    num_features: int = 0  # the backbone's pooled feature width (a classifier head's in_channels)
    # input and preprocessing (training spec and deploy specs share these)
    img_size: int = 224
    in_channels: int = 3
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    # labels
    num_classes: int = 2
    class_names: list[str] = field(default_factory=list)
    # the task's own section (scaffolder.tasks.TaskSpec.params): keys and defaults declared by the task
    task_params: dict[str, Any] = field(default_factory=dict)
    # export contract
    input_names: list[str] = field(default_factory=lambda: ["input"])
    output_names: list[str] = field(default_factory=lambda: ["output"])
    opset_version: int = 17
    export_notes: list[str] = field(default_factory=list)
    # HF -> TAO weights (scaffolder.convert.port_mapping): the mapping table as Python source, HF's norm eps
    # per TAO module where TAO's default differs, and what the derivation noted (e.g. head not converted)
    weight_mapping: str = ""
    norm_eps: dict[str, float] = field(default_factory=dict)
    mapping_notes: list[str] = field(default_factory=list)
    hf_adaptations: list[str] = field(default_factory=list)  # catalog Family.hf_adaptations
    # workspace layout: "vendored" (7.x: config copies in tao-pytorch/tao-deploy) or "core" (6.x)
    config_layout: str = "vendored"
    tao_version: str = "7.3.0"
    tool_version: str = __version__

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.task not in TASKS:
            raise ScaffoldError(f"task {self.task!r} has no blueprint", f"choose one of: {', '.join(TASKS)}")
        self.task_params = task_named(self.task).params_from(self.task_params)
        self.class_name = self.class_name or pascal_case(self.name)

    # -- Copier data ---------------------------------------------------------------------------------
    def answers(self) -> dict[str, Any]:
        """The plan as Copier answers (plain, YAML-safe types only)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return PLAN_HEADER + yaml.safe_dump(self.answers(), sort_keys=False, allow_unicode=True, width=100)

    def write(self, path: Path) -> None:
        path.write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_answers(cls, data: dict[str, Any]) -> "PortPlan":
        """A plan from port.yml / answers data; fields renamed since an older tool version are migrated."""
        data = {_RENAMED.get(k, k): v for k, v in data.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(k for k in data if not k.startswith("_")) - known)
        if unknown:
            raise ScaffoldError(f"port plan has unknown keys: {', '.join(unknown)}", "remove them or regenerate the plan")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> "PortPlan":
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ScaffoldError(f"cannot read port plan {path}: {exc}".splitlines()[0]) from exc
        if not isinstance(data, dict):
            raise ScaffoldError(f"port plan {path} is not a YAML mapping")
        return cls.from_answers(data)


def read_answers(workspace_root: Path, name: str) -> dict[str, Any]:
    """The answers file ``generate`` wrote for port ``name`` (raw, ``_commit`` etc. included)."""
    path = workspace_root / answers_relpath(name)
    if not path.is_file():
        raise WorkspaceError(f"no tao-scaffold port named {name!r} in {workspace_root} ({path.name} not found)",
                             "generate it first: tao-scaffold generate --name ...")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WorkspaceError(f"cannot read {answers_relpath(name)}: {exc}".splitlines()[0],
                             "restore it from git, or regenerate the port") from exc
    if not isinstance(data, dict):
        raise WorkspaceError(f"{answers_relpath(name)} is not a YAML mapping", "restore it from git")
    return data
