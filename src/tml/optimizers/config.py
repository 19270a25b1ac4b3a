"""Optimizer configs: ``OptimizerConfig`` (algorithms, schedules, param groups) and everything it holds."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pydantic

from tml.core.config import BaseConfig, located_error, relocate
from tml.optimizers.algorithms import (
    ALGORITHMS,
    AdadeltaConfig,
    AdafactorConfig,
    AdagradConfig,
    AdamaxConfig,
    AdamConfig,
    AdamWConfig,
    AsgdConfig,
    CustomOptimizerConfig,
    MuonConfig,
    NAdamConfig,
    OptimizerAlgorithmConfig,
    RAdamConfig,
    RmspropConfig,
    RpropConfig,
    SGDConfig,
    SgdConfig,
    SparseAdamConfig,
    list_optimizers,
)
from tml.optimizers.groups.recap import (
    BACKBONE_GROUP,
    SINGLE_TASK_GROUP,
    MultiTaskLearningRates,
    tower_pattern,
)
from tml.optimizers.groups.rules import (
    DEFAULT_GROUP,
    WEIGHT_DECAY_KEYWORDS,
    LayerDecayConfig,
    ParamGroupConfig,
    WeightDecayExclusions,
    algorithm_field,
)
from tml.optimizers.schedules import (
    CosineDecay,
    CosineWithRestarts,
    Cyclic,
    ExponentialDecay,
    InverseSqrt,
    LearningRate,
    Linear,
    LinearRampToConstant,
    LinearRampToCosine,
    MultistepDecay,
    OneCycle,
    PiecewiseConstant,
    PiecewiseLinear,
    PolynomialDecay,
    ScheduleSequence,
    SequencePhase,
    WarmupStableDecay,
)

_ONE_OF_OPTIMIZER: dict[str, Any] = {"one_of": "optimizer"}
_AT_MOST_ONE_SCHEDULE: dict[str, Any] = {"at_most_one_of": "schedule"}

SchedulePosition = Literal["scheduler_steps", "optimizer_steps"]
"""What the schedule's step counts: ``scheduler.step()`` calls, or optimizer steps actually taken."""


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """A param-group rule made concrete: everything but the parameters, which the model supplies.

    ``patterns`` is empty for the group of unclaimed parameters.
    """

    name: str
    patterns: tuple[str, ...]
    algorithm: OptimizerAlgorithmConfig
    schedule: LearningRate
    lr_multiplier: float = 1.0
    exclude_from_weight_decay: tuple[str, ...] = ()
    path: str = ""
    """Where the rule stands in the config, for messages (``param_groups[2] 'towers'``)."""
    exclusive: bool = False
    """A parameter that this rule and another exclusive rule both match is an error (recap's towers)."""


