"""The original's per-table optimizers as table rules: TwHIN's ``tables[].optimizer`` blocks.

TwHIN's config gives each embedding table an ``OptimizerConfig`` of its own (``sgd: {lr: 0.01}``,
``learning_rate: {constant: 0.01}``) and the rest of the model a translation optimizer; the original
applied each with ``apply_optimizer_in_backward(optimizer_class, params, config.dict())``, which
torchrec turned into an FBGEMM kernel (``torch.optim.SGD`` → ``exact_sgd``, ``Adagrad`` →
``exact_adagrad``, ``Adam`` → ``adam``). :func:`table_rules_from_optimizers` makes that translation
explicit and checked: one rule per table, named after it, with the kernel that makes the dense
optimizer's update, and the table's own schedule. A setting the kernel cannot reproduce (SGD
momentum, Adagrad's ``lr_decay``, Adam's L2 ``weight_decay``…) is refused, naming the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tml.optimizers.tables.rules import TableRuleConfig

if TYPE_CHECKING:
    from tml.optimizers.config import OptimizerConfig

_AT_TORCH_DEFAULT: dict[str, dict[str, object]] = {
    "sgd": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "maximize": False},
    "adagrad": {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "maximize": False},
    "adam": {"weight_decay": 0.0, "amsgrad": False, "maximize": False},
    "adamw": {"amsgrad": False, "maximize": False},
}
"""Per dense algorithm, the settings the fused kernel runs only at these values."""


def _literal(name: str) -> str:
    """A glob that matches exactly ``name``."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _table_algorithm(key: str, algorithm: Any) -> dict[str, Any]:
    if key == "sgd":
        return {"exact_sgd": {}}
    if key == "adagrad":
        return {"exact_adagrad": {"eps": algorithm.eps}}
    beta1, beta2 = algorithm.betas
    kwargs = {"beta1": beta1, "beta2": beta2, "eps": algorithm.eps}
    if key == "adamw":
        kwargs["weight_decay"] = algorithm.weight_decay  # decoupled, as FBGEMM's adam
    return {"adam": kwargs}


def table_rules_from_optimizers(tables: Iterable[Any]) -> list[TableRuleConfig]:
    """One table rule per table, named after it, from each table's own ``OptimizerConfig``.

    Args:
      tables: the original's table configs (anything with ``name`` and ``optimizer``, as TwHIN's
        ``model.embeddings.tables``), or ``(name, OptimizerConfig)`` pairs.

    Returns:
      The rules, in the tables' order: put them in the model's config as ``embedding_tables``.

    Raises:
      ValueError: a table's optimizer has param groups or another algorithm than sgd, adagrad, adam,
        adamw, or a setting its fused kernel does not run (the message names the table and the key).

    Examples:
      >>> from tml.optimizers.config import OptimizerConfig
      >>> rules = table_rules_from_optimizers(
      ...     [("user", OptimizerConfig(sgd={"lr": 0.01}, learning_rate={"constant": 0.01}))])
      >>> rules[0].name, rules[0].tables, rules[0].algorithm().key, rules[0].schedule().constant
      ('user', ['user'], 'exact_sgd', 0.01)
    """
    rules = []
    for index, table in enumerate(tables):
        name, optimizer = table if isinstance(table, tuple) else (table.name, table.optimizer)
        where = f"tables[{index}] {name!r}"
        rules.append(_rule(name, optimizer, where))
    return rules


def _rule(name: str, optimizer: OptimizerConfig, where: str) -> TableRuleConfig:
    if optimizer is None:
        raise ValueError(f"{where}: has no optimizer; every table needs one")
    grouped = optimizer.param_groups or optimizer.embedding_tables
    if grouped or optimizer.multi_task_learning_rates is not None:
        raise ValueError(f"{where}: a table's optimizer takes one algorithm and schedule, not param groups")
    key, algorithm = optimizer.chosen_algorithm() or ("", None)
    if key not in _AT_TORCH_DEFAULT:
        raise ValueError(
            f"{where}.optimizer.{key}: FBGEMM's fused kernels run sgd (as exact_sgd), adagrad "
            "(exact_adagrad), adam and adamw (adam); write the table's rule with one of the table "
            "algorithms instead"
        )
    for setting, required in _AT_TORCH_DEFAULT[key].items():
        value = getattr(algorithm, setting)
        if value != required:
            raise ValueError(
                f"{where}.optimizer.{key}.{setting}: the fused kernel runs {key} only with {setting} "
                f"{required!r}, got {value!r}"
            )
    return TableRuleConfig.model_validate(
        {
            "name": name,
            "tables": [_literal(name)],
            **_table_algorithm(key, algorithm),
            "learning_rate": optimizer.schedule().model_dump(exclude_none=True),
        }
    )


__all__ = ["table_rules_from_optimizers"]
