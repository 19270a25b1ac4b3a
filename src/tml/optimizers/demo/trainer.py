"""The demo training job: the multi-task ranking model trained with an optimizer config.

It checkpoints every K steps and when stopped by SIGINT (Ctrl-C) or SIGTERM, and ``resume``
continues from the checkpoint so that the final parameters are bit-identical to those of an
uninterrupted run: the checkpoint holds the model, optimizer and scheduler state, the torch RNG
state and the data position, and the data stream is a pure function of that position.

Under torchrun (``WORLD_SIZE`` > 1) the model is trained with DDP on gloo, each rank on its slice of
every global batch, with DCP checkpoints; see :mod:`tml.optimizers.demo.distributed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from tml.optimizers import build_optimizer
from tml.optimizers.cli.errors import CliError
from tml.optimizers.cli.loading import LoadedConfig
from tml.optimizers.demo import distributed
from tml.optimizers.demo.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from tml.optimizers.demo.model import ModelShape, RankingModel, SyntheticRankingData, ranking_loss
from tml.optimizers.demo.progress import ProgressReport

LOSS_PLOT = "loss.png"
LR_PLOT = "lr.png"


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of ``tml-optim train``."""

    steps: int
    checkpoint_dir: Path
    output_dir: Path
    resume: bool = False
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
        resume was written with another config, seed or a later step.
      TrainingInterruptedError: stopped by a signal, after writing a checkpoint.
    """
    threads = torch.get_num_threads()
    ranks = distributed.launched_ranks()
    started = distributed.start_process_group(ranks)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.set_num_threads(options.threads)
            return _train(loaded, options, console, ranks)
    finally:
        torch.set_num_threads(threads)
        if started:
            dist.destroy_process_group()


def _train(
    loaded: LoadedConfig, options: TrainOptions, console: Console, ranks: distributed.Ranks
) -> TrainResult:
    config = loaded.config
    config_record = config.model_dump(mode="json", exclude_none=True)
    if config.shard_optimizer_state:
        raise CliError(
            "tml-optim train cannot checkpoint optimizer state sharded by shard_optimizer_state "
            "(ZeRO-1) yet; set shard_optimizer_state: false (train runs DDP under torchrun)"
        )
    torch.manual_seed(options.seed)
    shape = ModelShape()
    model = RankingModel(shape)
    data = SyntheticRankingData(shape, seed=options.seed)
    trained: torch.nn.Module = DistributedDataParallel(model) if ranks.distributed else model
    optimizer, scheduler = build_optimizer(trained, config)
    schedules = scheduler.lr_dict  # the groups as built, companions included
    if ranks.distributed:
        torch.manual_seed(distributed.rank_seed(options.seed, ranks.rank))  # each rank its own dropout

    step, position, losses = 0, 0, []
    if options.resume and ranks.distributed:
        resumed = distributed.resume(
            options.checkpoint_dir,
            trained,
            optimizer,
            scheduler,
            config,
            seed=options.seed,
            steps=options.steps,
            ranks=ranks,
        )
        step, position, losses = resumed.step, resumed.position, resumed.losses
        console.print(
            f"resuming from step {step} of {options.checkpoint_dir} ({ranks.world_size} ranks)",
            highlight=False,
        )
    elif options.resume:
        distributed.refuse_other_format(options.checkpoint_dir)
        state = load_checkpoint(options.checkpoint_dir)
        _check_resumable(state, config_record, options)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        try:
            scheduler.load_state_dict(state["scheduler"])
        except ValueError as error:
            raise CliError(f"cannot resume: {error}") from None
        torch.set_rng_state(state["rng"]["torch"])
        step, position = int(state["step"]), int(state["data_position"])
        losses = [float(value) for value in state["losses"].tolist()]
        console.print(
            f"resuming from step {step} of {checkpoint_path(options.checkpoint_dir)}", highlight=False
        )
    elif distributed.has_checkpoint(options.checkpoint_dir) and not options.fresh:
        raise CliError(
            f"{options.checkpoint_dir} already holds a checkpoint: pass --resume to continue it, "
            "--fresh to start over, or another --checkpoint-dir"
        )
    elif options.fresh:
        distributed.remove_checkpoints(options.checkpoint_dir, ranks)

    def snapshot() -> Path:
        if ranks.distributed:
            return distributed.save(
                options.checkpoint_dir,
                step,
                trained,
                optimizer,
                scheduler,
                config,
                position=position,
                seed=options.seed,
                losses=losses,
            )
        return save_checkpoint(
            options.checkpoint_dir,
            {
                "step": step,
                "data_position": position,
                "seed": options.seed,
                "config": config_record,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state()},
                "losses": torch.tensor(losses, dtype=torch.float64),
            },
        )

    trained.train()
    report = ProgressReport(console, start=step, total=options.steps, log_every=options.log_every)
    with stop_requests() as stop, report:
        while step < options.steps:
            dense, categorical, labels = data.batch(position)
            if ranks.distributed:
                dense, categorical, labels = distributed.shard((dense, categorical, labels), ranks)
            learning_rates = group_learning_rates(optimizer, list(schedules))
            optimizer.zero_grad(set_to_none=True)
            loss = ranking_loss(trained(dense, categorical), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step, position = step + 1, position + 1
            stop_signal = stop.signal_number
            if ranks.distributed:  # every rank stops after the same step
                mean_loss, stop_signal = distributed.agree(loss.item(), stop_signal, ranks)
                losses.append(mean_loss)
            else:
                losses.append(loss.item())
            report.update(step, losses[-1], learning_rates)
            if stop_signal is not None:
                path = snapshot()
                name = signal.Signals(stop_signal).name
                raise TrainingInterruptedError(
                    f"stopped by {name} at step {step}: checkpoint written to {path}; "
                    f"continue with --resume --checkpoint-dir {options.checkpoint_dir}",
                    stop_signal,
                )
            if options.checkpoint_every and step % options.checkpoint_every == 0 and step < options.steps:
                snapshot()
    final = snapshot()
    loss_plot = options.output_dir / LOSS_PLOT
    lr_plot = options.output_dir / LR_PLOT
    if ranks.is_main:  # one set of PNGs per run
        from tml.optimizers.cli.plotting import plot_losses, plot_schedules  # matplotlib: rank 0 only

        plot_losses(losses, loss_plot, title=f"training loss ({Path(loaded.file).name})")
        plot_schedules(
            schedules,
            lr_plot,
            end=options.steps,
            title=f"learning rate per param group ({Path(loaded.file).name})",
            multipliers=scheduler.lr_multipliers,
        )
    return TrainResult(step, losses[-1] if losses else None, final, loss_plot, lr_plot)


def group_learning_rates(optimizer: torch.optim.Optimizer, names: list[str]) -> dict[str, float]:
    """The current learning rate of each named group (param groups carry their name in ``"name"``)."""
    by_name = {group.get("name"): group["lr"] for group in optimizer.param_groups}
    return {name: float(by_name[name]) for name in names if name in by_name}


def _check_resumable(state: dict[str, Any], config_record: dict[str, Any], options: TrainOptions) -> None:
    if state["config"] != config_record:
        raise CliError(
            "cannot resume: the checkpoint was written with another optimizer config "
            f"({state['config']}); resume with the same config, or start over with --fresh"
        )
    if int(state["seed"]) != options.seed:
        raise CliError(f"cannot resume: the checkpoint was written with --seed {state['seed']}")
    if int(state["step"]) > options.steps:
        raise CliError(
            f"cannot resume: the checkpoint is at step {state['step']}, beyond --steps {options.steps}"
        )


__all__ = [
    "TrainOptions",
    "TrainResult",
    "TrainingInterruptedError",
    "group_learning_rates",
    "stop_requests",
    "train",
]
