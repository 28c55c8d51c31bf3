"""Tasks: what differs between kinds of problem, injected into training and evaluation.

``REGISTRY`` maps ``--task`` names to task classes; :func:`register_task` adds one (a plugin,
or a test's minimal task), and nothing outside this package needs a change for it.
"""

from __future__ import annotations

from advembed.errors import AdvembedError
from advembed.tasks.base import SPLITS, LoadedModel, Task
from advembed.tasks.classification import ClassificationTask
from advembed.tasks.lm import LanguageModellingTask
from advembed.tasks.qa_matching import QAMatchingTask
from advembed.tasks.translation import TranslationTask

REGISTRY: dict[str, type[Task]] = {
    cls.name: cls for cls in (ClassificationTask, QAMatchingTask, LanguageModellingTask,
                              TranslationTask)}
DEFAULT_TASK = ClassificationTask.name


def register_task(task: type[Task]) -> type[Task]:
    """Make ``task`` available as ``--task NAME`` (usable as a class decorator)."""
    REGISTRY[task.name] = task
    return task


def get_task(name: str | None = None) -> Task:
    """The task ``name`` (runs written before tasks existed are classification runs)."""
    name = name or DEFAULT_TASK
    if name not in REGISTRY:
        raise AdvembedError(f"unknown task '{name}'; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]()


__all__ = ["DEFAULT_TASK", "REGISTRY", "SPLITS", "ClassificationTask", "LanguageModellingTask",
           "LoadedModel", "QAMatchingTask", "Task", "TranslationTask", "get_task", "register_task"]
