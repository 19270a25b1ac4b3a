"""Shared helpers of the table tests: a torchrec model of three tables and a dense head, sharded on
the gloo ranks of the process (one in-process rank, or torchrun's)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
import torchrec
from torchrec.distributed.model_parallel import DistributedModelParallel
from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints, Topology

TABLES = {"user": 2000, "item": 3000, "small": 10}
"""Table name -> rows. The default planner shards 'small' data_parallel, the others table_wise."""
DIM = 4


class TableModel(torch.nn.Module):
    """Three tables (one feature each, sum pooling) and a linear head over their concatenation."""

    def __init__(self, device: str = "meta", tables: dict[str, int] = TABLES) -> None:
        super().__init__()
        self.names = list(tables)
        self.ebc = torchrec.EmbeddingBagCollection(
            tables=[
                torchrec.EmbeddingBagConfig(
                    name=name, embedding_dim=DIM, num_embeddings=rows, feature_names=[name]
                )
                for name, rows in tables.items()
            ],
            device=torch.device(device),
        )
        self.head = torch.nn.Linear(DIM * len(tables), 1)

    def forward(self, features: torchrec.KeyedJaggedTensor) -> torch.Tensor:
        pooled = self.ebc(features)  # its key order is the sharding's: concatenate in the tables' order
        return self.head(torch.cat([pooled[name] for name in self.names], dim=1))


ROWS = {"user": 3, "item": 5, "small": 1}
"""The row each bag of :func:`fixed_batch` looks up, per table."""
BAGS = 4


def fixed_batch(rows: dict[str, int] = ROWS) -> torchrec.KeyedJaggedTensor:
    """Four bags per feature, each holding one id (``rows``): with sum pooling and loss = sum of the
    outputs, the gradient of that row of table ``t`` is ``4 * head.weight[0, t's slice]``."""
    values = torch.tensor([row for row in rows.values() for _ in range(BAGS)])
    return torchrec.KeyedJaggedTensor.from_lengths_sync(
        keys=list(rows), values=values, lengths=torch.ones(BAGS * len(rows), dtype=torch.int64)
    )


def random_batch(
    generator: torch.Generator, batch_size: int = 8, tables: dict[str, int] = TABLES
) -> torchrec.KeyedJaggedTensor:
    """A random batch: one to three ids per bag in every table."""
    lengths = torch.randint(1, 4, (batch_size * len(tables),), generator=generator)
    values = []
    for index, rows in enumerate(tables.values()):
        count = int(lengths[index * batch_size : (index + 1) * batch_size].sum())
        values.append(torch.randint(0, rows, (count,), generator=generator))
    return torchrec.KeyedJaggedTensor.from_lengths_sync(
        keys=list(tables), values=torch.cat(values), lengths=lengths
    )


def head_slice(name: str, tables: dict[str, int] = TABLES) -> slice:
    index = list(tables).index(name)
    return slice(index * DIM, (index + 1) * DIM)


@contextlib.contextmanager
def gloo_world() -> Iterator[None]:
    """A gloo process group: torchrun's when launched by it, else one in-process rank."""
    logging.getLogger("torchrec").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="torchrec")
    if dist.is_initialized():
        yield
        return
    with tempfile.TemporaryDirectory() as directory:
        if "RANK" in os.environ:
            dist.init_process_group("gloo")
        else:
            dist.init_process_group("gloo", init_method=f"file://{directory}/store", rank=0, world_size=1)
        try:
            yield
        finally:
            dist.destroy_process_group()


def all_fused(tables: dict[str, int] = TABLES) -> dict[str, ParameterConstraints]:
    """Constraints that give every table a fused kernel (table-wise)."""
    return {
        name: ParameterConstraints(sharding_types=["table_wise"], compute_kernels=["fused"])
        for name in tables
    }


def shard(
    model: torch.nn.Module,
    constraints: dict[str, ParameterConstraints] | None = None,
    sharders: list[Any] | None = None,
) -> DistributedModelParallel:
    """``DistributedModelParallel`` on CPU; with ``constraints``, planned under them."""
    plan = None
    if constraints is not None:
        planner = EmbeddingShardingPlanner(
            topology=Topology(world_size=dist.get_world_size(), compute_device="cpu"), constraints=constraints
        )
        plan = planner.collective_plan(model, sharders, dist.GroupMember.WORLD)
    return DistributedModelParallel(model, device=torch.device("cpu"), plan=plan, sharders=sharders)


def local_rows(model: DistributedModelParallel, name: str) -> torch.Tensor | None:
    """A copy of the local shard of table ``name``'s weight (``None`` on a rank that holds none)."""
    value = model.state_dict()[f"ebc.embedding_bags.{name}.weight"]
    if hasattr(value, "local_shards"):
        shards = value.local_shards()
        return shards[0].tensor.detach().clone() if shards else None
    return value.detach().clone()
