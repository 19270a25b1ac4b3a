"""The resume contract: what an optimizer's checkpoint records, and how a load compares it.

Every torch optimizer that ``build_optimizer`` builds (each child of a ``CombinedOptimizer``, a
``FlatOptimizer`` alike) carries two hooks. ``state_dict()`` adds to every saved param group the key
:data:`RESUME_KEY`: a JSON string of the group's record, ``{"param_names": [...], "shapes": [...],
"fingerprint": {...}}``, the fingerprint being what the config asks of the group (algorithm, torch
class, hyperparameters, schedule, LR multiplier, implementation, flatten, tensor_lr, and
``reduce_on_plateau`` where a group has one). The schedule is the resolved one, what trains: its
lengths relative to the run (``"2%"`` of ``total_steps``) are recorded as the steps they resolved
to, so ``strict`` compares steps, however they were written, and a longer ``total_steps`` is a
change of schedule (applied under ``config``). Torch itself
ignores the key (a plain torch optimizer loads the state dict as before). ``load_state_dict()``
compares the saved records with this optimizer's before torch copies anything:

- a different group, parameter name, parameter count, shape or algorithm class is refused under
  every policy (:class:`ResumeError`, naming the first difference of each group);
- any other difference of the fingerprint is refused under ``strict`` and applied under ``config``:
  the saved groups' hyperparameters are replaced by this optimizer's (the config's), the state
  tensors (moments, step counts) are kept, and what changed is reported once, as a
  :class:`ResumeWarning`.

The policy is the config's ``resume`` field, unless a load is made through
:func:`load_optimizer_state` (or ``load_checkpoint`` / ``LRShim.load_state_dict``) with ``policy=``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

if TYPE_CHECKING:  # assign imports the config, which imports ResumePolicy from here
    from tml.optimizers.groups.assign import ParamGroup

ResumePolicy = Literal["strict", "config"]
"""``strict``: a checkpoint loads only into the config that saved it. ``config``: the config's
hyperparameters and schedule win over the checkpoint's; its state tensors are kept."""

RESUME_POLICIES: tuple[str, ...] = ("strict", "config")

RESUME_KEY = "tml_resume"
"""The key of every saved param group that holds the group's record (a JSON string)."""

IMPLEMENTATION_KEYS = frozenset({"foreach", "fused", "capturable", "differentiable"})
"""Group keys that choose the kernel on this machine: always taken from the optimizer as built."""

CLASS_KEYS = ("algorithm", "torch_class")
"""Fingerprint keys whose change is refused under every policy (the state is another optimizer's)."""


class ResumeError(ValueError):
    """A checkpoint does not fit this optimizer or scheduler under the resume policy."""


class ResumeWarning(UserWarning):
    """A load under the ``config`` policy applied the config's values over the checkpoint's."""


def fingerprint(group: ParamGroup) -> dict[str, Any]:
    """What the config asks of one param group, as JSON data (compared on every load); the schedule
    with its relative lengths resolved to steps (the group's, as planned)."""
    algorithm = group.algorithm
    torch_class = algorithm.torch_class()
    # reduce_on_plateau is recorded only where it is set, so the records of other groups are unchanged.
    plateau = group.reduce_on_plateau
    return {
        **({} if plateau is None else {"reduce_on_plateau": plateau.model_dump(mode="json")}),
        "algorithm": algorithm.key or type(algorithm).__name__,
        "torch_class": f"{torch_class.__module__}.{torch_class.__qualname__}",
        "hyperparameters": algorithm.model_dump(mode="json", include=set(algorithm.hyperparameter_names())),
        "schedule": group.schedule.model_dump(mode="json", exclude_none=True),
        "lr_multiplier": group.lr_multiplier,
        "implementation": algorithm.implementation,
        "flatten": algorithm.flatten,
        "tensor_lr": algorithm.tensor_lr,
    }


def group_record(group: ParamGroup) -> dict[str, Any]:
    """The record of one param group: its parameter names and shapes, and its fingerprint."""
    return {
        "param_names": list(group.param_names),
        "shapes": [list(param.shape) for param in group.params],
        "fingerprint": fingerprint(group),
    }


