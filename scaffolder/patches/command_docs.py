"""The supported-commands tables of the TAO repos, kept in step with a port's console scripts.

tao-deploy's pre-commit hook regenerates ``docs/supported_commands.md`` with
``tools/update_docs_supported_commands.py`` (its ``--check`` fails while the table misses a command);
tao-pytorch's hook regenerates the table in ``README.md`` with ``tools/update_readme_supported_commands.py``,
which its public mirror does not ship (there the table is kept by hand). Where the workspace has a generator it
is run -- the repository's own code, as its hook runs it -- over an *overlay* of the repository: the staged
files on top, symlinks to the repository everywhere else, so nothing in the workspace is written before the
commit step and the generator sees the port exactly as it will be. Where tao-pytorch's README has the generated
block but no generator, the port's entries are added to its two tables (the domain list and the command table)
in their own layout and order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from scaffolder.layout import COMMAND_DOCS, DOMAIN, network_dir

GENERATOR_TIMEOUT_S = 120
README = "README.md"
BEGIN = "<!-- BEGIN GENERATED: supported-commands -->"  # tao-pytorch README.md, tao-deploy docs/supported_commands.md
END = "<!-- END GENERATED: supported-commands -->"
DOMAIN_ROW = "Computer vision"  # tao-pytorch README's domain table: the row of the cv commands
COMMAND_HEADER = ["Command", "Package", "Subtasks"]


def stage_command_docs(name: str, workspace_root: Path, tree: Path,
                       progress=lambda _msg: None) -> tuple[list[str], set[str], list[str]]:
    """Stage the repos' supported-commands tables with port ``name`` in them (``tree`` holds the staged port).

    Returns (the edits made, the files staged -- TAO's, not ours to format --, warnings). A generator that
    fails is a warning: the port is complete without its table row, and the repo's hook rewrites the table.
    """
    edits, patched, warnings = [], set(), []
    for repo, (script, target) in COMMAND_DOCS.items():
        repo_dir = workspace_root / repo
        rel = f"{repo}/{target}"
        if (repo_dir / script).is_file():
            progress(f"docs: {repo}/{script} (the repo's own generator) for {rel}")
            text, problem = _run_generator(repo_dir, tree / repo, script, target, tree.parent / f"overlay-{repo}")
        elif repo == "tao-pytorch" and (repo_dir / README).is_file():
            text, problem = _readme_with_port(repo_dir / README, name, _subtasks(tree / network_dir(repo, name))), None
        else:
            continue
        if problem:
            warnings.append(f"{rel} not updated: {problem}; run `python {script}` in {repo_dir} after generate")
            continue
        if text is None:
            continue
        current = (repo_dir / target).read_text(encoding="utf-8") if (repo_dir / target).is_file() else None
        if text != current:
            edits.append(f"{rel}: supported commands += {name}")
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text, encoding="utf-8")
        patched.add(rel)
    return edits, patched, warnings


def _run_generator(repo_dir: Path, staged: Path, script: str, target: str, overlay: Path) -> tuple[str | None, str | None]:
    """Run ``repo_dir/script`` over the overlay; (the regenerated ``target``, None) or (None, why it failed)."""
    if staged.is_dir():
        shutil.copytree(staged, overlay, symlinks=True)
    for rel in (script, target):  # real files: the script finds the repo from its own resolved path and
        source, copy = repo_dir / rel, overlay / rel  # writes the target, which must not be the workspace's
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file() and not copy.exists():
            shutil.copyfile(source, copy)
    _link_rest(repo_dir, overlay)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    try:
        proc = subprocess.run([sys.executable, str(overlay / script)], cwd=overlay, env=env, capture_output=True,
                              text=True, timeout=GENERATOR_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{script} did not run ({type(exc).__name__}: {exc})"
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        return None, f"{script} exited {proc.returncode}: {lines[-1][:200] if lines else 'no output'}"
    out = overlay / target
    return (out.read_text(encoding="utf-8"), None) if out.is_file() else (None, f"{script} wrote no {target}")


def _link_rest(repo_dir: Path, overlay: Path) -> None:
    """Fill ``overlay`` with symlinks to what ``repo_dir`` has and the overlay does not (``.git`` left out)."""
    for entry in os.scandir(repo_dir):
        if entry.name == ".git":
            continue
        mine = overlay / entry.name
        if not mine.exists() and not mine.is_symlink():
            mine.symlink_to(entry.path, target_is_directory=entry.is_dir())
        elif mine.is_dir() and not mine.is_symlink() and entry.is_dir(follow_symlinks=False):
            _link_rest(Path(entry.path), mine)


def _subtasks(network: Path) -> list[str]:
    """The port's subtasks as tao-pytorch's README lists them: its scripts/ modules plus TAO's default_specs."""
    scripts = network / "scripts"
    names = {p.stem for p in scripts.glob("*.py") if p.stem != "__init__"} if scripts.is_dir() else set()
    return sorted(names | {"default_specs"})


def _cells(line: str) -> list[str] | None:
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")) or len(line) < 2:
        return None
    return [cell.strip() for cell in line[1:-1].split("|")]


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _readme_with_port(readme: Path, name: str, subtasks: list[str]) -> str | None:
    """tao-pytorch's README.md with ``name`` in its generated supported-commands block (None: it has none).

    The block holds a domain table (``| Computer vision | `a`, `b`, ... |``) and a command table
    (``| `a` | `cv.a` | `default_specs`, `evaluate`, ... |``), both sorted by command name.
    """
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return None
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    lines = block.split("\n")
    for i, line in enumerate(lines):
        cells = _cells(line)
        if cells and len(cells) == 2 and cells[0] == DOMAIN_ROW:
            lines[i] = f"| {DOMAIN_ROW} | {', '.join(f'`{n}`' for n in sorted(set(_names(cells[1])) | {name}))} |"
    header = next((i for i, line in enumerate(lines) if _cells(line) == COMMAND_HEADER), None)
    if header is not None:
        row = f"| `{name}` | `{DOMAIN}.{name}` | {', '.join(f'`{s}`' for s in subtasks)} |"
        end = header + 2  # after the separator row
        while end < len(lines) and _cells(lines[end]) is not None:
            end += 1
        rows = [r for r in lines[header + 2:end] if (_names(_cells(r)[0]) or [""])[0] != name]
        at = next((k for k, r in enumerate(rows) if (_names(_cells(r)[0]) or [""])[0] > name), len(rows))
        lines[header + 2:end] = rows[:at] + [row] + rows[at:]
    return head + BEGIN + "\n".join(lines) + END + tail

