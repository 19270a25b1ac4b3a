"""Loading configs: Python objects, YAML files, the error table, environment substitution."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from tml.core.config import BaseConfig, ConfigError, YamlDocument, load_config_from_yaml
from tml.optimizers.config import (
    AdagradConfig,
    AdamConfig,
    LearningRate,
    LinearRampToCosine,
    OptimizerConfig,
    SGDConfig,
    SgdConfig,
    get_optimizer_algorithm_config,
)


def validate(data: dict[str, Any]) -> OptimizerConfig:
    try:
        return OptimizerConfig.model_validate(data)
    except pydantic.ValidationError as error:
        raise ConfigError.from_validation_error(error, prefix=("optimizer",)) from None


RAMP = {"learning_rate": 0.1, "num_ramp_steps": 10}
COSINE = {"learning_rate": 0.1, "final_learning_rate": 0.0, "num_ramp_steps": 10, "final_num_steps": 100}

# (bad config, config path of the error, message regex)
ERROR_TABLE: list[tuple[dict[str, Any], str, str]] = [
    ({}, "optimizer", r"exactly one of adam, adamw, sgd, .*, custom must be set, got 0"),
    ({"adam": {"lr": 0.1}, "sgd": {"lr": 0.1}}, "optimizer", r"exactly one of .* got 2: adam, sgd"),
    ({"adam": {}}, "optimizer.adam", r"lr is required unless learning_rate is set"),
    (
        {"adam": {"lr": {"constant": 0.1}}, "learning_rate": {"constant": 0.1}},
        "optimizer.adam",
        r"lr is a schedule and learning_rate is set too",
    ),
    ({"adam": {"lr": -0.1}}, "optimizer.adam.lr", r"greater than or equal to 0.*got -0.1"),
    ({"adam": {"lr": math.nan}}, "optimizer.adam.lr", r"finite number"),
    ({"adam": {"lr": math.inf}}, "optimizer.adam.lr", r"finite number"),
    ({"adam": {"lr": True}}, "optimizer.adam.lr", r"expected a number, got the boolean True"),
    ({"adam": {"lr": "fast"}}, "optimizer.adam.lr", r"valid number.*got 'fast'"),
    ({"adam": {"lr": 0.1, "betas": [1.0, 0.999]}}, "optimizer.adam.betas.0", r"less than 1"),
    ({"adam": {"lr": 0.1, "betas": [-0.1, 0.999]}}, "optimizer.adam.betas.0", r"greater than or equal to 0"),
    ({"adam": {"lr": 0.1, "betas": [0.9]}}, "optimizer.adam.betas.1", r"Field required"),
    ({"adam": {"lr": 0.1, "eps": -1e-8}}, "optimizer.adam.eps", r"greater than or equal to 0"),
    ({"adam": {"lr": 0.1, "beta1": 0.9}}, "optimizer.adam.beta1", r"Extra inputs are not permitted"),
    ({"adma": {"lr": 0.1}}, "optimizer.adma", r"Extra inputs are not permitted"),
    ({"sgd": {"lr": 0.1, "momentum": -0.5}}, "optimizer.sgd.momentum", r"greater than or equal to 0"),
    ({"adagrad": {"lr": 0.1, "eps": 0}}, "optimizer.adagrad.eps", r"greater than 0"),
    ({"adagrad": {"lr": 0.1, "eps": -1.0}}, "optimizer.adagrad.eps", r"greater than 0"),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {}},
        "optimizer.learning_rate",
        r"exactly one of constant, .* got 0",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"constant": 0.1, "linear_ramp_to_constant": RAMP}},
        "optimizer.learning_rate",
        r"got 2: constant, linear_ramp_to_constant",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"constant": -1}},
        "optimizer.learning_rate.constant",
        r">= 0|greater",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "piecewise_constant": {
                    "learning_rate_boundaries": [10, 20],
                    "learning_rate_values": [1.0, 0.5],
                }
            },
        },
        "optimizer.learning_rate.piecewise_constant.learning_rate_values",
        r"needs len\(learning_rate_boundaries\) \+ 1 = 3 values, got 2",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "piecewise_constant": {
                    "learning_rate_boundaries": [20, 10],
                    "learning_rate_values": [1.0, 0.5, 0.1],
                }
            },
        },
        "optimizer.learning_rate.piecewise_constant.learning_rate_boundaries",
        r"strictly increasing, got 10 at index 1 after 20",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "piecewise_constant": {
                    "learning_rate_boundaries": [10, 10],
                    "learning_rate_values": [1.0, 0.5, 0.1],
                }
            },
        },
        "optimizer.learning_rate.piecewise_constant.learning_rate_boundaries",
        r"strictly increasing",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "piecewise_constant": {"learning_rate_boundaries": [-5], "learning_rate_values": [1.0, 0.5]}
            },
        },
        "optimizer.learning_rate.piecewise_constant.learning_rate_boundaries.0",
        r"greater than or equal to 0",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "piecewise_constant": {"learning_rate_boundaries": [5], "learning_rate_values": [1.0, -0.5]}
            },
        },
        "optimizer.learning_rate.piecewise_constant.learning_rate_values.1",
        r"greater than or equal to 0",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 0}},
        },
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"greater than 0",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"linear_ramp_to_constant": {"num_ramp_steps": 10}}},
        "optimizer.learning_rate.linear_ramp_to_constant.learning_rate",
        r"Field required",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 2.5}},
        },
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"valid integer",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"linear_ramp_to_cosine": {**COSINE, "final_num_steps": 10}}},
        "optimizer.learning_rate.linear_ramp_to_cosine.final_num_steps",
        r"final_num_steps must be greater than num_ramp_steps \(10\), got 10",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"linear_ramp_to_cosine": {**COSINE, "final_num_steps": 5}}},
        "optimizer.learning_rate.linear_ramp_to_cosine.final_num_steps",
        r"greater than num_ramp_steps \(10\), got 5",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {"linear_ramp_to_cosine": {**COSINE, "final_learning_rate": -1e-5}},
        },
        "optimizer.learning_rate.linear_ramp_to_cosine.final_learning_rate",
        r"greater than or equal to 0",
    ),
    ({"sgd": {"lr": 0.1}, "learning_rate": "fast"}, "optimizer.learning_rate", r"valid dictionary"),
    # 3. finite fields whose quotient or product is not: 1.0 / 1.0e-309 and 1e300 * 1e10 overflow
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "one_cycle": {"max_learning_rate": 1.0, "total_steps": 100, "div_factor": 1.0e-309}
            },
        },
        "optimizer.learning_rate.one_cycle",
        r"the learning rate of group 'default' is not finite: the schedule's values lie in \[1.0, inf\]",
    ),
    (
        {"sgd": {"lr": 1e300}, "param_groups": [{"name": "a", "params": ["a"], "lr_multiplier": 1e10}]},
        "optimizer.param_groups.0.lr_multiplier",
        r"group 'a' is not finite: the schedule's greatest value 1e\+300 times lr_multiplier "
        r"10000000000.0 is inf",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "param_groups": [
                {"name": "a", "params": ["a"], "adam": {"lr": {"constant": 1e300}}, "lr_multiplier": 1e9}
            ],
        },
        "optimizer.param_groups.0.lr_multiplier",
        r"times lr_multiplier 1000000000.0 is inf",
    ),
    ({"sgd": {"lr": {"cosine": 0.1}}}, "optimizer.sgd.lr.cosine", r"Extra inputs are not permitted"),
    # 4. lengths relative to the run: resolved when the config gives total_steps, checked as steps
    (
        {
            "sgd": {"lr": 0.1},
            "total_steps": 1000,
            "learning_rate": {"linear_ramp_to_cosine": {**COSINE, "num_ramp_steps": "20%"}},
        },
        "optimizer.learning_rate.linear_ramp_to_cosine.final_num_steps",
        r"greater than num_ramp_steps \(200\), got 100 \(relative lengths resolved with total_steps 1000: "
        r"linear_ramp_to_cosine\.num_ramp_steps '20%' = 200\)",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "total_steps": 1000,
            "learning_rate": {
                "sequence": [
                    {"steps": "60%", "schedule": {"constant": 0.1}},
                    {"steps": "60%", "schedule": {"constant": 0.05}},
                    {"schedule": {"constant": 0.01}},
                ]
            },
        },
        "optimizer.learning_rate",
        r"last phase starts at step 1200, after the run's total_steps 1000",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "total_steps": 1000,
            "learning_rate": {"linear_ramp_to_constant": {**RAMP, "num_ramp_steps": "0.01%"}},
        },
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"greater than 0 \(relative lengths resolved with total_steps 1000: .*'0\.01%' = 0\)",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"linear_ramp_to_constant": {**RAMP, "num_ramp_steps": 0.02}}},
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"a fraction of the run is written as a percentage of total_steps: '2%'",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {"linear_ramp_to_constant": {**RAMP, "num_ramp_steps": "0.1dur"}},
        },
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"expected a number of steps, '<p>%' of total_steps .* or '<e>ep' epochs .*, got '0.1dur'",
    ),
    (
        {"sgd": {"lr": 0.1}, "learning_rate": {"linear_ramp_to_constant": {**RAMP, "num_ramp_steps": "-2%"}}},
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"expected a number of steps, .*got '-2%'",
    ),
    ({"sgd": {"lr": 0.1}, "total_steps": 0}, "optimizer.total_steps", r"greater than 0"),
    (
        {
            "sgd": {"lr": 0.2},
            "total_steps": 100,
            "learning_rate": {"cosine_decay": {"learning_rate": 0.1, "decay_steps": "50%"}},
        },
        "optimizer.sgd.lr",
        r"lr 0.2 would not be used: learning_rate is set too",
    ),
    ({"sgd": {"lr": 0.1}, "steps_per_epoch": True}, "optimizer.steps_per_epoch", r"boolean"),
]


@pytest.mark.parametrize(("data", "path", "message"), ERROR_TABLE)
def test_error_table(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validate(data)
    issues = raised.value.issues
    matching = [issue for issue in issues if issue.dotted_path == path]
    assert matching, f"no issue at {path}; issues: {[str(issue) for issue in issues]}"
    assert any(re.search(message, str(issue)) for issue in matching), [str(issue) for issue in matching]


def test_error_table_is_large_enough() -> None:
    assert len(ERROR_TABLE) >= 25


def test_python_objects_raise_pydantic_errors_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"eps\n.*greater than 0"):
        AdagradConfig(lr=0.1, eps=0.0)


# ---------------------------------------------------------------- the lr / learning_rate rule


def test_schedule_resolution() -> None:
    cosine = LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=0.1, final_learning_rate=0.0, num_ramp_steps=10, final_num_steps=100
        )
    )
    assert OptimizerConfig(sgd=SgdConfig(lr=0.5)).schedule() == LearningRate(constant=0.5)
    assert OptimizerConfig(sgd=SgdConfig(lr=cosine)).schedule() == cosine
    assert OptimizerConfig(sgd=SgdConfig(lr=0.1), learning_rate=cosine).schedule() == cosine  # lr: the peak
    assert OptimizerConfig(adam=AdamConfig(), learning_rate=cosine).schedule() == cosine


def test_seed_example_config_and_aliases() -> None:
    config = OptimizerConfig(sgd=SGDConfig(lr=LearningRate(constant=0.01)))
    assert SGDConfig is SgdConfig
    assert get_optimizer_algorithm_config(config) is config.sgd
    assert config.schedule() == LearningRate(constant=0.01)


def test_defaults() -> None:
    adam = AdamConfig(lr=0.1)
    assert adam.betas == (0.9, 0.999) and adam.eps == 1e-7
    assert SgdConfig(lr=0.1).momentum == 0.0
    assert AdagradConfig(lr=0.1).eps == 1e-10


def test_original_format_with_null_keys_loads(tmp_path: Path) -> None:
    # As the original's pretty_print wrote configs: every unused key present as null.
    text = """
