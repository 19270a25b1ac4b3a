"""Issue 14 item 11: validating an untrusted file runs none of its code (class_path is not imported)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tml.core.config import load_config_from_yaml
from tml.optimizers.algorithms.custom import without_class_imports
from tml.optimizers.cli.main import main
from tml.optimizers.config import OptimizerConfig


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A module whose top-level code leaves a marker file, and a config naming it."""
    marker = tmp_path / "imported"
    name = f"planted_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        f"import pathlib, torch\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "class Opt(torch.optim.SGD):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(f"custom:\n  class_path: '{name}:Opt'\n  lr: 0.1\n  kwargs: {{momentum: 0.9}}\n")
    return config, marker


def test_validate_does_not_import_the_class(planted: tuple[Path, Path]) -> None:
    config, marker = planted
    assert main(["validate", str(config)]) == 0
    assert main(["show", str(config)]) == 0
    assert not marker.exists()  # before: the module's top-level code ran


def test_validate_import_imports_and_checks_it(planted: tuple[Path, Path]) -> None:
    config, marker = planted
    assert main(["validate", "--import", str(config)]) == 0
    assert marker.read_text() == "ran"


def test_without_imports_the_form_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("custom:\n  class_path: 'os.system; rm -rf'\n  lr: 0.1\n")
    with (
        without_class_imports(),
        pytest.raises(
            ValueError, match=r"class_path must have the form 'package.module:Class' \(dotted Python names\)"
        ),
    ):
        load_config_from_yaml(OptimizerConfig, config)
