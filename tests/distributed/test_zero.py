"""The ``shard_optimizer_state`` option (ZeRO-1) in one process: its errors and how it is built.

Its training under 2 gloo ranks (equal to DDP, state really sharded) is in
tests/distributed/test_training.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from tml.core.config import ConfigError, load_config_from_yaml
from tml.optimizers import OptimizerConfig, build_optimizer
from tml.optimizers.cli.main import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "distributed.md"

MIXED = """
adam: {lr: 0.01}
shard_optimizer_state: true
param_groups:
  - {name: head, params: ["2.*"], sgd: {lr: 0.1}}
"""


def model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def test_off_by_default_and_unchanged_without_it() -> None:
    config = OptimizerConfig(adam={"lr": 0.01})
    assert config.shard_optimizer_state is False
    optimizer, _ = build_optimizer(model(), config)
    assert type(optimizer) is torch.optim.Adam


def test_mixed_algorithms_are_refused_when_the_config_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    expected = r"shard_optimizer_state \(ZeRO-1\) shards one optimizer class"
    with pytest.raises(ConfigError, match=expected) as info:
        load_config_from_yaml(OptimizerConfig, path)
    message = str(info.value)
    assert "group 'head' uses sgd (SGD) and the optimizer adam (Adam)" in message
    assert "param_groups.0.sgd" in message or "param_groups[0].sgd" in message, message
    assert "set shard_optimizer_state: false" in message


FLAT = """
adam: {lr: 0.01}
shard_optimizer_state: true
param_groups:
  - name: head
    params: ["2.*"]
    adam:
      lr: 0.1
      flatten: true
"""


def test_flatten_is_refused_when_the_config_is_loaded_before_any_parameter_is_touched(
    tmp_path: Path,
) -> None:
    # Before, this validated, then build_optimizer moved the parameters into flat buffers and died
    # with a raw TypeError from FlatOptimizer.__init__.
    path = tmp_path / "flat.yaml"
    path.write_text(FLAT)
    with pytest.raises(ConfigError, match=r"flatten cannot be combined with shard_optimizer_state") as info:
        load_config_from_yaml(OptimizerConfig, path)
    (issue,) = info.value.issues
    assert issue.path == ("param_groups", 0, "adam", "flatten")
    assert issue.position is not None
    assert issue.position.line == FLAT.splitlines().index("      flatten: true") + 1
    with pytest.raises(ConfigError, match=r"^invalid config in .*: adam\.flatten: flatten cannot"):
        config = yaml.safe_load("adam: {lr: 0.01, flatten: true}\nshard_optimizer_state: true\n")
        (tmp_path / "default.yaml").write_text(yaml.safe_dump(config))
        load_config_from_yaml(OptimizerConfig, tmp_path / "default.yaml")


def test_same_class_in_every_group_is_accepted() -> None:
    config = OptimizerConfig.model_validate(
        {
            "adam": {"lr": 0.01},
            "shard_optimizer_state": True,
            "param_groups": [{"name": "head", "params": ["2.*"], "adam": {"lr": 0.1, "eps": 1e-6}}],
        }
    )
    assert config.shard_optimizer_state


def test_building_without_a_process_group_says_what_to_do() -> None:
    config = OptimizerConfig(adam={"lr": 0.01}, shard_optimizer_state=True)
    expected = re.escape("needs an initialized torch.distributed process group")
    with pytest.raises(RuntimeError, match=expected) as info:
        build_optimizer(model(), config)
    assert "launch with torchrun" in str(info.value)
    assert "init_process_group()" in str(info.value)


def test_the_docs_config_and_error_are_what_the_library_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DOCS.read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    documented = yaml.safe_load(block)["optimizer"]
    assert OptimizerConfig.model_validate(documented).shard_optimizer_state
    # The documented error: the same config plus the group the docs describe, as run.yaml.
    group = re.search(r"a group\n?`(\{name: head.*?\})`", text, flags=re.DOTALL)
    assert group is not None
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(block + f"  param_groups:\n    - {group.group(1)}\n")
    assert main(["validate", "run.yaml"]) == 1
    printed = capsys.readouterr().err.strip().splitlines()
    error_block = re.search(r"```\n(tml-optim: error: invalid config in run\.yaml:.*?)```", text, re.DOTALL)
    assert error_block is not None
    assert printed == error_block.group(1).strip().splitlines()
