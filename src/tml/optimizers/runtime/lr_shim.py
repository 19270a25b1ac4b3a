"""``LRShim``: the torch ``LRScheduler`` that writes closed-form schedules into param groups."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from tml.optimizers.runtime.plateau import PlateauGroups, dropped_reductions
from tml.optimizers.runtime.resume import RESUME_POLICIES, effective_policy, report_changes
from tml.optimizers.schedules import LearningRate, compile_schedule
from tml.optimizers.schedules.plateau import ReduceOnPlateau

_STATE_FORMAT = 1

SCHEDULE_POSITIONS = ("scheduler_steps", "optimizer_steps")
"""What the schedule's position counts: ``scheduler.step()`` calls, or optimizer steps taken."""


def count_param_groups(optimizer: torch.optim.Optimizer) -> int:
    """The number of param groups of an optimizer, or of all optimizers of a torchrec-style container."""
    children = getattr(optimizer, "_optims", None)
    if children is None:
        return len(optimizer.param_groups)
    return sum(len((child[1] if isinstance(child, tuple) else child).param_groups) for child in children)


class LRShim(LRScheduler):
    """A learning-rate scheduler with one closed-form schedule per param group.

    Group ``i``'s learning rate at position ``t`` is ``lr_multipliers[name_i] * compute_lr(schedule_i,
    t)`` (multiplier 1 unless given). The value is a pure function of the position, so it is exact at
    any step and after any resume. A group whose ``lr`` is a tensor is updated in place (``fill_``),
    a float ``lr`` stays a float. The groups are re-read from ``optimizer.param_groups`` at every
    write, so a later ``optimizer.load_state_dict`` (which replaces the group dicts) is followed.
    Each distinct schedule config is compiled once (``compile_schedule``) and evaluated once per
    write, however many groups share it.

    The position depends on ``schedule_position``:

    - ``"scheduler_steps"`` (the default, torch's convention): right after construction it is 0;
      after ``k`` calls of :meth:`step` it is ``k``.
    - ``"optimizer_steps"``: it is the number of optimizer steps actually taken since construction
      (counted by a step post-hook on the optimizer; a step that AMP's ``GradScaler`` skips, because
      of an inf or NaN gradient, is not counted). The LRs are written after every optimizer step;
      :meth:`step` only writes them again, so calling it per micro-batch or not at all is harmless.

    Args:
      optimizer: any ``torch.optim.Optimizer`` (also a ``CombinedOptimizer`` or a torchrec
        ``CombinedOptimizer``).
      lr_dict: group name -> schedule, in the order of ``optimizer.param_groups``. If every group
        carries a ``"name"``, the names must be those of ``lr_dict``, in order.
      last_epoch: the index of the last step taken, ``-1`` for a new run (torch's convention). With
        ``k >= 0`` the scheduler resumes: right after construction the position is ``k + 1`` (torch
        documents the same; a group without ``initial_lr`` gets its schedule's value at step 0).
      verbose: accepted for the original's signature, ``LRShim(optimizer, lr_dict, last_epoch,
        verbose)``; it has no effect (``True`` warns, as torch's schedulers did before removing it).
      lr_multipliers: group name -> factor applied to that group's schedule (default 1).
      schedule_position: ``"scheduler_steps"`` or ``"optimizer_steps"``, see above.
      plateaus: group name -> its ``ReduceOnPlateau``, for the groups whose LR reacts to a metric
        given to :meth:`report`: their LR is the schedule's value times ``factor ** reductions``
        (see ``tml.optimizers.schedules.plateau``).

    Raises:
      ValueError: ``lr_dict`` does not have one schedule per param group, or names them differently;
        ``last_epoch`` is below -1.

    Examples:
      >>> from tml.optimizers.schedules import LearningRate, LinearRampToConstant
      >>> parameter = torch.nn.Parameter(torch.zeros(2))
      >>> optimizer = torch.optim.SGD([{"params": [parameter], "name": "all"}], lr=1.0)
      >>> ramp = LearningRate(
      ...     linear_ramp_to_constant=LinearRampToConstant(learning_rate=0.1, num_ramp_steps=2))
      >>> scheduler = LRShim(optimizer, {"all": ramp}, schedule_position="optimizer_steps")
      >>> lrs = [optimizer.param_groups[0]["lr"]]
      >>> for _ in range(3):
      ...     scheduler.step()  # no optimizer step taken: the schedule stays
      >>> lrs.append(optimizer.param_groups[0]["lr"])
      >>> parameter.grad = torch.ones(2)
      >>> optimizer.step()
      >>> lrs + [optimizer.param_groups[0]["lr"]]
      [0.0, 0.0, 0.05]
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        lr_dict: Mapping[str, LearningRate],
        last_epoch: int = -1,
        verbose: bool = False,
        *,
        lr_multipliers: Mapping[str, float] | None = None,
        schedule_position: str = "scheduler_steps",
        plateaus: Mapping[str, ReduceOnPlateau] | None = None,
    ) -> None:
        if verbose:
            warnings.warn(
                "LRShim's verbose has no effect (torch removed it from its schedulers); print "
                "scheduler.get_last_lr() instead",
                FutureWarning,
                stacklevel=2,
            )
        if last_epoch < -1:
            raise ValueError(
                f"last_epoch must be -1 (a new run) or the index of the last step taken, got {last_epoch}"
            )
        group_count = count_param_groups(optimizer)
        if group_count != len(lr_dict):
            raise ValueError(
                f"the optimizer has {group_count} param groups but lr_dict has {len(lr_dict)} "
                f"schedules (groups named: {', '.join(lr_dict) or 'none'}); give one per group"
            )
        if schedule_position not in SCHEDULE_POSITIONS:
            raise ValueError(
                f"schedule_position must be one of {', '.join(SCHEDULE_POSITIONS)}, got {schedule_position!r}"
            )
        names = [group.get("name") for group in optimizer.param_groups]
        if all(isinstance(name, str) for name in names) and names != list(lr_dict):
            raise ValueError(
                f"the optimizer's param groups are named {names} but lr_dict names {list(lr_dict)}; "
                "give the schedules in the order of the groups"
            )
        multipliers = dict(lr_multipliers or {})
        unknown = [name for name in multipliers if name not in lr_dict]
        if unknown:
            raise ValueError(f"lr_multipliers names groups that lr_dict does not have: {unknown}")
        unknown = [name for name in plateaus or {} if name not in lr_dict]
        if unknown:
            raise ValueError(f"plateaus names groups that lr_dict does not have: {unknown}")
        self.lr_dict = dict(lr_dict)
        self.group_names = list(self.lr_dict)
        self.lr_multipliers = {name: float(multipliers.get(name, 1.0)) for name in self.group_names}
        self.schedule_position = schedule_position
        self._plateau = PlateauGroups(self.group_names, plateaus) if plateaus else None
        # The derived state, all a write needs: one compiled closure per distinct schedule config
        # (groups usually share the default one, evaluated once per step), then one (closure,
        # multiplier) per distinct scaled pair, and per group the index of its value among those.
        schedule_of: dict[str, int] = {}
        self._schedules: list[Callable[[int], float]] = []
        pairs = []  # per group: (index of its schedule, multiplier)
        for name, config in self.lr_dict.items():
            key = config.model_dump_json()
            if key not in schedule_of:
                schedule_of[key] = len(self._schedules)
                self._schedules.append(compile_schedule(config))
            pairs.append((schedule_of[key], self.lr_multipliers[name]))
        value_of = {(index, 1.0): index for index in range(len(self._schedules))}
        self._scaled = [pair for pair in dict.fromkeys(pairs) if pair not in value_of]
        value_of.update((pair, len(self._schedules) + offset) for offset, pair in enumerate(self._scaled))
        self._value_of_group = [value_of[pair] for pair in pairs]
        self._group_count = len(optimizer.param_groups)
        if last_epoch != -1:  # torch reads initial_lr (as base_lrs) when resuming
            first = self._values(0)
            for group, index in zip(optimizer.param_groups, self._value_of_group, strict=False):
                group.setdefault("initial_lr", first[index])
        super().__init__(optimizer, last_epoch)  # torch's initial step() writes the first LRs
        if schedule_position == "optimizer_steps":
            handle = optimizer.register_step_post_hook(_count_optimizer_step(weakref.ref(self)))
            weakref.finalize(self, handle.remove)

    resume_policy: str = "strict"
    """The default policy of :meth:`load_state_dict` (``build_optimizer`` sets the config's ``resume``)."""

    def step(self, epoch: int | None = None) -> None:
        """Advance the schedule by one step (``scheduler_steps``) and write every group's LR.

        With ``schedule_position="optimizer_steps"`` the position follows the optimizer's steps
        instead; this call only writes the LRs of the current position again (torch's initial call,
        from the constructor, still moves a new run from -1 to 0).
        """
        if epoch is not None:
            if isinstance(epoch, int) and not isinstance(epoch, bool):
                raise TypeError(
                    "LRShim.step() takes no epoch: the position is the number of step() calls "
                    "(restore a position with load_state_dict)"
                )
            raise TypeError(
                f"LRShim.step() takes no metric (got {type(epoch).__name__}): step() advances the "
                "schedule once per optimizer step; report an evaluation with "
                "scheduler.report({'<metric name>': value}), which the groups with "
                "reduce_on_plateau react to"
            )
        if self.schedule_position == "scheduler_steps" or self._step_count == 0:
            self._step_count += 1
            self.last_epoch += 1
        self._write_lrs()

    def _optimizer_stepped(self) -> None:
        self.last_epoch += 1
        self._write_lrs()

    def _values(self, step: int) -> list[float]:
        """The value of every distinct schedule at ``step``, then of every distinct scaled pair."""
        values = [lr_at(step) for lr_at in self._schedules]
        for index, multiplier in self._scaled:
            values.append(multiplier * values[index])
        return values

    def _write_lrs(self) -> None:
        """Write the LRs of position ``last_epoch`` into the optimizer's current groups."""
        groups = self.optimizer.param_groups
        if len(groups) != self._group_count:
            raise RuntimeError(
                f"the optimizer has {len(groups)} param groups, {self._group_count} when this LRShim was "
                f"built ({', '.join(self.group_names)}): a group added later (add_param_group) has no "
                "schedule; build the optimizer and scheduler again with a rule for its parameters"
            )
        if self._plateau is not None:
            for group, value in zip(groups, self.get_lr(), strict=True):
                _write_lr(group, value)
            return
        values = self._values(self.last_epoch)
        # The lengths were checked above; zip(strict=True) costs per step.
        for group, index in zip(groups, self._value_of_group, strict=False):
            value = values[index]
            if type(group["lr"]) is float:  # isinstance(, Tensor) goes through torch's slow metaclass
                group["lr"] = value
            else:
                _write_lr(group, value)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The learning rate of every group at the current position (closed form, no side effect)."""
        values = self._values(self.last_epoch)
        lrs = [values[index] for index in self._value_of_group]
        if self._plateau is not None:
            return self._plateau.scaled(lrs, self.last_epoch)
        return lrs

    _get_closed_form_lr = get_lr

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        """Report an evaluation: each group with ``reduce_on_plateau`` takes its own metric.

        A group whose metric has stopped improving (torch's ``ReduceLROnPlateau`` rules: see
        ``ReduceOnPlateau``) gets one more reduction at the current position, and the LRs are
        written at once. The position does not move: call this as often as the run evaluates,
        and :meth:`step` once per optimizer step, as always. Metrics no group reacts to are
        ignored, so one mapping of everything evaluated can be given, and the same training loop
        serves every config (without ``reduce_on_plateau`` a report changes nothing). Patience and
        cooldown count reports, as torch's count its ``step(metric)`` calls.

        Args:
          metrics: metric name -> value (a number, or a tensor of one element).

        Returns:
          The names of the groups whose LR this report reduced (empty for most reports).

        Raises:
          KeyError: a group's metric is missing from ``metrics`` (the message names the group and
            the metric); nothing is changed then.
          TypeError: ``metrics`` is not a mapping, or a value is not a number.

        Examples:
          >>> from tml.optimizers.schedules.plateau import ReduceOnPlateau
          >>> parameter = torch.nn.Parameter(torch.zeros(2))
          >>> optimizer = torch.optim.SGD([{"params": [parameter], "name": "tower"}], lr=1.0)
          >>> scheduler = LRShim(optimizer, {"tower": LearningRate(constant=0.1)},
          ...     plateaus={"tower": ReduceOnPlateau(metric="loss", factor=0.5, patience=1)})
          >>> for loss in [0.5, 0.4, 0.4, 0.4, 0.4, 0.4]:
          ...     scheduler.step()
          ...     reduced = scheduler.report({"loss": loss, "auc": 0.7})
          ...     print(scheduler.last_epoch, reduced, optimizer.param_groups[0]["lr"])
          1 [] 0.1
          2 [] 0.1
          3 [] 0.1
          4 ['tower'] 0.05
          5 [] 0.05
          6 ['tower'] 0.025
        """
        if self._plateau is None:
            if not isinstance(metrics, Mapping):
                raise TypeError(
                    f"report takes a mapping of metric name -> value, got {type(metrics).__name__}"
                )
            return []
        reduced = self._plateau.report(metrics, self.last_epoch)
        if reduced:
            self._write_lrs()
        return reduced

    def plateau_state(self) -> dict[str, dict[str, Any]]:
        """Group name -> its plateau state, for the groups with ``reduce_on_plateau``: ``metric``,
        ``mode``, ``best`` (the best value reported), ``bad_reports``, ``cooldown_left`` and
        ``reductions`` (the positions where its LR was reduced). The same data as ``state_dict()``'s."""
        return {} if self._plateau is None else self._plateau.state()

    def get_last_lr(self) -> list[float]:  # type: ignore[override]
        """The learning rates last written, one float per group.

        Every write is of the current position's closed-form values, so they are computed again here
        rather than kept.
        """
        return self.get_lr()

    def lrs_by_group(self) -> dict[str, float]:
        """Group name -> its current learning rate (a float, also for a tensor lr), for logging
        (``SummaryWriter.add_scalars("lr", scheduler.lrs_by_group(), step)``)."""
        return dict(zip(self.group_names, self.get_last_lr(), strict=True))

    def state_dict(self) -> dict[str, Any]:
        """The step plus what identifies the schedules: plain data, loadable with ``weights_only``.

        With ``reduce_on_plateau`` groups, also ``"plateau"``: :meth:`plateau_state`.
        """
        state = {
            "format": _STATE_FORMAT,
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "group_names": list(self.group_names),
            "schedule_position": self.schedule_position,
            "schedules": self._schedule_records(),
        }
        if self._plateau is not None:
            state["plateau"] = self._plateau.state()
        return state

    def state_differences(self, state_dict: Mapping[str, Any], *, schedules: bool = True) -> list[str]:
        """What differs between a saved ``state_dict()`` and this scheduler; empty if it fits.

        Only what :meth:`load_state_dict` checks is compared: the format, the group names (in order)
        and, unless ``schedules`` is false, each group's schedule and multiplier. The position is not
        compared: it is what a checkpoint restores.

        Args:
          state_dict: a state saved by :meth:`state_dict` (of this or another run).
          schedules: compare the schedules too; false when only the groups must match (a resume that
            restarts the schedule).

        Returns:
          One line per difference, e.g. ``"groups ['a'] in the checkpoint, ['b'] here"`` (then nothing
          else is compared) or ``"group 'a': {'constant': 0.1} in the checkpoint, {'constant': 0.2}
          here"``.
        """
        not_a_state = _not_an_lr_shim_state(state_dict)
        if not_a_state:
            return [not_a_state]
        names = state_dict.get("group_names")
        if names != self.group_names:
            return [f"groups {names} in the checkpoint, {self.group_names} here"]
        if not schedules:
            return []
        return [
            f"group {name!r}: {saved} in the checkpoint, {mine} here"
            for name, saved, mine in zip(
                names, state_dict["schedules"], self._schedule_records(), strict=True
            )
            if saved != mine
        ]

    def load_state_dict(self, state_dict: dict[str, Any], *, policy: str | None = None) -> None:
        """Restore the step and write its learning rates into the groups.

        Args:
          state_dict: a state saved by :meth:`state_dict`.
          policy: ``"strict"`` refuses a state saved with other schedules or multipliers;
            ``"config"`` keeps its position and takes this scheduler's schedules (the optimizer's
            load reports the change: its records hold the schedules). ``None``: the policy of an
            enclosing ``load_optimizer_state`` / ``load_checkpoint``, else :attr:`resume_policy`.
            Other group names are refused under every policy.

        Raises:
          ValueError: the state is not an LRShim's, or was saved by a scheduler with other groups or
            (``strict``) other schedules (the message lists :meth:`state_differences`).
        """
        chosen = policy or effective_policy(self.resume_policy)
        if chosen not in RESUME_POLICIES:
            raise ValueError(f"policy must be one of {', '.join(RESUME_POLICIES)}, got {chosen!r}")
        self._refuse_if_different(state_dict, schedules=chosen == "strict")
        last_epoch = int(state_dict["last_epoch"])
        saved_plateau = state_dict.get("plateau")
        if self._plateau is not None:
            changes = self._plateau.load(saved_plateau, last_epoch, strict=chosen == "strict")
        else:
            changes = dropped_reductions(saved_plateau)
        report_changes(changes)
        self._move_to(last_epoch, int(state_dict["step_count"]))

    def restart_from(self, state_dict: dict[str, Any], step: int = 0) -> None:
        """Take a state saved with other schedules: check its groups, then put the schedule at ``step``.

        For a resume that keeps the model and optimizer but not the schedule's position (a new
        schedule, or the same one restarted): the saved groups must be this scheduler's, the saved
        schedules and position are not used. The learning rates of ``step`` are written. The plateau
        state restarts too: no reduction, every tracker as before its first report.

        Raises:
          ValueError: ``step`` is negative, or the state is not an LRShim state of these groups.
        """
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        self._refuse_if_different(state_dict, schedules=False)
        if self._plateau is not None:
            self._plateau.reset()
        self._move_to(step, step + 1)

    def _refuse_if_different(self, state_dict: Mapping[str, Any], *, schedules: bool) -> None:
        not_a_state = _not_an_lr_shim_state(state_dict)
        if not_a_state:
            raise ValueError(not_a_state)
        differences = self.state_differences(state_dict, schedules=schedules)
        if differences:
            compared = "schedules" if schedules else "groups"
            raise ValueError(
                f"the checkpoint's {compared} differ from this scheduler's: " + "; ".join(differences)
            )

    def _move_to(self, last_epoch: int, step_count: int) -> None:
        self.last_epoch = last_epoch
        self._step_count = step_count
        self._write_lrs()

    def _schedule_records(self) -> list[dict[str, Any]]:
        # Unset keys are left out, so adding a schedule kind to LearningRate changes no record; a
        # multiplier is recorded only when it is not 1, so records of plain schedules stay as they were.
        records = []
        for name, config in self.lr_dict.items():
            record = config.model_dump(mode="json", exclude_none=True)
            if self.lr_multipliers[name] != 1.0:
                record["lr_multiplier"] = self.lr_multipliers[name]
            if self._plateau is not None and name in self._plateau.configs:
                record["reduce_on_plateau"] = self._plateau.configs[name].model_dump(mode="json")
            records.append(record)
        return records


def _not_an_lr_shim_state(state_dict: Mapping[str, Any]) -> str | None:
    if state_dict.get("format") == _STATE_FORMAT:
        return None
    return f"not an LRShim state (format {state_dict.get('format')!r}, expected {_STATE_FORMAT})"


def _write_lr(group: dict[str, Any], value: float) -> None:
    """Write ``value`` into a group whose ``lr`` is not a float: a tensor in place, else replaced."""
    current = group["lr"]
    if isinstance(current, torch.Tensor):
        current.fill_(value)
    else:
        group["lr"] = value


def _count_optimizer_step(
    scheduler: weakref.ref[LRShim],
) -> Callable[[torch.optim.Optimizer, Any, Any], None]:
    """A step post-hook that advances ``scheduler`` by one optimizer step actually taken."""

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        shim = scheduler()
        if shim is None:
            return
        # A fused optimizer receives GradScaler's found_inf and skips the update itself.
        found_inf = getattr(optimizer, "found_inf", None)
        if isinstance(found_inf, torch.Tensor) and bool(found_inf.item()):
            return
        shim._optimizer_stepped()

    return hook
