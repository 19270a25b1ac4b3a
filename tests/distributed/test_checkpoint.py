"""DCP checkpoints in one process: resume, damaged files, interrupted writes, another config.

The multi-process cases (other world sizes, kill -9) are in tests/distributed/test_resume.py.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import tml.optimizers.distributed.checkpoint as checkpoint_module
from tml.optimizers import (
    AdamConfig,
    LearningRate,
    LinearRampToCosine,
    LRShim,
    OptimizerConfig,
    ParamGroupConfig,
    PiecewiseConstant,
    SgdConfig,
    build_optimizer,
    compute_lr,
)
from tml.optimizers.distributed import (
    CheckpointError,
    build_zero_optimizer,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)

SCHEDULE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.05, final_learning_rate=0.001, num_ramp_steps=2, final_num_steps=30
    )
)
CONFIG = OptimizerConfig(adam=AdamConfig(lr=0.05), learning_rate=SCHEDULE)


def make_model(seed: int = 0, hidden: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: LRShim, steps: range) -> None:
    for step in steps:
        generator = torch.Generator().manual_seed(step)
        inputs, targets = torch.randn(16, 4, generator=generator), torch.randn(16, 1, generator=generator)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()


def snapshot(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Model and optimizer tensors; a ``CombinedOptimizer``'s state is read from each child."""
    state = {f"model.{name}": tensor.clone() for name, tensor in model.state_dict().items()}
    for child_index, child in enumerate(getattr(optimizer, "optimizers", [optimizer])):
        for index, values in child.state_dict()["state"].items():
            state.update(
                {f"optimizer.{child_index}.{index}.{key}": value.clone() for key, value in values.items()}
            )
    return state


