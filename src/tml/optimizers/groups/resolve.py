"""The config's param-group rules made concrete, once: ``resolve_groups(config)`` → ``GroupSpec``s.

Everything about a group but its parameters (which the model supplies): its name, patterns,
algorithm (a group's own, or the default with the group's hyperparameters), schedule, LR multiplier
and weight-decay exclusions. ``OptimizerConfig`` calls :func:`resolve_groups` from its validator, so
every check here fails when the config is loaded, with the config path; the result is kept on the
config (``OptimizerConfig.group_specs()``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import pydantic

from tml.core.config import located_error, raise_at, relocate
from tml.optimizers.algorithms import OptimizerAlgorithmConfig
from tml.optimizers.fields import MAX_SCHEDULE_STEP, relative_lengths
from tml.optimizers.groups.recap import BACKBONE_GROUP, SINGLE_TASK_GROUP, tower_pattern
from tml.optimizers.groups.rules import DEFAULT_GROUP, ParamGroupConfig
from tml.optimizers.schedules import (
    LearningRate,
    Run,
    can_resolve,
    compute_lr,
    resolve_schedule,
    schedule_bounds,
    schedule_milestones,
)
from tml.optimizers.schedules.plateau import ReduceOnPlateau

if TYPE_CHECKING:
    from tml.optimizers.config import OptimizerConfig

RECAP_KEYS = ("multi_task_learning_rates", "single_task_learning_rate")
"""recap's schedule keys: they make the groups themselves."""
DEFAULT_SCHEDULE_KEYS = ("learning_rate", *RECAP_KEYS)
"""The keys of ``OptimizerConfig`` that give the default schedule."""


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """A param-group rule made concrete: everything but the parameters, which the model supplies.

    ``patterns`` is empty for the group of unclaimed parameters.
    """

    name: str
    patterns: tuple[str, ...]
    algorithm: OptimizerAlgorithmConfig
    schedule: LearningRate
    """The schedule as it trains: its lengths relative to the run resolved to steps, when the run is
    known (see :attr:`resolved`)."""
    lr_multiplier: float = 1.0
    exclude_from_weight_decay: tuple[str, ...] = ()
    path: str = ""
    """Where the rule stands in the config, for messages (``param_groups[2] 'towers'``)."""
    exclusive: bool = False
    """A parameter that this rule and another exclusive rule both match is an error (recap's towers)."""
    reduce_on_plateau: ReduceOnPlateau | None = None
    """Metric-driven decay of the group's LR: the rule's own, else the optimizer's (``false`` in the
    rule: none)."""
    resolved: bool = True
    """False when the schedule has lengths relative to the run that the config's ``total_steps`` /
    ``steps_per_epoch`` do not resolve: it is resolved (and checked) when the optimizer is built."""


def as_schedule(lr: float | LearningRate) -> LearningRate:
    """An algorithm's ``lr`` as a schedule: a schedule as it is, a number as ``constant``."""
    return lr if isinstance(lr, LearningRate) else LearningRate(constant=lr)


def default_group_name(config: OptimizerConfig) -> str:
    """The name of the group of unclaimed parameters: ``default`` (``backbone``, ``single_task`` in
    recap's format)."""
    if config.multi_task_learning_rates is not None:
        return BACKBONE_GROUP
    if config.single_task_learning_rate is not None:
        return SINGLE_TASK_GROUP
    return DEFAULT_GROUP


def default_schedule(config: OptimizerConfig) -> LearningRate:
    """``learning_rate`` (or recap's single-task / backbone schedule), else a schedule given as the
    algorithm's ``lr``, else ``constant: lr``."""
    multi_task = config.multi_task_learning_rates
    for given in (
        config.learning_rate,
        config.single_task_learning_rate,
        multi_task.backbone_learning_rate if multi_task is not None else None,
    ):
        if given is not None:
            return given
    lr = config.algorithm().lr
    if lr is None:
        raise ValueError("no schedule: neither learning_rate nor lr is set")
    return as_schedule(lr)


