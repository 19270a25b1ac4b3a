"""Optimizer configs: ``OptimizerConfig`` (algorithms, schedules, param groups) and everything it holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from tml.core.config import raise_at
from tml.optimizers.algorithms import (
    ALGORITHM_GROUP,
    AdadeltaConfig,
    AdafactorConfig,
    AdagradConfig,
    AdamaxConfig,
    AdamConfig,
    AdamWConfig,
    AlgorithmChoice,
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
from tml.optimizers.fields import PositiveSteps, relative_lengths
from tml.optimizers.groups.recap import MultiTaskLearningRates
from tml.optimizers.groups.resolve import (
    GroupSpec,
    config_run,
    default_group_name,
    default_schedule,
    resolve_groups,
)
from tml.optimizers.groups.rules import (
    WEIGHT_DECAY_KEYWORDS,
    LayerDecayConfig,
    ParamGroupConfig,
    WeightDecayExclusions,
)
from tml.optimizers.runtime.resume import ResumePolicy
from tml.optimizers.schedules import (
    Anneal,
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
    Run,
    ScheduleSequence,
    SequencePhase,
    WarmupStableDecay,
)
from tml.optimizers.schedules.plateau import ReduceOnPlateau
from tml.optimizers.schedules.run import length_in_steps
from tml.optimizers.tables.rules import TableRuleConfig, check_table_rules, resolve_table_schedules

_AT_MOST_ONE_SCHEDULE: dict[str, Any] = {"at_most_one_of": "schedule"}

SchedulePosition = Literal["scheduler_steps", "optimizer_steps"]
"""What the schedule's step counts: ``scheduler.step()`` calls, or optimizer steps actually taken."""


