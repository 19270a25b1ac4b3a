"""Param groups: match a model's parameters to the config's rules, in order, each claimed once.

The steps, for ``assign_param_groups(model, config)``:

1. Names. Every parameter gets its name in the unwrapped model (``tml.optimizers.groups.names``).
2. Rules. In order, each rule claims the trainable parameters its patterns match that no earlier
   rule claimed; what is left forms the default group. A rule whose patterns match no name at all
   (frozen and claimed parameters included) is an error: a typo must not pass silently.
3. Splits. A group's parameters excluded from weight decay go to a companion group
   ``<name>.no_weight_decay`` (weight_decay 0, same schedule); with layer decay, a group is split
   per layer (``<name>.layer_<l>``), each with its LR multiplier. Empty groups are left out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence

import torch

from tml.optimizers.algorithms import OptimizerAlgorithmConfig
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.groups.names import named_parameters, norm_parameter_ids, some_names, unwrapped_name
from tml.optimizers.groups.patterns import NameIndex, matching_positions, pattern_matcher
from tml.optimizers.groups.resolve import GroupSpec
from tml.optimizers.groups.rules import WEIGHT_DECAY_KEYWORDS, LayerDecayConfig
from tml.optimizers.schedules import LearningRate
from tml.optimizers.schedules.plateau import ReduceOnPlateau

NO_WEIGHT_DECAY_SUFFIX = ".no_weight_decay"
"""Appended to a group's name to name its companion group without weight decay."""


@dataclasses.dataclass
class ParamGroup:
    """One param group of the optimizer to build: its parameters and everything that applies to them."""

    name: str
    params: list[torch.nn.Parameter]
    param_names: list[str]
    algorithm: OptimizerAlgorithmConfig
    schedule: LearningRate
    lr_multiplier: float = 1.0
    reduce_on_plateau: ReduceOnPlateau | None = None
    """Metric-driven decay of the group's LR (its rule's, or the optimizer's), if any."""


def layer_numbers(names: Sequence[str], layer_decay: LayerDecayConfig) -> tuple[list[int], int]:
    """The layer of every parameter (names in registration order) and ``num_layers``, timm's way.

    Block ``i`` (captured by ``layer_pattern``) is layer ``i + 1``; ``num_layers = max(i) + 1``;
    parameters before the first block are layer 0, those after the last block ``num_layers + 1``.

    Raises:
      ValueError: the pattern matches no name, captures something that is not an integer, or a
        parameter that it does not match sits between two blocks.

    Examples:
      >>> names = ["embed.weight", "blocks.0.w", "blocks.1.w", "head.weight"]
      >>> layer_numbers(names, LayerDecayConfig(rate=0.5, layer_pattern=r"blocks\\.(\\d+)\\."))
      ([0, 1, 2, 3], 2)
    """
    pattern = re.compile(layer_decay.layer_pattern)
    blocks: list[int | None] = []
    for name in names:
        found = pattern.search(name)
        if found is None:
            blocks.append(None)
            continue
        captured = found.group(1)
        if captured is None or not captured.isdigit():
            raise ValueError(
                f"layer_decay.layer_pattern {layer_decay.layer_pattern!r} must capture a block index "
                f"(an integer), captured {captured!r} from {name!r}"
            )
        blocks.append(int(captured))
    positions = [position for position, block in enumerate(blocks) if block is not None]
    if not positions:
        raise ValueError(
            f"layer_decay.layer_pattern {layer_decay.layer_pattern!r} matches no parameter name; "
            f"the model's parameters include: {some_names(names, [layer_decay.layer_pattern])}"
        )
    num_layers = max(block for block in blocks if block is not None) + 1
    first, last = positions[0], positions[-1]
    layers = []
    for position, (name, block) in enumerate(zip(names, blocks, strict=True)):
        if block is not None:
            layers.append(block + 1)
        elif position < first:
            layers.append(0)
        elif position > last:
            layers.append(num_layers + 1)
        else:
            raise ValueError(
                f"{name!r} sits between blocks (after {names[first]!r}, before {names[last]!r}) but "
                f"layer_decay.layer_pattern {layer_decay.layer_pattern!r} does not match it, so it has "
                "no layer: extend the pattern to cover it"
            )
    return layers, num_layers


def _is_excluded(entries: Sequence[str], name: str, parameter: torch.Tensor, norm_ids: set[int]) -> bool:
    for entry in entries:
        if entry == "bias":
            if name == "bias" or name.endswith(".bias"):
                return True
        elif entry == "norm":
            if id(parameter) in norm_ids:
                return True
        elif entry == "1d":
            if parameter.ndim <= 1:
                return True
        elif pattern_matcher(entry)(name):
            return True
    return False


