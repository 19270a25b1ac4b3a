"""Configs of param-group rules, weight-decay exclusion and layer-wise LR decay."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic

from tml.core.config import raise_at
from tml.core.config.base_config import StrictConfig
from tml.optimizers.algorithms import ALGORITHM_GROUP, AlgorithmChoice, OptimizerAlgorithmConfig
from tml.optimizers.fields import NO_BOOL, NonNegativeFloat
from tml.optimizers.groups.patterns import check_backtracking, check_patterns
from tml.optimizers.schedules import LearningRate
from tml.optimizers.schedules.plateau import ReduceOnPlateau

DEFAULT_GROUP = "default"
"""The name of the param group that holds every parameter no rule claims."""

WEIGHT_DECAY_KEYWORDS = {
    "bias": "parameters named '*.bias'",
    "norm": "parameters of normalization modules (LayerNorm, BatchNorm*, GroupNorm, RMSNorm, ...)",
    "1d": "parameters with ndim <= 1 (biases, norm scales, scalars)",
}
"""The keywords of ``exclude_from_weight_decay``; any other entry is a name pattern."""


def check_weight_decay_exclusions(entries: list[str]) -> list[str]:
    """Validate ``exclude_from_weight_decay``: keywords, or patterns that compile."""
    patterns = [entry for entry in entries if entry not in WEIGHT_DECAY_KEYWORDS]
    check_patterns(patterns)
    return entries


WeightDecayExclusions = Annotated[list[str], pydantic.AfterValidator(check_weight_decay_exclusions)]


def _plateau_tag(value: Any) -> str:
    return "False" if value is False else "ReduceOnPlateau"


PlateauSetting = Annotated[
    Annotated[ReduceOnPlateau, pydantic.Tag("ReduceOnPlateau")]
    | Annotated[Literal[False], pydantic.Tag("False")],
    pydantic.Discriminator(_plateau_tag),
]
"""A rule's ``reduce_on_plateau``: a setting, or ``false`` for none (a tagged union, so that an error
of the setting is reported alone, not beside "should be False")."""


def check_plateau_setting(value: Any) -> Any:
    """A rule's ``reduce_on_plateau`` before validation: a mapping (or a ``ReduceOnPlateau``), ``false``
    or ``None``; ``true`` and other values are refused with what to write."""
    # Literal[False] would also take 0 (0 == False), and a union's error would list both arms.
    if isinstance(value, bool):
        if value:
            raise ValueError(
                "true is not a setting: give {metric: <name>, ...}, or false to leave this "
                "group's LR to its schedule"
            )
        return value
    if value is None or isinstance(value, (dict, ReduceOnPlateau)):
        return value
    raise ValueError(f"expected a reduce_on_plateau setting {{metric: <name>, ...}} or false, got {value!r}")


class ParamGroupConfig(AlgorithmChoice):
    """A param-group rule: the parameters whose names match ``params``, and what differs for them.

    Rules are tried in order; the first that matches a parameter claims it. A group may override
    the schedule (``learning_rate``), the default algorithm's hyperparameters (``hyperparameters``)
    or the algorithm itself (an algorithm key such as ``sgd``, at most one), and scale its LR
    (``lr_multiplier``).
    """

    optional_groups = frozenset({ALGORITHM_GROUP})

    name: str = pydantic.Field(
        description="The group's name: the key of its schedule in LRShim and of its state in checkpoints."
    )
    params: list[str] = pydantic.Field(
        min_length=1,
        description="Patterns over parameter names (wrappers such as DDP's 'module.' left out): globs "
        "matched against the whole name ('*' also crosses dots), or 're:<regex>' found with re.search.",
    )
    learning_rate: LearningRate | None = pydantic.Field(
        None,
        description="The group's schedule; default: its own algorithm's lr if it has one, else the "
        "optimizer's default schedule.",
    )
    lr_multiplier: NonNegativeFloat = pydantic.Field(
        1.0, description="The group's LR is its schedule's value times this; >= 0."
    )
    reduce_on_plateau: PlateauSetting | None = pydantic.Field(
        None,
        description="Reduce the group's LR when its metric (given to scheduler.report) stops "
        "improving; default: the optimizer's reduce_on_plateau; false: none for this group.",
    )
    hyperparameters: dict[str, Any] | None = pydantic.Field(
        None,
        description="Hyperparameters of the default algorithm to override for this group (e.g. "
        "weight_decay: 0.0), checked against that algorithm's config. Not with an algorithm key.",
    )
    exclude_from_weight_decay: WeightDecayExclusions | None = pydantic.Field(
        None, description="Overrides the optimizer's exclude_from_weight_decay for this group ([] for none)."
    )

    @pydantic.field_validator("name")
    @classmethod
    def _name_not_reserved(cls, name: str) -> str:
        if not name.strip():
            raise ValueError(f"a group name must not be empty, got {name!r}")
        if name == DEFAULT_GROUP:
            raise ValueError(
                f"{DEFAULT_GROUP!r} is the group of the parameters no rule claims; "
                "give this rule another name"
            )
        return name

    @pydantic.field_validator("reduce_on_plateau", mode="before")
    @classmethod
    def _false_or_a_setting(cls, value: Any) -> Any:
        return check_plateau_setting(value)

    @pydantic.field_validator("params")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns)

    @pydantic.model_validator(mode="after")
    def _one_place_per_setting(self) -> ParamGroupConfig:
        own = self.own_algorithm()
        if own is None:
            return self
        key, algorithm = own
        if self.hyperparameters is not None:
            raise_at(
                type(self).__name__,
                ("hyperparameters",),
                f"hyperparameters override the default algorithm's; this group has its own ({key}): "
                f"give them in {key}",
                self.hyperparameters,
            )
        if isinstance(algorithm.lr, LearningRate) and self.learning_rate is not None:
            raise_at(
                type(self).__name__,
                (key, "lr"),
                "lr is a schedule and the group's learning_rate is set too: give the schedule in one place",
                algorithm.lr.model_dump(mode="json", exclude_none=True),
            )
        return self

    def own_algorithm(self) -> tuple[str, OptimizerAlgorithmConfig] | None:
        """The group's own algorithm key and config, if it sets one."""
        return self.chosen_algorithm()


