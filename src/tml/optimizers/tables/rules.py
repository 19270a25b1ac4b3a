"""``embedding_tables:`` rules: which tables a fused table algorithm trains, under which schedule.

Rules are ordered; the first whose globs match a table's name claims it; every table must be
claimed (write a last rule ``tables: ["*"]`` for the rest). Each rule names one table algorithm
(``exact_row_wise_adagrad: {lr: 0.05}``) and may give its own schedule (``learning_rate``); its
tables form a *table group*, the name of their param group in the optimizer, in ``LRShim`` and in
checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import pydantic

from tml.core.config import raise_at
from tml.core.config.base_config import StrictConfig
from tml.optimizers.algorithms import ALGORITHMS
from tml.optimizers.fields import relative_lengths
from tml.optimizers.groups.patterns import check_patterns
from tml.optimizers.groups.rules import PlateauSetting, check_plateau_setting
from tml.optimizers.schedules import LearningRate, Run, can_resolve, resolve_schedule, schedule_bounds
from tml.optimizers.schedules.plateau import ReduceOnPlateau
from tml.optimizers.tables.algorithms import (
    TABLE_ALGORITHMS,
    AdamTableConfig,
    ExactAdagradConfig,
    ExactRowWiseAdagradConfig,
    ExactSgdConfig,
    LambTableConfig,
    PartialRowWiseAdamConfig,
    TableAlgorithmConfig,
)

TABLE_ALGORITHM_GROUP = "table_algorithm"
"""The name of the field group of the table algorithm keys (exactly one per rule)."""

_DENSE_ONLY_KEYS = (frozenset(ALGORITHMS) - frozenset(TABLE_ALGORITHMS)) | {
    "row_wise_adagrad",  # FBGEMM's non-exact kernels and those not offered
    "lars_sgd",
    "partial_row_wise_lamb",
}
"""Keys a user may write in a table rule by mistake: dense algorithms, and FBGEMM kernels not offered."""


def _algorithm_field(config_class: type[TableAlgorithmConfig]) -> Any:
    summary = (config_class.__doc__ or config_class.key).strip().splitlines()[0]
    return pydantic.Field(None, json_schema_extra={"one_of": TABLE_ALGORITHM_GROUP}, description=summary)


class TableRuleConfig(StrictConfig):
    """A table rule: the embedding tables whose names match ``tables``, and the fused algorithm that
    trains them inside the backward pass.

    Examples:
      >>> rule = TableRuleConfig.model_validate(
      ...     {"name": "ids", "tables": ["user_*"], "exact_row_wise_adagrad": {"lr": 0.05}})
      >>> rule.algorithm().key, rule.schedule().constant
      ('exact_row_wise_adagrad', 0.05)
    """

    name: str = pydantic.Field(
        description="The table group's name: the name of its param group in the optimizer, of its "
        "schedule in LRShim and of its state in checkpoints."
    )
    tables: list[str] = pydantic.Field(
        min_length=1,
        description="Patterns over table names (the names of EmbeddingBagConfig / EmbeddingConfig): globs "
        "matched against the whole name, or 're:<regex>' found with re.search.",
    )
    exact_sgd: ExactSgdConfig | None = _algorithm_field(ExactSgdConfig)
    exact_adagrad: ExactAdagradConfig | None = _algorithm_field(ExactAdagradConfig)
    exact_row_wise_adagrad: ExactRowWiseAdagradConfig | None = _algorithm_field(ExactRowWiseAdagradConfig)
    adam: AdamTableConfig | None = _algorithm_field(AdamTableConfig)
    partial_row_wise_adam: PartialRowWiseAdamConfig | None = _algorithm_field(PartialRowWiseAdamConfig)
    lamb: LambTableConfig | None = _algorithm_field(LambTableConfig)
    learning_rate: LearningRate | None = pydantic.Field(
        None,
        description="The table group's schedule; default: constant at its algorithm's lr. The fused "
        "kernel takes the scheduled LR at every optimizer zero_grad() and step().",
    )
    reduce_on_plateau: PlateauSetting | None = pydantic.Field(
        None,
        description="Reduce the table group's LR when its metric (given to scheduler.report) stops "
        "improving, in its fused kernels too. Table groups do not take the optimizer's "
        "reduce_on_plateau (that one is the dense groups'): a table group has one only where its "
        "rule sets it; false: none (the same as leaving it out).",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _no_dense_algorithm(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in _DENSE_ONLY_KEYS:
                    raise_at(
                        cls.__name__,
                        (key,),
                        f"{key!r} is not an algorithm FBGEMM's fused table kernels run; a table rule takes "
                        f"one of: {', '.join(TABLE_ALGORITHMS)}",
                        data[key],
                    )
        return data

    @pydantic.field_validator("name")
    @classmethod
    def _name_not_empty(cls, name: str) -> str:
        if not name.strip():
            raise ValueError(f"a table group name must not be empty, got {name!r}")
        return name

    @pydantic.field_validator("reduce_on_plateau", mode="before")
    @classmethod
    def _false_or_a_setting(cls, value: Any) -> Any:
        return check_plateau_setting(value)

    @pydantic.field_validator("tables")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns)

    @pydantic.model_validator(mode="after")
    def _one_schedule(self) -> TableRuleConfig:
        key, algorithm = self.chosen(TABLE_ALGORITHM_GROUP)
        title = type(self).__name__
        if self.learning_rate is None:
            if algorithm.lr is None:
                raise_at(
                    title,
                    (key,),
                    f"the rule has no learning rate: give {key} an lr, or the rule a learning_rate schedule",
                    algorithm.model_dump(mode="json"),
                )
            return self
        if algorithm.lr is not None and not relative_lengths(self.learning_rate):
            check_lr_is_peak(self, self.learning_rate, title, ())
        return self

    def algorithm(self) -> TableAlgorithmConfig:
        """The rule's table algorithm."""
        return self.chosen(TABLE_ALGORITHM_GROUP)[1]

    def schedule(self) -> LearningRate:
        """The rule's schedule: ``learning_rate``, else ``constant`` at the algorithm's ``lr``."""
        if self.learning_rate is not None:
            return self.learning_rate
        lr = self.algorithm().lr
        if lr is None:  # refused by the validator; reachable only through an unvalidated assignment
            raise ValueError(f"table rule {self.name!r} has neither learning_rate nor an lr")
        return LearningRate(constant=lr)

    def plateau(self) -> ReduceOnPlateau | None:
        """The rule's ``reduce_on_plateau`` (``None`` for none: unset or ``false``)."""
        return self.reduce_on_plateau or None