def differences(
    saved: Any, current: Any, *, ignore: frozenset[str] = frozenset(), path: str = ""
) -> list[str]:
    """Where two JSON-like values differ, one line per leaf: ``eps: 1e-07 in the checkpoint, 1e-08 here``.

    Keys in ``ignore`` are skipped at any depth.

    Examples:
      >>> differences({"adam": {"lr": 0.1, "eps": 1e-7}}, {"adam": {"lr": 0.2, "eps": 1e-8}},
      ...             ignore=frozenset({"lr"}))
      ['adam.eps: 1e-07 in the checkpoint, 1e-08 here']
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        lines = []
        for key in sorted(set(saved) | set(current), key=str):
            if key in ignore:
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in current:
                lines.append(f"{where}: set in the checkpoint ({saved[key]!r}), absent here")
            elif key not in saved:
                lines.append(f"{where}: absent in the checkpoint, {current[key]!r} here")
            else:
                lines += differences(saved[key], current[key], ignore=ignore, path=where)
        return lines
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        lines = []
        for index, (theirs, mine) in enumerate(zip(saved, current, strict=True)):
            lines += differences(theirs, mine, ignore=ignore, path=f"{path}[{index}]")
        return lines
    if saved != current:
        return [f"{path or '<root>'}: {saved!r} in the checkpoint, {current!r} here"]
    return []


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How saved records differ from this optimizer's."""

    refused: list[str]
    """Differences refused under every policy (groups, parameters, shapes, algorithm class)."""
    changed: list[str]
    """Differences of hyperparameters and schedule: refused under ``strict``, applied under ``config``."""


def compare_records(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ordered: bool = True
) -> Comparison:
    """Compare saved group records (group name -> record) with this optimizer's.

    Args:
      saved, current: group name -> record (see :func:`group_record`).
      ordered: the groups must come in the same order (torch's state dicts match groups by position;
        DCP's by name).
    """
    same_groups = list(saved) == list(current) if ordered else sorted(saved) == sorted(current)
    if not same_groups:
        return Comparison([f"param groups {list(saved)} in the checkpoint, {list(current)} here"], [])
    refused: list[str] = []
    changed: list[str] = []
    for name, mine in current.items():
        theirs = saved[name]
        structure = _structure_difference(theirs, mine)
        if structure is not None:
            refused.append(f"group {name!r}: {structure}")
            continue
        saved_print, my_print = theirs["fingerprint"], mine["fingerprint"]
        moved = [key for key in CLASS_KEYS if saved_print.get(key) != my_print.get(key)]
        if moved:
            key = moved[0]
            refused.append(
                f"group {name!r}: {key}: {saved_print.get(key)!r} in the checkpoint, {my_print.get(key)!r} "
                "here (another algorithm's state)"
            )
            continue
        changed += [
            f"group {name!r}: {line}"
            for line in differences(saved_print, my_print, ignore=frozenset(CLASS_KEYS))
        ]
    return Comparison(refused, changed)


