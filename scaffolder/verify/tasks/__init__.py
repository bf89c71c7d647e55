"""Per-task support for verify (see :mod:`scaffolder.verify.tasks.base`)."""

from __future__ import annotations

from scaffolder.errors import ScaffoldError
from scaffolder.verify.tasks.base import Dataset, TaskSupport, hydra_value
from scaffolder.verify.tasks.classification import ClassificationTask

TASKS: dict[str, type[TaskSupport]] = {"classification": ClassificationTask}

__all__ = ["TASKS", "Dataset", "TaskSupport", "get_task", "hydra_value"]


def get_task(name: str) -> TaskSupport:
    try:
        return TASKS[name]()
    except KeyError:
        raise ScaffoldError(
            f"verify has no support for task {name!r} yet (supported: {', '.join(sorted(TASKS))})",
            "add a TaskSupport subclass in scaffolder/verify/tasks/ and register it in TASKS",
        ) from None