def resolve_groups(config: OptimizerConfig) -> tuple[GroupSpec, ...]:
    """Every rule of ``config`` made concrete, in order, then the group of unclaimed parameters.

    Raises:
      pydantic.ValidationError: at the path of the offending key: the schedule given in two places
        or in none; param_groups together with recap's format; a name taken twice; a group's
        hyperparameter its algorithm does not have; weight-decay exclusions for an algorithm without
        weight decay.
    """
    title = type(config).__name__
    _check_schedule_given_once(config, title)
    recap_key = next((key for key in RECAP_KEYS if getattr(config, key) is not None), None)
    if recap_key and config.param_groups:
        raise_at(
            title,
            ("param_groups",),
            f"param_groups cannot be combined with {recap_key} (recap's format makes the groups itself): "
            "write the towers as param_groups instead",
            [group.name for group in config.param_groups],
        )
    multi_task = config.multi_task_learning_rates
    if multi_task is not None and multi_task.backbone_learning_rate is None and config.algorithm().lr is None:
        raise_at(
            title,
            ("multi_task_learning_rates", "backbone_learning_rate"),
            "the backbone needs a schedule: set backbone_learning_rate (or a numeric lr in "
            f"{config.chosen('optimizer')[0]})",
        )
    if multi_task is not None:
        rules = [
            GroupSpec(
                name=task,
                patterns=(tower_pattern(task),),
                algorithm=config.algorithm(),
                schedule=schedule,
                exclude_from_weight_decay=tuple(config.exclude_from_weight_decay),
                path=f"multi_task_learning_rates.tower_learning_rates[{task!r}]",
                exclusive=True,
                reduce_on_plateau=config.reduce_on_plateau,
            )
            for task, schedule in multi_task.tower_learning_rates.items()
        ]
    else:
        _check_unique_names(config.param_groups, title)
        rules = [_resolve_rule(config, index, group) for index, group in enumerate(config.param_groups)]
    _check_weight_decay_support(config, config.algorithm(), config.exclude_from_weight_decay, None)
    unclaimed = GroupSpec(
        name=default_group_name(config),
        patterns=(),
        algorithm=config.algorithm(),
        schedule=default_schedule(config),
        exclude_from_weight_decay=tuple(config.exclude_from_weight_decay),
        path=f"the group of unclaimed parameters ({default_group_name(config)!r})",
        reduce_on_plateau=config.reduce_on_plateau,
    )
    specs = tuple(
        _resolved(config, index, spec, len(rules), title) for index, spec in enumerate((*rules, unclaimed))
    )
    _check_finite_learning_rates(config, specs, title)
    _check_plateau_floors(config, specs, title)
    return specs


def _check_plateau_floors(config: OptimizerConfig, specs: tuple[GroupSpec, ...], title: str) -> None:
    """A group's ``min_learning_rate`` is below its greatest learning rate: else no reduction could
    ever lower it, and the plateau would be silently inert (a group whose LR is 0 throughout is left
    alone: there is nothing to reduce)."""
    for index, spec in enumerate(specs):
        plateau = spec.reduce_on_plateau
        if plateau is None:
            continue
        peak = schedule_bounds(spec.schedule)[1] * spec.lr_multiplier
        if 0.0 < peak <= plateau.min_learning_rate:
            own = index < len(config.param_groups) and config.param_groups[index].reduce_on_plateau
            path: tuple[str | int, ...] = ("param_groups", index) if own else ()
            raise_at(
                title,
                (*path, "reduce_on_plateau", "min_learning_rate"),
                f"min_learning_rate {plateau.min_learning_rate!r} is not below the greatest learning "
                f"rate of group {spec.name!r} ({peak!r}): no reduction could lower it; give a smaller "
                "min_learning_rate, or reduce_on_plateau: false in that group",
                plateau.min_learning_rate,
            )


def config_run(config: OptimizerConfig) -> Run:
    """The run the config's relative lengths are relative to: its ``total_steps`` and ``steps_per_epoch``."""
    return Run(config.total_steps, config.steps_per_epoch)


def _resolved(config: OptimizerConfig, index: int, spec: GroupSpec, rule_count: int, title: str) -> GroupSpec:
    """``spec`` with its schedule's relative lengths resolved (checked at the schedule's config path),
    or marked unresolved when the config does not give the run."""
    if not relative_lengths(spec.schedule):
        return spec
    path = _schedule_path(config, index) if index < rule_count else _default_schedule_path(config)
    schedule = _resolved_schedule(config, spec.schedule, path, title)
    if schedule is None:
        return dataclasses.replace(spec, resolved=False)
    return dataclasses.replace(spec, schedule=schedule)


def _resolved_schedule(
    config: OptimizerConfig, schedule: LearningRate, path: tuple[str | int, ...], title: str
) -> LearningRate | None:
    """``schedule`` resolved with the config's run (refused at ``path`` if it does not fit), or
    ``None`` when the config does not give the numbers its relative lengths need."""
    run = config_run(config)
    if not can_resolve(schedule, run):
        return None
    return resolve_schedule(schedule, run.total_steps, run.steps_per_epoch, title=title, path=path)


