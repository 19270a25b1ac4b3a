"""apply_table_rules + build_optimizer on a DistributedModelParallel (one in-process gloo rank): each
table group follows its own schedule at every step, measured from the rows' updates; what would
train silently wrong is refused."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.distributed.launch import run
from tests.tables.schedule_run import CONFIG, check_schedules, piecewise, piecewise_lr
from tests.tables.table_models import (
    BAGS,
    ROWS,
    TableModel,
    all_fused,
    fixed_batch,
    gloo_world,
    head_slice,
    local_rows,
    shard,
)

from tml.optimizers import OptimizerConfig, apply_table_rules, build_optimizer


def config(data: dict[str, Any] = CONFIG) -> OptimizerConfig:
    return OptimizerConfig.model_validate(data)


def sharded_model(cfg: OptimizerConfig, constraints: Any = "all_fused", device: str | None = None) -> Any:
    torch.manual_seed(0)
    model = TableModel()
    apply_table_rules(model, cfg, device=device)
    return shard(model, all_fused() if constraints == "all_fused" else constraints)


def test_every_table_group_follows_its_schedule_at_every_step() -> None:
    with gloo_world():
        assert check_schedules() == ["user", "item", "small"]


def test_every_table_group_follows_its_schedule_at_every_step_on_two_ranks(tmp_path: Path) -> None:
    """torchrun, two gloo ranks: the planner puts the tables on either rank; each rank checks the
    tables it holds."""
    run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(Path(__file__).parent / "schedule_run.py"),
            str(tmp_path),
        ],
        timeout=150,
    )
    checked = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in range(2)]
    assert sorted(name for names in checked for name in names) == ["item", "small", "user"]
    assert all(checked)  # every rank holds a table


def test_the_tables_are_not_in_the_dense_optimizer() -> None:
    cfg = config()
    with gloo_world():
        model = sharded_model(cfg)
        optimizer, _ = build_optimizer(model, cfg)
        dense = optimizer.param_groups[0]
        assert dense["name"] == "default"
        assert {id(p) for p in dense["params"]} == {id(p) for p in model.module.head.parameters()}


def test_wrong_order_is_refused() -> None:
    cfg = config()
    model = TableModel()
    with pytest.raises(
        ValueError, match=r"takes the sharded model: call apply_table_rules\(model, config\), then"
    ):
        build_optimizer(model, cfg)
    with gloo_world():
        plain = shard(TableModel(), all_fused())  # sharded without the rules
        with pytest.raises(
            ValueError, match=r"call apply_table_rules\(model, config\) on the unsharded model"
        ):
            build_optimizer(plain, cfg)
        with pytest.raises(ValueError, match="apply_table_rules takes the unsharded model"):
            apply_table_rules(plain, cfg)
    applied = TableModel()
    apply_table_rules(applied, cfg)
    with pytest.raises(ValueError, match="apply_table_rules was already called"):
        apply_table_rules(applied, cfg)


def test_a_table_given_another_optimizer_is_refused() -> None:
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward

    model = TableModel()
    apply_optimizer_in_backward(torch.optim.SGD, [model.ebc.embedding_bags["item"].weight], {"lr": 0.5})
    with pytest.raises(
        ValueError,
        match=r"table 'item' \(ebc\.embedding_bags\.item\.weight\) is claimed by "
        r"embedding_tables\[1\] 'items' but already has an in-backward optimizer \(SGD with \{'lr': 0\.5\}\)",
    ):
        apply_table_rules(model, config())


def test_a_sharded_model_whose_fused_optimizer_would_not_be_stepped_is_refused() -> None:
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward

    with gloo_world():
        model = TableModel()
        for table in model.ebc.embedding_bags.values():
            apply_optimizer_in_backward(torch.optim.SGD, [table.weight], {"lr": 0.1})
        sharded = shard(model, all_fused())
        with pytest.raises(
            ValueError,
            match=r"fused embedding tables \(ebc\.embedding_bags\.item\.weight, .*would never be stepped",
        ):
            build_optimizer(sharded, OptimizerConfig.model_validate({"adam": {"lr": 0.001}}))


def test_tables_of_two_groups_in_one_kernel_are_refused() -> None:
    cfg = config()
    with gloo_world():
        model = TableModel()
        apply_table_rules(model, cfg)
        # Sharded with other fused params than the rules set: the two exact_sgd groups in one kernel.
        for name in ("user", "item"):
            model.ebc.embedding_bags[name].weight._optimizer_kwargs[0]["_batch_key"] = "one"
        sharded = shard(model, all_fused())
        with pytest.raises(
            ValueError,
            match=r"tables of different table groups share one fused kernel \(ids: user; items: item\)",
        ):
            build_optimizer(sharded, cfg)


def test_a_kernel_with_other_hyperparameters_is_refused() -> None:
    cfg = config()
    with gloo_world():
        model = TableModel()
        apply_table_rules(model, cfg)
        model.ebc.embedding_bags["small"].weight._optimizer_kwargs[0]["eps"] = 0.5
        sharded = shard(model, all_fused())
        with pytest.raises(
            ValueError,
            match=r"embedding_tables\[2\] 'rest': the fused kernel of its table\(s\) small does not run the "
            r"rule's algorithm: eps 0\.5 in the kernel, 1e-08 in the rule",
        ):
            build_optimizer(sharded, cfg)


def test_other_rules_than_those_applied_are_refused() -> None:
    cfg = config()
    with gloo_world():
        model = sharded_model(cfg)
        other = dict(
            CONFIG,
            embedding_tables=[
                *CONFIG["embedding_tables"][:2],
                {"name": "rest", "tables": ["*"], "exact_sgd": {"lr": 0.3}},
            ],
        )
        with pytest.raises(ValueError, match="differ from those apply_table_rules applied before sharding"):
            build_optimizer(model, config(other))


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [
                {"name": "ids", "tables": ["user", "usr"], "exact_sgd": {"lr": 0.1}},
                {"name": "r", "tables": ["*"], "exact_sgd": {"lr": 0.1}},
            ],
            r"embedding_tables\[0\] 'ids': its pattern 'usr' matches no table of TableModel"
            r".*its tables: user",
        ),
        (
            [{"name": "ids", "tables": ["user"], "exact_sgd": {"lr": 0.1}}],
            r"no embedding_tables rule claims the table\(s\) 'item' "
            r"\(ebc\.embedding_bags\.item\.weight\), 'small'",
        ),
        (
            [
                {"name": "all", "tables": ["*"], "exact_sgd": {"lr": 0.1}},
                {"name": "ids", "tables": ["user"], "exact_sgd": {"lr": 0.1}},
            ],
            r"embedding_tables\[1\] 'ids': claims no table: every table it matches \(user\) is "
            r"claimed by an earlier rule \(embedding_tables\[0\] 'all'\)",
        ),
    ],
)
def test_rules_that_do_not_fit_the_tables_are_refused(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_table_rules(TableModel(), config({"adam": {"lr": 0.001}, "embedding_tables": rules}))


DEFAULT_PLANNER = {
    "adam": {"lr": 0.001},
    "embedding_tables": [
        {"name": "ids", "tables": ["user", "item"], "exact_row_wise_adagrad": {"lr": 0.05}},
        {"name": "small", "tables": ["small"], "exact_sgd": {}, "learning_rate": piecewise([2], [0.3, 0.03])},
    ],
}


def test_a_data_parallel_table_of_the_default_planner_trains_with_its_rule() -> None:
    """The default planner shards the 10-row table data_parallel: no fused kernel, so its rule's
    algorithm runs as a python optimizer in the group 'small.dense', under the rule's schedule."""
    cfg = config(DEFAULT_PLANNER)
    with gloo_world():
        model = sharded_model(cfg, constraints=None)
        assert model.plan.plan["ebc"]["small"].sharding_type == "data_parallel"
        optimizer, scheduler = build_optimizer(model, cfg)
        assert [group["name"] for group in optimizer.param_groups] == ["default", "small.dense", "ids"]
        assert type(optimizer.optimizers[1]) is torch.optim.SGD
        for step in range(4):
            before = local_rows(model, "small")
            head = model.module.head.weight.detach().clone()[0]
            optimizer.zero_grad()
            model(fixed_batch()).sum().backward()
            optimizer.step()
            expected = before.clone()
            expected[ROWS["small"]] -= piecewise_lr([2], [0.3, 0.03], step) * BAGS * head[head_slice("small")]
            torch.testing.assert_close(local_rows(model, "small"), expected, rtol=1e-6, atol=1e-7)
            scheduler.step()


