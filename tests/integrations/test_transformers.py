"""HF transformers: `Trainer(optimizers=build_optimizer(model, config))` follows the schedule per step."""

from __future__ import annotations

import bisect
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

# No download: the model is built from a config object and randomly initialised.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")  # the `integrations` extra; `make test` installs it

from tml.optimizers import CombinedOptimizer, LearningRate, OptimizerConfig, build_optimizer, compute_lr  # noqa: E402

STEPS = 8

# Default groups: a 2-step ramp to 1e-3, then a half cosine down to 1e-4 at step 6.
COSINE = {
    "linear_ramp_to_cosine": {
        "learning_rate": 1e-3,
        "final_learning_rate": 1e-4,
        "num_ramp_steps": 2,
        "final_num_steps": 6,
    }
}
# The classifier: SGD with 0.1 before step 3, then 0.01.
PIECEWISE = {"piecewise_constant": {"learning_rate_boundaries": [3], "learning_rate_values": [0.1, 0.01]}}
CONFIG = {
    "adamw": {"weight_decay": 0.01},
    "learning_rate": COSINE,
    "exclude_from_weight_decay": ["bias", "norm"],
    "param_groups": [
        {"name": "classifier", "params": ["classifier.*"], "sgd": {"lr": 0.1}, "learning_rate": PIECEWISE}
    ],
}


def cosine_lr(step: int) -> float:
    """The formula of COSINE, written out: ramp, half cosine, then the final value."""
    if step < 2:
        return 1e-3 * step / 2
    if step < 6:
        return 1e-4 + (1e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (step - 2) / (6 - 2)))
    return 1e-4


def piecewise_lr(step: int) -> float:
    return [0.1, 0.01][bisect.bisect_right([3], step)]


# Group name (without the ".no_weight_decay" companion suffix) -> (schedule config, formula).
EXPECTED = {"default": (COSINE, cosine_lr), "classifier": (PIECEWISE, piecewise_lr)}


class RecordLearningRates(transformers.TrainerCallback):
    """Each group's LR right before every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.lrs: list[dict[str, float]] = []

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.steps.append(state.global_step)
        self.lrs.append({group["name"]: float(group["lr"]) for group in kwargs["optimizer"].param_groups})


def tiny_bert() -> Any:
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    return transformers.BertForSequenceClassification(config)


def dataset(size: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "input_ids": torch.randint(0, 50, (8,), generator=generator),
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": torch.randint(0, 2, (), generator=generator),
        }
        for _ in range(size)
    ]


@pytest.mark.parametrize("accumulate", [1, 2], ids=["no_accumulation", "accumulate_2"])
def test_trainer_lrs_follow_the_schedule_per_optimizer_step(accumulate: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tiny_bert()
    optimizer, scheduler = build_optimizer(model, OptimizerConfig.model_validate(CONFIG))
    assert isinstance(optimizer, CombinedOptimizer)  # AdamW for BERT, SGD for the classifier
    recorder = RecordLearningRates()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulate,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=dataset(4 * STEPS * accumulate),
        optimizers=(optimizer, scheduler),
        callbacks=[recorder],
    )
    trainer.train()

    assert trainer.lr_scheduler is scheduler  # the Trainer made none of its own
    assert trainer.state.global_step == STEPS
    assert scheduler.last_epoch == STEPS
    assert recorder.steps == list(range(STEPS))
    names = set(recorder.lrs[0])
    assert names == {"classifier", "classifier.no_weight_decay", "default", "default.no_weight_decay"}
    for step, lrs in zip(recorder.steps, recorder.lrs, strict=True):
        for name, lr in lrs.items():
            schedule, formula = EXPECTED[name.removesuffix(".no_weight_decay")]
            assert lr == compute_lr(LearningRate.model_validate(schedule), step), (name, step)
            assert lr == pytest.approx(formula(step), rel=1e-12, abs=1e-15), (name, step)
