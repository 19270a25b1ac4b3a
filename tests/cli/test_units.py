"""The CLI's building blocks in process: examples, generated docs, groups, suggestions, signals."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
import torch
import yaml

from tml.core.config.suggestions import models_at, suggest_key, valid_keys
from tml.optimizers import build_optimizer, compute_lr
from tml.optimizers.cli import docgen
from tml.optimizers.cli.errors import UsageError
from tml.optimizers.cli.groups import group_schedules
from tml.optimizers.cli.loading import find_key, load_optimizer_config
from tml.optimizers.cli.plotting import sample_steps
from tml.optimizers.cli.summary import default_end, milestone_steps, schedule_facts
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
from tml.optimizers.schedules import schedule_milestones

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


# ---------------------------------------------------------------- several groups (as param groups will give)


def test_show_and_plot_draw_every_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from matplotlib.image import imread

    from tml.optimizers.cli import main as cli_main

    groups = {"backbone": COSINE, "towers.engagement": RAMP, "embeddings": PIECES}
    monkeypatch.setattr(cli_main, "group_schedules", lambda config: groups)
    monkeypatch.setenv("COLUMNS", "200")
    config = tmp_path / "config.yaml"
    config.write_text("optimizer:\n  sgd: {lr: 0.1}\n")

    assert cli_main.main(["show", str(config)]) == 0
    rows = [
        line.strip("│").split("│") for line in capsys.readouterr().out.splitlines() if line.startswith("│")
    ]
    assert [int(row[0]) for row in rows] == [0, 5, 8, 30, 50, 300]
    for row in rows:
        for cell, schedule in zip(row[1:4], groups.values(), strict=True):
            assert float(cell) == pytest.approx(compute_lr(schedule, int(row[0])), rel=1e-5)
    assert rows[1][4].strip() == "embeddings"  # step 5 is a phase boundary of the embeddings only

    assert cli_main.main(["validate", str(config)]) == 0
    summary = capsys.readouterr().out
    assert "3 param group(s)" in summary and "towers.engagement" in summary

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