def test_a_data_parallel_table_whose_algorithm_has_no_python_optimizer_is_refused_by_name() -> None:
    cfg = config(
        {
            "adam": {"lr": 0.001},
            "embedding_tables": [
                {"name": "ids", "tables": ["user", "item"], "exact_sgd": {"lr": 0.05}},
                {"name": "small", "tables": ["small"], "partial_row_wise_adam": {"lr": 0.01}},
            ],
        }
    )
    with gloo_world():
        # Rules applied for a CUDA machine (where FBGEMM has the kernel), the model sharded on the
        # CPU, where the default planner makes 'small' data-parallel: no kernel runs it at all.
        model = sharded_model(cfg, constraints=None, device="cuda")
        with pytest.raises(
            ValueError,
            match=r"embedding_tables\[1\] 'small': the table\(s\) 'small' have no fused kernel "
            r".*partial_row_wise_adam has no python implementation",
        ):
            build_optimizer(model, cfg)


def test_row_wise_adagrad_state_per_row_is_one_float() -> None:
    cfg = config()
    with gloo_world():
        model = sharded_model(cfg)
        optimizer, _ = build_optimizer(model, cfg)
        model(fixed_batch()).sum().backward()
        (momentum,) = optimizer.state_dict()["groups"]["rest"]["state"][0].values()
        assert list(momentum.size()) == [10]  # one accumulator per row of the 10-row table
        assert math.isfinite(float(momentum.local_shards()[0].tensor.sum()))


