"""Progress of a training run: a live rich bar on a terminal, plain log lines otherwise (CI, pipes)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from tml.optimizers.cli.summary import format_lr


class ProgressReport:
    """Shows step, loss, each group's learning rate and steps/s; use as a context manager."""

    def __init__(self, console: Console, *, start: int, total: int, log_every: int | None = None) -> None:
        self.console = console
        self.start = start
        self.total = total
        self.log_every = log_every or max(1, total // 20)
        self.live = console.is_terminal
        self._began = time.perf_counter()
        self._progress: Progress | None = None
        self._task = TaskID(0)

    def __enter__(self) -> ProgressReport:
        self._began = time.perf_counter()
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total, completed=self.start, status="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, step: int, loss: float, learning_rates: Mapping[str, float]) -> None:
        """Report that ``step`` steps are done; the last one had ``loss`` at ``learning_rates``."""
        status = self.status(step, loss, learning_rates)
        if self._progress is not None:
            self._progress.update(self._task, completed=step, status=status)
        elif step % self.log_every == 0 or step == self.total:
            self.console.print(f"step {step}/{self.total}  {status}", highlight=False)

    def status(self, step: int, loss: float, learning_rates: Mapping[str, float]) -> str:
        """``loss 0.6931  lr default=0.001  250 steps/s``."""
        elapsed = time.perf_counter() - self._began
        speed = (step - self.start) / elapsed if elapsed > 0 else 0.0
        lrs = " ".join(f"{name}={format_lr(value)}" for name, value in learning_rates.items())
        return f"loss {loss:.4f}  lr {lrs}  {speed:.0f} steps/s"


__all__ = ["ProgressReport"]
