"""describe_table_groups and ``tml-optim groups`` on a torchrec model: one row per table group from the
rules, before sharding; the dense groups without the tables. Values computed here from the shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchrec

from tml.optimizers import OptimizerConfig, describe_param_groups, describe_table_groups
from tml.optimizers.cli.main import main
from tml.optimizers.tables import TABLE_ALGORITHMS

TABLES = {"user": (300, 16), "item": (500, 8), "tag": (40, 4), "lang": (7, 2), "geo": (11, 6), "ad": (9, 3)}
"""Table name -> (rows, dim)."""

RULES = [
    {"name": "ids", "tables": ["user", "item"], "exact_row_wise_adagrad": {"lr": 0.05}},
    {"name": "tags", "tables": ["tag"], "exact_adagrad": {"lr": 0.1}},
    {"name": "langs", "tables": ["lang"], "adam": {"lr": 0.01, "weight_decay": 0.001}},
    {"name": "geos", "tables": ["geo"], "partial_row_wise_adam": {"lr": 0.01}},
    {"name": "ads", "tables": ["ad"], "lamb": {"lr": 0.02}},
    {
        "name": "rest",
        "tables": ["*"],
        "exact_sgd": {},
        "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.3, "num_ramp_steps": 10}},
    },
]
CONFIG = {"sgd": {"lr": 0.1}, "embedding_tables": RULES}


class TwoTablesAndHead(torch.nn.Module):
    def __init__(self, extra_table: bool = True) -> None:
        super().__init__()
        tables = dict(TABLES)
        if extra_table:
            tables["extra"] = (5, 5)
        self.ebc = torchrec.EmbeddingBagCollection(
            tables=[
                torchrec.EmbeddingBagConfig(
                    name=name, embedding_dim=dim, num_embeddings=rows, feature_names=[name]
                )
                for name, (rows, dim) in tables.items()
            ],
            device=torch.device("meta"),
        )
        self.head = torch.nn.Linear(3, 1)


def make_model() -> torch.nn.Module:
    return TwoTablesAndHead()


def state_bytes(algorithm: str, rows: int, dim: int) -> int:
    """FBGEMM's float32 state per row: SGD none, Adagrad an accumulator per entry, row-wise Adagrad
    one per row, Adam and LAMB two moments per entry, partial row-wise Adam a first moment per entry
    and a second per row."""
    floats_per_row = {
        "exact_sgd": 0,
        "exact_adagrad": dim,
        "exact_row_wise_adagrad": 1,
        "adam": 2 * dim,
        "partial_row_wise_adam": dim + 1,
        "lamb": 2 * dim,
    }[algorithm]
    return 4 * rows * floats_per_row


def test_one_row_per_table_group_with_its_tables_and_state() -> None:
    config = OptimizerConfig.model_validate(CONFIG)
    described = describe_table_groups(make_model(), config)
    expected_tables = {
        "ids": ["user", "item"],
        "tags": ["tag"],
        "langs": ["lang"],
        "geos": ["geo"],
        "ads": ["ad"],
        "rest": ["extra"],
    }
    assert [group.name for group in described] == list(expected_tables)
    assert {group.algorithm for group in described} == set(TABLE_ALGORITHMS)  # every kernel's state
    shapes = {**TABLES, "extra": (5, 5)}
    for group in described:
        names = expected_tables[group.name]
        assert [(t.name, t.rows, t.dim) for t in group.tables] == [(n, *shapes[n]) for n in names]
        assert group.rows == sum(shapes[n][0] for n in names)
        assert group.elements == sum(shapes[n][0] * shapes[n][1] for n in names)
        assert group.state_bytes == sum(state_bytes(group.algorithm, *shapes[n]) for n in names)
    ids, langs, rest = described[0], described[2], described[5]
    assert ids.state_bytes == 4 * (300 + 500)  # one float per row
    assert (ids.lr_at_start, ids.lr_peak, ids.weight_decay) == (0.05, 0.05, 0.0)
    assert langs.state_bytes == 4 * 7 * 2 * 2 and langs.weight_decay == 0.001
    assert (rest.lr_at_start, rest.lr_peak, rest.weight_decay) == (0.0, 0.3, None)


def test_the_dense_groups_leave_the_tables_out() -> None:
    config = OptimizerConfig.model_validate(CONFIG)
    (default,) = describe_param_groups(make_model(), config)
    assert [parameter.name for parameter in default.parameters] == ["head.weight", "head.bias"]
    assert default.elements == 3 + 1
    without_rules = OptimizerConfig.model_validate({"sgd": {"lr": 0.1}})
    assert describe_table_groups(make_model(), without_rules) == []


def test_rules_that_do_not_fit_are_the_build_errors() -> None:
    rules = [{"name": "ids", "tables": ["user"], "exact_sgd": {"lr": 0.1}}]
    config = OptimizerConfig.model_validate({"sgd": {"lr": 0.1}, "embedding_tables": rules})
    with pytest.raises(ValueError, match=r"no embedding_tables rule claims the table\(s\) 'item'"):
        describe_table_groups(make_model(), config)


def test_groups_command_lists_the_table_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tables.yaml"
    config.write_text(json.dumps({"optimizer": CONFIG}))
    model = f"{Path(__file__).resolve()}:make_model"
    assert main(["groups", str(config), "--model", model]) == 0
    out = capsys.readouterr().out
    assert "6 table group(s) of TwoTablesAndHead" in out
    ids_state = state_bytes("exact_row_wise_adagrad", 300, 16) + state_bytes("exact_row_wise_adagrad", 500, 8)
    assert ids_state == 3200
    assert any(
        "ids" in line
        and "exact_row_wise_adagrad" in line
        and "user 300×16, item 500×8" in line
        and "800" in line
        and "8,800" in line
        and "3.1 KiB" in line
        for line in out.splitlines()
    ), out
    assert main(["groups", str(config), "--model", model, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["default", "ids", "tags", "langs", "geos", "ads", "rest"]
    geos = rows[4]
    assert geos["tables"] == [{"name": "geo", "rows": 11, "dim": 6, "state_bytes": 4 * 11 * (6 + 1)}]
    assert geos["algorithm"] == "partial_row_wise_adam" and geos["state_bytes"] == 308
