"""DCP checkpoints of the table groups' fused state: resume bit-identical on 1 and 2 gloo ranks,
under the resume contract."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
from tests.distributed.launch import run
from tests.tables.resume_run import CONFIG, SAVE_AT, build, check_resume, train
from tests.tables.table_models import gloo_world

from tml.optimizers import ResumeError, ResumeWarning, load_optimizer_state
from tml.optimizers.tables.checkpoint import load_table_checkpoint, save_table_checkpoint

HERE = Path(__file__).resolve().parent


def test_resume_is_bit_identical_on_one_rank(tmp_path: Path) -> None:
    with gloo_world():
        compared = check_resume(tmp_path / "checkpoint")
    # the model: head weight and bias, three tables; the optimizer: row-wise Adagrad's momentum of user
    # and item, Adam's exp_avg, exp_avg_sq and step of the head's two parameters (SGD keeps none)
    assert compared == 5 + 2 + 6


def test_resume_is_bit_identical_on_two_ranks(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint"
    run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(HERE / "resume_run.py"),
            str(checkpoint),
        ],
        timeout=150,
    )
    counts = [int((checkpoint / f"ok-{rank}").read_text()) for rank in range(2)]
    assert all(count >= 5 + 6 for count in counts)  # the dense part on each, the tables shared


def with_rule(index: int, **fields: object) -> dict[str, object]:
    """CONFIG with fields of its table rule ``index`` replaced (None removes a key)."""
    rules = [dict(rule) for rule in CONFIG["embedding_tables"]]
    rules[index].update(fields)
    rules[index] = {key: value for key, value in rules[index].items() if value is not None}
    return {**CONFIG, "embedding_tables": rules}


def test_a_checkpoint_of_other_table_rules_is_refused_before_loading(tmp_path: Path) -> None:
    with gloo_world():
        model, optimizer, scheduler = build()
        train(model, optimizer, scheduler, range(SAVE_AT))
        save_table_checkpoint(tmp_path, model, optimizer, scheduler)

        model, optimizer, scheduler = build(with_rule(1, exact_sgd={"lr": 0.07}))
        before = {key: value.clone() for key, value in model.module.head.state_dict().items()}
        with pytest.raises(ResumeError, match=r"group 'small.dense': .*0\.05 in the checkpoint, 0\.07 here"):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler)
        for key, value in model.module.head.state_dict().items():
            assert torch.equal(value, before[key])  # nothing was loaded
        # resume: config applies the new lr to the saved state, and says so
        with pytest.warns(
            ResumeWarning, match=r"group 'small.dense': schedule.constant: 0\.05 in the checkpoint, 0\.07"
        ):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler, policy="config")
        assert scheduler.last_epoch == SAVE_AT and scheduler.lrs_by_group()["small.dense"] == 0.07

        model, optimizer, scheduler = build(with_rule(0, exact_row_wise_adagrad=None, exact_adagrad={}))
        with pytest.raises(
            ResumeError,
            match=r"refused under every resume policy\): group 'ids': algorithm: 'exact_row_wise_adagrad' in "
            r"the checkpoint, 'exact_adagrad' here",
        ):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler, policy="config")


def test_the_optimizer_state_dict_round_trips_in_one_process() -> None:
    """torch's format (through the CombinedOptimizer, keyed by group name), copied so that no tensor
    is shared: loaded into a fresh build, training continues exactly as without the round trip."""
    with gloo_world():
        model, optimizer, scheduler = build()
        train(model, optimizer, scheduler, range(SAVE_AT))
        state, schedule = copy.deepcopy(optimizer.state_dict()), copy.deepcopy(scheduler.state_dict())
        assert list(state["groups"]) == ["default", "small.dense", "ids"]
        fresh_model, fresh_optimizer, fresh_scheduler = build()
        fresh_model.load_state_dict(model.state_dict())
        fresh_optimizer.load_state_dict(state)
        fresh_scheduler.load_state_dict(schedule)
        assert fresh_scheduler.plateau_state() == scheduler.plateau_state()  # mid-patience for 'small.dense'
        momentum = next(iter(fresh_optimizer.state_dict()["groups"]["ids"]["state"][0].values()))
        original = next(iter(state["groups"]["ids"]["state"][0].values()))
        assert torch.equal(momentum.local_shards()[0].tensor, original.local_shards()[0].tensor)
        train(model, optimizer, scheduler, range(SAVE_AT, SAVE_AT + 2))
        train(fresh_model, fresh_optimizer, fresh_scheduler, range(SAVE_AT, SAVE_AT + 2))
        for key, value in model.state_dict().items():
            other = fresh_model.state_dict()[key]
            if hasattr(value, "local_shards"):
                value, other = value.local_shards()[0].tensor, other.local_shards()[0].tensor
            assert torch.equal(value, other), key


def test_a_flat_dense_group_is_refused_by_table_checkpoints(tmp_path: Path) -> None:
    with gloo_world():
        model, optimizer, scheduler = build({**CONFIG, "adam": {"lr": 0.01, "flatten": True}})
        with pytest.raises(ValueError, match=r"do not take flat groups \('default': flatten true\)"):
            save_table_checkpoint(tmp_path, model, optimizer, scheduler)


def test_a_changed_table_plateau_is_refused_under_strict_and_applied_under_config(tmp_path: Path) -> None:
    """The table group's reduce_on_plateau is in its record: strict refuses another factor before loading
    anything; config takes it, keeping the saved reductions (the LR is the schedule times the new
    factor to their number); a rule without one drops them, and says so."""
    with gloo_world():
        model, optimizer, scheduler = build()
        train(model, optimizer, scheduler, range(SAVE_AT))
        save_table_checkpoint(tmp_path, model, optimizer, scheduler)
        plateau = {"metric": "ctr_loss", "factor": 0.25, "patience": 0}

        model, optimizer, scheduler = build(with_rule(0, reduce_on_plateau=plateau))
        with pytest.raises(
            ResumeError, match=r"group 'ids': reduce_on_plateau\.factor: 0\.5 in the checkpoint, 0\.25 here"
        ):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler)
        assert scheduler.last_epoch == 0 and scheduler.plateau_state()["ids"]["reductions"] == []
        with pytest.warns(
            ResumeWarning, match=r"group 'ids': reduce_on_plateau\.factor: 0\.5 in the checkpoint"
        ):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler, policy="config")
        # the ramp is at its peak 0.1 from step 3; two reductions (at 2 and 3) of the new factor 0.25
        assert scheduler.plateau_state()["ids"]["reductions"] == [2, 3]
        assert scheduler.lrs_by_group()["ids"] == pytest.approx(0.1 * 0.25**2)
        assert optimizer.param_groups[-1]["name"] == "ids"
        for kernel in optimizer.optimizers[-1].param_groups[-1].kernels:  # the kernels take it too
            assert kernel.param_groups[0]["lr"] == pytest.approx(0.1 * 0.25**2)

        model, optimizer, scheduler = build(with_rule(0, reduce_on_plateau=None))
        with pytest.raises(ResumeError, match=r"group 'ids': reduce_on_plateau: set in the checkpoint"):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler)
        with pytest.warns(ResumeWarning, match=r"group 'ids': no reduce_on_plateau here: its 2 reduction"):
            load_table_checkpoint(tmp_path, model, optimizer, scheduler, policy="config")
        assert scheduler.lrs_by_group()["ids"] == 0.1


def test_a_changed_table_plateau_is_refused_by_the_torch_format_too() -> None:
    with gloo_world():
        model, optimizer, scheduler = build()
        train(model, optimizer, scheduler, range(SAVE_AT))
        state, schedule = copy.deepcopy(optimizer.state_dict()), copy.deepcopy(scheduler.state_dict())
        plateau = {"metric": "ctr_loss", "factor": 0.25, "patience": 0}
        _, fresh_optimizer, fresh_scheduler = build(with_rule(0, reduce_on_plateau=plateau))
        with pytest.raises(
            ResumeError, match=r"group 'ids': reduce_on_plateau\.factor: 0\.5 in the checkpoint"
        ):
            fresh_optimizer.load_state_dict(state)
        with pytest.raises(ValueError, match=r"group 'ids': .*'factor': 0\.5.* in the checkpoint"):
            fresh_scheduler.load_state_dict(schedule)
        with pytest.warns(ResumeWarning, match=r"reduce_on_plateau\.factor: 0\.5 in the checkpoint"):
            load_optimizer_state(fresh_optimizer, state, policy="config")
        fresh_scheduler.load_state_dict(schedule, policy="config")
        assert fresh_scheduler.lrs_by_group()["ids"] == pytest.approx(0.1 * 0.25**2)
