"""Render and format steps: Copier renders the task blueprint, black formats the Python it wrote."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Mapping

import black
import copier

from scaffolder.errors import ScaffoldError
from scaffolder.plan import PortPlan

BLUEPRINT_ROOT = Path(__file__).resolve().parent.parent  # holds copier.yml and blueprints/
BLACK_MODE = black.Mode(line_length=120)


# Copier renders a template checkout with uncommitted changes from a throwaway "draft" commit and records
# that commit's hash as `_commit` in the answers file. Git hashes the commit time, so without a fixed date
# every generate from a dirty checkout would write a different answers file (no byte-reproducible output).
# With a fixed date the hash depends only on HEAD, the working tree and the git identity.
_DRAFT_COMMIT_DATE = "2000-01-01T00:00:00+0000"


@contextlib.contextmanager
def _quiet_copier():
    """Copier narrates (tags, dirty template); tao-scaffold reports its own progress instead."""
    from plumbum import local  # copier's process runner: its git commands read this environment

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), local.env(
        GIT_AUTHOR_DATE=_DRAFT_COMMIT_DATE, GIT_COMMITTER_DATE=_DRAFT_COMMIT_DATE
    ):
        warnings.simplefilter("ignore")
        yield


def render(plan: PortPlan | Mapping[str, Any], dest: Path, *, template: Path | None = None,
           vcs_ref: str | None = None) -> None:
    """Render the plan's blueprint into ``dest`` (a staging tree laid out like the workspace).

    ``plan`` may be raw answers (``update`` renders an older blueprint with the answers it wrote).
    """
    data = plan.answers() if isinstance(plan, PortPlan) else dict(plan)
    template = (template or BLUEPRINT_ROOT).resolve()
    try:
        with _quiet_copier():
            copier.run_copy(
                str(template), str(dest), data=data, defaults=True, overwrite=True,
                quiet=True, unsafe=False, vcs_ref=vcs_ref,
            )
    except Exception as exc:  # copier raises many types; all mean the blueprint could not render
        raise ScaffoldError(f"rendering the {data.get('task')} blueprint failed: {exc}".splitlines()[0]) from exc


def format_python(tree: Path, *, skip: set[str] = frozenset()) -> int:
    """Format every rendered .py file with black (files in ``skip`` are patched, not ours to format)."""
    count = 0
    for path in sorted(tree.rglob("*.py")):
        if str(path.relative_to(tree)) in skip:
            continue
        source = path.read_text(encoding="utf-8")
        try:
            formatted = black.format_file_contents(source, fast=True, mode=BLACK_MODE)  # output is compiled by verify's static stage
        except black.NothingChanged:
            continue
        except black.InvalidInput as exc:
            raise ScaffoldError(f"blueprint produced invalid Python in {path.relative_to(tree)}: {exc}") from exc
        path.write_text(formatted, encoding="utf-8")
        count += 1
    return count