def assert_identical(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A checkpoint of step 3 under tmp_path/run, and the state it holds."""
    model = make_model()
    optimizer, scheduler = build_optimizer(model, CONFIG)
    train(model, optimizer, scheduler, range(3))
    path = save_checkpoint(
        tmp_path / "run", 3, model, optimizer, scheduler, config=CONFIG, extra={"epoch": 1}
    )
    return path, snapshot(model, optimizer)


HEAD_WITH_SGD = ParamGroupConfig(
    name="head", params=["2.*"], sgd=SgdConfig(momentum=0.9), learning_rate=SCHEDULE
)

OPTIMIZERS: list[tuple[str, OptimizerConfig]] = [
    ("one torch optimizer", CONFIG),
    # Adam and SGD groups: a CombinedOptimizer, whose own state_dict layout torch's get_state_dict
    # cannot read (KeyError: 'state' before it was saved through its children).
    (
        "combined optimizer",
        OptimizerConfig(adam=AdamConfig(lr=0.05), learning_rate=SCHEDULE, param_groups=[HEAD_WITH_SGD]),
    ),
    # SGD without momentum keeps no state: torch's strict set_state_dict refused its parameters.
    (
        "combined optimizer, stateless child",
        OptimizerConfig(
            adam=AdamConfig(lr=0.05),
            learning_rate=SCHEDULE,
            param_groups=[HEAD_WITH_SGD.model_copy(update={"sgd": SgdConfig()})],
        ),
    ),
    # Flat buffers: every parameter always has a .grad (a view), so torch's get_state_dict does not
    # initialize a fresh optimizer's state, and DCP loaded none of it before the template was filled.
    ("flat buffers", OptimizerConfig(adam=AdamConfig(lr=0.05, flatten=True), learning_rate=SCHEDULE)),
]


@pytest.mark.parametrize("config", [o[1] for o in OPTIMIZERS], ids=[o[0] for o in OPTIMIZERS])
def test_resume_continues_bit_identically(tmp_path: Path, config: OptimizerConfig) -> None:
    model = make_model()
    optimizer, scheduler = build_optimizer(model, config)
    train(model, optimizer, scheduler, range(3))
    save_checkpoint(tmp_path, 3, model, optimizer, scheduler, config=config)
    saved = snapshot(model, optimizer)
    train(model, optimizer, scheduler, range(3, 8))

    resumed = make_model(seed=1)  # other initial weights: all must come from the checkpoint
    resumed_optimizer, resumed_scheduler = build_optimizer(resumed, config)
    info = load_checkpoint(
        latest_checkpoint(tmp_path), resumed, resumed_optimizer, resumed_scheduler, config=config
    )
    assert (info.step, info.world_size) == (3, 1)
    assert resumed_optimizer.param_groups[0]["lr"] == compute_lr(SCHEDULE, 3)
    assert len(saved) > len(dict(resumed.state_dict()))  # the optimizer has state to restore
    assert_identical(snapshot(resumed, resumed_optimizer), saved)
    train(resumed, resumed_optimizer, resumed_scheduler, range(3, 8))

    assert_identical(snapshot(resumed, resumed_optimizer), snapshot(model, optimizer))
    assert resumed_scheduler.get_last_lr() == scheduler.get_last_lr()
    assert resumed_scheduler.get_last_lr()[0] == compute_lr(SCHEDULE, 8)


def test_one_process_needs_no_process_group_and_hears_no_warning(tmp_path: Path) -> None:
    model = make_model()
    optimizer, scheduler = build_optimizer(model, CONFIG)
    train(model, optimizer, scheduler, range(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DCP's "assuming the intent is to save in a single process"
        path = save_checkpoint(tmp_path, 1, model, optimizer, scheduler)
        load_checkpoint(path, *fresh())
    assert not torch.distributed.is_initialized()


def test_layout_and_extra_data(saved: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = saved
    assert path == checkpoint_path(path.parent, 3) == path.parent / "step-00000003"
    manifest = verify_checkpoint(path)
    assert set(manifest["files"]) == {p.name for p in path.iterdir()} - {"manifest.json"}
    assert manifest["groups"] == [{"name": "default", "params": ["0.weight", "0.bias", "2.weight", "2.bias"]}]
    info = load_checkpoint(path, *fresh())
    assert info.extra == {"epoch": 1}


def fresh(seed: int = 1, config: OptimizerConfig = CONFIG, hidden: int = 8) -> tuple[Any, Any, Any]:
    model = make_model(seed, hidden)
    return (model, *build_optimizer(model, config))


# ---------------------------------------------------------------- damaged checkpoints


def _largest_shard(path: Path) -> Path:
    return max(path.glob("*.distcp"), key=lambda file: file.stat().st_size)


def _truncate(path: Path) -> None:
    shard = _largest_shard(path)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def _flip_a_byte_in_a_shard(path: Path) -> None:
    _flip_a_byte(_largest_shard(path))


def _flip_a_byte_in_the_metadata(path: Path) -> None:
    _flip_a_byte(path / ".metadata")


def _remove_a_shard(path: Path) -> None:
    _largest_shard(path).unlink()


def _remove_the_manifest(path: Path) -> None:
    (path / "manifest.json").unlink()


def _garble_the_manifest(path: Path) -> None:
    (path / "manifest.json").write_text("{not json")


def _manifest_of_another_format(path: Path) -> None:
    (path / "manifest.json").write_text('{"format": 99}')


def _manifest_without_files(path: Path) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["files"]
    (path / "manifest.json").write_text(json.dumps(manifest))


DAMAGES: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated shard", _truncate, r"__0_0\.distcp has \d+ bytes, \d+ were written \(truncated\?\)"),
    (
        "flipped byte in a shard",
        _flip_a_byte_in_a_shard,
        r"__0_0\.distcp does not match its SHA-256 .*\(corrupted\)",
    ),
    ("flipped byte in DCP metadata", _flip_a_byte_in_the_metadata, r"\.metadata does not match its SHA-256"),
    ("missing shard", _remove_a_shard, r"__0_0\.distcp is missing"),
    ("no manifest (interrupted)", _remove_the_manifest, r"no manifest\.json, so it is incomplete"),
    ("manifest not JSON", _garble_the_manifest, r"manifest\.json is unreadable"),
    ("manifest of another format", _manifest_of_another_format, r"has format 99, expected 1"),
    ("manifest without files", _manifest_without_files, r"manifest\.json lacks files"),
]


@pytest.mark.parametrize(("damage", "expected"), [(d[1], d[2]) for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_damaged_checkpoint_is_refused_and_nothing_is_loaded(
    saved: tuple[Path, dict[str, torch.Tensor]], damage: Callable[[Path], None], expected: str
) -> None:
    path, _ = saved
    damage(path)
    model, optimizer, scheduler = fresh()
    before = snapshot(model, optimizer)
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(path))}.*{expected}"):
        load_checkpoint(path, model, optimizer, scheduler, config=CONFIG)
    assert_identical(snapshot(model, optimizer), before)
    assert scheduler.last_epoch == 0


def test_an_interrupted_write_leaves_the_previous_checkpoint_as_latest(
    saved: tuple[Path, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, state = saved
    model, optimizer, scheduler = fresh(seed=0)
    load_checkpoint(path, model, optimizer, scheduler)
    train(model, optimizer, scheduler, range(3, 6))

    def crash(directory: Path, manifest: dict[str, Any]) -> None:
        raise OSError("disk full")  # the process dies after the shards, before the manifest

    monkeypatch.setattr(checkpoint_module, "_write_manifest", crash)
    with pytest.raises(CheckpointError, match="OSError: disk full"):
        save_checkpoint(path.parent, 6, model, optimizer, scheduler)
    assert (path.parent / ".step-00000006.tmp" / "__0_0.distcp").exists()  # the shards were written
    assert latest_checkpoint(path.parent) == path
    assert list_checkpoints(path.parent) == [path]

    model, optimizer, scheduler = fresh()
    load_checkpoint(latest_checkpoint(path.parent), model, optimizer, scheduler)
    assert_identical(snapshot(model, optimizer), state)

    monkeypatch.undo()  # the next save clears the leftover
    save_checkpoint(path.parent, 6, model, optimizer, scheduler)
    assert not (path.parent / ".step-00000006.tmp").exists()
    assert latest_checkpoint(path.parent) == checkpoint_path(path.parent, 6)


def test_a_template_with_less_optimizer_state_than_the_checkpoint_is_refused(
    saved: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, _ = saved
    model, optimizer, scheduler = fresh()
    model[0](torch.ones(1, 4)).sum().backward()  # the last layer gets no gradient: Adam keeps no state
    optimizer.step()
    before = snapshot(model, optimizer)
    expected = (
        r"does not fit this run, nothing was loaded: optimizer state in the checkpoint that this "
        r"optimizer has no entry for \(DCP would leave it out\): 2\.bias\.exp_avg, 2\.bias\.exp_avg_sq, "
        r"2\.bias\.step, 2\.weight\.exp_avg, 2\.weight\.exp_avg_sq, 2\.weight\.step$"  # no schedule hint
    )
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path, model, optimizer, scheduler, config=CONFIG)
    assert_identical(snapshot(model, optimizer), before)
    assert scheduler.last_epoch == 0


def test_keep_removes_the_oldest_and_a_step_is_replaced(tmp_path: Path) -> None:
    model, optimizer, scheduler = fresh()
    for step in range(1, 5):
        train(model, optimizer, scheduler, range(step - 1, step))
        save_checkpoint(tmp_path, step, model, optimizer, scheduler, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]
    save_checkpoint(tmp_path, 4, model, optimizer, scheduler, keep=2, extra={"again": True})
    assert json.loads((tmp_path / "step-00000004" / "manifest.json").read_text())["extra"] == {"again": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003", "step-00000004"]


def test_extra_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="extra must be JSON-serializable"):
        save_checkpoint(tmp_path, 1, *fresh(), extra={"rng": torch.get_rng_state()})
    assert not any(tmp_path.iterdir())


def test_zero_optimizer_checkpoints_are_refused(tmp_path: Path) -> None:
    torch.distributed.init_process_group("gloo", store=torch.distributed.HashStore(), rank=0, world_size=1)
    try:
        model = make_model()
        optimizer, scheduler = build_zero_optimizer(model, CONFIG)
        with pytest.raises(TypeError, match=r"ZeroRedundancyOptimizer.*not supported"):
            save_checkpoint(tmp_path, 1, model, optimizer, scheduler)
        with pytest.raises(TypeError, match=r"ZeroRedundancyOptimizer.*not supported"):
            load_checkpoint(tmp_path, model, optimizer, scheduler)
    finally:
        torch.distributed.destroy_process_group()


def test_empty_or_missing_root_has_no_checkpoint(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="no such directory"):
        verify_checkpoint(tmp_path / "step-00000001")


# ---------------------------------------------------------------- another config

OTHER_SCHEDULE = LearningRate(
    piecewise_constant=PiecewiseConstant(learning_rate_boundaries=[2], learning_rate_values=[0.02, 0.01])
)

MISFITS: list[tuple[str, OptimizerConfig, int, str]] = [
    (
        "changed schedule",
        OptimizerConfig(adam=AdamConfig(), learning_rate=OTHER_SCHEDULE),
        8,
        r"config learning_rate\.linear_ramp_to_cosine: set in the checkpoint .* absent here.*"
        r"scheduler: the checkpoint's schedules differ from this scheduler's: group 'default': "
        r".*linear_ramp_to_cosine.* in the checkpoint, .*piecewise_constant.* here.*"
        r"pass reset_schedule=True",
    ),
    (
        "changed hyperparameter",
        OptimizerConfig(adam=AdamConfig(lr=0.05, eps=1e-8), learning_rate=SCHEDULE),
        8,
        r"config adam\.eps: 1e-07 in the checkpoint, 1e-08 here",
    ),
    (
        "other algorithm",
        OptimizerConfig(sgd=SgdConfig(lr=0.05), learning_rate=SCHEDULE),
        8,
        r"config adam: set in the checkpoint .* absent here; config sgd: absent in the checkpoint",
    ),
    (
        "other parameters",
        CONFIG,
        16,
        r"tensor '0\.weight': shape \[8, 4\] in the checkpoint, \[16, 4\] here; "
        r"tensor '0\.bias': shape \[8\] in the checkpoint, \[16\] here",
    ),
]


@pytest.mark.parametrize(
    ("config", "hidden", "expected"), [m[1:] for m in MISFITS], ids=[m[0] for m in MISFITS]
)
def test_checkpoint_of_another_config_is_refused_with_what_differs(
    saved: tuple[Path, dict[str, torch.Tensor]], config: OptimizerConfig, hidden: int, expected: str
) -> None:
    path, _ = saved
    model, optimizer, scheduler = fresh(config=config, hidden=hidden)
    before = snapshot(model, optimizer)
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path, model, optimizer, scheduler, config=config)
    assert_identical(snapshot(model, optimizer), before)


def test_other_group_names_are_refused(saved: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = saved
    model = make_model()
    optimizer = torch.optim.Adam([{"params": model.parameters(), "name": "backbone"}], lr=0.05, eps=1e-7)
    scheduler = LRShim(optimizer, {"backbone": SCHEDULE})
    expected = (
        r"param groups \['default' \(4 params\)\] in the checkpoint, \['backbone' \(4 params\)\] here; "
        r"scheduler: the checkpoint's groups differ from this scheduler's: groups \['default'\] in the "
        r"checkpoint, \['backbone'\] here$"
    )
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path, model, optimizer, scheduler, reset_schedule=True)


@pytest.mark.parametrize("schedule_step", [0, 5])
def test_reset_schedule_keeps_model_and_optimizer_and_positions_the_new_schedule(
    saved: tuple[Path, dict[str, torch.Tensor]], schedule_step: int
) -> None:
    path, state = saved
    config = OptimizerConfig(adam=AdamConfig(), learning_rate=OTHER_SCHEDULE)
    model, optimizer, scheduler = fresh(config=config)
    info = load_checkpoint(
        path, model, optimizer, scheduler, config=config, reset_schedule=True, schedule_step=schedule_step
    )
    assert info.step == 3
    assert_identical(snapshot(model, optimizer), state)
    assert scheduler.last_epoch == schedule_step
    assert optimizer.param_groups[0]["lr"] == compute_lr(OTHER_SCHEDULE, schedule_step)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == compute_lr(OTHER_SCHEDULE, schedule_step + 1)


def test_reset_schedule_still_refuses_other_hyperparameters(
    saved: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, _ = saved
    config = OptimizerConfig(adam=AdamConfig(eps=1e-8), learning_rate=OTHER_SCHEDULE)
    with pytest.raises(CheckpointError, match=r"adam\.eps: 1e-07 in the checkpoint, 1e-08 here") as error:
        load_checkpoint(path, *fresh(config=config), config=config, reset_schedule=True)
    assert "learning_rate" not in str(error.value) and "adam.lr" not in str(error.value)


def test_negative_schedule_step_is_refused(saved: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = saved
    with pytest.raises(ValueError, match="schedule_step must be >= 0, got -1"):
        load_checkpoint(path, *fresh(), reset_schedule=True, schedule_step=-1)
