"""Config classes written for the original (pydantic 1 style on ``BaseConfig``) work unchanged.

``BaseConfig`` follows pydantic 1's rules for the fields a subclass declares: a field whose default is
``None`` accepts ``None`` and may be left out, defaults are not validated, one-of groups may be
declared by ``Field``'s extra keywords. tml's own classes derive from ``StrictConfig`` and keep
validated defaults and explicit ``X | None``. ``tml.core.config`` can be extended by another source
tree (the original keeps ``training.py`` there).
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pydantic
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from tests.original_configs import (
    DATA,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    RuntimeConfig,
    TowerOptimizerConfig,
)

import tml.optimizers
from tml.core.config import BaseConfig, ConfigError, load_config_from_yaml
from tml.core.config.base_config import StrictConfig
from tml.optimizers.config import LearningRate, OptimizerConfig, SgdConfig

SRC = Path(tml.optimizers.__file__).resolve().parents[2]


class Plain(BaseConfig):
    """String annotations (this module has ``from __future__ import annotations``)."""

    count: int = pydantic.Field(None, description="An int that may be left out.")
    name: str = None
    ratio: float = 0.5


# ---------------------------------------------------------------- pydantic 1's optional fields


@given(st.none() | st.integers())
def test_a_field_with_a_none_default_may_be_left_out_null_or_set(value: int | None) -> None:
    assert Plain().count is None  # main: "Input should be a valid integer"
    assert Plain(count=value).count == value
    assert Plain.model_validate({"count": value, "name": None}).count == value
    assert Plain.model_validate(Plain(count=value).model_dump()) == Plain(count=value)


def test_such_a_field_still_validates_a_value_and_extra_keys_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"count\n  Input should be a valid integer"):
        Plain(count="many")
    with pytest.raises(pydantic.ValidationError, match=r"ratio\n  Input should be a valid number"):
        Plain(ratio=None)  # a default that is not None gives no Optional (as in pydantic 1)
    with pytest.raises(pydantic.ValidationError, match=r"cuont\n  Extra inputs are not permitted"):
        Plain(cuont=1)


def test_a_default_that_is_a_config_instance_imports_and_defaults_are_not_validated() -> None:
    # On main, RuntimeConfig() raised while tests/original_configs.py was being imported.
    assert RuntimeConfig().max_threads is None
    assert ExperimentConfig.model_fields["runtime"].default == RuntimeConfig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pydantic.PydanticDeprecatedSince20)

        class Unvalidated(BaseConfig):
            betas: tuple[float, float] = [0.9, 0.999]  # type: ignore[assignment]

    assert Unvalidated().betas == [0.9, 0.999]  # pydantic 1 kept a default as written
    assert Unvalidated(betas=[0.5, 0.6]).betas == (0.5, 0.6)


def test_one_of_groups_by_extra_keyword_and_by_json_schema_extra() -> None:
    assert TowerOptimizerConfig.field_groups("one_of") == {
        "optimizer": ("adam", "sgd"),
        "lr": ("multi_task_learning_rates", "single_task_learning_rate"),
    }
    assert DataConfig.field_groups("at_most_one_of") == {"source": ("data_root", "explicit_files")}
    config = TowerOptimizerConfig(sgd={"lr": 0.1}, single_task_learning_rate={"constant": 0.1})
    assert config.chosen("optimizer") == ("sgd", SgdConfig(lr=0.1))
    assert config.chosen("lr") == ("single_task_learning_rate", LearningRate(constant=0.1))
    with pytest.raises(pydantic.ValidationError, match=r"exactly one of adam, sgd must be set, got 0"):
        TowerOptimizerConfig(single_task_learning_rate={"constant": 0.1})
    with pytest.raises(
        pydantic.ValidationError,
        match=r"exactly one of multi_task_learning_rates, single_task_learning_rate must be set, got 2",
    ):
        TowerOptimizerConfig(
            sgd={"lr": 0.1},
            single_task_learning_rate={"constant": 0.1},
            multi_task_learning_rates={"backbone_learning_rate": {"constant": 0.1}},
        )
    with pytest.raises(pydantic.ValidationError, match=r"at most one of data_root, explicit_files"):
        DataConfig(per_replica_batch_size=1, data_root="x", explicit_files=["y"])


def test_the_json_schema_marks_the_groups_and_the_optional_fields() -> None:
    properties = TowerOptimizerConfig.model_json_schema()["properties"]
    assert properties["adam"]["one_of"] == "optimizer"
    assert properties["single_task_learning_rate"]["one_of"] == "lr"
    assert {"type": "null"} in properties["adam"]["anyOf"]
    data = DataConfig.model_json_schema()["properties"]
    assert data["data_root"]["at_most_one_of"] == "source"
    assert data["limit"]["anyOf"] == [{"exclusiveMinimum": 0, "type": "integer"}, {"type": "null"}]


def test_pretty_print_of_an_original_style_config() -> None:
    data = DataConfig(per_replica_batch_size=8, data_root="/data/*", limit=3)
    printed = data.pretty_print()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no serialization warning for a default that was not validated
        assert yaml.safe_load(RuntimeConfig().pretty_print()) == {"enable_amp": False}
    assert yaml.safe_load(printed) == {
        "data_root": "/data/*",
        "per_replica_batch_size": 8,
        "global_negatives": 0,
        "in_batch_negatives": 0,
        "limit": 3,
    }
    assert DataConfig.model_validate(yaml.safe_load(printed)) == data


# ---------------------------------------------------------------- whole files in the original's format


def test_a_whole_original_style_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/srv/someone")
    config = load_config_from_yaml(ExperimentConfig, DATA / "original_experiment.yaml")
    assert config.training.save_dir == "/srv/someone/runs/experiment"
    assert config.train_data.data_root == "/srv/someone/data/edges/*"
    assert config.train_data.offset is None and config.runtime.max_threads is None
    assert config.validation_data is not None
    assert config.validation_data.explicit_files == ["a.parquet", "b.parquet"]
    user, item = config.model.embeddings.tables
    assert user.optimizer.chosen("optimizer")[0] == "sgd" and user.optimizer.schedule().constant == 0.02
    assert item.optimizer.chosen("optimizer")[0] == "adagrad" and item.optimizer.schedule().constant == 0.1
    assert yaml.safe_load(config.pretty_print())["training"]["num_epochs"] == 2
    model = load_config_from_yaml(ModelConfig, DATA / "original_experiment.yaml", key="model")
    assert model == config.model


def test_tower_learning_rates_in_the_original_format(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config_from_yaml(TowerOptimizerConfig, DATA / "original_towers.yaml", key="optimizer")
    name, towers = config.chosen("lr")
    assert name == "multi_task_learning_rates"
    assert list(towers.tower_learning_rates) == ["engagement.is_clicked", "engagement.is_liked"]
    assert towers.tower_learning_rates["engagement.is_clicked"].constant == 0.003
    assert towers.backbone_learning_rate.linear_ramp_to_constant.num_ramp_steps == 10
    # The same section is recap's format for OptimizerConfig: one group per tower plus backbone.
    ours = load_config_from_yaml(OptimizerConfig, DATA / "original_towers.yaml", key="optimizer")
    assert [spec.name for spec in ours.group_specs()][-1] == "backbone"


def test_an_error_in_an_original_style_file_names_the_file_and_line(tmp_path: Path) -> None:
    text = (DATA / "original_experiment.yaml").read_text().replace("limit: 900", "limit: -1")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:3: train_data\.limit: .*greater than 0"):
        load_config_from_yaml(ExperimentConfig, path)


def test_the_original_real_configs_when_present(shared_config) -> None:  # type: ignore[no-untyped-def]
    twhin = ExperimentConfig.model_validate(yaml.safe_load(shared_config("twhin_local.yaml").read_text()))
    assert [table.name for table in twhin.model.embeddings.tables] == ["user", "tweet"]
    assert twhin.model.translation_optimizer.schedule() == LearningRate(constant=0.05)
    ranker = load_config_from_yaml(
        TowerOptimizerConfig, shared_config("heavy_ranker_optimizer.yaml"), key="optimizer"
    )
    assert ranker.adam is not None and ranker.adam.betas == (0.95, 0.999)


# ---------------------------------------------------------------- nothing of tml's became laxer


def _config_classes_of_tml() -> list[type[BaseConfig]]:
    for module in pkgutil.walk_packages(tml.optimizers.__path__, "tml.optimizers."):
        if ".demo" not in module.name and ".integrations" not in module.name:
            importlib.import_module(module.name)
    found: list[type[BaseConfig]] = []
    pending = [BaseConfig]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("tml."):
                found.append(subclass)
    return found


def test_every_config_class_of_tml_is_strict() -> None:
    classes = _config_classes_of_tml()
    assert OptimizerConfig in classes and LearningRate in classes
    lax = [cls.__qualname__ for cls in classes if not issubclass(cls, StrictConfig)]
    assert lax == []
    assert all(cls.model_config["validate_default"] is True for cls in classes)
    assert all(cls.model_config["extra"] == "forbid" for cls in classes)
    with pytest.raises(pydantic.ValidationError, match=r"momentum\n  Input should be a valid number"):
        SgdConfig(lr=0.1, momentum=None)  # no implicit Optional for tml's own fields


def test_a_strict_class_validates_its_defaults() -> None:
    class Strict(StrictConfig):
        count: int = None  # type: ignore[assignment]

    with pytest.raises(pydantic.ValidationError, match=r"count\n  Input should be a valid integer"):
        Strict()
    assert inspect.isclass(Strict) and not Strict.implicit_optional


# ---------------------------------------------------------------- tml.core.config can be extended


def test_a_module_of_another_source_tree_extends_tml_core_config(tmp_path: Path) -> None:
    # The original's training.py, in a tree of its own, beside this distribution.
    package = tmp_path / "tml" / "core" / "config"
    package.mkdir(parents=True)
    (package / "training.py").write_text(
        textwrap.dedent(
            """
            import pydantic
            from tml.core.config import base_config

            class TrainingConfig(base_config.BaseConfig):
                save_dir: str = pydantic.Field("/srv/model")
                num_train_steps: pydantic.PositiveInt = 10
                profile: bool = pydantic.Field(None)
            """
        )
    )
    (tmp_path / "tml" / "core" / "helpers.py").write_text("ANSWER = 42\n")
    script = (
        "from tml.core.config.training import TrainingConfig\n"
        "from tml.core.helpers import ANSWER\n"
        "from tml.core.config import load_config_from_yaml\n"
        "import tml.optimizers\n"
        "print(TrainingConfig(profile=None).num_train_steps, ANSWER)\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(tmp_path)])}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10", "42"]
