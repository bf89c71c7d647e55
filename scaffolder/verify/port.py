"""A generated port as verify sees it: where its files are, what its plan said, which modules it has.

``load_port(workspace, name)`` finds the port by its answers file
(``tao-pytorch/nvidia_tao_pytorch/<domain>/NAME/.tao-scaffold-answers.yml``, written by ``generate``) and
raises :class:`ScaffoldError` with the ports that do exist when the name is unknown. Nothing is imported
from TAO; every path is derived from the workspace layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaffolder.errors import ScaffoldError
from scaffolder.layout import ANSWERS_FILE, BACKBONE_V2_INIT, GENERATED_MARK, backbone_module_relpath  # ANSWERS_FILE: re-exported for verify
from scaffolder.naming import pascal_case
from scaffolder.workspace import DEPLOY_DOMAINS, PACKAGES, PYTORCH_DOMAINS, REPO_NAMES, Workspace
DEPLOY_SUBTASKS = ("gen_trt_engine", "inference", "evaluate")


@dataclass
class Port:
    workspace: Workspace
    name: str
    answers: dict[str, Any]
    pytorch_dir: Path  # tao-pytorch/nvidia_tao_pytorch/<domain>/NAME
    deploy_dir: Path | None  # tao-deploy/nvidia_tao_deploy/<domain>/NAME
    config_dirs: dict[str, Path] = field(default_factory=dict)  # repo -> <pkg>/config/NAME (present ones)

    # -- plan facts ----------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return str(self.answers.get("task") or "")

    @property
    def class_name(self) -> str:
        return str(self.answers.get("class_name") or pascal_case(self.name))

    @property
    def root(self) -> Path:
        return self.workspace.root

    def repo(self, name: str) -> Path:
        return self.workspace.repo(name)

    # -- files ---------------------------------------------------------------------------------------
    @property
    def answers_file(self) -> Path:
        return self.pytorch_dir / ANSWERS_FILE

    @property
    def train_spec(self) -> Path:
        return self.pytorch_dir / "experiment_specs" / "experiment_spec.yaml"

    def deploy_spec(self, subtask: str) -> Path | None:
        if self.deploy_dir is None:
            return None
        return self.deploy_dir / "specs" / f"{subtask}.yaml"

    @property
    def deploy_specs(self) -> dict[str, Path]:
        out = {}
        for subtask in DEPLOY_SUBTASKS:
            path = self.deploy_spec(subtask)
            if path is not None and path.is_file():
                out[subtask] = path
        return out

    @property
    def pytorch_tests(self) -> Path:
        return self.repo("tao-pytorch") / "tests" / "cv_unit_test" / self.name

    @property
    def deploy_tests(self) -> Path:
        return self.repo("tao-deploy") / "tests" / self.name

    def generated_dirs(self) -> list[Path]:
        """Every folder the port generated (packages and L0 tests), existing ones only."""
        dirs = [*self.config_dirs.values(), self.pytorch_dir]
        if self.deploy_dir is not None:
            dirs.append(self.deploy_dir)
        dirs += [self.pytorch_tests, self.deploy_tests]
        return [d for d in dirs if d.is_dir()]

    def package_dirs(self) -> list[Path]:
        """Generated folders that are Python packages (not the L0 test folders)."""
        dirs = [*self.config_dirs.values(), self.pytorch_dir]
        if self.deploy_dir is not None:
            dirs.append(self.deploy_dir)
        return [d for d in dirs if d.is_dir()]

    @property
    def backbone_files(self) -> list[Path]:
        """The generated backbone_v2 module (one of ours: it carries the generated mark) and the backbone_v2
        ``__init__.py`` generate patched to register it; [] when the port reuses a TAO backbone."""
        module = self.root / backbone_module_relpath(str(self.answers.get("backbone") or "_"))
        try:
            ours = module.is_file() and GENERATED_MARK in module.read_text(encoding="utf-8", errors="replace")[:600]
        except OSError:
            ours = False
        return [module, self.root / BACKBONE_V2_INIT] if ours else []

    @property
    def patched_files(self) -> list[Path]:
        """TAO's files among :meth:`python_files`: generate patched them, it did not write them."""
        return [p for p in self.backbone_files if p.name == "__init__.py"]

    def python_files(self, dirs: list[Path] | None = None) -> list[Path]:
        files: list[Path] = []
        for folder in dirs if dirs is not None else self.generated_dirs():
            files += sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
        return files + (self.backbone_files if dirs is None else [])

    def modules(self, repo: str) -> list[str]:
        """Dotted names of the generated modules of one repository (packages included; for tao-pytorch also a
        generated backbone and the backbone_v2 package that registers it)."""
        repo_root = self.repo(repo)
        paths = []
        for folder in self.package_dirs():
            if repo_root in folder.parents:
                paths += sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
        paths += [p for p in self.backbone_files if repo_root in p.parents]
        names = []
        for path in paths:
            parts = list(path.relative_to(repo_root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join(parts))
        return names

    def rel(self, path: Path | str) -> str:
        """``path`` relative to the workspace root when it is inside it (for messages)."""
        path = Path(path)
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # -- names of generated Python objects ---------------------------------------------------------
    @property
    def pytorch_package(self) -> str:
        return ".".join(self.pytorch_dir.relative_to(self.repo("tao-pytorch")).parts)

    @property
    def deploy_package(self) -> str | None:
        if self.deploy_dir is None:
            return None
        return ".".join(self.deploy_dir.relative_to(self.repo("tao-deploy")).parts)


def find_ports(workspace: Workspace) -> dict[str, Path]:
    """Ports generated into ``workspace``: name -> answers file."""
    found = {}
    package = workspace.package("tao-pytorch")
    for domain in PYTORCH_DOMAINS:
        for answers in sorted((package / domain).glob(f"*/{ANSWERS_FILE}")):
            found[answers.parent.name] = answers
    return found


def load_port(workspace_dir: Path | str, name: str) -> Port:
    """The port ``name`` of the workspace; :class:`ScaffoldError` when either does not exist."""
    workspace = Workspace.open(workspace_dir)
    ports = find_ports(workspace)
    if name not in ports:
        known = ", ".join(sorted(ports)) or "none"
        raise ScaffoldError(
            f"no port named {name!r} in {workspace.root} (generated ports: {known})",
            f"generate it first: tao-scaffold generate --model MODEL --name {name} --workspace {workspace.root}",
        )
    answers_file = ports[name]
    try:
        answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ScaffoldError(f"cannot read {answers_file}: {exc}".splitlines()[0], "restore it from git") from None
    if not isinstance(answers, dict):
        raise ScaffoldError(f"{answers_file} is not a mapping", "restore it from git")
    deploy_dir = None
    deploy_pkg = workspace.package("tao-deploy")
    for domain in DEPLOY_DOMAINS:
        if (deploy_pkg / domain / name).is_dir():
            deploy_dir = deploy_pkg / domain / name
            break
    config_dirs = {}
    for repo in REPO_NAMES:
        folder = workspace.root / repo / PACKAGES[repo] / "config" / name
        if folder.is_dir():
            config_dirs[repo] = folder
    return Port(
        workspace=workspace,
        name=name,
        answers=answers,
        pytorch_dir=answers_file.parent,
        deploy_dir=deploy_dir,
        config_dirs=config_dirs,
    )