def _default_schedule_path(config: OptimizerConfig) -> tuple[str | int, ...]:
    for key in ("learning_rate", "single_task_learning_rate"):
        if getattr(config, key) is not None:
            return (key,)
    multi_task = config.multi_task_learning_rates
    if multi_task is not None and multi_task.backbone_learning_rate is not None:
        return ("multi_task_learning_rates", "backbone_learning_rate")
    return (config.chosen("optimizer")[0], "lr")


def _schedule_path(config: OptimizerConfig, index: int) -> tuple[str | int, ...]:
    """Where the schedule of the ``index``-th rule is given in the config."""
    multi_task = config.multi_task_learning_rates
    if multi_task is not None:
        return (
            "multi_task_learning_rates",
            "tower_learning_rates",
            list(multi_task.tower_learning_rates)[index],
        )
    group = config.param_groups[index]
    if group.learning_rate is not None:
        return ("param_groups", index, "learning_rate")
    own = group.own_algorithm()
    if own is not None and own[1].lr is not None:
        return ("param_groups", index, own[0], "lr")
    return _default_schedule_path(config)


def _check_finite_learning_rates(config: OptimizerConfig, specs: tuple[GroupSpec, ...], title: str) -> None:
    """Every group's learning rate, its schedule's bounds times its multiplier, is a finite number.

    Each field is finite on its own, but a quotient or a product of two can overflow: ``one_cycle``
    with ``div_factor: 1.0e-309`` peaks at inf, ``lr: 1.0e300`` with ``lr_multiplier: 1.0e10`` is inf.
    """
    for index, spec in enumerate(specs):
        if not spec.resolved:  # checked once the run is known, when the optimizer is built
            continue
        is_rule = index < len(specs) - 1
        schedule_path = _schedule_path(config, index) if is_rule else _default_schedule_path(config)
        try:
            low, high = schedule_bounds(spec.schedule)
            values = [compute_lr(spec.schedule, step) for step in (0, *schedule_milestones(spec.schedule))]
        except (OverflowError, ZeroDivisionError) as error:
            raise_at(title, schedule_path, f"the learning rate cannot be computed: {error}", None)
        last = max(schedule_milestones(spec.schedule), default=0)
        if last > MAX_SCHEDULE_STEP:
            raise_at(
                title,
                schedule_path,
                f"the schedule of group {spec.name!r} has a phase ending at step {last}, after "
                f"2**53 = {MAX_SCHEDULE_STEP}, beyond which float64 steps are not exact",
                last,
            )
        if not all(math.isfinite(value) for value in (low, high, *values)):
            kind = spec.schedule.chosen()[0]
            raise_at(
                title,
                schedule_path if schedule_path[-1] == "lr" else (*schedule_path, kind),
                f"the learning rate of group {spec.name!r} is not finite: the schedule's values lie in "
                f"[{low!r}, {high!r}] (at step 0 and its milestones: {', '.join(map(repr, values[:6]))})",
                kind,
            )
        if not math.isfinite(high * spec.lr_multiplier):
            raise_at(
                title,
                ("param_groups", index, "lr_multiplier"),
                f"the learning rate of group {spec.name!r} is not finite: the schedule's greatest value "
                f"{high!r} times lr_multiplier {spec.lr_multiplier!r} is {high * spec.lr_multiplier!r}",
                spec.lr_multiplier,
            )


def _check_schedule_given_once(config: OptimizerConfig, title: str) -> None:
    key, algorithm = config.chosen("optimizer")
    given = [name for name in DEFAULT_SCHEDULE_KEYS if getattr(config, name) is not None]
    if isinstance(algorithm.lr, LearningRate) and given:
        raise_at(
            title,
            (key,),
            f"lr is a schedule and {given[0]} is set too: give the schedule in one place",
            algorithm.model_dump(mode="json", exclude_none=True),
        )
    if config.learning_rate is not None:
        _check_unused_lr(
            config,
            algorithm.lr,
            (config.learning_rate, ("learning_rate",)),
            (key, "lr"),
            "learning_rate",
            title,
        )
    if algorithm.lr is None and not given:
        raise_at(
            title,
            (key,),
            "lr is required unless learning_rate is set, got neither",
            algorithm.model_dump(mode="json", exclude_none=True),
        )


