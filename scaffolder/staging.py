"""Stage, then move: a port is written completely or not at all.

Everything is rendered, patched and formatted inside a staging folder in the workspace root (same file
system, so the final moves are renames). ``commit`` moves files into place, keeping backups of what it
replaces; any failure restores the backups and removes what was added, leaving the workspace as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scaffolder.errors import WorkspaceError


@dataclass
class FileChange:
    relpath: str  # relative to the workspace root, e.g. tao-pytorch/setup.py
    status: str  # new | changed | unchanged | deleted


@dataclass
class Staging:
    workspace: Path
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.root = Path(tempfile.mkdtemp(prefix=".tao-scaffold-staging-", dir=self.workspace))
        except OSError as exc:
            raise WorkspaceError(f"workspace {self.workspace} is not writable ({exc.strerror})",
                                 "fix its permissions or choose another --workspace") from exc

    @property
    def tree(self) -> Path:
        return self.root / "tree"

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.tree)) for p in self.tree.rglob("*") if p.is_file())

    def changes(self) -> list[FileChange]:
        out = []
        for rel in self.files():
            target = self.workspace / rel
            if not target.exists():
                out.append(FileChange(rel, "new"))
            elif not target.is_file():
                raise WorkspaceError(f"cannot write {rel}: {target} exists and is not a file",
                                     "move it out of the way and run again")
            elif target.read_bytes() != (self.tree / rel).read_bytes():
                out.append(FileChange(rel, "changed"))
            else:
                out.append(FileChange(rel, "unchanged"))
        return out

    def check_writable(self, changes: list[FileChange]) -> None:
        for change in changes:
            if change.status == "unchanged":
                continue
            target = self.workspace / change.relpath
            probe = target if target.exists() else _nearest_existing(target.parent)
            if not os.access(probe, os.W_OK):
                raise WorkspaceError(f"cannot write {change.relpath}: {probe} is not writable",
                                     "fix the permissions of the workspace and run again")

    def commit(self, changes: list[FileChange]) -> None:
        """Move changed files into the workspace; all or nothing."""
        backup = self.root / "backup"
        moved: list[tuple[Path, Path | None]] = []  # (target, backup or None if it was new)
        created_dirs: list[Path] = []
        try:
            for change in changes:
                if change.status == "unchanged":
                    continue
                target = self.workspace / change.relpath
                for parent in reversed(target.parents):
                    if parent.is_relative_to(self.workspace) and not parent.exists():
                        parent.mkdir()
                        created_dirs.append(parent)
                saved = None
                if target.exists():
                    saved = backup / change.relpath
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(target, saved)
                if change.status == "deleted":
                    target.unlink()
                else:
                    os.replace(self.tree / change.relpath, target)
                moved.append((target, saved))
        except BaseException as exc:
            for target, saved in reversed(moved):
                if saved is None:
                    target.unlink(missing_ok=True)
                else:
                    os.replace(saved, target)  # also restores a deleted file
            for directory in reversed(created_dirs):
                shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, OSError):
                raise WorkspaceError(f"writing the port failed ({exc}); the workspace was restored",
                                     "fix the cause and run again") from exc
            raise

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
