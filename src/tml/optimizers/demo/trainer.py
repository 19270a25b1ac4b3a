"""The demo training job: the multi-task ranking model trained with an optimizer config.

It checkpoints every K steps and when stopped by SIGINT (Ctrl-C) or SIGTERM, and ``resume``
continues from the checkpoint so that the final parameters are bit-identical to those of an
uninterrupted run: the checkpoint holds the model, optimizer and scheduler state, the torch RNG
state and the data position, and the data stream is a pure function of that position (see
:mod:`tml.optimizers.demo.checkpoint`).

One process and several ranks under torchrun run the same code: with ``WORLD_SIZE`` > 1 the model
is wrapped in DDP on gloo and each rank trains on its slice of every global batch (see
:mod:`tml.optimizers.demo.distributed`); rank 0 alone prints and plots.

A config with ``embedding_tables`` trains the torchrec table model instead
(:mod:`tml.optimizers.demo.table_job`): ``DistributedModelParallel`` on the same gloo ranks (a
one-rank process group without torchrun), table checkpoints, the same loop, progress and plots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TypeAlias

import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from tml.optimizers import build_optimizer
from tml.optimizers.cli.errors import CliError
from tml.optimizers.cli.loading import LoadedConfig
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.demo import checkpoint, distributed, table_job
from tml.optimizers.demo.checkpoint import Job, RunState
from tml.optimizers.demo.distributed import Ranks
from tml.optimizers.demo.model import ModelShape, RankingModel, SyntheticRankingData, ranking_loss
from tml.optimizers.demo.progress import ProgressReport
from tml.optimizers.demo.table_model import TABLE_ROWS, TABLE_TASKS, SyntheticTableData, TableModelShape
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import ResumePolicy

Data: TypeAlias = SyntheticRankingData | SyntheticTableData
"""The stream a run trains on: ``batch(position)`` gives ``(dense, categorical ids, labels)``."""

LOSS_PLOT = "loss.png"
LR_PLOT = "lr.png"


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of ``tml-optim train``."""

    steps: int
    checkpoint_dir: Path
    output_dir: Path
    resume: bool = False
    resume_policy: ResumePolicy | None = None
    """How ``resume`` treats a checkpoint of another optimizer config (``None``: the config's
    ``resume``): ``strict`` refuses it, ``config`` applies this config to the saved state."""
    fresh: bool = False
    checkpoint_every: int = 0
    """Write a checkpoint every this many steps; 0: only when stopped and at the end."""
    seed: int = 0
    log_every: int | None = None
    threads: int = 1
    """torch's intra-op threads. The demo model is small: one thread is as fast as several on an idle
    machine, much faster on a busy one, and gives the same bits whatever the machine's core count."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Where a finished run left its files."""

    steps: int
    final_loss: float | None
    checkpoint: Path
    loss_plot: Path
    lr_plot: Path