@pytest.mark.parametrize("zero_grad", ["never", "before_scheduler_step"])
def test_the_kernels_take_the_scheduled_lr_whatever_the_order_of_the_loop(zero_grad: str) -> None:
    """LRShim's write of a table group's lr reaches its kernel at once: a loop that never calls
    zero_grad(), or calls it before scheduler.step(), still updates with the step's LR."""
    cfg = config()
    with gloo_world():
        model = sharded_model(cfg)
        optimizer, scheduler = build_optimizer(model, cfg)
        for step in range(4):
            before = local_rows(model, "user")[ROWS["user"]]
            head = model.module.head.weight.detach().clone()[0]
            model(fixed_batch()).sum().backward()
            optimizer.step()
            applied = (before - local_rows(model, "user")[ROWS["user"]]) / (BAGS * head[head_slice("user")])
            assert applied.tolist() == pytest.approx([piecewise_lr([2], [0.1, 0.01], step)] * 4, rel=1e-4), (
                step
            )
            if zero_grad == "before_scheduler_step":
                optimizer.zero_grad()
            scheduler.step()


def test_a_sharders_fused_params_cannot_change_a_rules_kernel() -> None:
    """torchrec merges a sharder's fused_params under each table's: the rules give every
    hyperparameter of their kernel, so the sharder's optimizer and eps do not reach the tables."""
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder

    cfg = config()
    sharder = EmbeddingBagCollectionSharder(
        fused_params={"optimizer": EmbOptimType.EXACT_ADAGRAD, "eps": 0.3, "learning_rate": 9.0}
    )
    with gloo_world():
        torch.manual_seed(0)
        model = TableModel()
        apply_table_rules(model, cfg)
        sharded = shard(model, all_fused(), sharders=[sharder])
        build_optimizer(sharded, cfg)  # every kernel checked against its rule
        kernels = {
            table: kernel._emb_module
            for kernel in _kernels_of(sharded)
            for table in kernel._emb_module.table_names
        }
        assert {table: str(module.optimizer) for table, module in kernels.items()} == {
            "user": "exact_sgd",
            "item": "exact_sgd",
            "small": "exact_row_wise_adagrad",
        }
        assert kernels["small"].optimizer_args.eps == pytest.approx(1.0e-8)


def _kernels_of(model: Any) -> list[Any]:
    found = []
    stack = [model.fused_optimizer]
    while stack:
        optimizer = stack.pop()
        if hasattr(optimizer, "_emb_module"):
            found.append(optimizer)
        else:
            stack.extend(child for _, child in getattr(optimizer, "optimizers", []))
    return found


