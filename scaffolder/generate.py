"""The generate pipeline: inspect -> plan -> render -> patch -> format -> commit, all staged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scaffolder.errors import NameError_
from scaffolder.patches import add_console_script
from scaffolder.plan import PortPlan
from scaffolder.render import answers_relpath, format_python, render
from scaffolder.staging import FileChange, Staging
from scaffolder.workspace import Workspace

REPOS = ("tao-core", "tao-pytorch", "tao-deploy")
# (repo, python package) whose setup.py gets a console script for the port.
ENTRYPOINT_REPOS = (("tao-pytorch", "nvidia_tao_pytorch"), ("tao-deploy", "nvidia_tao_deploy"))


@dataclass
class GenerateResult:
    plan: PortPlan
    changes: list[FileChange]
    registry_edits: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def written(self) -> list[FileChange]:
        return [c for c in self.changes if c.status != "unchanged"]


def console_script(repo_package: str, name: str) -> str:
    return f"{repo_package}.cv.{name}.entrypoint.{name}:main"


def check_name_free(workspace: Workspace, name: str) -> None:
    """Refuse a name TAO already uses, unless it is this tool's own earlier port of that name."""
    if (workspace.root / answers_relpath(name)).is_file():
        return  # regenerating our own port
    taken = workspace.existing_networks()
    if name in taken:
        raise NameError_(f"{name!r} is already a TAO network ({taken[name]})", "choose another --name")


def generate(plan: PortPlan, workspace_dir: Path, *, dry_run: bool = False, allow_dirty: bool = False,
             template: Path | None = None, progress: Callable[[str], None] = lambda _msg: None) -> GenerateResult:
    workspace = Workspace.open(workspace_dir)
    plan.config_layout = workspace.config_layout
    check_name_free(workspace, plan.name)
    if not allow_dirty:
        workspace.ensure_clean(REPOS)

    with Staging(workspace.root) as staging:
        progress(f"render: {plan.task} blueprint for {plan.name}")
        render(plan, staging.tree, template=template)

        progress("patch: console_scripts in tao-pytorch/setup.py and tao-deploy/setup.py")
        edits, patched = [], set()
        for repo, package in ENTRYPOINT_REPOS:
            rel = f"{repo}/setup.py"
            source = (workspace.root / rel).read_text(encoding="utf-8")
            entry = f"{plan.name}={console_script(package, plan.name)}"
            updated = add_console_script(source, plan.name, console_script(package, plan.name), filename=rel)
            if updated != source:
                edits.append(f"{rel}: console_scripts += {entry}")
            (staging.tree / rel).write_text(updated, encoding="utf-8")
            patched.add(rel)

        progress("format: black")
        format_python(staging.tree, skip=patched)
        changes = staging.changes()
        result = GenerateResult(plan, changes, edits, dry_run)
        if dry_run:
            return result
        staging.check_writable(changes)
        progress(f"write: {len(result.written)} files changed, {len(changes) - len(result.written)} unchanged")
        staging.commit(changes)
        return result
