"""Loading configs: Python objects, YAML files, the error table, environment substitution."""

from __future__ import annotations

import math
import re
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
    ({"sgd": {"lr": {"cosine": 0.1}}}, "optimizer.sgd.lr.cosine", r"Extra inputs are not permitted"),
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
    assert OptimizerConfig(sgd=SgdConfig(lr=0.5), learning_rate=cosine).schedule() == cosine
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