class LayerDecayConfig(StrictConfig):
    """Layer-wise LR decay with timm's numbering.

    ``layer_pattern`` captures the block index ``i`` of a parameter's name; block ``i`` is layer
    ``i + 1`` and ``num_layers = max(i) + 1``. Parameters registered before the first block are
    layer 0 (embeddings, stem), those after the last block (the head) layer ``num_layers + 1``.
    A parameter of layer ``l`` has its LR multiplied by ``rate ** (num_layers + 1 - l)``: the head
    keeps its LR, each layer below gets ``rate`` times the LR of the one above.
    """

    rate: Annotated[float, NO_BOOL, pydantic.Field(gt=0.0, le=1.0, allow_inf_nan=False)] = pydantic.Field(
        description="The decay per layer, in (0, 1] (timm's layer_decay, e.g. 0.75)."
    )
    layer_pattern: str = pydantic.Field(
        description=r"A regex (re.search) with one group capturing the block index, e.g. 'blocks\.(\d+)\.'."
    )

    @pydantic.field_validator("layer_pattern")
    @classmethod
    def _one_group(cls, layer_pattern: str) -> str:
        try:
            compiled = re.compile(layer_pattern)
        except re.error as error:
            raise ValueError(f"{layer_pattern!r} is not a valid regex: {error}") from None
        check_backtracking(layer_pattern)
        if compiled.groups != 1:
            raise ValueError(
                f"needs exactly one capturing group (the block index), got {compiled.groups} "
                f"in {layer_pattern!r}; use (?:...) for the others"
            )
        return layer_pattern
