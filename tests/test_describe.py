"""``describe_param_groups``: the groups as built, and optimizer-state sizes as torch really keeps them."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tml.optimizers import OptimizerConfig, build_optimizer, describe_param_groups


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(6, 5)
        self.norm = torch.nn.LayerNorm(5)
        self.head = torch.nn.Linear(5, 3)
        self.table = torch.nn.Parameter(torch.randn(2, 3, 4))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.body(inputs))).sum() + self.table.square().sum()


ALGORITHMS: list[tuple[str, dict[str, Any]]] = [
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adamw", {"amsgrad": True, "implementation": "for_loop"}),
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "implementation": "foreach"}),
    ("adagrad", {}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.5, "centered": True}),
    ("adadelta", {}),
    ("adamax", {}),
    ("nadam", {}),
    ("radam", {"flatten": True}),
    ("asgd", {}),
    ("rprop", {}),
    ("adafactor", {}),
]


def real_state_bytes(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> int:
    """What torch keeps for ``params`` after a step: every tensor of their state but 0-dim counters."""
    return sum(
        value.numel() * value.element_size()
        for parameter in params
        for value in optimizer.state[parameter].values()
        if isinstance(value, torch.Tensor) and value.dim() > 0
    )


@pytest.mark.parametrize(("key", "fields"), ALGORITHMS, ids=[f"{key}{sorted(f)}" for key, f in ALGORITHMS])
def test_every_row_matches_the_built_optimizer_and_its_state_after_a_step(
    key: str, fields: dict[str, Any]
) -> None:
    config = OptimizerConfig.model_validate(
        {
            key: {"lr": 0.01, **fields},
            "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.01, "num_ramp_steps": 4}},
            "exclude_from_weight_decay": ["1d"] if key != "rprop" else [],
            "param_groups": [{"name": "head", "params": ["head.*"], "lr_multiplier": 2.0}],
        }
    )
    net = Net()
    described = describe_param_groups(net, config)
    optimizer, _ = build_optimizer(net, config)
    built = {group["name"]: group for group in optimizer.param_groups}
    assert [row.name for row in described] == list(built)
    net(torch.randn(7, 6)).backward()
    optimizer.step()
    for row in described:
        group = built[row.name]
        assert row.algorithm == key
        assert row.torch_class == type(getattr(optimizer, "optimizer_class", optimizer)).__name__ or (
            row.kernel == "flat" and row.torch_class == optimizer.optimizer_class.__name__  # type: ignore[attr-defined]
        )
        multiplier = 2.0 if row.name.startswith("head") else 1.0
        assert (row.lr_multiplier, row.lr_at_start, row.lr_peak) == (multiplier, 0.0, multiplier * 0.01)
        assert row.weight_decay == group.get("weight_decay")
        expected_kernel = (
            "flat"
            if fields.get("flatten")
            else "fused"
            if group.get("fused")
            else "foreach"
            if group.get("foreach")
            else "for_loop"
        )
        assert row.kernel == expected_kernel
        parameters = [
            parameter for parameter in net.parameters() if any(parameter is p for p in group["params"])
        ]
        if row.kernel == "flat":
            parameters = list(group["params"])  # the flat optimizer's groups hold the parameters too
        assert row.tensors == len(parameters)
        assert row.elements == sum(parameter.numel() for parameter in parameters)
        if row.kernel != "flat":  # a flat optimizer keeps its state on the buffer, not per parameter
            assert row.state_bytes == real_state_bytes(optimizer, parameters)
    names = {parameter.name for row in described for parameter in row.parameters}
    assert names == {name for name, _ in net.named_parameters()}


def test_a_custom_class_has_unknown_state_and_the_rows_say_so() -> None:
    config = OptimizerConfig.model_validate({"custom": {"class_path": "torch.optim:SGD", "lr": 0.1}})
    (row,) = describe_param_groups(torch.nn.Linear(2, 2), config)
    assert (row.algorithm, row.torch_class, row.state_bytes, row.tensors, row.elements) == (
        "custom",
        "SGD",
        None,
        2,
        6,
    )


def test_describing_changes_nothing_and_a_misfit_config_fails_as_build_optimizer_does() -> None:
    net = Net()
    before = [parameter.detach().clone() for parameter in net.parameters()]
    describe_param_groups(net, OptimizerConfig.model_validate({"adam": {"lr": 0.1, "flatten": True}}))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert all(parameter.grad is None for parameter in net.parameters())
    misfit = OptimizerConfig.model_validate(
        {"adam": {"lr": 0.1}, "param_groups": [{"name": "x", "params": ["tower.*"]}]}
    )
    with pytest.raises(ValueError, match=r"none of its patterns \['tower\.\*'\] matches a parameter name"):
        describe_param_groups(net, misfit)