class OptimizerConfig(BaseConfig):
    """An optimizer: a default algorithm and schedule, and param-group rules that differ from them.

    The default schedule is ``learning_rate`` if set, else the algorithm's ``lr`` if that is a
    schedule, else ``constant: lr``. Without ``param_groups`` every trainable parameter is in one
    group, ``default``. recap's format (``multi_task_learning_rates`` / ``single_task_learning_rate``)
    is read as it stands and becomes one group per task tower plus ``backbone``.

    Examples:
      >>> config = OptimizerConfig(sgd=SgdConfig(lr=0.01))
      >>> config.schedule().constant
      0.01
      >>> [spec.name for spec in OptimizerConfig(
      ...     adamw={"lr": 0.001},
      ...     param_groups=[{"name": "towers", "params": ["towers.*"], "lr_multiplier": 2.0}],
      ... ).group_specs()]
      ['towers', 'default']
    """

    learning_rate: LearningRate | None = pydantic.Field(
        None,
        json_schema_extra=_AT_MOST_ONE_SCHEDULE,
        description="The default learning-rate schedule; wins over a number given as the algorithm's lr.",
    )
    multi_task_learning_rates: MultiTaskLearningRates | None = pydantic.Field(
        None,
        json_schema_extra=_AT_MOST_ONE_SCHEDULE,
        description="recap's format: a schedule per task tower and one for the backbone.",
    )
    single_task_learning_rate: LearningRate | None = pydantic.Field(
        None,
        json_schema_extra=_AT_MOST_ONE_SCHEDULE,
        description="recap's format: the schedule of every parameter (one group, 'single_task').",
    )
    adam: AdamConfig | None = algorithm_field(AdamConfig, _ONE_OF_OPTIMIZER)
    adamw: AdamWConfig | None = algorithm_field(AdamWConfig, _ONE_OF_OPTIMIZER)
    sgd: SgdConfig | None = algorithm_field(SgdConfig, _ONE_OF_OPTIMIZER)
    adagrad: AdagradConfig | None = algorithm_field(AdagradConfig, _ONE_OF_OPTIMIZER)
    rmsprop: RmspropConfig | None = algorithm_field(RmspropConfig, _ONE_OF_OPTIMIZER)
    adadelta: AdadeltaConfig | None = algorithm_field(AdadeltaConfig, _ONE_OF_OPTIMIZER)
    adamax: AdamaxConfig | None = algorithm_field(AdamaxConfig, _ONE_OF_OPTIMIZER)
    nadam: NAdamConfig | None = algorithm_field(NAdamConfig, _ONE_OF_OPTIMIZER)
    radam: RAdamConfig | None = algorithm_field(RAdamConfig, _ONE_OF_OPTIMIZER)
    asgd: AsgdConfig | None = algorithm_field(AsgdConfig, _ONE_OF_OPTIMIZER)
    rprop: RpropConfig | None = algorithm_field(RpropConfig, _ONE_OF_OPTIMIZER)
    sparse_adam: SparseAdamConfig | None = algorithm_field(SparseAdamConfig, _ONE_OF_OPTIMIZER)
    adafactor: AdafactorConfig | None = algorithm_field(AdafactorConfig, _ONE_OF_OPTIMIZER)
    muon: MuonConfig | None = algorithm_field(MuonConfig, _ONE_OF_OPTIMIZER)
    custom: CustomOptimizerConfig | None = algorithm_field(CustomOptimizerConfig, _ONE_OF_OPTIMIZER)
    exclude_from_weight_decay: WeightDecayExclusions = pydantic.Field(
        default_factory=list,
        description="Parameters to leave out of weight decay, in every group (a group may override): "
        + ", ".join(f"'{key}' ({meaning})" for key, meaning in WEIGHT_DECAY_KEYWORDS.items())
        + ", or name patterns (globs, 're:' regexes). They go to a companion group "
        "'<group>.no_weight_decay' with weight_decay 0 and the same schedule.",
    )
    layer_decay: LayerDecayConfig | None = pydantic.Field(
        None, description="Layer-wise LR decay (timm's numbering): see LayerDecayConfig."
    )
    param_groups: list[ParamGroupConfig] = pydantic.Field(
        default_factory=list,
        description="Ordered rules; the first that matches a parameter claims it. Parameters no rule "
        "claims form the group 'default'.",
    )
    schedule_position: SchedulePosition = pydantic.Field(
        "scheduler_steps",
        description="'scheduler_steps': the schedule's step is the number of scheduler.step() calls "
        "(torch's convention). 'optimizer_steps': it is the number of optimizer steps actually "
        "taken, so a step that AMP's GradScaler skips does not advance it, and scheduler.step() may "
        "be called any number of times per step.",
    )
    shard_optimizer_state: bool = pydantic.Field(
        False,
        description="Shard the optimizer state over the ranks of a DDP run (ZeRO stage 1, torch's "
        "ZeroRedundancyOptimizer): each rank keeps the state of its share of the parameters and "
        "broadcasts their update; the parameters are those of the unsharded optimizer. Needs an "
        "initialized torch.distributed process group when the optimizer is built, and one algorithm "
        "for every param group. Not for FSDP2 models, whose optimizer state is sharded already.",
    )

    @pydantic.field_validator("exclude_from_weight_decay", "param_groups", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        # Configs in the original's style write unused keys as null.
        return [] if value is None else value

    @pydantic.field_validator(*ALGORITHMS)
    @classmethod
    def _one_schedule(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if not isinstance(value, OptimizerAlgorithmConfig):
            return value
        schedule_keys = ("learning_rate", "multi_task_learning_rates", "single_task_learning_rate")
        if any(key not in info.data for key in schedule_keys):
            return value  # one of them is itself invalid (reported already)
        given = [key for key in schedule_keys if info.data[key] is not None]
        if isinstance(value.lr, LearningRate) and given:
            raise ValueError(f"lr is a schedule and {given[0]} is set too: give the schedule in one place")
        if value.lr is None and not given:
            raise ValueError("lr is required unless learning_rate is set, got neither")
        return value

    @pydantic.model_validator(mode="after")
    def _check_groups(self) -> OptimizerConfig:
        title = type(self).__name__
        recap_key = next(
            (key for key in ("multi_task_learning_rates", "single_task_learning_rate") if getattr(self, key)),
            None,
        )
        if recap_key and self.param_groups:
            raise located_error(
                title,
                [
                    (
                        ("param_groups",),
                        f"param_groups cannot be combined with {recap_key} (recap's format makes the "
                        "groups itself): write the towers as param_groups instead",
                        [group.name for group in self.param_groups],
                    )
                ],
            )
        multi_task = self.multi_task_learning_rates
        if (
            multi_task is not None
            and multi_task.backbone_learning_rate is None
            and self.algorithm().lr is None
        ):
            raise located_error(
                title,
                [
                    (
                        ("multi_task_learning_rates", "backbone_learning_rate"),
                        "the backbone needs a schedule: set backbone_learning_rate (or a numeric lr "
                        f"in {self.chosen('optimizer')[0]})",
                        None,
                    )
                ],
            )
        names: dict[str, int] = {}
        for index, group in enumerate(self.param_groups):
            if group.name in names:
                raise located_error(
                    title,
                    [
                        (
                            ("param_groups", index, "name"),
                            f"the name {group.name!r} is already taken by param_groups[{names[group.name]}]",
                            group.name,
                        )
                    ],
                )
            names[group.name] = index
            self._resolve_group(index, group)  # validates hyperparameters and weight-decay exclusion
        self._check_weight_decay_support(self.algorithm(), self.exclude_from_weight_decay, None)
        if self.shard_optimizer_state:
            self._check_one_algorithm()
        return self

    def _check_one_algorithm(self) -> None:
        """ZeRO-1 wraps one torch optimizer class: refuse a config that names several."""
        default = self.algorithm()
        for index, group in enumerate(self.param_groups):
            own = group.own_algorithm()
            if own is None or own[1].torch_class() is default.torch_class():
                continue
            raise located_error(
                type(self).__name__,
                [
                    (
                        ("param_groups", index, own[0]),
                        f"shard_optimizer_state (ZeRO-1) shards one optimizer class, but group "
                        f"{group.name!r} uses {own[0]} ({own[1].torch_class().__name__}) and the "
                        f"optimizer {default.key} ({default.torch_class().__name__}): give every group "
                        "the same algorithm, or set shard_optimizer_state: false",
                        own[0],
                    )
                ],
            )

    def algorithm(self) -> OptimizerAlgorithmConfig:
        """The config of the default algorithm."""
        return self.chosen("optimizer")[1]

    def schedule(self) -> LearningRate:
        """The default schedule: ``learning_rate`` (or recap's single-task / backbone schedule), else a
        schedule given as ``lr``, else ``constant: lr``."""
        for given in (
            self.learning_rate,
            self.single_task_learning_rate,
            self.multi_task_learning_rates and self.multi_task_learning_rates.backbone_learning_rate,
        ):
            if given:
                return given
        lr = self.algorithm().lr
        if lr is None:
            raise ValueError("no schedule: neither learning_rate nor lr is set")
        return lr if isinstance(lr, LearningRate) else LearningRate(constant=lr)

    def default_group_name(self) -> str:
        """The name of the group of unclaimed parameters: ``default`` (``backbone``, ``single_task``
        in recap's format)."""
        if self.multi_task_learning_rates is not None:
            return BACKBONE_GROUP
        if self.single_task_learning_rate is not None:
            return SINGLE_TASK_GROUP
        return DEFAULT_GROUP

    def group_specs(self) -> list[GroupSpec]:
        """Every rule made concrete, in order, then the group of unclaimed parameters."""
        if self.multi_task_learning_rates is not None:
            specs = [
                GroupSpec(
                    name=task,
                    patterns=(tower_pattern(task),),
                    algorithm=self.algorithm(),
                    schedule=schedule,
                    exclude_from_weight_decay=tuple(self.exclude_from_weight_decay),
                    path=f"multi_task_learning_rates.tower_learning_rates[{task!r}]",
                    exclusive=True,
                )
                for task, schedule in self.multi_task_learning_rates.tower_learning_rates.items()
            ]
        else:
            specs = [self._resolve_group(index, group) for index, group in enumerate(self.param_groups)]
        default = GroupSpec(
            name=self.default_group_name(),
            patterns=(),
            algorithm=self.algorithm(),
            schedule=self.schedule(),
            exclude_from_weight_decay=tuple(self.exclude_from_weight_decay),
            path=f"the group of unclaimed parameters ({self.default_group_name()!r})",
        )
        return [*specs, default]

    def _resolve_group(self, index: int, group: ParamGroupConfig) -> GroupSpec:
        title = type(self).__name__
        own = group.own_algorithm()
        if own is not None:
            algorithm = own[1]
        elif group.hyperparameters:
            for key in group.hyperparameters:
                try:
                    self.algorithm().check_hyperparameter_names([key])
                except ValueError as error:
                    raise located_error(
                        title, [(("param_groups", index, "hyperparameters", key), str(error), key)]
                    ) from None
            try:
                algorithm = self.algorithm().with_hyperparameters(group.hyperparameters)
            except pydantic.ValidationError as error:
                raise relocate(title, ("param_groups", index, "hyperparameters"), error) from None
        else:
            algorithm = self.algorithm()
        if group.learning_rate is not None:
            schedule = group.learning_rate
        elif own is not None and own[1].lr is not None:
            lr = own[1].lr
            schedule = lr if isinstance(lr, LearningRate) else LearningRate(constant=lr)
        else:
            schedule = self.schedule()
        exclusions = (
            group.exclude_from_weight_decay
            if group.exclude_from_weight_decay is not None
            else self.exclude_from_weight_decay
        )
        self._check_weight_decay_support(algorithm, exclusions, (index, group))
        return GroupSpec(
            name=group.name,
            patterns=tuple(group.params),
            algorithm=algorithm,
            schedule=schedule,
            lr_multiplier=group.lr_multiplier,
            exclude_from_weight_decay=tuple(exclusions),
            path=f"param_groups[{index}] {group.name!r}",
        )

    def _check_weight_decay_support(
        self,
        algorithm: OptimizerAlgorithmConfig,
        exclusions: list[str],
        group: tuple[int, ParamGroupConfig] | None,
    ) -> None:
        if not exclusions or algorithm.supports_weight_decay():
            return
        key = algorithm.key
        if group is None:
            path: tuple[str | int, ...] = ("exclude_from_weight_decay",)
            message = (
                f"group {self.default_group_name()!r} uses {key}, which has no weight_decay, so "
                "nothing can be excluded from it"
            )
        else:
            index, config = group
            inherited = config.exclude_from_weight_decay is None
            path = ("param_groups", index, "exclude_from_weight_decay" if not inherited else "name")
            message = (
                f"group {config.name!r} uses {key}, which has no weight_decay, so nothing can be "
                "excluded from it"
                + (
                    ": exclude_from_weight_decay is inherited from the optimizer; set "
                    "exclude_from_weight_decay: [] in this group"
                    if inherited
                    else ""
                )
            )
        raise located_error(type(self).__name__, [(path, message, exclusions)])


def get_optimizer_algorithm_config(optimizer_config: OptimizerConfig) -> OptimizerAlgorithmConfig:
    """The default algorithm's config (``AdamConfig``, ``SgdConfig``…) of an ``OptimizerConfig``."""
    return optimizer_config.algorithm()


__all__ = [
    "AdadeltaConfig",
    "AdafactorConfig",
    "AdagradConfig",
    "AdamConfig",
    "AdamWConfig",
    "AdamaxConfig",
    "AsgdConfig",
    "CosineDecay",
    "CosineWithRestarts",
    "CustomOptimizerConfig",
    "Cyclic",
    "ExponentialDecay",
    "GroupSpec",
    "InverseSqrt",
    "LayerDecayConfig",
    "LearningRate",
    "Linear",
    "LinearRampToConstant",
    "LinearRampToCosine",
    "MultiTaskLearningRates",
    "MultistepDecay",
    "MuonConfig",
    "NAdamConfig",
    "OneCycle",
    "OptimizerAlgorithmConfig",
    "OptimizerConfig",
    "ParamGroupConfig",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "PolynomialDecay",
    "RAdamConfig",
    "RmspropConfig",
    "RpropConfig",
    "SGDConfig",
    "SchedulePosition",
    "ScheduleSequence",
    "SequencePhase",
    "SgdConfig",
    "SparseAdamConfig",
    "WarmupStableDecay",
    "get_optimizer_algorithm_config",
    "list_optimizers",
]