def _check_unused_lr(
    config: OptimizerConfig,
    lr: object,
    schedule_at: tuple[LearningRate, tuple[str | int, ...]],
    path: tuple[str | int, ...],
    schedule_key: str,
    title: str,
) -> None:
    """A number ``lr`` beside a schedule is not used: it must be the schedule's greatest value.

    The original's configs write both (TwHIN: ``sgd: {lr: 0.05}`` and ``learning_rate: {constant:
    0.05}``), so an equal ``lr`` is accepted; one that differs would be silently discarded.
    recap's keys (``multi_task_learning_rates``…) are left alone: its configs carry an ``lr`` that the
    towers' schedules override by design. ``schedule_at`` is the schedule and its config path (where
    its relative lengths, if any, are resolved with the config's run, and checked).
    """
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        return
    schedule, schedule_path = schedule_at
    if relative_lengths(schedule):  # its peak may depend on its lengths: checked once resolved
        resolved = _resolved_schedule(config, schedule, schedule_path, title)
        if resolved is None:
            return
        schedule = resolved
    try:
        peak = schedule_bounds(schedule)[1]
    except (OverflowError, ZeroDivisionError):
        return  # reported by the finite check
    if not math.isfinite(peak) or math.isclose(lr, peak, rel_tol=1e-9, abs_tol=0.0):
        return
    raise_at(
        title,
        path,
        f"lr {lr!r} would not be used: {schedule_key} is set too and gives the learning rate (its "
        f"greatest value is {peak!r}); leave lr out, or make it {peak!r}",
        lr,
    )


def _check_unique_names(groups: list[ParamGroupConfig], title: str) -> None:
    names: dict[str, int] = {}
    for index, group in enumerate(groups):
        if group.name in names:
            raise_at(
                title,
                ("param_groups", index, "name"),
                f"the name {group.name!r} is already taken by param_groups[{names[group.name]}]",
                group.name,
            )
        names[group.name] = index


def _resolve_rule(config: OptimizerConfig, index: int, group: ParamGroupConfig) -> GroupSpec:
    title = type(config).__name__
    own = group.own_algorithm()
    default = config.algorithm()
    if own is not None:
        algorithm = own[1]
    elif group.hyperparameters:
        for key in group.hyperparameters:
            try:
                default.check_hyperparameter_names([key])
            except ValueError as error:
                raise_at(title, ("param_groups", index, "hyperparameters", key), str(error), key)
        try:
            algorithm = default.with_hyperparameters(group.hyperparameters)
        except pydantic.ValidationError as error:
            raise relocate(title, ("param_groups", index, "hyperparameters"), error) from None
    else:
        algorithm = default
    if group.learning_rate is not None and own is not None:
        _check_unused_lr(
            config,
            own[1].lr,
            (group.learning_rate, ("param_groups", index, "learning_rate")),
            ("param_groups", index, own[0], "lr"),
            "the group's learning_rate",
            title,
        )
    if group.learning_rate is not None:
        schedule = group.learning_rate
    elif own is not None and own[1].lr is not None:
        schedule = as_schedule(own[1].lr)
    else:
        schedule = default_schedule(config)
    exclusions = (
        group.exclude_from_weight_decay
        if group.exclude_from_weight_decay is not None
        else config.exclude_from_weight_decay
    )
    _check_weight_decay_support(config, algorithm, exclusions, (index, group))
    plateau = config.reduce_on_plateau if group.reduce_on_plateau is None else group.reduce_on_plateau
    return GroupSpec(
        name=group.name,
        patterns=tuple(group.params),
        algorithm=algorithm,
        schedule=schedule,
        lr_multiplier=group.lr_multiplier,
        exclude_from_weight_decay=tuple(exclusions),
        path=f"param_groups[{index}] {group.name!r}",
        reduce_on_plateau=plateau or None,
    )


def _check_weight_decay_support(
    config: OptimizerConfig,
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
            f"group {default_group_name(config)!r} uses {key}, which has no weight_decay, so "
            "nothing can be excluded from it"
        )
    else:
        index, rule = group
        inherited = rule.exclude_from_weight_decay is None
        path = ("param_groups", index, "exclude_from_weight_decay" if not inherited else "name")
        message = (
            f"group {rule.name!r} uses {key}, which has no weight_decay, so nothing can be excluded from it"
            + (
                ": exclude_from_weight_decay is inherited from the optimizer; set "
                "exclude_from_weight_decay: [] in this group"
                if inherited
                else ""
            )
        )
    raise located_error(type(config).__name__, [(path, message, exclusions)])


__all__ = [
    "DEFAULT_SCHEDULE_KEYS",
    "RECAP_KEYS",
    "GroupSpec",
    "as_schedule",
    "config_run",
    "default_group_name",
    "default_schedule",
    "resolve_groups",
]
