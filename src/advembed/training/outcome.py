"""What a finished training measured: the dev history, the best dev and test scores (the
threshold a task chose on dev applied to test, never re-chosen), steps, loss and time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advembed.tasks import Task

if TYPE_CHECKING:
    from advembed.training.run import Built


def final_metrics(trainer, task: Task, built: Built, train_output, seconds: float) -> dict:
    """Dev history, best dev, test, training time and size of a finished training."""
    keep = (*task.metric_names, "loss")
    task.set_split("dev")
    best_dev = _strip(trainer.evaluate(built.encoded["dev"], metric_key_prefix="dev"), "dev",
                      keep)
    task.set_split("test")  # a threshold chosen on dev is applied, not re-chosen
    test = _strip(trainer.evaluate(built.encoded["test"], metric_key_prefix="test"), "test", keep)
    task.set_split("dev")
    return {
        "dev": dev_history(trainer.state.log_history, task),
        "best_dev": best_dev,
        "test": test,
        "train": {
            "steps": int(train_output.global_step),
            "loss": float(train_output.training_loss),
            "seconds": round(seconds, 2),
            "examples": len(built.encoded["train"]),
        },
        "parameters": int(sum(p.numel() for p in built.loaded.model.parameters())),
    }


def dev_history(log_history: list[dict[str, Any]], task: Task) -> list[dict[str, float]]:
    """One row per dev evaluation during training: epoch, step, the task's metrics, loss."""
    rows = []
    for entry in log_history:
        if f"eval_{task.best_metric}" in entry:
            row = {"epoch": round(float(entry.get("epoch", 0.0)), 4),
                   "step": int(entry.get("step", 0))}
            row |= {name: entry[f"eval_{name}"] for name in (*task.metric_names, "loss")
                    if f"eval_{name}" in entry}
            rows.append(row)
    return rows


def _strip(metrics: dict[str, float], prefix: str, keep: tuple[str, ...]) -> dict[str, float]:
    return {key: metrics[f"{prefix}_{key}"] for key in keep if f"{prefix}_{key}" in metrics}
