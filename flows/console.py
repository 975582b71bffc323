"""What a long job shows on the console while it works: a rich progress bar per training on a terminal, and one
plain line per epoch when the output is a file or a pipe (a scheduler's log)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    """Epoch, loss, elapsed time and an estimate of what is left, for one training of ``epochs`` epochs."""

    def __init__(self, label: str, epochs: int, console: Console | None = None) -> None:
        self.label = label
        self.epochs = epochs
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> TrainingProgress:
        self.started = time.monotonic()
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=self.console, transient=False,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.epochs, status="")
        return self

    def advance(self, epoch: int, loss: float, recall: float | None = None, epochs: int | None = None) -> None:
        """Record a finished epoch; ``epochs``, when given, is the budget as the trainer now plans it."""
        if epochs is not None and epochs != self.epochs:
            self.epochs = epochs
            if self.bar is not None and self.task is not None:
                self.bar.update(self.task, total=epochs)
        status = f"loss {loss:.5f}" + (f" recall@20 {recall:.4f}" if recall is not None else "")
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=epoch, status=status)
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / epoch * (self.epochs - epoch) if epoch else 0.0
        self.console.print(
            f"{self.label}: epoch {epoch}/{self.epochs} {status} elapsed {elapsed:.0f}s left ~{left:.0f}s",
            highlight=False, soft_wrap=True,
        )

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()
