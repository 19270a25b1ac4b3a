"""Benchmark 6: one training step of a model with embedding tables, three ways.

The model: 8 tables × 100,000 rows × 64 dims (sum-pooled, 4 ids per bag), concatenated into two
dense towers (``Linear(512, 256)``, ReLU, ``Linear(256, 1)``), batch 2,048, a binary cross-entropy
loss per tower. The tables train with Adagrad, the towers with Adam. A step is ``zero_grad``,
forward, backward and ``step`` (with torchrec, the tables' update runs inside the backward pass).

* ``torchrec by hand``: what a torchrec user writes: ``apply_optimizer_in_backward`` on the
  tables, ``DistributedModelParallel`` (one gloo rank, the tables table-wise sharded on FBGEMM's
  fused kernel), a ``KeyedOptimizerWrapper`` for the dense Adam and a ``CombinedOptimizer``.
* ``our config``: the same model and planner through ``apply_table_rules`` and ``build_optimizer``
  from a config (a table rule of ``exact_adagrad``, Adam for the rest), with ``scheduler.step()``
  in the step. Target: at most 1.05 × ``torchrec by hand``.
* ``torch dense``: the alternative without torchrec: ``nn.EmbeddingBag(sparse=True)`` tables with
  torch's Adagrad (which takes sparse gradients), Adam for the towers.

The ratio ``torch dense / torchrec by hand`` is reported; it is not a target of ours.

Run alone: ``python -m benchmarks.tables``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.common import interleaved_medians, verdict

TABLES, ROWS, DIM, BATCH, IDS_PER_BAG = 8, 100_000, 64, 2_048, 4
TABLE_LR, DENSE_LR = 0.05, 1e-3
FEATURES = [f"feature_{index}" for index in range(TABLES)]


class Towers(nn.Module):
    """Two binary towers over the concatenated pooled embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(TABLES * DIM, 256), nn.ReLU(), nn.Linear(256, 1)) for _ in range(2)
        )

    def forward(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.binary_cross_entropy_with_logits
        return sum(
            (loss(tower(pooled).squeeze(1), labels[:, index]) for index, tower in enumerate(self.towers)),
            torch.zeros(()),
        )


def _batches(count: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` batches of ids (table, batch, ids per bag) and labels, the same for every variant."""
    generator = torch.Generator().manual_seed(0)
    return [
        (
            torch.randint(ROWS, (TABLES, BATCH, IDS_PER_BAG), generator=generator),
            torch.randint(2, (BATCH, 2), generator=generator).float(),
        )
        for _ in range(count)
    ]


def _cycle(steps: list[Callable[[], None]]) -> Callable[[], None]:
    position = [0]

    def run() -> None:
        steps[position[0] % len(steps)]()
        position[0] += 1

    return run


def torch_dense_step(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
    """``nn.EmbeddingBag(sparse=True)`` tables + torch Adagrad, Adam for the towers."""
    torch.manual_seed(0)
    tables = nn.ModuleList(nn.EmbeddingBag(ROWS, DIM, mode="sum", sparse=True) for _ in range(TABLES))
    towers = Towers()
    table_optimizer = torch.optim.Adagrad(tables.parameters(), lr=TABLE_LR)
    dense_optimizer = torch.optim.Adam(towers.parameters(), lr=DENSE_LR)

    def step(ids: torch.Tensor, labels: torch.Tensor) -> None:
        table_optimizer.zero_grad()
        dense_optimizer.zero_grad()
        pooled = torch.cat([table(ids[index]) for index, table in enumerate(tables)], dim=1)
        towers(pooled, labels).backward()
        table_optimizer.step()
        dense_optimizer.step()

    return _cycle([lambda ids=ids, labels=labels: step(ids, labels) for ids, labels in batches])


def _features(ids: torch.Tensor) -> object:
    import torchrec

    return torchrec.KeyedJaggedTensor.from_lengths_sync(
        keys=FEATURES,
        values=ids.reshape(-1),
        lengths=torch.full((TABLES * BATCH,), IDS_PER_BAG, dtype=torch.int64),
    )


def embedding_bag_collection() -> nn.Module:
    """The 8 tables as a torchrec ``EmbeddingBagCollection`` on the meta device (DMP places them)."""
    import torchrec

    return torchrec.EmbeddingBagCollection(
        tables=[
            torchrec.EmbeddingBagConfig(
                name=f"table_{index}",
                embedding_dim=DIM,
                num_embeddings=ROWS,
                feature_names=[FEATURES[index]],
            )
            for index in range(TABLES)
        ],
        device=torch.device("meta"),
    )


class TableModel(nn.Module):
    """The torchrec model: an ``EmbeddingBagCollection`` (``sparse``) and the towers (``dense``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sparse = embedding_bag_collection()
        self.dense = Towers()

    def forward(self, features: object, labels: torch.Tensor) -> torch.Tensor:
        pooled = self.sparse(features)
        return self.dense(torch.cat([pooled[name] for name in FEATURES], dim=1), labels)


def table_wise_fused_planner() -> object:
    """A planner that puts every table table-wise on FBGEMM's fused kernel (one CPU rank)."""
    from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
    from torchrec.distributed.planner.types import ParameterConstraints

    return EmbeddingShardingPlanner(
        topology=Topology(world_size=1, compute_device="cpu"),
        constraints={
            f"table_{index}": ParameterConstraints(sharding_types=["table_wise"], compute_kernels=["fused"])
            for index in range(TABLES)
        },
    )


def torchrec_by_hand_step(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
    """The hand-wired torchrec step: fused Adagrad in the backward pass, dense Adam, combined."""
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward
    from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    torch.manual_seed(0)
    model = TableModel()
    apply_optimizer_in_backward(torch.optim.Adagrad, model.sparse.parameters(), {"lr": TABLE_LR})
    planner = table_wise_fused_planner()
    sharded = DistributedModelParallel(
        model,
        device=torch.device("cpu"),
        plan=planner.collective_plan(model),  # type: ignore[attr-defined]
    )
    dense = KeyedOptimizerWrapper(
        dict(in_backward_optimizer_filter(sharded.named_parameters())),
        lambda params: torch.optim.Adam(params, lr=DENSE_LR),
    )
    optimizer = CombinedOptimizer([("fused", sharded.fused_optimizer), ("dense", dense)])
    features = [(_features(ids), labels) for ids, labels in batches]

    def step(kjt: object, labels: torch.Tensor) -> None:
        optimizer.zero_grad()
        sharded(kjt, labels).backward()
        optimizer.step()

    return _cycle([lambda kjt=kjt, labels=labels: step(kjt, labels) for kjt, labels in features])


CONFIG = {
    "adam": {"lr": DENSE_LR},
    "embedding_tables": [{"name": "tables", "tables": ["*"], "exact_adagrad": {"lr": TABLE_LR}}],
}
TARGET = 1.05


def our_config_step(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
    """The same model through the config: ``apply_table_rules``, DMP, ``build_optimizer``."""
    from torchrec.distributed.model_parallel import DistributedModelParallel

    from tml.optimizers import OptimizerConfig, apply_table_rules, build_optimizer

    torch.manual_seed(0)
    config = OptimizerConfig.model_validate(CONFIG)
    model = TableModel()
    apply_table_rules(model, config)
    planner = table_wise_fused_planner()
    sharded = DistributedModelParallel(
        model,
        device=torch.device("cpu"),
        plan=planner.collective_plan(model),  # type: ignore[attr-defined]
    )
    optimizer, scheduler = build_optimizer(sharded, config)
    features = [(_features(ids), labels) for ids, labels in batches]

    def step(kjt: object, labels: torch.Tensor) -> None:
        optimizer.zero_grad()
        sharded(kjt, labels).backward()
        optimizer.step()
        scheduler.step()

    return _cycle([lambda kjt=kjt, labels=labels: step(kjt, labels) for kjt, labels in features])


def _init_process_group() -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        store = os.path.join(tempfile.mkdtemp(), "store")
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)


def run(repeats: int = 9) -> tuple[dict[str, float], list[tuple[str, float, float, str]]]:
    """Seconds per training step of each variant, and the target rows."""
    _init_process_group()
    logging.getLogger("torchrec").setLevel(logging.ERROR)
    batches = _batches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants = {
            "torchrec by hand": torchrec_by_hand_step(batches),
            "our config": our_config_step(batches),
            "torch dense": torch_dense_step(batches),
        }
        seconds = interleaved_medians(variants, repeats, sample_seconds=0.0)
    ratio = seconds["our config"] / seconds["torchrec by hand"]
    return seconds, [("tables: our config / torchrec by hand", ratio, TARGET, verdict(ratio, TARGET))]


def table(seconds: dict[str, float]) -> str:
    base = seconds["torchrec by hand"]
    lines = ["| variant | ms per step | / torchrec by hand |", "|---|---|---|"]
    lines += [f"| {name} | {value * 1e3:.1f} | {value / base:.2f} |" for name, value in seconds.items()]
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(1)
    seconds, targets = run()
    print(table(seconds))
    for name, value, target, outcome in targets:
        print(f"{name}: {value:.2f} (target {target}) {outcome}")


if __name__ == "__main__":
    main()
