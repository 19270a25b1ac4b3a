"""Parameter names as the config's patterns see them: the model's own, wrappers left out.

Every parameter gets its name in the unwrapped model (:func:`named_parameters`): DDP's and
DataParallel's ``module.`` is left out where its parent is such a wrapper (by type, so a submodule of
the user's called ``module`` keeps its name), and ``torch.compile``'s ``_orig_mod.``, FSDP1's
``_fsdp_wrapped_module.``, activation checkpointing's ``_checkpoint_wrapped_module.`` and torchrec's
``DistributedModelParallel``'s ``_dmp_wrapped_module.`` wherever they occur. Normalization modules
are found here too, for ``exclude_from_weight_decay: [norm]``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import torch

TRANSPARENT_ATTRIBUTES = frozenset(
    {"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_dmp_wrapped_module"}
)
"""Attribute names of wrapper modules, left out of parameter names wherever they occur."""

NORM_TYPES: tuple[type[torch.nn.Module], ...] = (
    torch.nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
    torch.nn.RMSNorm,
    torch.nn.LocalResponseNorm,
    torch.nn.CrossMapLRN2d,
)
"""Normalization modules recognized by type for ``exclude_from_weight_decay: [norm]``."""

_NORM_CLASS_NAME = re.compile(r"Norm(\d+d)?$")
"""Other classes whose name ends in ``Norm`` (``LlamaRMSNorm``, ``LayerNorm2d``…) count as norms too."""

_NAMES_SHOWN = 5


def _is_data_parallel(module: torch.nn.Module | None) -> bool:
    return isinstance(module, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel))


def is_norm_module(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a normalization layer (by type, or a class name ending in ``Norm``)."""
    return isinstance(module, NORM_TYPES) or bool(_NORM_CLASS_NAME.search(type(module).__name__))


def unwrapped_name(model: torch.nn.Module, name: str) -> str:
    """A parameter or module name of ``model`` with the wrappers' attribute names left out.

    Examples:
      >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2))
      >>> unwrapped_name(torch.nn.DataParallel(model), "module.0.weight")
      '0.weight'
      >>> unwrapped_name(model, "0._orig_mod.weight")
      '0.weight'
    """
    parts = name.split(".")
    module: torch.nn.Module | None = model
    kept = []
    for part in parts[:-1]:
        transparent = part in TRANSPARENT_ATTRIBUTES or (part == "module" and _is_data_parallel(module))
        if not transparent:
            kept.append(part)
        module = module._modules.get(part) if module is not None else None
    kept.append(parts[-1])
    return ".".join(kept)


def named_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Every parameter of ``model`` (frozen ones too) with its unwrapped name, in registration order.

    A parameter shared by several modules appears once, under its first name (as in
    ``model.named_parameters()``).

    Raises:
      ValueError: two parameters would get the same name.
    """
    # One walk over the modules (a parent comes before its children), as torch's own
    # named_parameters() does: modules and parameters reached twice are skipped, so a shared
    # parameter keeps its first name. Each module's unwrapped prefix is computed once.
    prefixes: dict[str, str] = {}
    modules: dict[str, torch.nn.Module] = {}
    seen_parameters: set[int] = set()
    seen: dict[str, tuple[str, str]] = {}
    result = []
    for prefix, module in model.named_modules():
        modules[prefix] = module
        if not prefix:
            unwrapped_prefix = ""
        else:
            parent_prefix, _, part = prefix.rpartition(".")
            kept = prefixes.get(parent_prefix, parent_prefix)
            if part in TRANSPARENT_ATTRIBUTES or (
                part == "module" and _is_data_parallel(modules.get(parent_prefix))
            ):
                unwrapped_prefix = kept
            else:
                unwrapped_prefix = f"{kept}.{part}" if kept else part
        prefixes[prefix] = unwrapped_prefix
        for leaf, parameter in module._parameters.items():
            if parameter is None or id(parameter) in seen_parameters:
                continue
            seen_parameters.add(id(parameter))
            name = f"{unwrapped_prefix}.{leaf}" if unwrapped_prefix else leaf
            if name in seen:
                first_prefix, first_leaf = seen[name]
                first = f"{first_prefix}.{first_leaf}" if first_prefix else first_leaf
                raw_name = f"{prefix}.{leaf}" if prefix else leaf
                raise ValueError(
                    f"parameters {first!r} and {raw_name!r} both become {name!r} once wrappers are "
                    "left out of their names"
                )
            seen[name] = (prefix, leaf)
            result.append((name, parameter))
    return result


def norm_parameter_ids(model: torch.nn.Module) -> set[int]:
    """The ids of the parameters held directly by normalization modules of ``model``."""
    return {
        id(parameter)
        for module in model.modules()
        if is_norm_module(module)
        for parameter in module.parameters(recurse=False)
    }


def some_names(names: Sequence[str], near: Sequence[str] = ()) -> str:
    """A few of ``names`` for an error message: those closest to ``near`` first, then the first ones."""
    close: list[str] = []
    for pattern in near:
        stripped = pattern.removeprefix("re:").replace("*", "").replace("?", "")
        close.extend(name for name in difflib.get_close_matches(stripped, names, n=3, cutoff=0.5))
    shown = list(dict.fromkeys([*close, *names]))[:_NAMES_SHOWN]
    more = f", … ({len(names)} in all)" if len(names) > len(shown) else ""
    return ", ".join(shown) + more if shown else "none"


__all__ = [
    "NORM_TYPES",
    "TRANSPARENT_ATTRIBUTES",
    "is_norm_module",
    "named_parameters",
    "norm_parameter_ids",
    "some_names",
    "unwrapped_name",
]
