"""torchrec: ``LRShim`` over torchrec's ``CombinedOptimizer`` of ``KeyedOptimizer``s (optional).

Skipped unless torchrec is importable; CI does not install it. To run it, see docs/integrations.md.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import pytest
import torch

torchrec = pytest.importorskip("torchrec")

from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper  # noqa: E402

from tml.optimizers import LearningRate, LRShim, compute_lr  # noqa: E402

STEPS = 8
# The embeddings: SGD with 0.1 before step 3, then 0.01.
PIECEWISE = {"piecewise_constant": {"learning_rate_boundaries": [3], "learning_rate_values": [0.1, 0.01]}}
# The dense part: a 2-step ramp to 1e-3, then a half cosine down to 1e-4 at step 6.
COSINE = {
    "linear_ramp_to_cosine": {
        "learning_rate": 1e-3,
        "final_learning_rate": 1e-4,
        "num_ramp_steps": 2,
        "final_num_steps": 6,
    }
}


def piecewise_lr(step: int) -> float:
    return [0.1, 0.01][bisect.bisect_right([3], step)]


def cosine_lr(step: int) -> float:
    """The formula of COSINE, written out: ramp, half cosine, then the final value."""
    if step < 2:
        return 1e-3 * step / 2
    if step < 6:
        return 1e-4 + (1e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (step - 2) / (6 - 2)))
    return 1e-4


class Ranker(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = torchrec.EmbeddingBagCollection(
            tables=[
                torchrec.EmbeddingBagConfig(
                    name="item_table", embedding_dim=4, num_embeddings=20, feature_names=["item"]
                )
            ],
            device=torch.device("cpu"),
        )
        self.dense = torch.nn.Linear(4, 1)

    def forward(self, features: Any) -> torch.Tensor:
        return self.dense(self.embeddings(features)["item"])


def batch(generator: torch.Generator) -> Any:
    lengths = torch.tensor([2, 1, 3, 2])
    values = torch.randint(0, 20, (int(lengths.sum()),), generator=generator)
    return torchrec.KeyedJaggedTensor.from_lengths_sync(keys=["item"], values=values, lengths=lengths)


def build(**kwargs: Any) -> tuple[Ranker, CombinedOptimizer, LRShim]:
    torch.manual_seed(0)
    model = Ranker()
    optimizer = CombinedOptimizer(
        [
            ("sparse", KeyedOptimizerWrapper(dict(model.embeddings.named_parameters()), _sgd)),
            ("dense", KeyedOptimizerWrapper(dict(model.dense.named_parameters()), _adam)),
        ]
    )
    schedules = {
        name: LearningRate.model_validate(config)
        for name, config in [("sparse", PIECEWISE), ("dense", COSINE)]
    }
    return model, optimizer, LRShim(optimizer, schedules, **kwargs)


def _sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=1.0)


def _adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1.0)


def train(model: Ranker, optimizer: CombinedOptimizer, scheduler: LRShim, steps: int) -> list[list[float]]:
    """Train; return the LRs of the torch optimizers inside the KeyedOptimizers at every step."""
    generator = torch.Generator().manual_seed(1)
    seen = []
    for _ in range(steps):
        optimizer.zero_grad()
        model(batch(generator)).pow(2).mean().backward()
        seen.append(
            [group["lr"] for _, child in optimizer.optimizers for group in child._optimizer.param_groups]
        )
        optimizer.step()
        scheduler.step()
    return seen


def expected(step: int) -> list[float]:
    return [piecewise_lr(step), cosine_lr(step)]


@pytest.mark.parametrize("position", ["scheduler_steps", "optimizer_steps"])
def test_lrshim_drives_every_keyed_optimizer(position: str) -> None:
    model, optimizer, scheduler = build(schedule_position=position)
    seen = train(model, optimizer, scheduler, STEPS)
    for step, lrs in enumerate(seen):
        assert lrs == [compute_lr(LearningRate.model_validate(c), step) for c in (PIECEWISE, COSINE)]
        assert lrs == pytest.approx(expected(step), rel=1e-12, abs=1e-15), step
    assert scheduler.last_epoch == STEPS


def test_state_dict_round_trip_continues_the_schedule() -> None:
    model, optimizer, scheduler = build()
    train(model, optimizer, scheduler, 4)
    state = scheduler.state_dict()
    model, optimizer, scheduler = build()
    scheduler.load_state_dict(state)
    seen = train(model, optimizer, scheduler, STEPS - 4)
    for step, lrs in zip(range(4, STEPS), seen, strict=True):
        assert lrs == pytest.approx(expected(step), rel=1e-12, abs=1e-15), step


def test_a_sharded_fused_embedding_takes_the_schedule_at_every_step(tmp_path: Any) -> None:
    """DistributedModelParallel on CPU (one gloo rank): the fused (in-backward) SGD of the sharded
    table applies exactly the LR that LRShim wrote for that step, measured from the update."""
    import torch.distributed as dist
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints, Topology
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = Ranker()
        # The fused optimizer's own LR (0.5) is replaced by the schedule's from construction on.
        sharder = EmbeddingBagCollectionSharder(
            fused_params={"optimizer": EmbOptimType.EXACT_SGD, "learning_rate": 0.5}
        )
        constraints = {
            "item_table": ParameterConstraints(sharding_types=["table_wise"], compute_kernels=["fused"])
        }
        planner = EmbeddingShardingPlanner(
            topology=Topology(world_size=1, compute_device="cpu"), constraints=constraints
        )
        plan = planner.collective_plan(model, [sharder], dist.GroupMember.WORLD)
        sharded = DistributedModelParallel(model, device=torch.device("cpu"), sharders=[sharder], plan=plan)
        dense = KeyedOptimizerWrapper(dict(in_backward_optimizer_filter(sharded.named_parameters())), _adam)
        optimizer = CombinedOptimizer([sharded.fused_optimizer, dense])
        schedules = {
            "fused": LearningRate.model_validate(PIECEWISE),
            "dense": LearningRate.model_validate(COSINE),
        }
        scheduler = LRShim(optimizer, schedules)
        # Four bags holding row 3 once each, sum pooling, loss = sum of outputs: the gradient of row 3
        # is 4 * dense.weight, so the LR applied is the change of row 3 / (4 * dense.weight).
        features = torchrec.KeyedJaggedTensor.from_lengths_sync(
            keys=["item"], values=torch.tensor([3, 3, 3, 3]), lengths=torch.tensor([1, 1, 1, 1])
        )
        for step in range(5):
            row_before = _row_3(sharded)
            dense_weight = sharded.module.dense.weight.detach().clone()[0]
            optimizer.zero_grad()
            sharded(features).sum().backward()
            optimizer.step()
            applied = (row_before - _row_3(sharded)) / (4 * dense_weight)
            assert applied.tolist() == pytest.approx([piecewise_lr(step)] * 4, rel=1e-5, abs=1e-7), step
            assert optimizer.param_groups[1]["lr"] == pytest.approx(cosine_lr(step), rel=1e-12, abs=1e-15)
            scheduler.step()
    finally:
        dist.destroy_process_group()


def _row_3(model: Any) -> torch.Tensor:
    (table,) = [value for name, value in model.state_dict().items() if "embeddings" in name]
    return table.local_shards()[0].tensor[3].detach().clone()
