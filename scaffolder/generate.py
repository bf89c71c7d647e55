"""The generate pipeline: inspect -> plan -> render -> patch -> format -> commit, all staged."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scaffolder.errors import NameError_, ScaffoldError, WorkspaceError
from scaffolder.layout import (
    BACKBONE_V2,
    BACKBONE_V2_INIT,
    BACKBONE_V2_PACKAGE,
    ENTRYPOINT_REPOS,
    GENERATED_MARK,
    REPOS,
    answers_relpath,
    backbone_module_relpath,
    console_entry,
    console_target,
)
from scaffolder.lock import workspace_lock
from scaffolder.patches import add_console_script, register_backbone_module
from scaffolder.patches.command_docs import stage_command_docs
from scaffolder.plan import PortPlan
from scaffolder.planner import BACKBONE_V2_STRATEGIES
from scaffolder.render import format_python, render
from scaffolder.staging import FileChange, Staging
from scaffolder.workspace import Workspace


@dataclass
class GenerateResult:
    plan: PortPlan
    changes: list[FileChange]
    registry_edits: list[str] = field(default_factory=list)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def written(self) -> list[FileChange]:
        return [c for c in self.changes if c.status != "unchanged"]


def check_name_free(workspace: Workspace, name: str) -> None:
    """Refuse a name TAO already uses, unless it is this tool's own earlier port of that name."""
    if (workspace.root / answers_relpath(name)).is_file():
        return  # regenerating our own port
    taken = workspace.existing_networks()
    if name in taken:
        raise NameError_(f"{name!r} is already a TAO network ({taken[name]})", "choose another --name")


def register_generated_backbone(plan: PortPlan, workspace: Workspace, tree: Path) -> tuple[str, str | None]:
    """Import the generated backbone module in backbone_v2/__init__.py (staged in ``tree``); idempotent.

    Refuses a name that is not a plain module identifier, that would overwrite a TAO file, or that TAO's
    registry already holds (fvcore raises on a duplicate registration when backbone_v2 is imported).
    Returns (the patched file's path, the edit made or None when it was already registered).
    """
    name = plan.backbone
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise NameError_(f"generated backbone name {name!r} is not a lowercase Python identifier",
                         "use a snake_case backbone name in the plan")
    module_rel = backbone_module_relpath(name)
    if not (tree / module_rel).is_file():
        raise ScaffoldError(f"the blueprint rendered no {module_rel} for backbone_strategy {plan.backbone_strategy!r}",
                            "check the plan's backbone, backbone_strategy and timm_name")
    backbone_dir = workspace.root / BACKBONE_V2
    existing = workspace.root / module_rel
    if (backbone_dir / name).exists() or (
        existing.is_file() and GENERATED_MARK not in existing.read_text(encoding="utf-8", errors="replace")[:400]
    ):
        raise NameError_(f"backbone name {name!r} would overwrite TAO's {BACKBONE_V2}/{name}",
                         "pick another backbone name in the plan")
    taken = {n: where for n, where in workspace.backbones().items() if not where.startswith(f"{name}.py:")}
    if name in taken:
        raise NameError_(f"TAO already registers a backbone named {name!r} (backbone_v2/{taken[name]})",
                         "use strategy reuse for it, or pick another backbone name")
    init_rel = BACKBONE_V2_INIT
    source = read_workspace_source(workspace, init_rel)
    updated = register_backbone_module(source, name, [name], filename=init_rel)
    (tree / init_rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / init_rel).write_text(updated, encoding="utf-8")
    edit = None
    if updated != source:
        edit = f"{init_rel}: from {BACKBONE_V2_PACKAGE}.{name} import {name}; __all__ += {name}"
    return init_rel, edit


