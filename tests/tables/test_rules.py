"""embedding_tables: the rules load with every value checked, and refuse what the kernels cannot run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tml.core.config import ConfigError, load_config_from_yaml
from tml.optimizers import LearningRate, OptimizerConfig
from tml.optimizers.tables import TABLE_ALGORITHMS

FBGEMM_NAMES = [
    "exact_sgd",
    "exact_adagrad",
    "exact_row_wise_adagrad",
    "adam",
    "partial_row_wise_adam",
    "lamb",
]


def config(*rules: dict[str, Any]) -> OptimizerConfig:
    return OptimizerConfig.model_validate({"adam": {"lr": 0.001}, "embedding_tables": list(rules)})


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "ids", "tables": ["user_*"], **fields}


def test_the_keys_are_fbgemms_names_of_its_optimizers() -> None:
    from fbgemm_gpu.split_embedding_configs import EmbOptimType

    assert list(TABLE_ALGORITHMS) == FBGEMM_NAMES
    for key in TABLE_ALGORITHMS:
        assert EmbOptimType(key).value == key  # the kernel optimizer each key names exists in FBGEMM


def test_the_issue_example_loads_with_its_schedules() -> None:
    loaded = config(
        rule(
            tables=["user_*", "item_*"],
            exact_row_wise_adagrad={"lr": 0.05, "eps": 1.0e-8},
            learning_rate={"linear_ramp_to_constant": {"learning_rate": 0.05, "num_ramp_steps": 1000}},
        ),
        {"name": "small", "tables": ["*"], "exact_sgd": {"lr": 0.01}},
    )
    ids, small = loaded.embedding_tables
    assert ids.algorithm().key == "exact_row_wise_adagrad" and ids.schedule() == ids.learning_rate
    assert small.schedule() == LearningRate(constant=0.01)  # the algorithm's lr, as a constant


@pytest.mark.parametrize(
    ("bad", "path", "message"),
    [
        # a dense algorithm the kernels do not run: the table algorithms are listed
        (
            rule(rprop={"lr": 0.1}),
            "embedding_tables.0.rprop",
            "exact_sgd, exact_adagrad, exact_row_wise_adagrad, adam, partial_row_wise_adam, lamb",
        ),
        # FBGEMM's deprecated non-exact kernels are not offered
        (
            rule(row_wise_adagrad={"lr": 0.1}),
            "embedding_tables.0.row_wise_adagrad",
            "not an algorithm FBGEMM",
        ),
        # weight decay that FBGEMM would drop without a word (mode none)
        (
            rule(exact_row_wise_adagrad={"lr": 0.1, "weight_decay": 0.01}),
            "embedding_tables.0.exact_row_wise_adagrad.weight_decay_mode",
            "would not be applied",
        ),
        # a mode FBGEMM needs more objects for
        (
            rule(exact_row_wise_adagrad={"lr": 0.1, "weight_decay_mode": "cowclip"}),
            "embedding_tables.0.exact_row_wise_adagrad.weight_decay_mode",
            "'none', 'l2' or 'decouple'",
        ),
        # exact_sgd and exact_adagrad have no weight decay in FBGEMM
        (
            rule(exact_sgd={"lr": 0.1, "weight_decay": 0.01}),
            "embedding_tables.0.exact_sgd.weight_decay",
            "Extra inputs",
        ),
        (
            rule(exact_adagrad={"lr": 0.1, "weight_decay": 0.01}),
            "embedding_tables.0.exact_adagrad.weight_decay",
            "Extra inputs",
        ),
        # ranges: betas in [0, 1), eps > 0, lr >= 0, weight_decay >= 0
        (rule(adam={"lr": 0.1, "beta1": 1.0}), "embedding_tables.0.adam.beta1", "less than 1"),
        (
            rule(lamb={"lr": 0.1, "beta2": -0.1}),
            "embedding_tables.0.lamb.beta2",
            "greater than or equal to 0",
        ),
        (
            rule(exact_adagrad={"lr": 0.1, "eps": 0.0}),
            "embedding_tables.0.exact_adagrad.eps",
            "greater than 0",
        ),
        (rule(exact_sgd={"lr": -0.1}), "embedding_tables.0.exact_sgd.lr", "greater than or equal to 0"),
        (
            rule(partial_row_wise_adam={"lr": 0.1, "weight_decay": -1}),
            "embedding_tables.0.partial_row_wise_adam.weight_decay",
            "greater than or equal to 0",
        ),
        (rule(exact_sgd={"lr": True}), "embedding_tables.0.exact_sgd.lr", "boolean"),
        # exactly one algorithm
        (rule(), "embedding_tables.0", "exactly one of exact_sgd"),
        (rule(exact_sgd={"lr": 0.1}, adam={"lr": 0.1}), "embedding_tables.0", "got 2: exact_sgd, adam"),
        # a learning rate is needed; a second one that would not be used is refused
        (rule(exact_sgd={}), "embedding_tables.0.exact_sgd", "has no learning rate"),
        (
            rule(exact_sgd={"lr": 0.2}, learning_rate={"constant": 0.1}),
            "embedding_tables.0.exact_sgd.lr",
            "would not be used",
        ),
        # patterns and names
        (rule(tables=[], exact_sgd={"lr": 0.1}), "embedding_tables.0.tables", "at least 1"),
        (rule(tables=["re:("], exact_sgd={"lr": 0.1}), "embedding_tables.0.tables", "not a valid regex"),
        (rule(name=" ", exact_sgd={"lr": 0.1}), "embedding_tables.0.name", "must not be empty"),
        (
            rule(name="default", exact_sgd={"lr": 0.1}),
            "embedding_tables.0.name",
            "already the name of a param group",
        ),
        # reduce_on_plateau: a setting or false, checked as on a param group
        (
            rule(exact_sgd={"lr": 0.1}, reduce_on_plateau=True),
            "embedding_tables.0.reduce_on_plateau",
            "true is not a setting",
        ),
        (
            rule(exact_sgd={"lr": 0.1}, reduce_on_plateau="loss"),
            "embedding_tables.0.reduce_on_plateau",
            "expected a reduce_on_plateau setting",
        ),
        (
            rule(exact_sgd={"lr": 0.1}, reduce_on_plateau={"factor": 0.5}),
            "embedding_tables.0.reduce_on_plateau.ReduceOnPlateau.metric",
            "Field required",
        ),
        (
            rule(exact_sgd={"lr": 0.1}, reduce_on_plateau={"metric": "loss", "factor": 1.0}),
            "embedding_tables.0.reduce_on_plateau.ReduceOnPlateau.factor",
            "less than 1",
        ),
        (
            rule(exact_sgd={"lr": 0.1}, reduce_on_plateau={"metric": "loss", "threshold": 1.5}),
            "embedding_tables.0.reduce_on_plateau.ReduceOnPlateau.threshold",
            "must be below 1",
        ),
        # a floor at or above the group's greatest LR: no reduction could ever lower it
        (
            rule(exact_sgd={"lr": 0.1}, reduce_on_plateau={"metric": "loss", "min_learning_rate": 0.1}),
            "embedding_tables.0.reduce_on_plateau.min_learning_rate",
            "min_learning_rate 0.1 is not below the greatest learning rate of table group 'ids' (0.1)",
        ),
        (
            rule(
                exact_sgd={},
                learning_rate={"linear_ramp_to_constant": {"learning_rate": 0.05, "num_ramp_steps": 10}},
                reduce_on_plateau={"metric": "loss", "min_learning_rate": 0.2},
            ),
            "embedding_tables.0.reduce_on_plateau.min_learning_rate",
            "(0.05)",
        ),
    ],
)
def test_load_errors(bad: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        config(bad)
    errors = caught.value.errors()
    assert [".".join(map(str, error["loc"])) for error in errors] == [path], errors
    assert re.search(re.escape(message), str(caught.value)), str(caught.value)


def test_two_rules_with_one_name_are_refused() -> None:
    with pytest.raises(
        pydantic.ValidationError, match=r"embedding_tables\.1\.name\n.*already taken by embedding_tables\[0\]"
    ):
        config(rule(exact_sgd={"lr": 0.1}), rule(exact_sgd={"lr": 0.1}))


def test_a_yaml_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "optimizer:\n"
        "  adam: {lr: 0.001}\n"
        "  embedding_tables:\n"
        "    - name: ids\n"
        "      tables: ['*']\n"
        "      rprop: {lr: 0.1}\n"
    )
    with pytest.raises(
        ConfigError, match=r"run\.yaml:6:\d+: optimizer\.embedding_tables\.0\.rprop: 'rprop' is not"
    ):
        load_config_from_yaml(OptimizerConfig, path, key="optimizer")


def test_null_embedding_tables_is_none() -> None:
    assert (
        OptimizerConfig.model_validate({"sgd": {"lr": 0.1}, "embedding_tables": None}).embedding_tables == []
    )


@given(
    lr=st.floats(0.0, 10.0),
    beta1=st.floats(0.0, 0.999),
    weight_decay=st.floats(0.0, 1.0),
    key=st.sampled_from(["adam", "partial_row_wise_adam", "lamb"]),
)
def test_fused_params_give_every_hyperparameter_to_the_kernel(
    lr: float, beta1: float, weight_decay: float, key: str
) -> None:
    from fbgemm_gpu.split_embedding_configs import EmbOptimType

    loaded = config(rule(**{key: {"lr": lr, "beta1": beta1, "weight_decay": weight_decay}}))
    params = loaded.embedding_tables[0].algorithm().fused_params(lr)
    assert params == {
        "optimizer": EmbOptimType(key),
        "learning_rate": lr,
        "beta1": beta1,
        "beta2": 0.999,  # FBGEMM's defaults
        "eps": 1.0e-8,
        "weight_decay": weight_decay,
    }


RAMP_OF_THE_RUN = {"linear_ramp_to_constant": {"learning_rate": 0.05, "num_ramp_steps": "10%"}}


@given(total_steps=st.integers(10, 10**7))
def test_a_table_schedule_relative_to_the_run_resolves_with_it(total_steps: int) -> None:
    rules = [rule(exact_sgd={"lr": 0.05}, learning_rate=RAMP_OF_THE_RUN)]
    written = config(*rules)
    expected = (total_steps + 5) // 10  # 10% of the run, rounded half up
    for resolved in (
        written.for_run(total_steps),
        OptimizerConfig.model_validate(
            {"adam": {"lr": 0.001}, "total_steps": total_steps, "embedding_tables": rules}
        ),
    ):
        ramp = resolved.table_schedules()["ids"].linear_ramp_to_constant
        assert ramp is not None and ramp.num_ramp_steps == expected


def test_a_table_schedule_relative_to_the_run_needs_the_run() -> None:
    written = config(rule(exact_sgd={"lr": 0.05}, learning_rate=RAMP_OF_THE_RUN))
    with pytest.raises(
        pydantic.ValidationError,
        match=r"embedding_tables\.0\.learning_rate\.linear_ramp_to_constant\.num_ramp_steps\n.*'10%'",
    ):
        written.table_schedules()


def test_a_table_lr_beside_a_relative_schedule_is_checked_once_resolved() -> None:
    with pytest.raises(
        pydantic.ValidationError, match=r"embedding_tables\.0\.exact_sgd\.lr\n.*0\.04 would not"
    ):
        OptimizerConfig.model_validate(
            {
                "adam": {"lr": 0.001},
                "total_steps": 1000,
                "embedding_tables": [rule(exact_sgd={"lr": 0.04}, learning_rate=RAMP_OF_THE_RUN)],
            }
        )


PLATEAU = {"metric": "ctr_loss", "factor": 0.5, "patience": 2}


def test_a_table_rule_has_its_own_plateau_and_not_the_optimizers() -> None:
    """The optimizer's reduce_on_plateau is the dense groups': a table rule has one only where it sets
    it (false is the same as leaving it out)."""
    loaded = OptimizerConfig.model_validate(
        {
            "adam": {"lr": 0.001},
            "reduce_on_plateau": {"metric": "dense_loss"},
            "embedding_tables": [
                rule(exact_sgd={"lr": 0.1}, reduce_on_plateau=PLATEAU),
                {"name": "off", "tables": ["item_*"], "exact_sgd": {"lr": 0.1}, "reduce_on_plateau": False},
                {"name": "rest", "tables": ["*"], "exact_sgd": {"lr": 0.1}},
            ],
        }
    )
    ids, off, rest = loaded.embedding_tables
    assert ids.plateau() is not None and ids.plateau().model_dump() == {
        **PLATEAU,
        "mode": "min",
        "threshold": 1e-4,
        "threshold_mode": "rel",
        "cooldown": 0,
        "min_learning_rate": 0.0,
    }
    assert off.plateau() is None and rest.plateau() is None
    assert [spec.reduce_on_plateau.metric for spec in loaded.group_specs()] == ["dense_loss"]


def test_a_table_plateau_floor_is_checked_once_its_schedule_is_resolved() -> None:
    """A floor above a schedule of lengths relative to the run is refused when the run is given."""
    written = config(
        rule(
            exact_sgd={"lr": 0.05},
            learning_rate=RAMP_OF_THE_RUN,
            reduce_on_plateau={"metric": "loss", "min_learning_rate": 0.05},
        )
    )
    with pytest.raises(
        pydantic.ValidationError,
        match=r"embedding_tables\.0\.reduce_on_plateau\.min_learning_rate\n.*0\.05 is not below",
    ):
        written.for_run(1000)