def _structure_difference(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The first difference of parameter names or shapes between two group records."""
    saved_names, names = list(saved["param_names"]), list(current["param_names"])
    saved_shapes, shapes = list(saved["shapes"]), list(current["shapes"])
    for index, (theirs, mine) in enumerate(zip(saved_names, names, strict=False)):
        if theirs != mine:
            return f"parameter {index}: {theirs!r} in the checkpoint, {mine!r} here"
    if len(saved_names) != len(names):
        return f"{len(saved_names)} parameters in the checkpoint, {len(names)} here"
    for name, theirs, mine in zip(names, saved_shapes, shapes, strict=True):
        if list(theirs) != list(mine):
            return f"parameter {name!r}: shape {list(theirs)} in the checkpoint, {list(mine)} here"
    return None


SCHEDULE_FINGERPRINT_KEYS = ("schedule", "lr_multiplier", "reduce_on_plateau")
"""Fingerprint keys of the schedule: a load that restarts the schedule (``reset_schedule``) ignores them."""


def without_schedules(comparison: Comparison) -> Comparison:
    """``comparison`` without the changes of schedules and LR multipliers."""
    prefixes = tuple(f": {key}" for key in SCHEDULE_FINGERPRINT_KEYS)
    kept = [line for line in comparison.changed if not any(f"'{prefix}" in line for prefix in prefixes)]
    return Comparison(comparison.refused, kept)


def judge(comparison: Comparison, policy: str, *, what: str = "the checkpoint") -> list[str]:
    """The changes to apply under ``policy``, or a :class:`ResumeError` listing what is refused."""
    if policy not in RESUME_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(RESUME_POLICIES)}, got {policy!r}")
    if comparison.refused:
        raise ResumeError(
            f"{what} does not fit this optimizer (refused under every resume policy): "
            + "; ".join(comparison.refused)
        )
    if comparison.changed and policy == "strict":
        raise ResumeError(
            f"{what} was saved with other hyperparameters or schedules (resume policy strict): "
            + "; ".join(comparison.changed)
            + " (to apply this config's values to the saved state, set resume: config in the "
            "optimizer config or load with policy='config')"
        )
    return comparison.changed if policy == "config" else []


# ---------------------------------------------------------------- the policy of a load

_POLICY: contextvars.ContextVar[str | None] = contextvars.ContextVar("tml_resume_policy", default=None)
_SCHEDULES: contextvars.ContextVar[bool] = contextvars.ContextVar("tml_resume_schedules", default=True)
_REPORT: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("tml_resume_report", default=None)


def schedules_compared() -> bool:
    """Whether the load under way compares schedules (not when it restarts the schedule)."""
    return _SCHEDULES.get()


def effective_policy(default: str) -> str:
    """The policy of the load under way: the one :func:`resume_policy` set, else ``default``."""
    return _POLICY.get() or default


@contextlib.contextmanager
def resume_policy(policy: str | None, *, schedules: bool = True) -> Iterator[None]:
    """Loads in this block use ``policy`` (``None``: each optimizer's own); their applied changes are
    reported in one :class:`ResumeWarning` when the block ends. With ``schedules`` false, the
    schedules and multipliers are not compared (a load that restarts the schedule)."""
    if policy is not None and policy not in RESUME_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(RESUME_POLICIES)}, got {policy!r}")
    outer = _REPORT.get()
    report: list[str] = [] if outer is None else outer
    policy_token = _POLICY.set(policy or _POLICY.get())
    report_token = _REPORT.set(report)
    schedules_token = _SCHEDULES.set(schedules and _SCHEDULES.get())
    try:
        yield
    finally:
        _SCHEDULES.reset(schedules_token)
        _POLICY.reset(policy_token)
        _REPORT.reset(report_token)
    if outer is None and report:
        _warn(report)


def report_changes(changes: Sequence[str]) -> None:
    """Report changes applied by a load: into the enclosing :func:`resume_policy`, else now."""
    if not changes:
        return
    report = _REPORT.get()
    if report is None:
        _warn(list(changes))
    else:
        report.extend(line for line in changes if line not in report)


def _warn(changes: list[str]) -> None:
    warnings.warn(
        "resume policy config: the config's values replace the checkpoint's (state tensors kept): "
        + "; ".join(changes),
        ResumeWarning,
        stacklevel=4,
    )


# ---------------------------------------------------------------- the hooks

_CONTRACTS: weakref.WeakKeyDictionary[torch.optim.Optimizer, ResumeContract] = weakref.WeakKeyDictionary()


class ResumeContract:
    """The records of one torch optimizer's groups and its default policy; see the module docstring."""

    def __init__(self, groups: Sequence[ParamGroup], policy: str) -> None:
        self.records = {group.name: group_record(group) for group in groups}
        self.policy = policy

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Register the state_dict post-hook and the load_state_dict pre-hook on ``optimizer``."""
        optimizer.register_state_dict_post_hook(self._record)
        optimizer.register_load_state_dict_pre_hook(self._check)
        _CONTRACTS[optimizer] = self

    def _record(self, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
        for group in state_dict["param_groups"]:
            record = self.records.get(group.get("name"))
            if record is not None:
                group[RESUME_KEY] = json.dumps(record, sort_keys=True)

    def _check(self, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        policy = effective_policy(self.policy)
        saved_groups = list(state_dict.get("param_groups", []))
        live = optimizer.param_groups
        current = {group["name"]: self.records[group["name"]] for group in live}
        if len(saved_groups) != len(live):
            raise ResumeError(
                f"the checkpoint has {len(saved_groups)} param groups, this optimizer {len(live)} "
                f"({', '.join(current)}) (refused under every resume policy)"
            )
        if not all(RESUME_KEY in group for group in saved_groups):
            saved_names = [group.get("name") for group in saved_groups]
            if saved_names != list(current) and all(name is not None for name in saved_names):
                refused = [f"param groups {saved_names} in the checkpoint, {list(current)} here"]
                judge(Comparison(refused, []), policy)
            if policy == "strict":
                raise ResumeError(
                    "the checkpoint records no parameter names, shapes or config of its param groups "
                    "(it was not saved by an optimizer of build_optimizer), so it cannot be checked "
                    "(resume policy strict); load it with policy='config' to take this config's "
                    "hyperparameters and the checkpoint's state unchecked"
                )
            report_changes(["the checkpoint records no parameter names or shapes: not checked"])
            changes: list[str] = []
        else:
            saved = {group["name"]: json.loads(group[RESUME_KEY]) for group in saved_groups}
            comparison = compare_records(saved, current)
            changes = judge(comparison if _SCHEDULES.get() else without_schedules(comparison), policy)
        rewritten = []
        for saved_group, live_group in zip(saved_groups, live, strict=True):
            if policy == "config":
                taken = {key: value for key, value in live_group.items() if key != "params"}
            else:
                taken = {key: value for key, value in live_group.items() if key in IMPLEMENTATION_KEYS}
            new_group = {**saved_group, **taken}
            if RESUME_KEY in saved_group or policy == "config":
                new_group[RESUME_KEY] = json.dumps(current[live_group["name"]], sort_keys=True)
            rewritten.append(new_group)
        report_changes(changes)
        return {**state_dict, "param_groups": rewritten}


def contracts_of(optimizer: torch.optim.Optimizer) -> list[ResumeContract]:
    """The contracts of ``optimizer`` or of its children (a ``CombinedOptimizer``); empty for an
    optimizer ``build_optimizer`` did not build."""
    own = _CONTRACTS.get(optimizer)
    if own is not None:
        return [own]
    children = getattr(optimizer, "optimizers", None)
    if isinstance(children, list):
        return [contract for child in children for contract in contracts_of(child)]
    return []


def default_policy(optimizer: torch.optim.Optimizer) -> str:
    """The config's ``resume`` policy of an optimizer of ``build_optimizer`` (``strict`` otherwise)."""
    contracts = contracts_of(optimizer)
    return contracts[0].policy if contracts else "strict"


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state_dict: dict[str, Any], *, policy: ResumePolicy | None = None
) -> None:
    """``optimizer.load_state_dict(state_dict)`` under ``policy`` (``None``: the config's ``resume``).

    torch's ``load_state_dict`` takes no policy; this is the way to give one for a single load.

    Raises:
      ResumeError: the state does not fit ``optimizer`` under the policy (the message lists the
        differences, each as ``path: value in the checkpoint, value here``).
      TypeError: a ``policy`` was given for an optimizer that ``build_optimizer`` did not build.
    """
    if policy is not None and not contracts_of(optimizer):
        raise TypeError(
            f"{type(optimizer).__name__} was not built by build_optimizer: it records no resume contract "
            "and takes no policy; call its load_state_dict"
        )
    with resume_policy(policy):
        optimizer.load_state_dict(state_dict)


def saved_records(param_groups: Any) -> dict[str, Any] | None:
    """The records (group name -> record) of saved param groups (a state dict's ``param_groups``);
    ``None`` unless every group has one."""
    if not isinstance(param_groups, list) or not param_groups:
        return None
    if not all(isinstance(group, dict) and RESUME_KEY in group for group in param_groups):
        return None
    return {group["name"]: json.loads(group[RESUME_KEY]) for group in param_groups}


__all__ = [
    "RESUME_KEY",
    "RESUME_POLICIES",
    "Comparison",
    "ResumeContract",
    "ResumeError",
    "ResumePolicy",
    "ResumeWarning",
    "compare_records",
    "contracts_of",
    "default_policy",
    "differences",
    "effective_policy",
    "fingerprint",
    "group_record",
    "judge",
    "load_optimizer_state",
    "report_changes",
    "resume_policy",
    "saved_records",
    "schedules_compared",
    "without_schedules",
]
