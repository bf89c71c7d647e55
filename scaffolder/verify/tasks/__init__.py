"""Per-task support for verify (see :mod:`scaffolder.verify.tasks.base`).

Which class supports which task is the task registry's fact (``scaffolder.tasks.TaskSpec.verify_support``).
"""

from __future__ import annotations

from scaffolder.errors import ScaffoldError
from scaffolder.tasks import TASKS as TASK_SPECS
from scaffolder.tasks import load_object
from scaffolder.verify.tasks.base import Dataset, TaskSupport, hydra_value

__all__ = ["Dataset", "TaskSupport", "get_task", "hydra_value", "support_class"]


def support_class(name: str) -> type[TaskSupport]:
    spec = TASK_SPECS.get(name)
    if spec is None:
        raise ScaffoldError(
            f"verify has no support for task {name!r} (known tasks: {', '.join(TASK_SPECS)})",
            "add the task to scaffolder/tasks.py with its TaskSupport in scaffolder/verify/tasks/",
        )
    return load_object(spec.verify_support)


def get_task(name: str) -> TaskSupport:
    return support_class(name)()