class OptimizerConfig(AlgorithmChoice):
    """An optimizer: a default algorithm and schedule, and param-group rules that differ from them.

    The default schedule is ``learning_rate`` if set, else the algorithm's ``lr`` if that is a
    schedule, else ``constant: lr``. Without ``param_groups`` every trainable parameter is in one
    group, ``default``. recap's format (``multi_task_learning_rates`` / ``single_task_learning_rate``)
    is read as it stands and becomes one group per task tower plus ``backbone``. The groups are
    resolved once, when the config is validated (see ``tml.optimizers.groups.resolve``).

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
        description="The default learning-rate schedule; a number given as the algorithm's lr must then "
        "equal its peak (or be left out).",
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
    reduce_on_plateau: ReduceOnPlateau | None = pydantic.Field(
        None,
        description="Reduce the LR of every param group (that does not set its own) when the metric "
        "given to scheduler.report stops improving: see ReduceOnPlateau and docs/schedules.md. Not "
        "of the table groups: an embedding_tables rule sets its own.",
    )
    param_groups: list[ParamGroupConfig] = pydantic.Field(
        default_factory=list,
        description="Ordered rules; the first that matches a parameter claims it. Parameters no rule "
        "claims form the group 'default'.",
    )
    embedding_tables: list[TableRuleConfig] = pydantic.Field(
        default_factory=list,
        description="Ordered rules for torchrec's embedding tables, trained by FBGEMM's fused kernels "
        "inside the backward pass; the first rule whose patterns match a table's name claims it, and "
        "every table of the model must be claimed. Each rule's tables form a table group, scheduled "
        "and checkpointed by its name (see tml.optimizers.tables).",
    )
    schedule_position: SchedulePosition = pydantic.Field(
        "scheduler_steps",
        description="'scheduler_steps': the schedule's step is the number of scheduler.step() calls "
        "(torch's convention). 'optimizer_steps': it is the number of optimizer steps actually "
        "taken, so a step that AMP's GradScaler skips does not advance it, and scheduler.step() may "
        "be called any number of times per step.",
    )
    resume: ResumePolicy = pydantic.Field(
        "strict",
        description="What a load of a checkpoint does when it was saved with other hyperparameters "
        "or schedules. 'strict': refuse it, listing what differs. 'config': this config's "
        "hyperparameters and schedules win, the saved state (moments, step counts, position) is "
        "kept, and what changed is reported once (a ResumeWarning). Another parameter set, shape or "
        "algorithm class is refused either way. load_optimizer_state(policy=...), "
        "load_checkpoint(policy=...) and tml-optim train --resume-policy override it.",
    )
    total_steps: PositiveSteps | None = pydantic.Field(
        None,
        description="The run's length in optimizer steps, which schedule lengths written as a "
        "percentage ('2%') are relative to; resolved to steps once, when the config is loaded. "
        "Unset: give it when the optimizer is built (build_optimizer(..., total_steps=...), "
        "tml-optim --total-steps); a schedule with a percentage is refused without it. It does "
        "not stop training, and schedules of absolute lengths only are not compared with it.",
    )
    steps_per_epoch: PositiveSteps | None = pydantic.Field(
        None,
        description="Optimizer steps per epoch, for schedule lengths written in epochs ('3ep'); "
        "unset: give it when the optimizer is built (build_optimizer(..., steps_per_epoch=...)).",
    )
    shard_optimizer_state: bool = pydantic.Field(
        False,
        description="Shard the optimizer state over the ranks of a DDP run (ZeRO stage 1, torch's "
        "ZeroRedundancyOptimizer): each rank keeps the state of its share of the parameters and "
        "broadcasts their update; the parameters are those of the unsharded optimizer. Needs an "
        "initialized torch.distributed process group when the optimizer is built, one algorithm "
        "for every param group, and no flatten. Not for FSDP2 models, whose optimizer state is "
        "sharded already.",
    )

    _groups: tuple[GroupSpec, ...] = pydantic.PrivateAttr(default=())
    _table_schedules: dict[str, LearningRate] | None = pydantic.PrivateAttr(default=None)

    @pydantic.field_validator("exclude_from_weight_decay", "param_groups", "embedding_tables", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        # Configs in the original's style write unused keys as null.
        return [] if value is None else value

    @pydantic.model_validator(mode="after")
    def _resolve_groups(self) -> OptimizerConfig:
        self._groups = resolve_groups(self)
        if self.shard_optimizer_state:
            _check_shardable(self)
        check_table_rules(self.embedding_tables, [spec.name for spec in self._groups], type(self).__name__)
        self._table_schedules = resolve_table_schedules(
            self.embedding_tables, self.run(), type(self).__name__
        )
        return self

    def algorithm(self) -> OptimizerAlgorithmConfig:
        """The config of the default algorithm."""
        return self.chosen(ALGORITHM_GROUP)[1]

    def schedule(self) -> LearningRate:
        """The default schedule: ``learning_rate`` (or recap's single-task / backbone schedule), else a
        schedule given as ``lr``, else ``constant: lr``."""
        return default_schedule(self)

    def default_group_name(self) -> str:
        """The name of the group of unclaimed parameters: ``default`` (``backbone``, ``single_task``
        in recap's format)."""
        return default_group_name(self)

    def group_specs(self) -> list[GroupSpec]:
        """Every rule made concrete, in order, then the group of unclaimed parameters.

        Resolved when the config is validated; resolved again after a field is assigned or replaced
        through ``model_copy(update=...)`` (pydantic validates neither).
        """
        if not self._groups:
            self._groups = resolve_groups(self)
        return list(self._groups)

    def table_schedules(self, *, required: bool = True) -> dict[str, LearningRate]:
        """Each table rule's schedule (``embedding_tables``), by rule name, in rule order: its
        ``learning_rate``, else ``constant`` at its algorithm's ``lr``, with lengths relative to the
        run resolved to steps.

        Raises:
          pydantic.ValidationError: a schedule has a length relative to the run that the config
            does not give (give ``total_steps`` / ``steps_per_epoch``, or use ``for_run``).
        """
        if self._table_schedules is None:
            self._table_schedules = resolve_table_schedules(
                self.embedding_tables, self.run(), type(self).__name__
            )
        if self._table_schedules is None:
            self.require_run()  # raises at the first unresolved length
        return dict(self._table_schedules or {})

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._groups = ()
            self._table_schedules = None

    def run(self) -> Run:
        """The run that the config's relative lengths (``"2%"``, ``"3ep"``) are relative to."""
        return config_run(self)

    def for_run(self, total_steps: int | None = None, steps_per_epoch: int | None = None) -> OptimizerConfig:
        """This config with the run's ``total_steps`` / ``steps_per_epoch`` given at run time (itself
        when neither is given); the schedules' relative lengths are resolved with them.

        Raises:
          ValueError: a value is not an integer ≥ 1, or differs from the one the config sets.
          pydantic.ValidationError: a schedule does not fit the run (at its config path).
        """
        update: dict[str, int] = {}
        for name, given in (("total_steps", total_steps), ("steps_per_epoch", steps_per_epoch)):
            if given is None:
                continue
            if isinstance(given, bool) or not isinstance(given, int) or given < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {given!r}")
            written = getattr(self, name)
            if written is not None and written != given:
                raise ValueError(
                    f"{name} {given} was given for the run, but the optimizer config sets {name}: "
                    f"{written}; give one of them, or the same value"
                )
            if written is None:
                update[name] = given
        if not update:
            return self
        copy = self.model_copy(update=update)
        copy.group_specs()  # resolves the schedules with the run, refusing what does not fit
        copy.table_schedules()
        return copy

    def require_run(self) -> None:
        """Refuse a config whose schedules have lengths relative to the run it does not give.

        Raises:
          pydantic.ValidationError: at the path of the first such length (``build_optimizer`` calls
            this: a relative length without ``total_steps`` is refused when the optimizer is built).
        """
        run = self.run()
        for path, text in relative_lengths(self):
            try:
                length_in_steps(text, run)
            except ValueError as error:
                raise_at(type(self).__name__, path, str(error), text)

    def run_lengths(self) -> list[tuple[str, str, int | None]]:
        """Every length relative to the run in the config: its dotted path, what was written, and
        the steps it resolves to (``None`` when the config does not give the run it needs).

        Examples:
          >>> OptimizerConfig.model_validate({"sgd": {"lr": 0.1}, "total_steps": 1000, "learning_rate": {
          ...     "cosine_decay": {"learning_rate": 0.1, "warmup_steps": "2%", "decay_steps": "98%"}}}
          ... ).run_lengths()
          [('learning_rate.cosine_decay.warmup_steps', '2%', 20),
           ('learning_rate.cosine_decay.decay_steps', '98%', 980)]
        """
        run = self.run()
        found = []
        for path, text in relative_lengths(self):
            try:
                steps: int | None = length_in_steps(text, run)
            except ValueError:
                steps = None
            found.append((".".join(map(str, path)), text, steps))
        return found

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> OptimizerConfig:
        """pydantic's copy; with ``update``, the copy's groups are resolved from its own fields."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._groups = ()
            copy._table_schedules = None
        return copy


def _check_shardable(config: OptimizerConfig) -> None:
    """ZeRO-1 wraps one torch optimizer class over plain parameters: refuse a config that names
    several classes, or flattens a group (before any parameter is touched)."""
    title = type(config).__name__
    default_key, default = config.chosen(ALGORITHM_GROUP)
    if default.flatten:
        raise_at(title, (default_key, "flatten"), _FLATTEN_WITH_SHARDING, True)
    for index, group in enumerate(config.param_groups):
        own = group.own_algorithm()
        if own is None:
            continue
        key, algorithm = own
        if algorithm.flatten:
            raise_at(title, ("param_groups", index, key, "flatten"), _FLATTEN_WITH_SHARDING, True)
        if algorithm.torch_class() is not default.torch_class():
            raise_at(
                title,
                ("param_groups", index, key),
                f"shard_optimizer_state (ZeRO-1) shards one optimizer class, but group "
                f"{group.name!r} uses {key} ({algorithm.torch_class().__name__}) and the "
                f"optimizer {default.key} ({default.torch_class().__name__}): give every group "
                "the same algorithm, or set shard_optimizer_state: false",
                key,
            )


_FLATTEN_WITH_SHARDING = (
    "flatten cannot be combined with shard_optimizer_state (ZeRO-1 shards the model's own parameters, "
    "which flatten would turn into views of a flat buffer): set flatten: false, or "
    "shard_optimizer_state: false"
)


def get_optimizer_algorithm_config(optimizer_config: OptimizerConfig) -> OptimizerAlgorithmConfig:
    """The default algorithm's config (``AdamConfig``, ``SgdConfig``…) of an ``OptimizerConfig``.

    Its ``lr`` is what the original's callers read (``LearningRate(constant=lr)``): the algorithm's
    own config when it sets ``lr`` (a number stays that number, also when ``learning_rate`` is set
    too). When ``lr`` is left out, a copy whose ``lr`` is the default schedule's: its value as a
    float when that schedule is ``constant``, else the schedule (whose value at step 0 ``.dict()``
    gives).

    Examples:
      >>> config = OptimizerConfig(adam=AdamConfig(), learning_rate=LearningRate(constant=0.01))
      >>> get_optimizer_algorithm_config(config).lr, config.adam.lr
      (0.01, None)
    """
    algorithm = optimizer_config.algorithm()
    if algorithm.lr is not None:
        return algorithm
    schedule = optimizer_config.schedule()
    lr = schedule if schedule.constant is None else schedule.constant
    return algorithm.model_copy(update={"lr": lr})


__all__ = [
    "AdadeltaConfig",
    "AdafactorConfig",
    "AdagradConfig",
    "AdamConfig",
    "AdamWConfig",
    "AdamaxConfig",
    "Anneal",
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
    "ReduceOnPlateau",
    "RmspropConfig",
    "RpropConfig",
    "SGDConfig",
    "SchedulePosition",
    "ScheduleSequence",
    "SequencePhase",
    "SgdConfig",
    "SparseAdamConfig",
    "TableRuleConfig",
    "WarmupStableDecay",
    "get_optimizer_algorithm_config",
    "list_optimizers",
]