def assign_param_groups(
    model: torch.nn.Module, config: OptimizerConfig, *, leave_out: Collection[str] = ()
) -> list[ParamGroup]:
    """Split ``model``'s trainable parameters into the param groups ``config`` describes, in order.

    Rule groups come in rule order, the group of unclaimed parameters last; each group is followed
    by its companion without weight decay, and split per layer with layer decay. Parameters named in
    ``leave_out`` are not seen at all (the embedding tables that fused kernels train).

    Raises:
      ValueError: a rule matches no parameter name; two exclusive rules (recap's towers) match one
        parameter; the model has no trainable parameter; an algorithm cannot take its group's
        parameters (muon and a parameter that is not 2-D); layer decay cannot number a parameter.
    """
    check_arguments(model, config)
    named = named_parameters(model)
    if leave_out:
        left_out = set(leave_out)
        named = [(name, parameter) for name, parameter in named if name not in left_out]
    names = [name for name, _ in named]
    trainable = [parameter.requires_grad for _, parameter in named]
    if not any(trainable):
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimize")
    specs = config.group_specs()
    rules = specs[:-1]  # the last spec is the group of unclaimed parameters

    owner: dict[int, int] = {}  # position in `named` -> index of the rule that claimed it
    name_index = NameIndex(names)  # sorted once: each pattern only tests names with its prefix
    tied = tied_names(model)
    for rule_index, spec in enumerate(rules):
        matched_by_pattern = [matching_positions([pattern], names, name_index) for pattern in spec.patterns]
        if not any(matched_by_pattern):
            raise ValueError(
                f"{spec.path}: none of its patterns {list(spec.patterns)} matches a parameter name of "
                f"{type(model).__name__}{_tied_note(spec.patterns, tied)}; its parameters include: "
                f"{some_names(names, spec.patterns)}"
            )
        for pattern, found in zip(spec.patterns, matched_by_pattern, strict=True):
            if not found:
                raise ValueError(
                    f"{spec.path}: its pattern {pattern!r} matches no parameter name of "
                    f"{type(model).__name__} (its other patterns do){_tied_note([pattern], tied)}; a typo "
                    "must not pass silently: fix or remove it; the closest names: "
                    f"{some_names(names, [pattern])}"
                )
        matched = sorted({position for found in matched_by_pattern for position in found})
        shadowed_by: set[int] = set()
        claims_one = False
        for position in matched:
            if not trainable[position]:
                continue
            earlier = owner.get(position)
            if earlier is None:
                owner[position] = rule_index
                claims_one = True
            elif spec.exclusive and rules[earlier].exclusive:
                raise ValueError(
                    f"parameter {names[position]!r} is matched by both {rules[earlier].path} and "
                    f"{spec.path}; it must belong to one"
                )
            else:
                shadowed_by.add(earlier)
        if shadowed_by and not claims_one:
            earlier_paths = ", ".join(rules[index].path for index in sorted(shadowed_by))
            raise ValueError(
                f"{spec.path}: claims no parameter: every trainable parameter it matches "
                f"({some_names([names[position] for position in matched if trainable[position]])}) is "
                f"claimed by an earlier rule ({earlier_paths}), since the first rule that matches wins; "
                "move it before them, or remove it"
            )
    _check_exclusion_patterns(specs, names, tied, type(model).__name__)

    members: list[list[int]] = [[] for _ in specs]
    for position in range(len(named)):
        if trainable[position]:
            members[owner.get(position, len(rules))].append(position)

    layers: list[int] | None = None
    num_layers = 0
    if config.layer_decay is not None:
        layers, num_layers = layer_numbers(names, config.layer_decay)
    norm_ids = (
        norm_parameter_ids(model)
        if any("norm" in spec.exclude_from_weight_decay for spec in specs)
        else set()
    )

    groups: list[ParamGroup] = []
    for spec, positions in zip(specs, members, strict=True):
        groups.extend(_split_group(spec, positions, named, layers, num_layers, config.layer_decay, norm_ids))
    _check_groups(groups, named, trainable)
    return groups


def check_arguments(model: object, config: object) -> None:
    """Refuse what is not a model and a config, with what was expected (not an ``AttributeError``).

    Raises:
      TypeError: ``model`` is not a ``torch.nn.Module`` (e.g. ``model.parameters()``), or ``config`` is
        not an ``OptimizerConfig`` (e.g. a plain dict).
    """
    if not isinstance(model, torch.nn.Module):
        hint = (
            " (model.parameters()?): pass the model itself, so that the config's rules can match its "
            "parameters by name"
            if isinstance(model, (list, tuple)) or type(model).__name__ == "generator"
            else ""
        )
        raise TypeError(f"expected the model, a torch.nn.Module, got {type(model).__name__}{hint}")
    if not isinstance(config, OptimizerConfig):
        hint = (
            ": make one with OptimizerConfig.model_validate(data), or "
            "load_config_from_yaml(OptimizerConfig, path)"
            if isinstance(config, dict)
            else ""
        )
        raise TypeError(f"expected an OptimizerConfig, got {type(config).__name__}{hint}")


