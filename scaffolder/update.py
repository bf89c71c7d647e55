"""`tao-scaffold update`: regenerate a port after the blueprints changed, keeping the user's edits.

Copier's update algorithm -- render the port as the blueprint version it was made with, render it as the
current version, and carry that difference onto the files as they are now with a three-way merge -- applied
file by file across the three TAO repos (the workspace itself is not a git repo, so Copier's own
`run_update`, which needs the destination to be one, cannot run there). Both renders get the same black
pass as `generate`, so the merge sees only real changes, never formatting. Conflicts are written inline
with git's markers and reported; nothing is silently dropped.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from scaffolder.errors import ScaffoldError, WorkspaceError
from scaffolder.generate import check_layout, patch_registries
from scaffolder.layout import REPOS, answers_relpath
from scaffolder.lock import workspace_lock
from scaffolder.patches.command_docs import stage_command_docs
from scaffolder.plan import PortPlan, read_answers
from scaffolder.render import BLUEPRINT_ROOT, format_python, render
from scaffolder.staging import FileChange, Staging
from scaffolder.workspace import Workspace


@dataclass
class UpdateResult:
    name: str
    old_ref: str
    new_ref: str
    changes: list[FileChange] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # files where the user's edits were kept through a merge
    conflicts: list[str] = field(default_factory=list)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"  {c.status:9} {c.relpath}" for c in self.changes if c.status != "unchanged"]
        lines += [f"  merged    {path} (your edits kept)" for path in self.merged]
        lines += [f"  CONFLICT  {path} (resolve the <<<<<<< markers)" for path in self.conflicts]
        lines += [f"  warning   {text}" for text in self.warnings]
        written = sum(c.status != "unchanged" for c in self.changes)
        verb = "would update" if self.dry_run else "updated"
        lines.append(f"{self.name}: {verb} {written} files from blueprint {self.old_ref} to {self.new_ref}, "
                     f"{len(self.conflicts)} conflicts")
        return "\n".join(lines)


def _render_formatted(plan: PortPlan | dict, dest: Path, template: Path, vcs_ref: str | None) -> dict[str, bytes]:
    render(plan, dest, template=template, vcs_ref=vcs_ref)
    format_python(dest)
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def _merge(current: bytes, base: bytes, new: bytes, label: str) -> tuple[bytes, bool]:
    """Three-way merge with `git merge-file`; returns (result, had_conflicts)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for part, data in (("current", current), ("base", base), ("new", new)):
            path = Path(tmp, part)
            path.write_bytes(data)
            paths.append(str(path))
        proc = subprocess.run(
            ["git", "merge-file", "-p", "-L", f"{label} (yours)", "-L", "previous blueprint",
             "-L", "updated blueprint", *paths],
            capture_output=True,
        )
    if proc.returncode < 0 or proc.returncode > 127:
        raise ScaffoldError(f"git merge-file failed on {label}: {proc.stderr.decode().strip()}")
    return proc.stdout, proc.returncode > 0


def update(name: str, workspace_dir: Path, *, template: Path | None = None, dry_run: bool = False,
           progress: Callable[[str], None] = lambda _msg: None) -> UpdateResult:
    workspace = Workspace.open(workspace_dir)
    with workspace_lock(workspace.root, progress):  # an interrupted earlier run is rolled back first
        return _update_locked(name, workspace, template=template, dry_run=dry_run, progress=progress)


def _update_locked(name: str, workspace: Workspace, *, template: Path | None, dry_run: bool,
                   progress: Callable[[str], None]) -> UpdateResult:
    answers = read_answers(workspace.root, name)
    old_ref = str(answers.get("_commit") or "")
    template = (template or BLUEPRINT_ROOT).resolve()
    recorded = {k: v for k, v in answers.items() if not k.startswith("_")}
    # migrated to the current plan fields; the TAO version is the workspace's now (it may have been upgraded)
    plan = PortPlan.from_answers({**recorded, **({"tao_version": workspace.tao_version} if workspace.tao_version else {})})
    check_layout(plan, workspace)
    if not old_ref:
        raise WorkspaceError(f"{answers_relpath(name)} records no blueprint version (_commit)",
                             "regenerate with `tao-scaffold generate --allow-dirty`")
    workspace.ensure_clean(REPOS)

    with Staging(workspace.root) as staging:
        progress(f"render: {name} as blueprint {old_ref} (what it was generated from)")
        try:
            # the old blueprint reads the answers as that version wrote them
            old = _render_formatted(recorded, staging.root / "old", template, old_ref)
        except ScaffoldError as exc:
            raise ScaffoldError(f"cannot render blueprint version {old_ref} from {template}: {exc}",
                                "pass --template with the tao-scaffold checkout the port was generated from") from exc
        progress("render: current blueprint")
        new = _render_formatted(plan, staging.root / "new", template, None)
        new_answers = yaml.safe_load(new[answers_relpath(name)])
        result = UpdateResult(name, old_ref, str(new_answers.get("_commit")), dry_run=dry_run)

        progress("merge: three-way, file by file")
        staging.tree.mkdir(parents=True)
        deleted = []
        for rel in sorted(set(old) | set(new)):
            target = workspace.root / rel
            current = target.read_bytes() if target.is_file() else None
            if rel not in new:  # the blueprint dropped this file
                if current is not None and current == old[rel]:
                    deleted.append(rel)
                elif current is not None:
                    result.conflicts.append(f"{rel} (removed from the blueprint but edited here; left in place)")
                continue
            if current is None or rel == answers_relpath(name):
                merged, conflict = new[rel], False
            else:
                merged, conflict = _merge(current, old.get(rel, b""), new[rel], rel)
                if conflict:
                    result.conflicts.append(rel)
                elif merged != new[rel] and current != old.get(rel):
                    result.merged.append(rel)
            out = staging.tree / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(merged)

        patch_registries(plan, workspace, staging.tree, progress)  # re-assert the registrations (idempotent)
        result.warnings += stage_command_docs(name, workspace.root, staging.tree, progress)[2]

        result.changes = staging.changes() + [FileChange(rel, "deleted") for rel in deleted]
        if not dry_run:
            staging.check_writable(result.changes)
            staging.commit(result.changes)  # moves the answers file (the new blueprint version) last
        return result
