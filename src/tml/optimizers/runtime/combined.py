"""``CombinedOptimizer``: several torch optimizers (one per algorithm) behaving as one ``Optimizer``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from tml.optimizers.runtime.resume import ResumeError, resume_policy

_STATE_FORMAT = "tml.combined/1"


class CombinedOptimizer(torch.optim.Optimizer):
    """Param groups stepped by different torch optimizers, presented as one ``torch.optim.Optimizer``.

    ``build_optimizer`` returns one when the param groups use different algorithms (e.g. Adam for
    the towers, SGD for the embeddings). It is a ``torch.optim.Optimizer`` subclass, so ``LRShim``,
    torch's schedulers, ``GradScaler`` and training loops take it as they are:

    - ``param_groups`` lists every child's groups in the config's rule order. It is read from the
      children on every access: ``load_state_dict`` replaces the children's group dicts, and a list
      kept from before would be dead.
    - ``step()`` steps every child (a closure is evaluated once, first); ``zero_grad()`` clears all.
    - ``state_dict()`` is keyed by group name: ``{"groups": {name: {"param_group": hyperparameters,
      "state": {index in the group: per-parameter state}}}}``. ``load_state_dict`` checks that the
      names and group sizes match.
    - ``add_param_group`` is refused: the groups come from the config.
    - Its own step pre/post hooks (and torch's global ones) run around ``step()``, as for any
      optimizer; each child's run around that child's step. Pickled or copied, it holds copies of
      the children and their state; hooks are not copied (as for torch's optimizers).

    Args:
      optimizers: the children, each a torch optimizer whose groups carry a ``"name"``.
      order: group names in the order ``param_groups`` presents them; each child's groups in the
        same relative order.
    """

    optimizers: list[torch.optim.Optimizer]
    """The children, as given."""
    _order: list[tuple[int, int]]
    """Per group in rule order: (index of its child, index of the group in the child)."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer], order: Sequence[str]) -> None:
        children = list(optimizers)
        located: dict[str, tuple[int, int]] = {}
        for child_index, child in enumerate(children):
            for group_index, group in enumerate(child.param_groups):
                name = group.get("name")
                if not isinstance(name, str) or name in located:
                    raise ValueError(f"every param group needs a unique 'name', got {name!r}")
                located[name] = (child_index, group_index)
        if sorted(located) != sorted(order):
            raise ValueError(f"order {list(order)} does not list the groups {list(located)}")
        # Optimizer.__init__ does not fit: it adds the groups through add_param_group (refused here)
        # and assigns param_groups and state (views of the children here). Everything else an
        # optimizer has (its hooks; a step() that runs them) is what torch's Optimizer.__setstate__
        # sets up for an unpickled optimizer, from our own state: the children and the order.
        super().__setstate__(
            {"defaults": {}, "optimizers": children, "_order": [located[name] for name in order]}
        )

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Every child's param groups, in rule order (the children's live dicts)."""
        return [self.optimizers[child].param_groups[group] for child, group in self._order]

    @property
    def state(self) -> defaultdict[torch.Tensor, Any]:  # type: ignore[override]
        """Per-parameter state of all children (a new mapping; each value is the child's live state)."""
        merged: defaultdict[torch.Tensor, Any] = defaultdict(dict)
        for child in self.optimizers:
            merged.update(child.state)
        return merged

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Step every child optimizer; evaluate ``closure`` (if given) once, before."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for child in self.optimizers:
            child.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every child's parameters."""
        for child in self.optimizers:
            child.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused: a combined optimizer's groups come from the config's param_groups rules."""
        raise TypeError(
            "CombinedOptimizer does not take new param groups: its groups come from the config "
            "(add a param_groups rule and rebuild the optimizer)"
        )

    def state_dict(self) -> dict[str, Any]:
        """Every group's hyperparameters and per-parameter state, keyed by group name."""
        groups: dict[str, dict[str, Any]] = {}
        for child in self.optimizers:
            child_state = child.state_dict()
            for saved_group in child_state["param_groups"]:
                hyperparameters = {key: value for key, value in saved_group.items() if key != "params"}
                groups[saved_group["name"]] = {
                    "param_group": hyperparameters,
                    "state": {
                        index: child_state["state"][param_id]
                        for index, param_id in enumerate(saved_group["params"])
                        if param_id in child_state["state"]
                    },
                    "num_params": len(saved_group["params"]),
                }
        return {"format": _STATE_FORMAT, "groups": {name: groups[name] for name in self._names()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of a combined optimizer with the same groups.

        Each child checks its groups' records (see ``tml.optimizers.runtime.resume``) under the resume
        policy; the changes a ``config`` policy applies are reported once for all children.

        Raises:
          ValueError: not such a state.
          ResumeError: its groups (names, sizes, parameter names and shapes, or under ``strict`` the
            hyperparameters and schedules) differ from this optimizer's.
        """
        if not isinstance(state_dict, dict) or state_dict.get("format") != _STATE_FORMAT:
            raise ValueError(
                "not a CombinedOptimizer state (a plain torch optimizer's checkpoint cannot be loaded "
                "into an optimizer whose groups use different algorithms)"
            )
        saved = state_dict["groups"]
        if list(saved) != self._names():
            raise ResumeError(f"the checkpoint has the groups {list(saved)}, this optimizer {self._names()}")
        child_states: list[tuple[torch.optim.Optimizer, dict[str, Any]]] = []
        for child in self.optimizers:
            child_state: dict[Any, Any] = {}
            child_groups = []
            next_id = 0
            for group in child.param_groups:
                entry = saved[group["name"]]
                count = len(group["params"])
                if entry["num_params"] != count:
                    raise ResumeError(
                        f"group {group['name']!r} has {entry['num_params']} parameters in the checkpoint, "
                        f"{count} here"
                    )
                for index, value in entry["state"].items():
                    child_state[next_id + int(index)] = value
                child_groups.append({**entry["param_group"], "params": list(range(next_id, next_id + count))})
                next_id += count
            child_states.append((child, {"state": child_state, "param_groups": child_groups}))
        with resume_policy(None):  # the children's checks first, then their loads; one report
            for child, child_state_dict in child_states:
                child.load_state_dict(child_state_dict)

    def __getstate__(self) -> dict[str, Any]:
        # As torch's optimizers, only the state is pickled (no hooks, no wrapper an LR scheduler put
        # on step): the children, each pickled as a torch optimizer, and the order. Optimizer's own
        # __setstate__ then sets up the rest, as in __init__.
        return {"defaults": self.defaults, "optimizers": self.optimizers, "_order": self._order}

    def _names(self) -> list[str]:
        return [group["name"] for group in self.param_groups]

    def __repr__(self) -> str:
        children = ", ".join(
            f"{type(child).__name__}({', '.join(group['name'] for group in child.param_groups)})"
            for child in self.optimizers
        )
        return f"CombinedOptimizer({children})"