def tied_names(model: torch.nn.Module) -> dict[str, str]:
    """The other names of shared (tied) parameters: each second name → the name patterns see.

    Examples:
      >>> model = torch.nn.ModuleDict({"embed": torch.nn.Embedding(4, 2), "head": torch.nn.Linear(2, 4)})
      >>> model["head"].weight = model["embed"].weight
      >>> tied_names(model)
      {'head.weight': 'embed.weight'}
    """
    first: dict[int, str] = {}
    others: dict[str, str] = {}
    for raw_name, parameter in model.named_parameters(remove_duplicate=False):
        name = unwrapped_name(model, raw_name)
        if id(parameter) not in first:
            first[id(parameter)] = name
        elif name != first[id(parameter)]:
            others[name] = first[id(parameter)]
    return others


def _tied_note(patterns: Sequence[str], tied: dict[str, str]) -> str:
    hits = [name for name in tied if any(pattern_matcher(pattern)(name) for pattern in patterns)]
    if not hits:
        return ""
    shown = ", ".join(f"{name!r} is tied to {tied[name]!r}" for name in hits[:3])
    return (
        f" (it matches a tied parameter's second name: {shown}; a shared parameter is matched under its "
        "first name only)"
    )


_KEYWORD_SPELLINGS = {
    "bias": "bias",
    "biases": "bias",
    "norm": "norm",
    "norms": "norm",
    "layernorm": "norm",
    "batchnorm": "norm",
    "layer_norm": "norm",
    "1d": "1d",
}


def _check_exclusion_patterns(
    specs: Sequence[GroupSpec], names: Sequence[str], tied: dict[str, str], model_name: str
) -> None:
    """Every name pattern of ``exclude_from_weight_decay`` matches a parameter name of the model."""
    checked: set[str] = set()
    index = NameIndex(names)
    for spec in specs:
        for entry in spec.exclude_from_weight_decay:
            if entry in WEIGHT_DECAY_KEYWORDS or entry in checked:
                continue
            checked.add(entry)
            if matching_positions([entry], names, index):
                continue
            keyword = _KEYWORD_SPELLINGS.get(entry.lower().replace("-", "_"))
            hint = f"; did you mean the keyword {keyword!r}?" if keyword else ""
            raise ValueError(
                f"exclude_from_weight_decay (of {spec.path}): the pattern {entry!r} matches no parameter "
                f"name of {model_name}{_tied_note([entry], tied)}{hint} (keywords: "
                f"{', '.join(WEIGHT_DECAY_KEYWORDS)}); the closest names: {some_names(names, [entry])}"
            )


def _split_group(
    spec: GroupSpec,
    positions: list[int],
    named: list[tuple[str, torch.nn.Parameter]],
    layers: list[int] | None,
    num_layers: int,
    layer_decay: LayerDecayConfig | None,
    norm_ids: set[int],
) -> list[ParamGroup]:
    parts: dict[tuple[int, bool], list[int]] = {}
    for position in positions:
        name, parameter = named[position]
        layer = layers[position] if layers is not None else 0
        excluded = _is_excluded(spec.exclude_from_weight_decay, name, parameter, norm_ids)
        parts.setdefault((layer, excluded), []).append(position)
    groups = []
    for (layer, excluded), part in sorted(parts.items()):
        name = spec.name
        multiplier = spec.lr_multiplier
        if layer_decay is not None:
            name += f".layer_{layer}"
            multiplier *= layer_decay.rate ** (num_layers + 1 - layer)
        algorithm = spec.algorithm
        if excluded:
            name += NO_WEIGHT_DECAY_SUFFIX
            algorithm = algorithm.with_hyperparameters({"weight_decay": 0.0})
        part_named = [named[position] for position in part]
        problem = algorithm.check_parameters(part_named)
        if problem:
            raise ValueError(f"{spec.path}: {problem}")
        groups.append(
            ParamGroup(
                name=name,
                params=[parameter for _, parameter in part_named],
                param_names=[parameter_name for parameter_name, _ in part_named],
                algorithm=algorithm,
                schedule=spec.schedule,
                lr_multiplier=multiplier,
                reduce_on_plateau=spec.reduce_on_plateau,
            )
        )
    return groups


def _check_groups(
    groups: list[ParamGroup], named: list[tuple[str, torch.nn.Parameter]], trainable: list[bool]
) -> None:
    """Every trainable parameter in exactly one group, and group names unique."""
    seen_names: set[str] = set()
    for group in groups:
        if group.name in seen_names:
            raise ValueError(
                f"two param groups are named {group.name!r} (a rule's name collides with a generated "
                f"'{NO_WEIGHT_DECAY_SUFFIX}' or '.layer_<l>' name): rename the rule"
            )
        seen_names.add(group.name)
    claims: dict[int, int] = {}
    for group in groups:
        for parameter in group.params:
            claims[id(parameter)] = claims.get(id(parameter), 0) + 1
    for (name, parameter), is_trainable in zip(named, trainable, strict=True):
        expected = 1 if is_trainable else 0
        if claims.get(id(parameter), 0) != expected:
            raise RuntimeError(
                f"parameter {name!r} is in {claims.get(id(parameter), 0)} param groups, expected "
                f"{expected}: this is a bug of tml-optimizers"
            )
