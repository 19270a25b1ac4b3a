"""Lightning: a real ``lightning.Trainer`` on CPU steps the schedule once per optimizer step."""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Any

import pytest
import torch

lightning = pytest.importorskip("lightning")  # the `integrations` extra; `make test` installs it

from lightning.pytorch.utilities.types import LRSchedulerTypeTuple  # noqa: E402

from tml.optimizers import CombinedOptimizer, LearningRate, LRShim, OptimizerConfig, compute_lr  # noqa: E402
from tml.optimizers.integrations.lightning import configure_optimizers  # noqa: E402

STEPS = 10

# Body and default group: a 3-step ramp to 0.02, then a half cosine down to 0.002 at step 8.
COSINE = {
    "linear_ramp_to_cosine": {
        "learning_rate": 0.02,
        "final_learning_rate": 0.002,
        "num_ramp_steps": 3,
        "final_num_steps": 8,
    }
}
# The head in the mixed config: SGD with 0.1 before step 2, 0.05 before step 5, then 0.01.
PIECEWISE = {
    "piecewise_constant": {"learning_rate_boundaries": [2, 5], "learning_rate_values": [0.1, 0.05, 0.01]}
}

SINGLE = {"adamw": {"weight_decay": 0.01}, "learning_rate": COSINE}
MIXED = {
    **SINGLE,
    "param_groups": [{"name": "head", "params": ["head.*"], "sgd": {"lr": 0.1}, "learning_rate": PIECEWISE}],
}


def cosine_lr(step: int) -> float:
    """The formula of COSINE, written out: ramp, half cosine, then the final value."""
    if step < 3:
        return 0.02 * step / 3
    if step < 8:
        return 0.002 + (0.02 - 0.002) * 0.5 * (1 + math.cos(math.pi * (step - 3) / (8 - 3)))
    return 0.002


def piecewise_lr(step: int) -> float:
    return [0.1, 0.05, 0.01][bisect.bisect_right([2, 5], step)]


# Group name -> (the schedule's config, the schedule written out).
EXPECTED = {"default": (COSINE, cosine_lr), "head": (PIECEWISE, piecewise_lr)}


class TinyModule(lightning.LightningModule):
    def __init__(self, config: OptimizerConfig) -> None:
        super().__init__()
        self.config = config
        self.body = torch.nn.Linear(4, 8)
        self.head = torch.nn.Linear(8, 1)
        self.batches_seen = 0

    def training_step(self, batch: list[torch.Tensor], batch_index: int) -> torch.Tensor:
        self.batches_seen += 1
        inputs, targets = batch
        return torch.nn.functional.mse_loss(self.head(torch.relu(self.body(inputs))), targets)

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.config)