def test_an_embedding_collection_is_found_and_scheduled() -> None:
    import torchrec
    from torchrec.distributed.embedding import EmbeddingCollectionSharder

    class Sequences(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ec = torchrec.EmbeddingCollection(
                tables=[
                    torchrec.EmbeddingConfig(
                        name="tokens", embedding_dim=4, num_embeddings=500, feature_names=["t"]
                    )
                ],
                device=torch.device("meta"),
            )
            self.head = torch.nn.Linear(4, 1)

        def forward(self, features: Any) -> torch.Tensor:
            return self.head(self.ec(features)["t"].values())

    cfg = config(
        {
            "adam": {"lr": 0.001},
            "embedding_tables": [{"name": "tokens", "tables": ["tok*"], "exact_sgd": {"lr": 0.3}}],
        }
    )
    with gloo_world():
        torch.manual_seed(0)
        model = Sequences()
        (group,) = apply_table_rules(model, cfg)
        assert [table.parameter_name for table in group.tables] == ["ec.embeddings.tokens.weight"]
        from torchrec.distributed.planner import ParameterConstraints

        constraints = {
            "tokens": ParameterConstraints(sharding_types=["table_wise"], compute_kernels=["fused"])
        }
        sharded = shard(model, constraints, sharders=[EmbeddingCollectionSharder()])
        optimizer, _ = build_optimizer(sharded, cfg)
        assert [group["name"] for group in optimizer.param_groups] == ["default", "tokens"]
        weight = sharded.state_dict()["ec.embeddings.tokens.weight"].local_shards()[0].tensor
        before = weight[7].clone()
        head = sharded.module.head.weight.detach().clone()[0]
        features = torchrec.KeyedJaggedTensor.from_lengths_sync(
            keys=["t"], values=torch.tensor([7, 7, 7]), lengths=torch.tensor([3])
        )
        optimizer.zero_grad()
        sharded(features).sum().backward()
        optimizer.step()
        # three positions look up row 7: its gradient is 3 * head.weight
        torch.testing.assert_close(weight[7], before - 0.3 * 3 * head, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "key", ["exact_sgd", "exact_adagrad", "exact_row_wise_adagrad", "adam", "partial_row_wise_adam", "lamb"]
)
def test_a_rule_without_a_cpu_kernel_is_refused_for_the_cpu_as_fbgemm_itself_would(key: str) -> None:
    """Our list of the algorithms FBGEMM's CPU kernels run is FBGEMM's: sharding on the CPU with the
    rules applied for CUDA succeeds exactly for them, and apply_table_rules refuses the others for
    the CPU with the algorithms that do run there."""
    cfg = config(
        {"adam": {"lr": 0.001}, "embedding_tables": [{"name": "all", "tables": ["*"], key: {"lr": 0.01}}]}
    )
    with gloo_world():
        try:
            sharded_model(cfg, device="cuda")
            fbgemm_runs_it = True
        except AssertionError as error:  # FBGEMM's own check inside DistributedModelParallel
            assert "not supported in CPU mode" in str(error)
            fbgemm_runs_it = False
        if fbgemm_runs_it:
            sharded_model(cfg, device="cpu")
        else:
            with pytest.raises(
                ValueError,
                match=rf"embedding_tables\[0\] 'all': FBGEMM has no CPU kernel for '{key}' .*one of: "
                r"exact_sgd, exact_adagrad, exact_row_wise_adagrad$",
            ):
                sharded_model(cfg, device="cpu")
    assert fbgemm_runs_it == (key.startswith("exact_"))


def test_a_report_lowers_a_table_groups_lr_in_its_fused_kernel() -> None:
    """reduce_on_plateau on a table rule: each report that ends a plateau lowers the LR the fused kernel
    updates the rows with (exact_sgd: the row moves by lr * grad), as torch's ReduceLROnPlateau lowers
    it on the same metrics; a table group without one and the dense group (the optimizer's own
    reduce_on_plateau, on another metric) react only to their own."""
    plateau = {"metric": "ctr_loss", "factor": 0.5, "patience": 0, "threshold_mode": "abs", "threshold": 0.0}
    cfg = config(
        {
            "adam": {"lr": 0.001},
            "reduce_on_plateau": {"metric": "dense_loss", "factor": 0.1, "patience": 0},
            "embedding_tables": [
                {
                    "name": "ids",
                    "tables": ["user"],
                    "exact_sgd": {"lr": 0.1},
                    "reduce_on_plateau": {**plateau, "min_learning_rate": 0.03},
                },
                {"name": "rest", "tables": ["*"], "exact_sgd": {"lr": 0.2}},
            ],
        }
    )
    metrics = [1.0, 1.0, 0.5, 0.5, 0.5, 0.4, 0.4]
    peer_parameter = torch.nn.Parameter(torch.zeros(1))
    peer_optimizer = torch.optim.SGD([peer_parameter], lr=0.1)
    peer = torch.optim.lr_scheduler.ReduceLROnPlateau(
        peer_optimizer, mode="min", factor=0.5, patience=0, threshold=0.0, threshold_mode="abs", min_lr=0.03
    )
    with gloo_world():
        model = sharded_model(cfg)
        optimizer, scheduler = build_optimizer(model, cfg)
        lrs = []
        for step in range(len(metrics) + 1):
            before = {name: local_rows(model, name)[ROWS[name]] for name in ("user", "item")}
            head = model.module.head.weight.detach().clone()[0]
            optimizer.zero_grad()
            model(fixed_batch()).sum().backward()
            optimizer.step()
            for name, expected in (("user", peer_optimizer.param_groups[0]["lr"]), ("item", 0.2)):
                applied = (before[name] - local_rows(model, name)[ROWS[name]]) / (
                    BAGS * head[head_slice(name)]
                )
                assert applied.tolist() == pytest.approx([expected] * 4, rel=1e-4), (step, name)
            lrs.append(peer_optimizer.param_groups[0]["lr"])
            scheduler.step()
            if step < len(metrics):
                scheduler.report({"ctr_loss": metrics[step], "dense_loss": 1.0})
                peer.step(metrics[step])
        # the reports reduced the table group's LR to its floor (0.1, 0.05, then 0.03: 0.025 is below it)
        assert lrs == [0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03]
        assert scheduler.lrs_by_group()["default"] == pytest.approx(0.001 * 0.1 ** (len(metrics) - 1))
        assert scheduler.plateau_state()["ids"]["reductions"] == [2, 4, 5, 7]
        assert sorted(scheduler.plateau_state()) == ["default", "ids"]