def read_workspace_source(workspace: Workspace, rel: str) -> str:
    """A TAO file the port patches, as text; one line when it is missing or not UTF-8."""
    try:
        return (workspace.root / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkspaceError(f"cannot read {rel}: {why}", f"restore it: git -C {workspace.root / rel.split('/')[0]} "
                             f"checkout -- {rel.split('/', 1)[1]}") from exc


def patch_registries(plan: PortPlan, workspace: Workspace, tree: Path,
                     progress: Callable[[str], None] = lambda _msg: None) -> tuple[list[str], set[str]]:
    """Stage the port's registrations (console_scripts in both setup.py files; a generated backbone in
    backbone_v2/__init__.py) into ``tree``. Idempotent: generate and update both call it.

    Returns (the edits made, the patched files -- not ours to format).
    """
    edits, patched = [], set()
    progress(f"patch: console_scripts in {' and '.join(f'{r}/setup.py' for r in ENTRYPOINT_REPOS)}")
    for repo in ENTRYPOINT_REPOS:
        rel = f"{repo}/setup.py"
        source = read_workspace_source(workspace, rel)
        updated = add_console_script(source, plan.name, console_target(repo, plan.name), filename=rel)
        if updated != source:
            edits.append(f"{rel}: console_scripts += {console_entry(repo, plan.name)}")
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(updated, encoding="utf-8")
        patched.add(rel)
    if plan.backbone_strategy in BACKBONE_V2_STRATEGIES:
        progress(f"patch: register backbone {plan.backbone} in {BACKBONE_V2_INIT}")
        rel, edit = register_generated_backbone(plan, workspace, tree)
        edits += [edit] if edit else []
        patched.add(rel)
    return edits, patched


def check_no_collisions(plan: PortPlan, workspace: Workspace, changes: list[FileChange], patched: set[str]) -> None:
    """A new port creates files; it never overwrites one it did not write (tests/ and docs included).

    Regenerating a port (its answers file exists) rewrites its own files; the patched registries are edits.
    """
    if (workspace.root / answers_relpath(plan.name)).is_file():
        return
    taken = [c.relpath for c in changes if c.status != "new" and c.relpath not in patched]
    if taken:
        shown = ", ".join(taken[:3]) + (f" (+{len(taken) - 3} more)" if len(taken) > 3 else "")
        raise NameError_(f"port {plan.name!r} would overwrite files tao-scaffold did not write: {shown}",
                         "choose another --name, or move those files away")


def check_layout(plan: PortPlan, workspace: Workspace) -> None:
    """The plan must have been made for this workspace's config layout (its imports depend on it)."""
    if plan.config_layout != workspace.config_layout:
        raise WorkspaceError(
            f"the plan is for a {plan.config_layout!r} config layout but {workspace.root} has {workspace.config_layout!r}",
            f"re-plan with `tao-scaffold inspect ... --workspace {workspace.root}`, or set "
            f"config_layout: {workspace.config_layout} in port.yml",
        )


def generate(plan: PortPlan, workspace_dir: Path, *, dry_run: bool = False, allow_dirty: bool = False,
             template: Path | None = None, model_folder: Path | None = None,
             progress: Callable[[str], None] = lambda _msg: None) -> GenerateResult:
    """``model_folder``: the local folder the plan's model came from (recorded for verify outside the repos)."""
    workspace = Workspace.open(workspace_dir)
    with workspace_lock(workspace.root, progress):  # from the first read of the workspace to the last write
        result = _generate_locked(plan, workspace, dry_run=dry_run, allow_dirty=allow_dirty, template=template,
                                  progress=progress)
        if model_folder is not None and not dry_run:
            workspace.record_model_folder(plan.name, model_folder)
        return result


def _generate_locked(plan: PortPlan, workspace: Workspace, *, dry_run: bool, allow_dirty: bool,
                     template: Path | None, progress: Callable[[str], None]) -> GenerateResult:
    check_layout(plan, workspace)
    check_name_free(workspace, plan.name)
    if not allow_dirty:
        workspace.ensure_clean(REPOS)

    with Staging(workspace.root) as staging:
        progress(f"render: {plan.task} blueprint for {plan.name}")
        render(plan, staging.tree, template=template)

        edits, patched = patch_registries(plan, workspace, staging.tree, progress)

        progress("format: black")
        format_python(staging.tree, skip=patched)
        doc_edits, doc_files, warnings = stage_command_docs(plan.name, workspace.root, staging.tree, progress)
        changes = staging.changes()
        check_no_collisions(plan, workspace, changes, patched | doc_files)
        result = GenerateResult(plan, changes, edits + doc_edits, dry_run, warnings)
        if dry_run:
            return result
        staging.check_writable(changes)
        progress(f"write: {len(result.written)} files changed, {len(changes) - len(result.written)} unchanged")
        staging.commit(changes)
        return result
