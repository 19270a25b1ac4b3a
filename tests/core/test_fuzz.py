"""Fuzzing the config loaders: whatever comes in, only the library's config errors come out."""

from __future__ import annotations

import math
from typing import Any

import pydantic
import torch
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from tests.schedules.test_properties import schedules_of_every_kind

from tml.core.config import ConfigError, YamlDocument
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.schedules import compute_lr, schedule_bounds


def _schema_keys(schema: dict[str, Any]) -> set[str]:
    """Every property name anywhere in a JSON schema: the keys a config can have."""
    keys: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return keys


CONFIG_KEYS = sorted(_schema_keys(OptimizerConfig.model_json_schema()))
FUZZ = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 10**12, 1e308, -0.0, 5e-324]),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=8))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)


RANDOM_STEPS = torch.cat(
    [
        torch.tensor([0, 1, 10**12]),
        torch.randint(0, 10**7, (9_997,), generator=torch.Generator().manual_seed(7)),
    ]
)


def check_valid_config(config: OptimizerConfig) -> None:
    # Whatever loads must give finite learning rates within its bounds: at 10,000 steps including 0
    # and 10**12 (vectorized), and at 0 and 10**12 on the scalar path that LRShim uses.
    for schedule in {spec.name: spec.schedule for spec in config.group_specs()}.values():
        low, high = schedule_bounds(schedule)
        values = compute_lr(schedule, RANDOM_STEPS)
        assert bool(torch.isfinite(values).all())
        # Rounding is relative to the operands: a value may pass its bound by a few ulps of the peak.
        slack = 1e-12 * high
        assert bool((values >= low - slack).all()) and bool((values <= high + slack).all())
        for step in (0, 10**12):
            assert math.isfinite(compute_lr(schedule, step))


@seed(20261123)
@FUZZ
@given(document=st.dictionaries(keys, documents, max_size=6))
def test_random_config_dicts(document: dict[str, Any]) -> None:
    try:
        config = OptimizerConfig.model_validate(document)
    except pydantic.ValidationError as error:
        str(ConfigError.from_validation_error(error, prefix=("optimizer",)))
        return
    check_valid_config(config)


yaml_texts = st.one_of(
    st.text(max_size=200),
    documents.map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
    st.tuples(
        documents.map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
        st.integers(0, 200),
        st.text(alphabet=":-[]{}&*!|>'\"%@`#, \n\t", max_size=6),
    ).map(lambda parts: parts[0][: parts[1]] + parts[2] + parts[0][parts[1] :]),
)


@seed(20261124)
@FUZZ
@given(text=yaml_texts)
def test_random_yaml_text(text: str) -> None:
    try:
        config = YamlDocument.parse(text, file="fuzz.yaml").to_config(OptimizerConfig)
    except ConfigError as error:
        assert str(error)
        return
    check_valid_config(config)


@seed(20261125)
@FUZZ
@given(
    schedule=schedules_of_every_kind,
    algorithm=st.sampled_from(["adam", "adamw", "sgd", "adagrad", "rmsprop", "nadam", "radam"]),
)
def test_every_valid_config_has_finite_rates_in_bounds(schedule: dict[str, Any], algorithm: str) -> None:
    # Valid configs of every kind (sequences nested): random dicts above almost never validate.
    check_valid_config(OptimizerConfig.model_validate({algorithm: {}, "learning_rate": schedule}))
