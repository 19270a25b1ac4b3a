"""``OptimizerConfig``'s own checks: they hold whatever the order of its fields."""

from __future__ import annotations

import pydantic
import pytest

from tml.optimizers import OptimizerConfig, ParamGroupConfig


def test_the_schedule_in_one_place_check_does_not_depend_on_field_order() -> None:
    # The check once read the schedule keys from pydantic's partial data while validating the
    # algorithm field, so it only worked when learning_rate came first; now the algorithm keys do.
    fields = list(OptimizerConfig.model_fields)
    assert fields.index("adam") < fields.index("learning_rate")
    with pytest.raises(pydantic.ValidationError, match=r"adam\n.*give the schedule in one place"):
        OptimizerConfig.model_validate(
            {"learning_rate": {"constant": 0.1}, "adam": {"lr": {"constant": 0.2}}}
        )
    with pytest.raises(pydantic.ValidationError, match=r"sgd\n.*lr is required unless learning_rate is set"):
        OptimizerConfig.model_validate({"sgd": {}})


def test_the_groups_are_resolved_once_when_the_config_is_validated() -> None:
    config = OptimizerConfig.model_validate(
        {"sgd": {"lr": 0.1}, "param_groups": [{"name": "head", "params": ["head.*"], "lr_multiplier": 3.0}]}
    )
    first, second = config.group_specs(), config.group_specs()
    assert [spec.name for spec in first] == ["head", "default"]
    assert all(a is b for a, b in zip(first, second, strict=True))  # the same resolution, not a new one
    assert first[0].lr_multiplier == 3.0 and first[0].schedule.constant == 0.1


def test_a_param_group_may_leave_its_algorithm_out_but_the_optimizer_may_not() -> None:
    assert ParamGroupConfig(name="head", params=["head.*"]).own_algorithm() is None
    with pytest.raises(
        pydantic.ValidationError, match=r"exactly one of adam, adamw, sgd, .* must be set, got 0"
    ):
        OptimizerConfig.model_validate({"learning_rate": {"constant": 0.1}})
    with pytest.raises(
        pydantic.ValidationError, match=r"at most one of adam, adamw, .* may be set, got adam, sgd"
    ):
        ParamGroupConfig.model_validate(
            {"name": "g", "params": ["*"], "adam": {"lr": 0.1}, "sgd": {"lr": 0.1}}
        )


def test_the_groups_follow_a_field_assigned_or_replaced_by_model_copy() -> None:
    config = OptimizerConfig.model_validate({"sgd": {"lr": 0.1}})
    assert [spec.name for spec in config.group_specs()] == ["default"]
    rule = ParamGroupConfig(name="head", params=["head.*"], lr_multiplier=2.0)
    copied = config.model_copy(update={"param_groups": [rule]})
    assert [(spec.name, spec.lr_multiplier) for spec in copied.group_specs()] == [
        ("head", 2.0),
        ("default", 1.0),
    ]
    assert [spec.name for spec in config.group_specs()] == ["default"]  # the original is unchanged
    config.param_groups = [rule]
    assert [spec.name for spec in config.group_specs()] == ["head", "default"]