class TrainingInterruptedError(CliError):
    """The run was stopped by a signal after writing a checkpoint; exits with 128 + the signal number."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_status = 128 + signal_number


class StopRequest:
    """Set by the signal handlers; the training loop checks it after every step."""

    def __init__(self) -> None:
        self.signal_number: int | None = None

    def handle(self, signal_number: int, frame: FrameType | None) -> None:
        self.signal_number = signal_number


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Turn SIGINT and SIGTERM into a stop request for the duration of the block."""
    request = StopRequest()
    previous = {number: signal.signal(number, request.handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def train(loaded: LoadedConfig, options: TrainOptions, console: Console) -> TrainResult:
    """Train the demo model for ``options.steps`` optimizer steps in total (a resumed run included).

    torch's global RNG state and thread count are restored afterwards, so that calling this in a
    process that does other work (a test) leaves that work as it was.

    Raises:
      CliError: a checkpoint is in the way (without ``resume`` or ``fresh``), or the checkpoint to
        resume was written with another config, seed, number of ranks or a later step.
      TrainingInterruptedError: stopped by a signal, after writing a checkpoint.
    """
    threads = torch.get_num_threads()
    ranks = distributed.launched_ranks()
    tables = bool(loaded.config.embedding_tables)
    started = distributed.start_process_group(ranks)
    if tables and not ranks.distributed:
        started = table_job.start_single_rank_group()  # DistributedModelParallel needs a process group
    try:
        quiet = table_job.quiet_torchrec() if tables else contextlib.nullcontext()
        with torch.random.fork_rng(devices=[]), quiet:
            torch.set_num_threads(options.threads)
            return _train(loaded, options, console, ranks)
    finally:
        torch.set_num_threads(threads)
        if started:
            if tables:
                gc.collect()  # the sharded model and its DDP reducer go before their process group
            dist.destroy_process_group()


def _train(loaded: LoadedConfig, options: TrainOptions, console: Console, ranks: Ranks) -> TrainResult:
    job = build_job(loaded.config, options.seed, ranks)
    checkpoint.check_writable(options.checkpoint_dir, ranks)  # before the first step, not after the last
    state = _starting_state(job, options, console, ranks)
    data: Data = (
        SyntheticTableData(TableModelShape(), seed=options.seed)
        if job.tables
        else SyntheticRankingData(ModelShape(), seed=options.seed)
    )
    _train_steps(job, data, state, options, console, ranks)
    final = checkpoint.save(options.checkpoint_dir, job, state, seed=options.seed, ranks=ranks)
    loss_plot, lr_plot = options.output_dir / LOSS_PLOT, options.output_dir / LR_PLOT
    if ranks.is_main:  # one set of PNGs per run
        _plot(loaded, job.scheduler, state.losses, options.steps, loss_plot, lr_plot)
    return TrainResult(state.step, state.losses[-1] if state.losses else None, final, loss_plot, lr_plot)


def build_job(config: OptimizerConfig, seed: int, ranks: Ranks) -> Job:
    """The demo model (DDP-wrapped with several ranks), its optimizer and scheduler, from ``seed``;
    the table model (:mod:`tml.optimizers.demo.table_job`) when the config has ``embedding_tables``.

    Afterwards torch's RNG (dropout) is seeded per rank.

    Raises:
      CliError: the config's table rules do not fit the table model, or it shards optimizer state.
    """
    if config.shard_optimizer_state:
        raise CliError(
            "tml-optim train cannot checkpoint optimizer state sharded by shard_optimizer_state "
            "(ZeRO-1) yet; set shard_optimizer_state: false (train runs DDP under torchrun)"
        )
    if config.embedding_tables:
        torch.manual_seed(seed)
        try:
            sharded, optimizer, scheduler = table_job.build_table_model(config)
        except ValueError as error:
            raise CliError(
                f"cannot train the table model (tables {', '.join(TABLE_ROWS)}; towers "
                f"{', '.join(TABLE_TASKS)}) with this config: {error}"
            ) from None
        torch.manual_seed(distributed.rank_seed(seed, ranks.rank))
        return Job(sharded, optimizer, scheduler, config, tables=True)
    torch.manual_seed(seed)
    model: torch.nn.Module = RankingModel(ModelShape())
    if ranks.distributed:
        model = DistributedDataParallel(model)
    optimizer, scheduler = build_optimizer(model, config)
    torch.manual_seed(distributed.rank_seed(seed, ranks.rank))  # each rank its own dropout stream
    return Job(model, optimizer, scheduler, config)


def _starting_state(job: Job, options: TrainOptions, console: Console, ranks: Ranks) -> RunState:
    """The resumed run's state (``--resume``), or a new run's once no checkpoint is in the way."""
    directory = options.checkpoint_dir
    if options.resume:
        path, state = checkpoint.resume(
            directory, job, seed=options.seed, steps=options.steps, ranks=ranks, policy=options.resume_policy
        )
        console.print(f"resuming from step {state.step} of {path}", highlight=False)
        return state
    if options.fresh:
        checkpoint.remove_checkpoints(directory, ranks)
    elif checkpoint.has_checkpoint(directory):
        raise CliError(
            f"{directory} already holds a checkpoint: pass --resume to continue it, "
            "--fresh to start over, or another --checkpoint-dir"
        )
    return RunState()


def _train_steps(
    job: Job,
    data: Data,
    state: RunState,
    options: TrainOptions,
    console: Console,
    ranks: Ranks,
) -> None:
    """Train until ``options.steps``, checkpointing every ``options.checkpoint_every`` steps.

    Raises:
      TrainingInterruptedError: a rank was sent SIGINT or SIGTERM; every rank stops after the same
        step and the checkpoint of that step is written.
    """
    groups = list(job.scheduler.lr_dict)  # the groups as built, companions included
    job.model.train()
    report = ProgressReport(console, start=state.step, total=options.steps, log_every=options.log_every)
    with stop_requests() as stop, report:
        while state.step < options.steps:
            learning_rates = group_learning_rates(job.optimizer, groups)
            loss = train_step(job, data, state.data_position, ranks)
            mean_loss, stop_signal = distributed.agree(loss, stop.signal_number, ranks)
            state.advance(mean_loss)
            report.update(state.step, mean_loss, learning_rates)
            if stop_signal is not None:
                path = checkpoint.save(options.checkpoint_dir, job, state, seed=options.seed, ranks=ranks)
                raise TrainingInterruptedError(
                    f"stopped by {signal.Signals(stop_signal).name} at step {state.step}: checkpoint "
                    f"written to {path}; continue with --resume --checkpoint-dir {options.checkpoint_dir}",
                    stop_signal,
                )
            every = options.checkpoint_every
            if every and state.step % every == 0 and state.step < options.steps:
                checkpoint.save(options.checkpoint_dir, job, state, seed=options.seed, ranks=ranks)


def train_step(job: Job, data: Data, position: int, ranks: Ranks) -> float:
    """One optimizer step on this rank's slice of the batch at ``position``; this rank's loss."""
    dense, categorical, labels = distributed.shard(data.batch(position), ranks)
    job.optimizer.zero_grad(set_to_none=True)
    loss = ranking_loss(job.model(dense, categorical), labels)
    loss.backward()
    job.optimizer.step()
    job.scheduler.step()
    return loss.item()


def _plot(
    loaded: LoadedConfig, scheduler: LRShim, losses: list[float], steps: int, loss_plot: Path, lr_plot: Path
) -> None:
    from tml.optimizers.cli.plotting import plot_losses, plot_schedules  # matplotlib: rank 0 only

    name = Path(loaded.file).name
    plot_losses(losses, loss_plot, title=f"training loss ({name})")
    plot_schedules(
        scheduler.lr_dict,
        lr_plot,
        end=steps,
        title=f"learning rate per param group ({name})",
        multipliers=scheduler.lr_multipliers,
    )


def group_learning_rates(optimizer: torch.optim.Optimizer, names: list[str]) -> dict[str, float]:
    """The current learning rate of each named group (param groups carry their name in ``"name"``)."""
    by_name = {group.get("name"): group["lr"] for group in optimizer.param_groups}
    return {name: float(by_name[name]) for name in names if name in by_name}


__all__ = [
    "LOSS_PLOT",
    "LR_PLOT",
    "TrainOptions",
    "TrainResult",
    "TrainingInterruptedError",
    "build_job",
    "group_learning_rates",
    "stop_requests",
    "train",
    "train_step",
]