adam: {lr: 0.001, betas: [0.9, 0.999], eps: 1.0e-07}
sgd: null
adagrad: null
learning_rate:
  constant: null
  linear_ramp_to_cosine: null
  linear_ramp_to_constant: {learning_rate: 0.001, num_ramp_steps: 1000}
  piecewise_constant: null
"""
    path = tmp_path / "original.yaml"
    path.write_text(text)
    config = load_config_from_yaml(OptimizerConfig, path)
    assert config.adam is not None and config.adam.lr == 0.001
    assert config.learning_rate is not None and config.learning_rate.chosen()[0] == "linear_ramp_to_constant"


def test_pretty_print_round_trips() -> None:
    config = OptimizerConfig(adam=AdamConfig(lr=0.001), learning_rate=LearningRate(constant=0.001))
    printed = config.pretty_print()
    assert "!!python" not in printed
    assert OptimizerConfig.model_validate(yaml.safe_load(printed)) == config


def test_twhin_optimizer_blocks_load(shared_config: Callable[[str], Path]) -> None:
    document = yaml.safe_load(shared_config("twhin_local.yaml").read_text())
    model = document["model"]
    blocks = [model["translation_optimizer"]] + [
        table["optimizer"] for table in model["embeddings"]["tables"]
    ]
    configs = [OptimizerConfig.model_validate(block) for block in blocks]
    assert [config.schedule().constant for config in configs] == [0.05, 0.01, 0.005]
    assert all(config.sgd is not None for config in configs)


# ---------------------------------------------------------------- YAML files


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_error_names_file_line_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
optimizer:
  adam:
    lr: 0.001
  learning_rate:
    linear_ramp_to_cosine:
      learning_rate: 0.001
      final_learning_rate: 1.0e-5
      num_ramp_steps: 1000
      final_num_steps: 1000
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_config_from_yaml(OptimizerConfig, path, key="optimizer")
    message = str(raised.value)
    assert f"{path}:9:7: optimizer.learning_rate.linear_ramp_to_cosine.final_num_steps: " in message
    assert "final_num_steps must be greater than num_ramp_steps (1000), got 1000" in message


def test_yaml_typo_points_at_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "sgd:\n  lr: 0.1\n  momentun: 0.9\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:3:3: sgd.momentun: Extra inputs"):
        load_config_from_yaml(OptimizerConfig, path)


def test_yaml_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = write(
        tmp_path, "sgd:\n  lr: 0.1\nlearning_rate:\n  linear_ramp_to_constant:\n    learning_rate: 0.1\n"
    )
    with pytest.raises(
        ConfigError, match=r":4:3: learning_rate.linear_ramp_to_constant.num_ramp_steps: Field"
    ):
        load_config_from_yaml(OptimizerConfig, path)


def test_yaml_list_item_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sgd: {lr: 0.1}\nlearning_rate:\n  piecewise_constant:\n    learning_rate_boundaries: [5]\n"
        "    learning_rate_values:\n      - 1.0\n      - -2.0\n",
    )
    with pytest.raises(ConfigError, match=r":7:9: learning_rate.piecewise_constant.learning_rate_values.1: "):
        load_config_from_yaml(OptimizerConfig, path)


def test_every_issue_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "adam:\n  lr: -1\n  eps: -1\n")
    with pytest.raises(ConfigError) as raised:
        load_config_from_yaml(OptimizerConfig, path)
    assert [issue.dotted_path for issue in raised.value.issues] == ["adam.lr", "adam.eps"]
    assert [issue.position.line for issue in raised.value.issues if issue.position] == [2, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("adam: {lr: 0.1\n", r"config.yaml:2:1: not valid YAML"),
        ("adam:\n  lr: 0.1\n lr: 0.2\n", r"config.yaml:3:2: not valid YAML"),
        ("!!python/object:os.system {}\n", r"not valid YAML: could not determine a constructor"),
        ("- 1\n- 2\n", r"expected a mapping of OptimizerConfig fields"),
    ],
)
def test_malformed_yaml(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_from_yaml(OptimizerConfig, write(tmp_path, text))


def test_missing_file_and_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the file"):
        load_config_from_yaml(OptimizerConfig, tmp_path / "absent.yaml")
    path = write(tmp_path, "model:\n  other: {}\n")
    with pytest.raises(ConfigError, match=r"model.optimizer: key not found; keys here: other"):
        load_config_from_yaml(OptimizerConfig, path, key="model.optimizer")


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    with pytest.raises(ConfigError, match=r"more than \d+ nodes once aliases are expanded"):
        load_config_from_yaml(OptimizerConfig, write(tmp_path, "\n".join(lines) + "\n"))


# ---------------------------------------------------------------- environment substitution


def test_environment_is_substituted_in_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TML_TEST_LR", "0.25")
    monkeypatch.setenv("TML_TEST_STEPS", "40")
    path = write(
        tmp_path,
        "sgd: {lr: $TML_TEST_LR}\nlearning_rate:\n  linear_ramp_to_constant:\n"
        "    learning_rate: ${TML_TEST_LR}\n    num_ramp_steps: $TML_TEST_STEPS\n",
    )
    config = load_config_from_yaml(OptimizerConfig, path)
    assert config.sgd is not None and config.sgd.lr == 0.25
    ramp = config.schedule().linear_ramp_to_constant
    assert ramp is not None and ramp.learning_rate == 0.25 and ramp.num_ramp_steps == 40


def test_environment_cannot_inject_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With text substitution (the original), this value would add a key `momentum: 0.9` to sgd.
    monkeypatch.setenv("TML_TEST_LR", "0.1\n  momentum: 0.9")
    path = write(tmp_path, "sgd:\n  lr: $TML_TEST_LR\n")
    with pytest.raises(ConfigError, match=r"sgd.lr: .*valid number"):
        load_config_from_yaml(OptimizerConfig, path)


def test_user_and_unknown_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TML_TEST_UNSET", raising=False)
    document = YamlDocument.parse("a: /tmp/$USER/x\nb: $TML_TEST_UNSET\n$TML_TEST_UNSET: key\n")
    assert "$" not in document.data["a"]
    assert document.data["b"] == "$TML_TEST_UNSET"  # unknown variables stay as written
    assert "$TML_TEST_UNSET" in document.data  # keys are never substituted


# ---------------------------------------------------------------- BaseConfig groups


class Choice(BaseConfig):
    x: int | None = pydantic.Field(None, json_schema_extra={"one_of": "xy"})
    y: int | None = pydantic.Field(None, json_schema_extra={"one_of": "xy"})
    p: int | None = pydantic.Field(None, json_schema_extra={"at_most_one_of": "pq"})
    q: int | None = pydantic.Field(None, json_schema_extra={"at_most_one_of": "pq"})


def test_one_of_and_at_most_one_of() -> None:
    assert Choice(x=1).chosen("xy") == ("x", 1)
    assert Choice(y=2, p=3).chosen("xy") == ("y", 2)
    with pytest.raises(pydantic.ValidationError, match="exactly one of x, y must be set, got 0"):
        Choice()
    with pytest.raises(pydantic.ValidationError, match="at most one of p, q may be set, got p, q"):
        Choice(x=1, p=1, q=2)


def test_python_callers_of_load_config_from_yaml_get_the_nearest_key_and_the_valid_keys(
    tmp_path: Path,
) -> None:
    # Before, only the CLI added the hint; Python got "Extra inputs are not permitted" alone.
    path = tmp_path / "typo.yaml"
    path.write_text("model:\n  optimizer:\n    adam:\n      lr: 0.1\n      beta: [0.9, 0.99]\n")
    with pytest.raises(ConfigError, match=r"Extra inputs are not permitted") as info:
        load_config_from_yaml(OptimizerConfig, path, key="model.optimizer")
    (issue,) = info.value.issues
    assert issue.path == ("model", "optimizer", "adam", "beta")
    valid = [name for name in AdamConfig.model_fields]
    assert issue.hint == f"did you mean 'betas'? valid keys: {', '.join(valid)}"
    assert str(info.value).endswith(f"; did you mean 'betas'? valid keys: {', '.join(valid)}")
    assert f"{path}:5:7: model.optimizer.adam.beta:" in str(info.value)


# ---------------------------------------------------------------- what YAML itself would read silently wrong

SGD = "sgd: {lr: 0.1}\n"

# (YAML text, the expected message: file:line:column, config path, rule and value)
YAML_ERROR_TABLE: list[tuple[str, str]] = [
    # 1. duplicate keys: PyYAML keeps the last one; both lines are named
    (
        "sgd: {lr: 0.01, lr: 5.0}\n",
        r"config.yaml:1:17: sgd.lr: the key 'lr' is given twice in this mapping, at line 1, column 7 "
        r"and at line 1, column 17; YAML would keep only the last",
    ),
    (
        SGD + "learning_rate:\n  constant: 0.1\nlearning_rate:\n  constant: 0.5\n",
        r"config.yaml:4:1: learning_rate: the key 'learning_rate' is given twice .* at line 2, column 1 "
        r"and at line 4, column 1",
    ),
    (
        SGD
        + "param_groups:\n  - {name: a, params: ['a.*']}\nparam_groups:\n  - {name: b, params: ['b.*']}\n",
        r"config.yaml:4:1: param_groups: the key 'param_groups' is given twice .* line 2, column 1 ",
    ),
    # 2. YAML 1.1 integer forms: a leading zero (octal in 1.1) and base 60
    (
        SGD + "learning_rate:\n  linear_ramp_to_constant: {learning_rate: 0.1, num_ramp_steps: 010}\n",
        r"config.yaml:3:65: learning_rate.linear_ramp_to_constant.num_ramp_steps: 010 has a leading zero: "
        r"YAML 1.1 reads it as an octal number, YAML 1.2 as a decimal one; write 10",
    ),
    (
        SGD + "learning_rate:\n  cosine_decay: {learning_rate: 0.1, decay_steps: 1:30}\n",
        r"config.yaml:3:51: learning_rate.cosine_decay.decay_steps: 1:30 is a base-60 number in YAML 1.1 "
        r"\(90\) and text in YAML 1.2",
    ),
    (
        SGD + "learning_rate:\n  piecewise_constant:\n    learning_rate_boundaries: [0100, 0200]\n"
        "    learning_rate_values: [0.1, 0.01, 0.001]\n",
        r"config.yaml:4:32: learning_rate.piecewise_constant.learning_rate_boundaries.0: 0100 has a "
        r"leading zero",
    ),
    # 7. keys that look like union branches (capitalised, hyphenated) keep their place and path
    (
        "Adam: {lr: 0.1}\n",
        r"config.yaml:1:1: Adam: Extra inputs are not permitted; did you mean 'adam'\?",
    ),
    (
        "SGD:\n  lr: 0.1\n",
        r"config.yaml:1:1: SGD: Extra inputs are not permitted; did you mean 'sgd'\?",
    ),
    (
        "adam:\n  lr: 0.1\n  Betas: [0.9, 0.99]\n",
        r"config.yaml:3:3: adam.Betas: Extra inputs are not permitted; did you mean 'betas'\?",
    ),
    (
        SGD + "learning_rate:\n  cosine_decay:\n    learning_rate: 0.1\n    decay-steps: 100\n",
        r"config.yaml:5:5: learning_rate.cosine_decay.decay-steps: Extra inputs are not permitted "
        r"\(got 100\); did you mean 'decay_steps'\?",
    ),
    (
        SGD + "learning_rate:\n  cosine-decay: {learning_rate: 0.1, decay_steps: 100}\n",
        r"config.yaml:3:3: learning_rate.cosine-decay: Extra inputs are not permitted; did you mean "
        r"'cosine_decay'\?",
    ),
    # 8. a recursive alias, and aliases nesting deeper than the limit
    (
        SGD + "param_groups: &a [*a]\n",
        r"config.yaml:2:19: param_groups.0: the alias \*a refers to a node that contains it "
        r"\(a recursive alias\)",
    ),
    (
        "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 120)),
        r"config.yaml:100:12: a99.0: the document is nested more than 100 levels deep once aliases "
        r"are expanded",
    ),
    # 10. a boolean key, a quoted non-finite number
    ("true: 1\n" + SGD, r"config.yaml:1:1: true: the key 'true' is read as a boolean, not as a name"),
    ("on: 1\n" + SGD, r"config.yaml:1:1: on: the key 'on' is read as a boolean"),
    ("sgd: {lr: 'nan'}\n", r"config.yaml:1:7: sgd.lr: expected a finite number, got 'nan'"),
    ("sgd: {lr: '-inf'}\n", r"config.yaml:1:7: sgd.lr: expected a finite number, got '-inf'"),
]


@pytest.mark.parametrize(("text", "message"), YAML_ERROR_TABLE)
def test_yaml_error_table(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_from_yaml(OptimizerConfig, write(tmp_path, text))


def test_numbers_are_read_by_yaml_1_2_rules() -> None:
    document = YamlDocument.parse(
        "a: 1e4\nb: 1e-3\nc: 1.0e5\nd: 0o17\ne: 0x1f\nf: 0\ng: -0\nh: 007.5\ni: '010'\nj: 100_000\n"
        "k: .inf\nl: '1:30'\n"
    )
    assert document.data == {
        "a": 10_000.0,
        "b": 0.001,
        "c": 100_000.0,
        "d": 15,
        "e": 31,
        "f": 0,
        "g": 0,
        "h": 7.5,
        "i": "010",
        "j": 100_000,
        "k": math.inf,
        "l": "1:30",
    }


def test_an_exponent_reads_alike_for_steps_and_learning_rates(tmp_path: Path) -> None:
    # Before, `1e-3` was the string '1e-3' (accepted as a float) and `1e4` the string '1e4' (refused
    # as an integer): both are numbers now, and an integral float is a valid number of steps.
    path = write(
        tmp_path, "sgd: {lr: 1e-3}\nlearning_rate:\n  cosine_decay: {learning_rate: 1e-3, decay_steps: 1e4}\n"
    )
    config = load_config_from_yaml(OptimizerConfig, path)
    decay = config.schedule().cosine_decay
    assert decay is not None and decay.decay_steps == 10_000 and decay.learning_rate == 0.001


def test_the_json_schema_accepts_what_validate_accepts(tmp_path: Path) -> None:
    import jsonschema

    from tml.optimizers.cli.schema import optimizer_schema

    validator = jsonschema.Draft202012Validator(optimizer_schema())
    accepted = "sgd: {lr: 1e-3}\nlearning_rate:\n  cosine_decay: {learning_rate: 1.0e-3, decay_steps: 1e4}\n"
    refused = "sgd: {lr: 1e-3}\nlearning_rate:\n  cosine_decay: {learning_rate: 1.0e-3, decay_steps: 1.5}\n"
    assert validator.is_valid(YamlDocument.parse(accepted).data)
    load_config_from_yaml(OptimizerConfig, write(tmp_path, accepted))
    assert not validator.is_valid(YamlDocument.parse(refused).data)
    with pytest.raises(ConfigError, match=r"decay_steps: Input should be a valid integer"):
        load_config_from_yaml(OptimizerConfig, write(tmp_path, refused))


def test_merge_keys_still_load(tmp_path: Path) -> None:
    # `<<` is not a duplicate of the keys it merges; an explicit key wins over a merged one.
    text = "base: &base {lr: 0.1, momentum: 0.5}\nsgd:\n  <<: *base\n  momentum: 0.9\n"
    document = YamlDocument.parse(text)
    assert document.data["sgd"] == {"lr": 0.1, "momentum": 0.9}


# ---------------------------------------------------------------- reading files: size, kind, encoding


def test_a_file_of_the_size_limit_is_refused_while_it_is_composed(tmp_path: Path) -> None:
    from tml.core.config.yaml_document import MAX_FILE_BYTES, MAX_NODES

    line = "- [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"  # 12 nodes a line
    path = write(tmp_path, line * (MAX_FILE_BYTES // len(line)))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"more than {MAX_NODES} nodes") as raised:
        load_config_from_yaml(OptimizerConfig, path)
    elapsed = time.perf_counter() - started
    (issue,) = raised.value.issues
    # Refused where the count passes the limit, not after the whole file was composed.
    assert issue.position is not None and issue.position.line == MAX_NODES // 11 + 1
    assert elapsed < 10, elapsed  # about 1 s; generous for a loaded machine


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    from tml.core.config.yaml_document import MAX_FILE_BYTES

    path = write(tmp_path, "#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigError, match=rf"larger than the limit of {MAX_FILE_BYTES} bytes"):
        load_config_from_yaml(OptimizerConfig, path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this platform")
def test_a_device_is_refused_without_reading_it() -> None:
    # stat says 0 bytes: before, the size check passed and the read ran until MemoryError.
    with pytest.raises(
        ConfigError, match=r"cannot load /dev/zero: cannot read the file: it is a character device"
    ):
        load_config_from_yaml(OptimizerConfig, "/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block forever
    with pytest.raises(ConfigError, match=r"it is a FIFO \(named pipe\), not a regular file"):
        load_config_from_yaml(OptimizerConfig, fifo)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the file: it is a folder, not a regular file"):
        load_config_from_yaml(OptimizerConfig, tmp_path)


def test_a_byte_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"sgd:\n  lr: 0.1  # caf\xe9\n")
    with pytest.raises(ConfigError, match=r"config.yaml:2:17: the file is not UTF-8 text: byte 0xe9"):
        load_config_from_yaml(OptimizerConfig, path)


def test_a_forgotten_key_is_suggested(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  optimizer:\n    sgd: {lr: 0.1}\n")
    with pytest.raises(
        ConfigError, match=r"the mapping at 'model.optimizer' has some: did you mean key='model.optimizer'\?"
    ):
        load_config_from_yaml(OptimizerConfig, path)
    assert load_config_from_yaml(OptimizerConfig, path, key="model.optimizer").sgd is not None


# ---------------------------------------------------------------- 4. bounded integers

BOUNDS_TABLE: list[tuple[dict[str, Any], str, str]] = [
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 10**400}},
        },
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_steps",
        r"less than or equal to 1000000000000000",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "cosine_with_restarts": {
                    "learning_rate": 0.1,
                    "first_cycle_steps": 10,
                    "cycle_multiplier": 10**300,
                }
            },
        },
        "optimizer.learning_rate.cosine_with_restarts.cycle_multiplier",
        r"less than or equal to 1000",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {"piecewise_linear": {"boundaries": [0, 2**53 + 2], "values": [1.0, 0.0]}},
        },
        "optimizer.learning_rate.piecewise_linear.boundaries.1",
        r"less than or equal to 1000000000000000",
    ),
    (
        # each phase is within the bound, their sum is not
        {
            "sgd": {"lr": 0.1},
            "learning_rate": {
                "sequence": [{"steps": 10**15, "schedule": {"constant": 0.1}}] * 10
                + [{"schedule": {"constant": 0.1}}]
            },
        },
        "optimizer.learning_rate",
        r"has a phase ending at step 10000000000000000, after 2\*\*53 = 9007199254740992",
    ),
]


@pytest.mark.parametrize(("data", "path", "message"), BOUNDS_TABLE)
def test_bounds_table(data: dict[str, Any], path: str, message: str) -> None:
    test_error_table(data, path, message)


def test_the_vectorized_path_refuses_steps_it_cannot_hold_exactly() -> None:
    import torch

    from tml.optimizers.schedules import compute_lr

    schedule = LearningRate(constant=0.5)
    assert compute_lr(schedule, torch.tensor([2**53 - 1])).tolist() == [0.5]
    with pytest.raises(
        ValueError, match=r"steps must be < 2\*\*53 = 9007199254740992 on the vectorized path"
    ):
        compute_lr(schedule, torch.tensor([0, 2**53]))
