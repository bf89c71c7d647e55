"""Stage, then move -- journaled: a port is written completely or not at all, even across a kill.

Everything is rendered, patched and formatted inside a staging folder in the workspace root (same file
system, so the final moves are renames). ``commit`` first copies what it will replace into the staging
folder's ``backup/``, then records the change set in ``journal.json`` (written atomically, fsynced), and
only then moves files into place. A failure or a signal (SIGINT/SIGTERM/SIGHUP, see scaffolder.signals)
rolls back in-process; after a SIGKILL or power loss the journal stays behind and :func:`recover` -- which
every writing command runs under the workspace lock (scaffolder.lock) before it reads the workspace --
rolls it back. Staging folders without a journal are leftovers of runs that died before their commit step
and are removed by the same call. The answers file moves last, so a workspace never records a blueprint
version whose files are not all in place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scaffolder.errors import WorkspaceError
from scaffolder.layout import ANSWERS_FILE, REPOS
from scaffolder.signals import deferred

STAGING_PREFIX = ".tao-scaffold-staging-"
JOURNAL = "journal.json"
JOURNAL_VERSION = 1


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
            self.root = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.workspace))
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
            check_inside_repo(self.workspace, rel)
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
        """Move changed files into the workspace; all or nothing (journaled, see the module docstring)."""
        pending = sorted((c for c in changes if c.status != "unchanged"),
                         key=lambda c: Path(c.relpath).name == ANSWERS_FILE)  # answers file last
        for change in pending:  # the tree may have changed since changes(): check again, right before writing
            check_inside_repo(self.workspace, change.relpath)
        backup = self.root / "backup"
        entries, created_dirs = [], []
        try:
            for change in pending:
                target = self.workspace / change.relpath
                saved = target.exists()
                if saved:
                    copy = backup / change.relpath
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(target, copy)
                    _fsync(copy)
                for parent in reversed(target.parents):
                    rel = os.path.relpath(parent, self.workspace)
                    if parent.is_relative_to(self.workspace) and rel not in created_dirs and not parent.exists():
                        created_dirs.append(rel)
                entries.append({"relpath": change.relpath, "status": change.status, "backup": saved})
        except OSError as exc:
            raise WorkspaceError(f"preparing the write failed ({exc}); nothing was changed",
                                 "fix the cause (disk space, permissions) and run again") from exc
        journal = {"version": JOURNAL_VERSION, "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "entries": entries, "created_dirs": created_dirs}
        try:
            _write_atomically(self.root / JOURNAL, json.dumps(journal, indent=1))
            for rel in created_dirs:
                (self.workspace / rel).mkdir(exist_ok=True)
            for change in pending:
                target = self.workspace / change.relpath
                if change.status == "deleted":
                    target.unlink()
                else:
                    os.replace(self.tree / change.relpath, target)
            (self.root / JOURNAL).unlink()  # done: nothing to roll back any more
        except BaseException as exc:
            with deferred():  # a second Ctrl-C / SIGTERM must not cut the rollback short
                _roll_back(self.workspace, self.root)
            if isinstance(exc, OSError):
                raise WorkspaceError(f"writing the port failed ({exc}); the workspace was restored",
                                     "fix the cause and run again") from exc
            raise

    def cleanup(self) -> None:
        if (self.root / JOURNAL).is_file():
            return  # a rollback failed: keep journal and backups for recover() (and doctor) to find
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def recover(workspace: Path) -> list[str]:
    """Roll back every interrupted commit in ``workspace`` and remove leftover staging folders.

    Call it only while holding the workspace lock (a live run's staging folder looks the same). Returns
    one line per interrupted write it rolled back.
    """
    notes = []
    for folder in sorted(Path(workspace).glob(STAGING_PREFIX + "*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        journal = _read_journal(folder)
        if journal is not None:
            _roll_back(Path(workspace), folder)
            notes.append(f"rolled back an interrupted write of {len(journal['entries'])} files "
                         f"(pid {journal.get('pid')}, started {journal.get('started')}); the workspace is as before it")
        shutil.rmtree(folder, ignore_errors=True)
    return notes


def interrupted_writes(workspace: Path) -> tuple[list[str], list[str]]:
    """(staging folders with an interrupted commit journal, other leftover staging folders) -- read only."""
    journaled, stale = [], []
    for folder in sorted(Path(workspace).glob(STAGING_PREFIX + "*")):
        (journaled if (folder / JOURNAL).is_file() else stale).append(folder.name)
    return journaled, stale


def _read_journal(folder: Path) -> dict | None:
    try:
        journal = json.loads((folder / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"cannot read the journal of an interrupted write, {folder / JOURNAL}: {exc}",
                             f"restore the files listed in it from {folder}/backup by hand, then delete {folder}") from exc
    if not isinstance(journal, dict) or journal.get("version") != JOURNAL_VERSION:
        raise WorkspaceError(f"{folder / JOURNAL} is not a tao-scaffold journal this version can replay",
                             f"restore from {folder}/backup by hand, then delete {folder}")
    return journal


def _roll_back(workspace: Path, folder: Path) -> None:
    """Undo a (partial) commit from its journal; idempotent, so an interrupted rollback can run again."""
    journal = _read_journal(folder)
    if journal is None:
        return
    failed = []
    for entry in reversed(journal["entries"]):
        rel = entry["relpath"]
        target = workspace / rel
        try:
            if entry["backup"]:
                copy = folder / "backup" / rel
                if not copy.is_file():
                    continue  # already restored by an earlier, interrupted rollback
                if not (target.is_file() and target.read_bytes() == copy.read_bytes()):  # else: never replaced
                    try:
                        os.replace(copy, target)
                    except OSError:  # e.g. a mount point: the name cannot be replaced, its content can
                        shutil.copyfile(copy, target)
                copy.unlink(missing_ok=True)
            elif target.is_file() or target.is_symlink():
                target.unlink()
        except OSError as exc:
            failed.append(f"{rel} ({exc.strerror or exc})")
    for rel in reversed(journal["created_dirs"]):
        try:
            (workspace / rel).rmdir()
        except OSError:
            pass  # not empty (someone else's files) or already gone: leave it
    if failed:  # keep the journal: the next run (or a person, with doctor's help) finishes the job
        raise WorkspaceError(f"could not restore {', '.join(failed[:3])} after an interrupted write",
                             f"fix the cause and run tao-scaffold again: it rolls back {folder.name} first")
    (folder / JOURNAL).unlink()


def check_inside_repo(workspace: Path, relpath: str) -> None:
    """Refuse a write that a symlink would carry out of its repository, or that would replace a symlink.

    The repositories themselves may be symlinks (a workspace of links to existing clones); inside one,
    every folder on the way to the file must resolve inside that repository's real folder.
    """
    parts = Path(relpath).parts
    if not parts or parts[0] not in REPOS or ".." in parts:
        raise WorkspaceError(f"refusing to write {relpath}: outside the TAO repositories",
                             "the blueprint must only write into tao-core, tao-pytorch and tao-deploy")
    repo_real = (workspace / parts[0]).resolve()
    path = workspace / parts[0]
    for part in parts[1:]:
        path = path / part
        if path.is_symlink():
            real = path.resolve()
            if path == workspace / relpath or not real.is_relative_to(repo_real):
                raise WorkspaceError(
                    f"refusing to write {relpath}: {path.relative_to(workspace)} is a symlink to {real}"
                    + ("" if real.is_relative_to(repo_real) else f", outside {parts[0]}"),
                    "replace the link with a real folder or file (or remove it) and run again",
                )
        elif not path.exists():
            return


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