class RecordLearningRates(lightning.Callback):
    """Each group's LR at every optimizer step, as the optimizer holds it when it steps."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.lrs: list[dict[str, float]] = []

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self.steps.append(trainer.global_step)
        self.lrs.append({group["name"]: float(group["lr"]) for group in optimizer.param_groups})


def loader() -> torch.utils.data.DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(96, 4, generator=generator), torch.randn(96, 1))
    return torch.utils.data.DataLoader(data, batch_size=4)


def fit(
    module: TinyModule, max_steps: int, accumulate: int = 1, ckpt_path: Path | None = None
) -> tuple[lightning.Trainer, RecordLearningRates]:
    recorder = RecordLearningRates()
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        accumulate_grad_batches=accumulate,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(module, train_dataloaders=loader(), ckpt_path=ckpt_path)
    return trainer, recorder


def assert_schedule_followed(recorder: RecordLearningRates, first_step: int, last_step: int) -> None:
    assert recorder.steps == list(range(first_step, last_step))
    for step, lrs in zip(recorder.steps, recorder.lrs, strict=True):
        for name, lr in lrs.items():
            schedule, formula = EXPECTED[name]
            assert lr == compute_lr(LearningRate.model_validate(schedule), step), (name, step)
            assert lr == pytest.approx(formula(step), rel=1e-12, abs=1e-15), (name, step)


def test_the_dict_is_what_lightning_expects() -> None:
    module = TinyModule(OptimizerConfig.model_validate(SINGLE))
    result = configure_optimizers(module, module.config)
    assert set(result) == {"optimizer", "lr_scheduler"}
    assert {key: value for key, value in result["lr_scheduler"].items() if key != "scheduler"} == {
        "interval": "step",
        "frequency": 1,
    }
    scheduler = result["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, LRShim) and isinstance(scheduler, LRSchedulerTypeTuple)
    assert scheduler.optimizer is result["optimizer"]


@pytest.mark.parametrize("config", [SINGLE, MIXED], ids=["one_algorithm", "combined_optimizer"])
@pytest.mark.parametrize("accumulate", [1, 2], ids=["no_accumulation", "accumulate_2"])
def test_trainer_lrs_follow_the_schedule_per_optimizer_step(config: dict[str, Any], accumulate: int) -> None:
    torch.manual_seed(0)
    module = TinyModule(OptimizerConfig.model_validate(config))
    trainer, recorder = fit(module, STEPS, accumulate)
    assert trainer.global_step == STEPS
    assert module.batches_seen == STEPS * accumulate
    names = {name for lrs in recorder.lrs for name in lrs}
    assert names == ({"head", "default"} if config is MIXED else {"default"})
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, CombinedOptimizer) == (config is MIXED)
    assert_schedule_followed(recorder, 0, STEPS)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == STEPS


@pytest.mark.parametrize("config", [SINGLE, MIXED], ids=["one_algorithm", "combined_optimizer"])
def test_resume_from_a_lightning_checkpoint_continues_the_schedule(
    config: dict[str, Any], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    trainer, _ = fit(TinyModule(OptimizerConfig.model_validate(config)), 4)
    trainer.save_checkpoint(tmp_path / "step4.ckpt")
    resumed, recorder = fit(
        TinyModule(OptimizerConfig.model_validate(config)), STEPS, ckpt_path=tmp_path / "step4.ckpt"
    )
    assert resumed.global_step == STEPS
    assert_schedule_followed(recorder, 4, STEPS)


@pytest.mark.parametrize("config", [SINGLE, MIXED], ids=["one_algorithm", "combined_optimizer"])
def test_learning_rate_monitor_logs_our_groups_under_their_names(
    config: dict[str, Any], tmp_path: Path
) -> None:
    import csv

    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=STEPS,
        logger=CSVLogger(tmp_path, name="run", version=0),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[LearningRateMonitor(logging_interval="step")],
    )
    trainer.fit(TinyModule(OptimizerConfig.model_validate(config)), train_dataloaders=loader())
    with (tmp_path / "run" / "version_0" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    groups = {"head", "default"} if config is MIXED else {"default"}
    columns = {column for row in rows for column, value in row.items() if column.startswith("lr-") and value}
    assert {column.rsplit("/", 1)[-1] for column in columns} == groups, columns
    for column in columns:
        logged = [(int(row["step"]), float(row[column])) for row in rows if row[column]]
        assert [step for step, _ in logged] == list(range(STEPS))
        _, formula = EXPECTED[column.rsplit("/", 1)[-1]]
        for step, lr in logged:
            assert lr == pytest.approx(formula(step), rel=1e-6), (column, step)  # the CSV keeps 6+ digits


def test_the_plateau_recipe_of_the_schedules_doc_reduces_at_the_third_validation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import re

    doc = Path(__file__).resolve().parents[2] / "docs" / "schedules.md"
    section = doc.read_text(encoding="utf-8").split("### With Lightning", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_schedules_lightning"}
    exec(compile(block, f"{doc}:lightning", "exec"), namespace)
    trainer = namespace["trainer"]
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.global_step == 8
    # Validations after steps 2, 4, 6, 8 (the sanity check's is not reported): the best value, then
    # two reports without improvement (> patience 1): a reduction at step 6, then one bad report.
    assert scheduler.plateau_state()["default"] == {
        "metric": "val_loss",
        "mode": "min",
        "best": 1.0,
        "bad_reports": 1,
        "cooldown_left": 0,
        "reductions": [6],
    }
    assert scheduler.get_last_lr() == [0.01 * 0.5]
