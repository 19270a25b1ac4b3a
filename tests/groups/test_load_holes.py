"""Issue 14: param-group rules that would pass silently wrong, refused at build (patterns need the model)
or at load (regexes that could hang, an lr that would not be used)."""

from __future__ import annotations

import re
import time

import pydantic
import pytest
import torch

from tml.core.config import ConfigError
from tml.optimizers import build_optimizer
from tml.optimizers.config import OptimizerConfig


class Tied(torch.nn.Module):
    """A language model whose head shares the embedding's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(8, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.lm_head = torch.nn.Linear(4, 8, bias=False)
        self.lm_head.weight = self.embed.weight


def config(**fields: object) -> OptimizerConfig:
    return OptimizerConfig.model_validate({"adamw": {"lr": 0.1}, **fields})


BUILD_ERRORS: list[tuple[dict[str, object], str]] = [
    # 5. one pattern of a multi-pattern rule matches nothing (before: accepted, as the other matches)
    (
        {"param_groups": [{"name": "n", "params": ["norm.*", "nrom.bias"]}]},
        r"param_groups\[0\] 'n': its pattern 'nrom.bias' matches no parameter name of Tied \(its other "
        r"patterns do\).*the closest names: norm.bias",
    ),
    # 5. exclusion patterns that match nothing (before: no parameter excluded, silently)
    (
        {"exclude_from_weight_decay": ["biases"]},
        r"exclude_from_weight_decay \(of the group of unclaimed parameters \('default'\)\): the pattern "
        r"'biases' matches no parameter name of Tied; did you mean the keyword 'bias'\?",
    ),
    (
        {"exclude_from_weight_decay": ["LayerNorm"]},
        r"the pattern 'LayerNorm' matches no parameter name of Tied; did you mean the keyword 'norm'\?",
    ),
    # 5. a rule shadowed by an earlier one (before: no group, silently)
    (
        {"param_groups": [{"name": "all", "params": ["*"]}, {"name": "norms", "params": ["norm.*"]}]},
        r"param_groups\[1\] 'norms': claims no parameter: every trainable parameter it matches "
        r"\(norm.weight, norm.bias\) is claimed by an earlier rule \(param_groups\[0\] 'all'\)",
    ),
    # 10. a tied parameter's second name: the message says why it matches nothing
    (
        {"param_groups": [{"name": "head", "params": ["lm_head.*"]}]},
        r"none of its patterns \['lm_head.\*'\] matches a parameter name of Tied \(it matches a tied "
        r"parameter's second name: 'lm_head.weight' is tied to 'embed.weight'; a shared parameter is "
        r"matched under its first name only\)",
    ),
]


@pytest.mark.parametrize(("fields", "message"), BUILD_ERRORS)
def test_build_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_optimizer(Tied(), config(**fields))


def test_the_keywords_and_matching_patterns_still_build() -> None:
    optimizer, _ = build_optimizer(
        Tied(),
        config(
            exclude_from_weight_decay=["bias", "norm", "re:^embed\\."],
            param_groups=[{"name": "n", "params": ["norm.weight", "norm.bias"]}],
        ),
    )
    names = [group["name"] for group in optimizer.param_groups]
    assert names == ["n.no_weight_decay", "default.no_weight_decay"]


LOAD_ERRORS: list[tuple[dict[str, object], str, str]] = [
    # 6. regexes whose matching can take exponential time
    (
        {"param_groups": [{"name": "b", "params": ["re:^(\\w+\\.?)+\\.bias$"]}]},
        "param_groups.0.params",
        r"pattern 0: 're:\^\(\\\\w\+\\\\.\?\)\+\\\\.bias\$' repeats a part that itself repeats",
    ),
    (
        {"param_groups": [{"name": "b", "params": ["blocks.*", "re:(ab|a)*c"]}]},
        "param_groups.0.params",
        r"pattern 1: 're:\(ab\|a\)\*c' repeats a part that itself has alternatives",
    ),
    (
        {"exclude_from_weight_decay": ["re:(x+x+)+y"]},
        "exclude_from_weight_decay",
        r"repeats a part that itself repeats",
    ),
    (
        {"layer_decay": {"rate": 0.5, "layer_pattern": "blocks\\.((\\d+)+)\\."}},
        "layer_decay.layer_pattern",
        r"repeats a part that itself repeats",
    ),
    # 5. an lr beside learning_rate that would be discarded
    (
        {"learning_rate": {"constant": 0.001}},
        "adamw.lr",
        r"lr 0.1 would not be used: learning_rate is set too and gives the learning rate \(its greatest "
        r"value is 0.001\); leave lr out, or make it 0.001",
    ),
    (
        {
            "param_groups": [
                {"name": "e", "params": ["embed.*"], "sgd": {"lr": 0.5}, "learning_rate": {"constant": 0.01}}
            ]
        },
        "param_groups.0.sgd.lr",
        r"lr 0.5 would not be used: the group's learning_rate is set too",
    ),
]


@pytest.mark.parametrize(("fields", "path", "message"), LOAD_ERRORS)
def test_load_errors(fields: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        config(**fields)
    error = ConfigError.from_validation_error(raised.value)
    matching = [str(issue) for issue in error.issues if issue.dotted_path == path]
    assert matching, [str(issue) for issue in error.issues]
    assert any(re.search(message, text) for text in matching), matching


def test_an_equal_lr_beside_learning_rate_loads() -> None:
    # The original's configs (TwHIN's) write both; a ramp's lr is its peak.
    assert config(adamw={"lr": 0.05}, learning_rate={"constant": 0.05}).schedule().constant == 0.05
    ramp = {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 10}}
    assert config(learning_rate=ramp).schedule().linear_ramp_to_constant is not None


def test_a_refused_regex_cannot_hang_validate_or_build() -> None:
    # Before: ~69 s on a 3-parameter model; now refused when the config is made.
    started = time.perf_counter()
    with pytest.raises(pydantic.ValidationError, match=r"repeats a part that itself repeats"):
        config(param_groups=[{"name": "b", "params": ["re:^(\\w+\\.?)+\\.bias$"]}])
    assert time.perf_counter() - started < 5


def test_build_optimizer_says_what_it_expected() -> None:
    model = Tied()
    with pytest.raises(
        TypeError, match=r"expected the model, a torch.nn.Module, got generator \(model.parameters"
    ):
        build_optimizer(model.parameters(), config())  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"expected an OptimizerConfig, got dict: make one with OptimizerConfig"
    ):
        build_optimizer(model, {"adamw": {"lr": 0.1}})  # type: ignore[arg-type]
