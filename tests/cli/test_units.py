"""The CLI's building blocks in process: examples, generated docs, groups, suggestions, signals."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tml.core.config.suggestions import models_at, suggest_key, valid_keys
from tml.optimizers import build_optimizer, compute_lr
from tml.optimizers.cli import docgen
from tml.optimizers.cli.errors import UsageError
from tml.optimizers.cli.groups import UNCLAIMED, group_schedules, rule_rows
from tml.optimizers.cli.loading import (
    LoadedConfig,
    LoadedSchedules,
    find_key,
    load_config_or_schedules,
    load_optimizer_config,
)
from tml.optimizers.cli.plotting import log_axis_limits, sample_steps, wants_log_axis
from tml.optimizers.cli.summary import default_end, final_step, milestone_steps, schedule_facts
from tml.optimizers.config import (
    AdamConfig,
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    OptimizerConfig,
    PiecewiseConstant,
    SgdConfig,
)
from tml.optimizers.demo.model import TASKS, ModelShape, RankingModel, SyntheticRankingData, ranking_loss
from tml.optimizers.demo.trainer import stop_requests
from tml.optimizers.describe import describe_param_groups
from tml.optimizers.schedules import SCHEDULES, schedule_milestones

ROOT = Path(__file__).resolve().parents[2]
# The optimizer configs among the examples (schedules.yaml holds bare schedules, one per key); those
# with embedding_tables need a sharded torchrec model: tests/tables/test_example.py trains them.
EXAMPLES = sorted(
    path
    for path in (ROOT / "examples").glob("*.yaml")
    if "optimizer" in (document := yaml.safe_load(path.read_text()))
    and "embedding_tables" not in document["optimizer"]
)


# ---------------------------------------------------------------- (f) every example loads, builds and steps


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_loads_builds_and_steps(path: Path) -> None:
    loaded = load_optimizer_config(path)
    schedules = group_schedules(loaded.config)
    torch.manual_seed(0)
    shape = ModelShape()
    model = RankingModel(shape)
    data = SyntheticRankingData(shape, seed=0, batch_size=64)
    optimizer, scheduler = build_optimizer(model, loaded.config)
    specs = {spec.name: spec for spec in loaded.config.group_specs()}
    assert set(schedules) == set(specs)
    for step in range(5):
        for group in optimizer.param_groups:
            # a companion group ("<group>.no_weight_decay") follows its group's schedule
            spec = specs.get(group["name"]) or specs[group["name"].rsplit(".", 1)[0]]
            expected = spec.lr_multiplier * compute_lr(spec.schedule, step)
            assert group["lr"] == pytest.approx(expected, rel=1e-12, abs=0.0)
        dense, categorical, labels = data.batch(step)
        optimizer.zero_grad()
        loss = ranking_loss(model(dense, categorical), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        assert math.isfinite(loss.item())


def test_examples_exist() -> None:
    assert any(path.name == "cli_demo.yaml" for path in EXAMPLES)


# ---------------------------------------------------------------- generated docs


def test_generated_docs_are_up_to_date() -> None:
    for relative, text in docgen.generated_files().items():
        path = ROOT / relative
        assert path.exists() and path.read_text(encoding="utf-8") == text, (
            f"{relative} is stale: run python -m tml.optimizers.cli.docgen"
        )


def test_config_doc_covers_every_field() -> None:
    text = docgen.render_config_doc()
    for model in docgen.config_classes():
        assert f"## {model.__name__}" in text
        for name, field in model.model_fields.items():
            assert f"| `{name}` |" in text
            assert field.description, f"{model.__name__}.{name} has no description"


def test_docgen_check_mode(tmp_path: Path) -> None:
    assert docgen.main(["--root", str(tmp_path), "--check"]) == 1
    assert docgen.main(["--root", str(tmp_path)]) == 0
    assert docgen.main(["--root", str(tmp_path), "--check"]) == 0


# ---------------------------------------------------------------- groups and summaries

COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.2, final_learning_rate=0.02, num_ramp_steps=30, final_num_steps=300
    )
)
RAMP = LearningRate(linear_ramp_to_constant=LinearRampToConstant(learning_rate=0.5, num_ramp_steps=8))
PIECES = LearningRate(
    piecewise_constant=PiecewiseConstant(
        learning_rate_boundaries=[5, 50], learning_rate_values=[0.3, 0.1, 0.01]
    )
)


def test_group_schedules_today_is_one_default_group() -> None:
    config = OptimizerConfig(adam=AdamConfig(), learning_rate=COSINE)
    assert group_schedules(config) == {"default": COSINE}
    assert group_schedules(OptimizerConfig(sgd=SgdConfig(lr=0.5))) == {"default": LearningRate(constant=0.5)}


@pytest.mark.parametrize(
    ("schedule", "kind", "lowest", "peak", "warmup"),
    [
        (COSINE, "linear_ramp_to_cosine", 0.0, 0.2, 30),  # peak reached at the end of the ramp
        (RAMP, "linear_ramp_to_constant", 0.0, 0.5, 8),
        (PIECES, "piecewise_constant", 0.01, 0.3, 0),  # starts at its peak: no warmup
        (LearningRate(constant=0.7), "constant", 0.7, 0.7, 0),
    ],
)
def test_schedule_facts(schedule: LearningRate, kind: str, lowest: float, peak: float, warmup: int) -> None:
    facts = schedule_facts(schedule)
    assert (facts.kind, facts.lowest, facts.peak, facts.warmup_steps) == (kind, lowest, peak, warmup)
    assert facts.milestones == sorted(schedule_milestones(schedule))


# Each kind's total length, from its fields: (the schedule, the step from which it holds its final
# value or None when it keeps changing, why).
FINAL_STEPS: list[tuple[dict[str, Any], int | None, str]] = [
    ({"constant": 0.1}, 0, "constant from the start"),
    ({"linear": {"start_learning_rate": 0.0, "end_learning_rate": 1.0, "steps": 10}}, 10, "steps"),
    ({"piecewise_linear": {"boundaries": [0, 10, 20], "values": [0.0, 1.0, 0.5]}}, 20, "last point"),
    (
        {"cosine_decay": {"learning_rate": 1.0, "warmup_steps": 100, "decay_steps": 900}},
        100 + 900,
        "decay_steps count after the warmup",
    ),
    (
        {"polynomial_decay": {"learning_rate": 1.0, "warmup_steps": 5, "decay_steps": 50}},
        5 + 50,
        "warmup + decay",
    ),
    (
        {
            "exponential_decay": {
                "learning_rate": 1.0,
                "decay_rate": 0.5,
                "decay_steps": 10,
                "final_learning_rate": 0.2,
            }
        },
        math.ceil(10 * math.log2(1.0 / 0.2)),
        "the first t with 0.5 ** (t / 10) <= 0.2: not a phase boundary",
    ),
    (
        {
            "exponential_decay": {
                "learning_rate": 1.0,
                "decay_rate": 0.5,
                "decay_steps": 10,
                "staircase": True,
                "final_learning_rate": 0.2,
            }
        },
        10 * math.ceil(math.log2(1.0 / 0.2)),
        "the first stair at or below the floor, before the stairs listed as boundaries end",
    ),
    ({"multistep_decay": {"learning_rate": 1.0, "milestones": [30, 60], "gamma": 0.1}}, 60, "last milestone"),
    (
        {
            "anneal": {
                "schedule": {"inverse_sqrt": {"learning_rate": 1.0, "warmup_steps": 10, "timescale": 10}},
                "start_step": 100,
                "steps": 50,
                "final_learning_rate": 0.0,
            }
        },
        100 + 50,
        "an anneal ends a schedule that decays for ever",
    ),
    (
        {"inverse_sqrt": {"learning_rate": 1.0, "warmup_steps": 100, "timescale": 100}},
        None,
        "decays for ever",
    ),
    (
        {
            "warmup_stable_decay": {
                "learning_rate": 1.0,
                "warmup_steps": 10,
                "stable_steps": 100,
                "decay_steps": 50,
            }
        },
        10 + 100 + 50,
        "warmup + stable + decay",
    ),
    ({"cosine_with_restarts": {"learning_rate": 1.0, "first_cycle_steps": 100}}, None, "restarts for ever"),
    (
        {"cosine_with_restarts": {"learning_rate": 1.0, "first_cycle_steps": 100, "cycle_decay": 0.5}},
        None,
        "cycles that fade but never end",
    ),
    ({"one_cycle": {"max_learning_rate": 1.0, "total_steps": 100}}, 100 - 1, "torch's last step, total - 1"),
    ({"cyclic": {"base_learning_rate": 0.1, "max_learning_rate": 1.0, "step_size_up": 10}}, None, "cycles"),
    (
        {
            "piecewise_constant": {
                "learning_rate_boundaries": [5, 50],
                "learning_rate_values": [0.3, 0.1, 0.01],
            }
        },
        50,
        "last boundary",
    ),
    (
        {
            "piecewise_constant": {
                "learning_rate_boundaries": [5, 50],
                "learning_rate_values": [0.3, 0.1, 0.1],
            }
        },
        5,
        "the last two values are equal: final from the first boundary",
    ),
    ({"linear_ramp_to_constant": {"learning_rate": 1.0, "num_ramp_steps": 10}}, 10, "the ramp"),
    (
        {
            "linear_ramp_to_cosine": {
                "learning_rate": 1.0,
                "final_learning_rate": 0.0,
                "num_ramp_steps": 10,
                "final_num_steps": 10**6,
            }
        },
        10**6,
        "final_num_steps is an absolute step",
    ),
    (
        {
            "sequence": [
                {
                    "steps": 500,
                    "schedule": {
                        "linear": {"start_learning_rate": 0.0, "end_learning_rate": 1.0, "steps": 500}
                    },
                },
                {"steps": 2000, "schedule": {"constant": 1.0}},
                {
                    "schedule": {
                        "multistep_decay": {"learning_rate": 1.0, "milestones": [100, 300], "gamma": 0.1}
                    }
                },
            ]
        },
        500 + 2000 + 300,
        "the phases' steps, then the last phase's last milestone",
    ),
]


@pytest.mark.parametrize(("data", "expected", "why"), FINAL_STEPS, ids=[row[2] for row in FINAL_STEPS])
def test_final_step_is_the_total_length_of_the_schedule(
    data: dict[str, Any], expected: int | None, why: str
) -> None:
    schedule = LearningRate.model_validate(data)
    assert final_step(schedule) == expected, why
    if expected is not None:  # it holds its value from there, and not one step earlier
        final = compute_lr(schedule, expected)
        assert all(compute_lr(schedule, step) == final for step in (expected + 1, 2 * expected + 3, 10**12))
        assert expected == 0 or compute_lr(schedule, expected - 1) != final


def test_final_steps_cover_every_schedule_kind() -> None:
    covered = {next(iter(data)) for data, _, _ in FINAL_STEPS}
    assert covered == {entry.key for entry in SCHEDULES.values()}


def test_rule_rows_list_every_rule_companion_and_the_unclaimed_parameters() -> None:
    config = OptimizerConfig.model_validate(
        {
            "adamw": {"lr": 0.001, "weight_decay": 0.05},
            "exclude_from_weight_decay": ["bias", "norm"],
            "param_groups": [
                {
                    "name": "head",
                    "params": ["head.*", "re:^out"],
                    "lr_multiplier": 10.0,
                    "exclude_from_weight_decay": [],
                },
                {"name": "emb", "params": ["emb*"], "sgd": {"lr": 0.1}},
                {
                    "name": "tables",
                    "params": ["tables.*"],
                    "adagrad": {"lr": 0.1},
                    "exclude_from_weight_decay": ["1d"],
                },
            ],
        }
    )
    rows = [
        (
            row.group,
            row.parameters,
            row.algorithm.key,
            row.weight_decay,
            row.lr_multiplier,
            row.made_for_any_model,
        )
        for row in rule_rows(config)
    ]
    assert rows == [
        ("head", "head.*, re:^out", "adamw", 0.05, 10.0, True),  # no exclusions: no companion
        ("emb", "emb*", "sgd", 0.0, 1.0, True),
        ("emb.no_weight_decay", "emb's parameters matching: bias, norm", "sgd", 0.0, 1.0, False),
        ("tables", "tables.*", "adagrad", 0.0, 1.0, True),
        ("tables.no_weight_decay", "tables's parameters matching: 1d", "adagrad", 0.0, 1.0, False),
        ("default", UNCLAIMED, "adamw", 0.05, 1.0, False),  # a group only if parameters are left
        ("default.no_weight_decay", "default's parameters matching: bias, norm", "adamw", 0.0, 1.0, False),
    ]
    # What a model gives: the same names, less the groups no parameter falls in.
    model = torch.nn.ModuleDict(
        {
            "head": torch.nn.Linear(2, 2),
            "out": torch.nn.Linear(2, 1),
            "emb": torch.nn.Embedding(3, 2),
            "tables": torch.nn.Linear(2, 2),
        }
    )
    built = [group.name for group in describe_param_groups(model, config)]
    assert built == ["head", "emb", "tables", "tables.no_weight_decay"]
    assert set(built) <= {row[0] for row in rows}
    # Without rules, the unclaimed group holds every parameter: it exists for any model.
    (only,) = rule_rows(OptimizerConfig.model_validate({"sgd": {"lr": 0.1}}))
    assert (only.group, only.made_for_any_model, only.weight_decay) == ("default", True, 0.0)
    # recap's towers are rules; the backbone is the group of the parameters they leave.
    recap = OptimizerConfig.model_validate(
        {
            "adam": {"lr": 0.1},
            "multi_task_learning_rates": {
                "tower_learning_rates": {"is_clicked": {"constant": 0.2}},
                "backbone_learning_rate": {"constant": 0.3},
            },
        }
    )
    assert [(row.group, row.parameters) for row in rule_rows(recap)] == [
        ("is_clicked", r"re:\.is_clicked\."),  # names holding '.is_clicked.' (recap's towers)
        ("backbone", UNCLAIMED),
    ]


def test_piecewise_rising_to_its_peak_counts_as_warmup() -> None:
    rising = LearningRate(
        piecewise_constant=PiecewiseConstant(
            learning_rate_boundaries=[10, 20], learning_rate_values=[0.1, 1.0, 0.5]
        )
    )
    assert schedule_facts(rising).warmup_steps == 10


def test_milestone_steps_and_default_end() -> None:
    assert milestone_steps([COSINE, PIECES], None) == [0, 5, 30, 50, 300]
    assert milestone_steps([COSINE, PIECES], 40) == [0, 5, 30, 40]
    assert default_end([COSINE, PIECES]) == 300 + 30
    assert default_end([LearningRate(constant=1.0)]) == 1000
    assert default_end([LearningRate(constant=1.0), COSINE]) == 300 + 30


def test_the_default_range_shows_schedules_without_an_end_past_their_warmup() -> None:
    def schedule(data: dict[str, Any]) -> LearningRate:
        return LearningRate.model_validate(data)

    warmed = schedule({"inverse_sqrt": {"learning_rate": 1.0, "warmup_steps": 400, "timescale": 400}})
    assert default_end([warmed]) == 10 * 400  # 10 times its warmup
    assert default_end([warmed, COSINE]) == 10 * 400
    # Without a warmup: where sqrt(tau / (t + tau)) reaches 1/10, t = 99 tau (to a rounding).
    bare = schedule({"inverse_sqrt": {"learning_rate": 1.0, "timescale": 500}})
    assert default_end([bare]) in (99 * 500, 99 * 500 + 1)
    # exponential_decay without a floor: 0.5 ** (t / 1000) = 1/10 at t = 1000 log2(10).
    halving = schedule({"exponential_decay": {"learning_rate": 1.0, "decay_rate": 0.5, "decay_steps": 1000}})
    assert default_end([halving]) == math.ceil(1000 * math.log2(10))
    # Cycles: the listed ones, plus 10%.
    cycles = schedule({"cyclic": {"base_learning_rate": 0.1, "max_learning_rate": 1.0, "step_size_up": 10}})
    last = max(schedule_milestones(cycles))
    assert default_end([cycles]) == last + last // 10
    # With a floor the decay ends where it reaches it: 0.5 ** (t / 10) <= 0.25 from t = 20.
    floored = schedule(
        {
            "exponential_decay": {
                "learning_rate": 1.0,
                "decay_rate": 0.5,
                "decay_steps": 10,
                "final_learning_rate": 0.25,
            }
        }
    )
    assert default_end([floored]) == 20 + 2


def test_the_log_axis_follows_the_peaks_and_stops_below_the_final_values() -> None:
    steps = torch.arange(0, 1001, dtype=torch.float64)
    sgd = torch.full_like(steps, 0.01)
    ramp = 1e-4 * torch.clamp(steps / 100, max=1.0)  # a warmup to 1e-4, then held
    decay = 1e-3 * torch.clamp(1 - steps / 500, min=0.0) + 1e-5  # to 1e-5 at 500
    to_zero = 1e-3 * torch.clamp(1 - steps / 800, min=0.0) ** 3  # to 0 at 800, through 2e-12
    # Peaks 0.01 and 1e-3: 10x, linear; 0.01 and 1e-4: 100x, not more, linear; 0.01 and 5e-5: log.
    assert not wants_log_axis([sgd, decay]) and not wants_log_axis([sgd, ramp])
    assert wants_log_axis([sgd, 0.5 * ramp])
    assert not wants_log_axis([to_zero])  # a decay to 0 alone does not make it logarithmic
    # Down to the lowest value after a peak (the decay's final 1e-5, not the ramp's first 1e-6)...
    assert log_axis_limits([sgd, ramp, decay]) == pytest.approx((1e-5 / 1.5, 0.01 * 1.5))
    # ... but not more than 1000x below the lowest peak (a decay to 0 leaves through the bottom)...
    assert log_axis_limits([sgd, to_zero]) == pytest.approx((1e-3 / 1000 / 1.5, 0.01 * 1.5))
    # ... and a curve still rising at the end shows its whole warmup (from its first positive value).
    assert log_axis_limits([sgd, ramp[:50]]) == pytest.approx((1e-6 / 1.5, 0.01 * 1.5))
    assert log_axis_limits([torch.zeros(5)]) is None


def test_sample_steps_keeps_every_boundary_of_a_long_schedule() -> None:
    long = LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=1.0, final_learning_rate=0.0, num_ramp_steps=12_345, final_num_steps=10**9
        )
    )
    steps = sample_steps(10**9, [long])
    assert steps[0] == 0 and steps[-1] == 10**9
    assert {12_344, 12_345} <= set(steps.tolist())
    assert bool((steps[1:] > steps[:-1]).all())


# ---------------------------------------------------------------- suggestions and loading


def test_models_and_keys_along_a_path() -> None:
    assert [model.__name__ for model in models_at(OptimizerConfig, ("adam", "lr"))] == ["LearningRate"]
    assert valid_keys(OptimizerConfig, ("learning_rate",)) == list(LearningRate.model_fields)
    assert (
        valid_keys(OptimizerConfig, ("learning_rate", "piecewise_constant", "learning_rate_values", 0)) == []
    )
    assert suggest_key(OptimizerConfig, ("sgd", "momentun")) == "momentum"
    assert suggest_key(OptimizerConfig, ("learning_rate", "linear_ramp_to_cosin")) == "linear_ramp_to_cosine"
    assert suggest_key(OptimizerConfig, ("sgd", 0)) is None


def test_find_key(tmp_path: Path) -> None:
    from tml.core.config import YamlDocument

    assert find_key(YamlDocument.parse("sgd: {lr: 1}")) is None
    assert find_key(YamlDocument.parse("optimizer: {sgd: {lr: 1}}")) == "optimizer"
    assert (
        find_key(YamlDocument.parse("model: {optimizer: {sgd: {lr: 1}}, optimizer_x: 1}"))
        == "model.optimizer"
    )
    with pytest.raises(UsageError, match=r"several optimizer configs \(a.optimizer, b.optimizer\)"):
        find_key(YamlDocument.parse("a: {optimizer: 1}\nb: {optimizer: 2}"))
    assert find_key(YamlDocument.parse("adma: {lr: 1}")) is None  # a typo'd document: reported as such
    with pytest.raises(
        UsageError, match=r"give the config's key with --key \(keys that may hold one: m.x_optimizer\)"
    ):
        find_key(YamlDocument.parse("run: {steps: 1}\nm: {x_optimizer: {sgd: {lr: 1}}}"))


def test_files_of_bare_schedules_are_told_from_optimizer_configs(tmp_path: Path) -> None:
    from tml.core.config import ConfigError

    def load(text: str, key: str | None = None) -> object:
        path = tmp_path / "file.yaml"
        path.write_text(text)
        return load_config_or_schedules(path, key)

    schedules = load("a: {constant: 0.1}\nb: {cosine_decay: {learning_rate: 0.1, decay_steps: 10}}\n")
    assert isinstance(schedules, LoadedSchedules) and list(schedules.schedules) == ["a", "b"]
    assert schedules.schedules["a"] == LearningRate(constant=0.1)
    # An optimizer config is never taken for schedules: a key of the document is a config field...
    assert isinstance(load("learning_rate: {constant: 0.1}\nsgd: {}\n"), LoadedConfig)
    with pytest.raises(ConfigError, match=r"exactly one of"):  # ... even with its algorithm forgotten
        load("learning_rate: {constant: 0.1}\n")
    # ... or a value is not a schedule (under optimizer:, the config is found as before).
    assert isinstance(load("optimizer: {sgd: {lr: 0.1}}\nwarm: {constant: 0.1}\n"), LoadedConfig)
    with pytest.raises(UsageError, match=r"no key named 'optimizer'"):
        load("a: {constant: 0.1}\nrun: {steps: 10}\n")
    # A key may name one schedule, or a mapping of them; a typo'd kind is reported as such.
    one = load("runs:\n  short: {constant: 0.1}\n  long: {constant: 0.2}\n", key="runs.long")
    assert isinstance(one, LoadedSchedules) and one.schedules == {"long": LearningRate(constant=0.2)}
    under = load("runs:\n  short: {constant: 0.1}\n  long: {constant: 0.2}\n", key="runs")
    assert isinstance(under, LoadedSchedules) and list(under.schedules) == ["short", "long"]
    with pytest.raises(ConfigError, match=r"a.cosine_decy: .*did you mean 'cosine_decay'"):
        load("a: {cosine_decy: {learning_rate: 0.1, decay_steps: 10}}\n")


# ---------------------------------------------------------------- signals (checkpoints: tests/demo)


def test_stop_requests_restore_the_previous_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_requests() as request:
        signal.raise_signal(signal.SIGTERM)
        assert request.signal_number == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_tower_names_match_param_group_globs() -> None:
    import fnmatch

    names = [name for name, _ in RankingModel(ModelShape()).named_parameters()]
    for task in TASKS:
        assert fnmatch.filter(names, f"towers.{task}.*")
    assert fnmatch.filter(names, "*embedding*") and fnmatch.filter(names, "backbone.*")


def test_data_stream_is_a_function_of_the_seed_and_position() -> None:
    shape = ModelShape()
    first, second = SyntheticRankingData(shape, seed=3), SyntheticRankingData(shape, seed=3)
    later = first.batch(1234)
    first.batch(0)
    for left, right in zip(second.batch(1234), later, strict=True):
        assert torch.equal(left, right)
    assert not torch.equal(first.batch(7)[0], first.batch(8)[0])
    assert not torch.equal(SyntheticRankingData(shape, seed=4).batch(7)[0], first.batch(7)[0])


# ---------------------------------------------------------------- several groups


def test_show_validate_and_plot_draw_every_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from matplotlib.image import imread

    from tml.optimizers.cli import main as cli_main

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "optimizer": {
                    "sgd": {},
                    "learning_rate": PIECES.model_dump(exclude_none=True),
                    "param_groups": [
                        {
                            "name": "backbone",
                            "params": ["backbone.*"],
                            "learning_rate": COSINE.model_dump(exclude_none=True),
                        },
                        {
                            "name": "towers.engagement",
                            "params": ["towers.*"],
                            "learning_rate": RAMP.model_dump(exclude_none=True),
                        },
                    ],
                }
            }
        )
    )
    groups = {"backbone": COSINE, "towers.engagement": RAMP, "default": PIECES}

    assert cli_main.main(["show", str(config)]) == 0
    rows = [
        line.strip("│").split("│") for line in capsys.readouterr().out.splitlines() if line.startswith("│")
    ]
    steps, final, total = rows[:-2], rows[-2], rows[-1]
    assert [int(row[0]) for row in steps] == [0, 5, 8, 30, 50, 300]
    for row in steps:
        for cell, schedule in zip(row[1:4], groups.values(), strict=True):
            assert float(cell) == pytest.approx(compute_lr(schedule, int(row[0])), rel=1e-5)
    assert steps[1][4].strip() == "default"  # step 5 is a phase boundary of the default group only
    # Where each LR ends: the cosine at final_num_steps, the ramp at num_ramp_steps, the pieces at
    # their last boundary; and the values they hold from there.
    assert [cell.strip() for cell in total[:4]] == ["from step", "300", "8", "50"]
    assert [float(cell) for cell in final[1:4]] == pytest.approx([0.02, 0.5, 0.01], rel=1e-9)

    assert cli_main.main(["validate", str(config)]) == 0
    summary = capsys.readouterr().out
    assert all(name in summary for name in groups)

    assert cli_main.main(["plot", str(config), "-o", str(tmp_path / "groups.png")]) == 0
    assert imread(tmp_path / "groups.png").shape[:2] == (500, 1000)


@pytest.mark.parametrize("command", ["validate", "show", "plot", "groups", "schema", "list", "train"])
def test_every_command_s_help_has_an_example_that_needs_no_file_of_this_repository(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tml.optimizers.cli.main import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"Example: tml-optim {command}" in text
    assert "docs/" not in text and "examples/" not in text


def test_a_folder_or_fifo_is_not_called_missing(tmp_path: Path) -> None:
    # Before, both were "no such file".
    from tml.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"it is a folder, not a regular file"):
        load_optimizer_config(tmp_path)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"it is a FIFO \(named pipe\), not a regular file"):
        load_optimizer_config(fifo)
    with pytest.raises(UsageError, match=r"absent.yaml: no such file"):
        load_optimizer_config(tmp_path / "absent.yaml")