def check_lr_is_peak(
    rule: TableRuleConfig, schedule: LearningRate, title: str, path: tuple[str | int, ...]
) -> None:
    """An ``lr`` given beside ``learning_rate`` equals the schedule's greatest value (else it would
    silently not be used); ``path`` is the rule's in the config."""
    key, algorithm = rule.chosen(TABLE_ALGORITHM_GROUP)
    peak = schedule_bounds(schedule)[1]
    if algorithm.lr is None or not math.isfinite(peak):
        return
    if not math.isclose(algorithm.lr, peak, rel_tol=1e-9, abs_tol=0.0):
        raise_at(
            title,
            (*path, key, "lr"),
            f"lr {algorithm.lr!r} would not be used: learning_rate is set too and gives the learning "
            f"rate (its greatest value is {peak!r}); leave lr out, or make it {peak!r}",
            algorithm.lr,
        )


def resolve_table_schedules(
    rules: list[TableRuleConfig], run: Run, title: str
) -> dict[str, LearningRate] | None:
    """Each rule's schedule by rule name, its lengths relative to the run resolved to steps with
    ``run`` (checked at the rule's path); ``None`` when ``run`` lacks a number they need.

    Raises:
      pydantic.ValidationError: a resolved schedule breaks a rule of its kind, or the rule's ``lr``
        is not its greatest value.
    """
    if not all(can_resolve(rule.schedule(), run) for rule in rules):
        return None
    schedules = {}
    for index, rule in enumerate(rules):
        schedule = rule.schedule()
        if relative_lengths(schedule):
            path: tuple[str | int, ...] = ("embedding_tables", index)
            schedule = resolve_schedule(
                schedule, run.total_steps, run.steps_per_epoch, title=title, path=(*path, "learning_rate")
            )
            check_lr_is_peak(rule, schedule, title, path)
        _check_plateau_floor(rule, schedule, title, ("embedding_tables", index))
        schedules[rule.name] = schedule
    return schedules


def _check_plateau_floor(
    rule: TableRuleConfig, schedule: LearningRate, title: str, path: tuple[str | int, ...]
) -> None:
    """A table rule's ``min_learning_rate`` is below its schedule's greatest LR: else no reduction could
    lower it and the plateau would be silently inert (a schedule at 0 throughout is left alone)."""
    plateau = rule.plateau()
    if plateau is None:
        return
    peak = schedule_bounds(schedule)[1]
    if 0.0 < peak <= plateau.min_learning_rate:
        raise_at(
            title,
            (*path, "reduce_on_plateau", "min_learning_rate"),
            f"min_learning_rate {plateau.min_learning_rate!r} is not below the greatest learning rate "
            f"of table group {rule.name!r} ({peak!r}): no reduction could lower it; give a smaller "
            "min_learning_rate, or leave reduce_on_plateau out of that rule",
            plateau.min_learning_rate,
        )


def check_table_rules(rules: list[TableRuleConfig], dense_names: list[str], title: str) -> None:
    """Table group names are unique, and differ from the dense param groups' names."""
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.name in seen:
            raise_at(
                title,
                ("embedding_tables", index, "name"),
                f"the name {rule.name!r} is already taken by embedding_tables[{seen[rule.name]}]",
                rule.name,
            )
        if rule.name in dense_names:
            raise_at(
                title,
                ("embedding_tables", index, "name"),
                f"the name {rule.name!r} is already the name of a param group; a table group needs its "
                "own (groups are scheduled and checkpointed by name)",
                rule.name,
            )
        seen[rule.name] = index


__all__ = ["TABLE_ALGORITHM_GROUP", "TableRuleConfig", "check_table_rules"]
