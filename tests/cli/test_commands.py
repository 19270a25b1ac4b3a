"""The tml-optim command as a user runs it (subprocess): exit statuses, messages, tables, images, schema."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tml.core.config import load_config_from_yaml
from tml.optimizers import compute_lr
from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.schedules import SCHEDULES, schedule_milestones

ROOT = Path(__file__).resolve().parents[2]
# The optimizer configs among the examples (schedules.yaml holds bare schedules, one per key).
EXAMPLES = sorted(
    path for path in (ROOT / "examples").glob("*.yaml") if "optimizer" in yaml.safe_load(path.read_text())
)
DEMO = ROOT / "examples" / "cli_demo.yaml"


def run_cli(*arguments: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``tml-optim`` (the installed console script) with a wide, colourless terminal."""
    script = Path(sys.executable).with_name("tml-optim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tml.optimizers.cli.main"]
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [*command, *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=120,
        check=False,
    )


# ---------------------------------------------------------------- broken files
# Each text marks the line the error must point at with "#!" followed by the token whose column is
# expected (the key, list item or character the YAML parser stops at); line and column are computed
# from the text here, not taken from the program.

BROKEN: list[tuple[str, str, str]] = [
    ("optimizer:\n  adma:  #! adma\n    lr: 0.1\n", "optimizer.adma", r"did you mean 'adam'\?"),
    (
        "optimizer:\n  adam:\n    lr: 0.1\n    beta1: 0.9  #! beta1\n",
        "optimizer.adam.beta1",
        r"did you mean 'betas'",
    ),
    (
        "optimizer:\n  sgd:\n    lr: -0.1  #! lr\n",
        "optimizer.sgd.lr",
        r"greater than or equal to 0 \(got -0.1\)",
    ),
    ("optimizer:\n  sgd: {lr: fast}  #! lr\n", "optimizer.sgd.lr", r"valid number.*got 'fast'"),
    ("optimizer:\n  sgd: {lr: true}  #! lr\n", "optimizer.sgd.lr", r"boolean True"),
    (
        "optimizer:\n  adam:\n    lr: 0.1\n    betas:\n      - 1.0  #! 1.0\n      - 0.999\n",
        "optimizer.adam.betas.0",
        r"less than 1 \(got 1.0\)",
    ),
    (
        "optimizer:\n  adam: {lr: 0.1, eps: -1.0}  #! eps\n",
        "optimizer.adam.eps",
        r"greater than or equal to 0",
    ),
    ("optimizer:  #! optimizer\n  adam: {lr: 0.1}\n  sgd: {lr: 0.1}\n", "optimizer", r"got 2: adam, sgd"),
    ("optimizer:  #! optimizer\n  learning_rate: {constant: 0.1}\n", "optimizer", r"exactly one of .* got 0"),
    ("optimizer:\n  adam:  #! adam\n    eps: 1.0e-8\n", "optimizer.adam", r"lr is required"),
    ("optimizer:\n  sgd: {lr: 0.1, momentum: -1}  #! momentum\n", "optimizer.sgd.momentum", r">= 0|greater"),
    ("optimizer:\n  adagrad: {lr: 0.1, eps: 0}  #! eps\n", "optimizer.adagrad.eps", r"greater than 0"),
    (
        "optimizer:\n  sgd: {lr: 0.1}\n  learning_rate:\n    linear_ramp_to_cosin:  #! linear_ramp_to_cosin\n"
        "      learning_rate: 0.1\n",
        "optimizer.learning_rate.linear_ramp_to_cosin",
        r"did you mean 'linear_ramp_to_cosine'",
    ),
    (
        "optimizer:\n  sgd: {lr: 0.1}\n  learning_rate:\n    linear_ramp_to_constant:\n"
        "      learning_rate: 0.1\n      num_ramp_step: 10  #! num_ramp_step\n",
        "optimizer.learning_rate.linear_ramp_to_constant.num_ramp_step",
        r"did you mean 'num_ramp_steps'",
    ),
    (
        "optimizer:\n  sgd: {lr: 0.1}\n  learning_rate:\n    linear_ramp_to_cosine:\n"
        "      learning_rate: 0.1\n      final_learning_rate: 0.0\n      num_ramp_steps: 100\n"
        "      final_num_steps: 100  #! final_num_steps\n",
        "optimizer.learning_rate.linear_ramp_to_cosine.final_num_steps",
        r"greater than num_ramp_steps \(100\), got 100",
    ),
    (
        "optimizer:\n  sgd: {lr: 0.1}\n  learning_rate:\n    piecewise_constant:\n"
        "      learning_rate_boundaries: [10, 20]\n"
        "      learning_rate_values: [1.0, 0.5]  #! learning_rate_values\n",
        "optimizer.learning_rate.piecewise_constant.learning_rate_values",
        r"needs len\(learning_rate_boundaries\) \+ 1 = 3 values, got 2",
    ),
    (
        "optimizer:\n  sgd: {lr: 0.1}\n  learning_rate:\n    piecewise_constant:\n"
        "      learning_rate_boundaries: [20, 10]  #! learning_rate_boundaries\n"
        "      learning_rate_values: [1.0, 0.5, 0.1]\n",
        "optimizer.learning_rate.piecewise_constant.learning_rate_boundaries",
        r"strictly increasing",
    ),
    (
        "optimizer:\n  sgd: {lr: 0.1}\n  learning_rate:  #! learning_rate\n    constant: 0.1\n"
        "    linear_ramp_to_constant: {learning_rate: 0.1, num_ramp_steps: 10}\n",
        "optimizer.learning_rate",
        r"got 2: constant, linear_ramp_to_constant",
    ),
    (
        "optimizer:\n  sgd:  #! sgd\n    lr: {constant: 0.1}\n  learning_rate: {constant: 0.1}\n",
        "optimizer.sgd",
        r"lr is a schedule and learning_rate is set too",
    ),
    ("optimizer:  #! optimizer\n  - adam\n", "optimizer", r"expected a mapping"),
    (
        "model:\n  name: ranker\n  optimizer:\n    sgd:\n      lr: 0.1\n      momentun: 0.9  #! momentun\n",
        "model.optimizer.sgd.momentun",
        r"did you mean 'momentum'",
    ),
    ("optimizer:\n  adam:\n    lr: [0.1\n  sgd: 1  #! :\n", "", r"not valid YAML"),
    ("optimizer:\n  adam:\n    lr: 0.1\n   eps: 0.1  #! eps\n", "", r"not valid YAML"),
]


def expected_position(text: str) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), start=1):
        if "#!" in line:
            token = line.split("#!")[1].strip()
            return number, line.index(token) + 1
    raise AssertionError("no #! marker")


def test_broken_table_is_large_enough() -> None:
    assert len(BROKEN) >= 15


def test_every_broken_file_fails_with_file_line_column_path_and_rule(tmp_path: Path) -> None:
    files = []
    for index, (text, _, _) in enumerate(BROKEN):
        path = tmp_path / f"broken_{index:02d}.yaml"
        path.write_text(text)
        files.append(path.name)
    result = run_cli("validate", *files, cwd=tmp_path)  # one process for the whole table
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for name, (text, path, message) in zip(files, BROKEN, strict=True):
        line, column = expected_position(text)
        prefix = f"{name}:{line}:{column}: " + (f"{path}: " if path else "")
        matching = [entry.strip() for entry in lines if entry.strip().startswith(prefix)]
        assert matching, f"no line starting with {prefix!r} in:\n{result.stderr}"
        assert any(re.search(message, entry) for entry in matching), matching


def test_one_broken_file_exit_status_and_message(tmp_path: Path) -> None:
    text, _, message = BROKEN[0]
    (tmp_path / "bad.yaml").write_text(text)
    result = run_cli("validate", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("tml-optim: error: invalid config in bad.yaml:\n")
    assert len(result.stderr.splitlines()) == 2  # the title, then one line for the one issue
    assert re.search(message, result.stderr)


def test_typo_hint_lists_the_valid_keys(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BROKEN[1][0])
    result = run_cli("validate", "bad.yaml", cwd=tmp_path)
    valid = ", ".join(OptimizerConfig.model_fields["adam"].annotation.__args__[0].model_fields)  # type: ignore[union-attr]
    assert f"valid keys: {valid}" in result.stderr


def test_every_error_of_a_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("optimizer:\n  adam:\n    lr: -1\n    eps: -1\n    betas: [2, 0.5]\n")
    result = run_cli("validate", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "3 errors" in result.stderr
    for line, path in ((3, "optimizer.adam.lr"), (4, "optimizer.adam.eps"), (5, "optimizer.adam.betas.0")):
        assert re.search(rf"bad\.yaml:{line}:\d+: {re.escape(path)}: ", result.stderr), result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BROKEN[2][0])
    result = run_cli("show", "bad.yaml", "--debug", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and re.search(r"Config\w*Error", result.stderr)


@pytest.mark.parametrize(
    "arguments",
    [
        ("show", "missing.yaml"),
        ("show", str(DEMO), "--at", "0,x"),
        ("train", str(DEMO), "--resume", "--fresh"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, arguments: tuple[str, ...]) -> None:
    result = run_cli(*arguments, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


def test_key_option_and_missing_key(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("model:\n  optimizer:\n    sgd: {lr: 0.5}\n  other: {optimizer: 1}\n")
    assert run_cli("validate", "run.yaml", "--key", "model.optimizer", cwd=tmp_path).returncode == 0
    missing = run_cli("validate", "run.yaml", "--key", "model.optimiser", cwd=tmp_path)
    assert missing.returncode == 1
    assert "keys here: optimizer, other" in missing.stderr


# ---------------------------------------------------------------- valid configs


def test_validate_summary(tmp_path: Path) -> None:
    result = run_cli("validate", DEMO)
    assert result.returncode == 0, result.stderr
    config = load_config_from_yaml(OptimizerConfig, DEMO, key="optimizer")
    cosine = config.schedule().linear_ramp_to_cosine
    assert cosine is not None
    assert "a valid optimizer config" in result.stdout
    assert "torch.optim.Adam" in result.stdout
    (row,) = parse_table(result.stdout)
    # group, parameters, algorithm, weight decay, × LR, schedule, peak, final LR, from step, warmup,
    # boundaries: without rules, the group of unclaimed parameters holds them all (no "(if any)").
    assert row[:6] == ["default", "parameters no rule claims", "adam", "0", "1", "linear_ramp_to_cosine"]
    assert float(row[6]) == pytest.approx(cosine.learning_rate)
    assert float(row[7]) == pytest.approx(cosine.final_learning_rate)
    assert int(row[8]) == cosine.final_num_steps  # an absolute step: the schedule's total length
    assert int(row[9]) == cosine.num_ramp_steps
    assert row[10] == f"{cosine.num_ramp_steps}, {cosine.final_num_steps}"


def test_validate_lists_the_rules_their_companions_and_points_to_the_built_groups(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "optimizer:\n"
        "  adamw: {lr: 0.001, weight_decay: 0.05}\n"
        "  exclude_from_weight_decay: [bias]\n"
        "  learning_rate:\n"
        "    cosine_decay: {learning_rate: 0.001, warmup_steps: 100, decay_steps: 900}\n"
        "  param_groups:\n"
        "    - {name: head, params: ['head.*'], lr_multiplier: 10.0, exclude_from_weight_decay: []}\n"
        "    - name: tables\n"
        "      params: ['tables.*']\n"
        "      sgd: {lr: 0.1, momentum: 0.9}\n"
        "      learning_rate: {inverse_sqrt: {learning_rate: 0.1, warmup_steps: 10, timescale: 10}}\n"
    )
    result = run_cli("validate", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row[0]: row for row in parse_table(result.stdout)}
    assert list(rows) == [
        "head",
        "tables",
        "tables.no_weight_decay (if any)",
        "default (if any)",
        "default.no_weight_decay (if any)",
    ]
    # algorithm, weight decay, × LR, peak LR (multiplier included), final LR, from step
    assert rows["head"][2:5] == ["adamw", "0.05", "10"]
    assert float(rows["head"][6]) == pytest.approx(10 * 0.001)
    assert rows["head"][8] == str(100 + 900)  # decay_steps count after the warmup
    assert rows["tables"][2:5] == ["sgd", "0", "1"] and rows["tables"][7:9] == ["—", "never"]
    assert rows["tables.no_weight_decay (if any)"][1] == "tables's parameters matching: bias"
    assert rows["default (if any)"][1] == "parameters no rule claims"
    assert rows["default.no_weight_decay (if any)"][2:4] == ["adamw", "0"]
    assert "tml-optim groups rules.yaml --model MODULE:FACTORY" in result.stdout


def test_validate_several_files_and_the_whole_document_form(tmp_path: Path) -> None:
    (tmp_path / "plain.yaml").write_text("sgd: {lr: 0.1}\n")
    (tmp_path / "bad.yaml").write_text("sgd: {lr: -1}\n")
    result = run_cli("validate", "plain.yaml", str(DEMO), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.count("a valid optimizer config") == 2
    mixed = run_cli("validate", "plain.yaml", "bad.yaml", cwd=tmp_path)
    assert mixed.returncode == 1 and "bad.yaml:1:" in mixed.stderr and "plain.yaml" in mixed.stdout


def parse_table(output: str) -> list[list[str]]:
    """The body rows of a rich table (cells split on the vertical bars)."""
    rows = []
    for line in output.splitlines():
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def step_rows(output: str) -> list[list[str]]:
    """The rows of ``show``'s table that are steps (not its final-LR footer)."""
    return [row for row in parse_table(output) if row[0].isdigit()]


def test_show_prints_the_phase_boundaries_by_default() -> None:
    result = run_cli("show", DEMO)
    assert result.returncode == 0, result.stderr
    schedule = load_config_from_yaml(OptimizerConfig, DEMO, key="optimizer").schedule()
    rows = step_rows(result.stdout)
    steps = [int(row[0]) for row in rows]
    assert steps == sorted({0, *schedule_milestones(schedule)})
    for row in rows:
        assert float(row[1]) == pytest.approx(compute_lr(schedule, int(row[0])), rel=1e-5, abs=1e-12)


def test_show_at_and_steps() -> None:
    schedule = load_config_from_yaml(OptimizerConfig, DEMO, key="optimizer").schedule()
    at = run_cli("show", DEMO, "--at", "7,0,2500,10000,99999")
    rows = step_rows(at.stdout)
    assert [int(row[0]) for row in rows] == [0, 7, 2500, 10000, 99999]
    for row in rows:
        assert float(row[1]) == pytest.approx(compute_lr(schedule, int(row[0])), rel=1e-5, abs=1e-12)
    # The cosine at 2500 steps: final + (peak - final) / 2 * (1 + cos(pi * 1500 / 9000)).
    expected = 3e-5 + (3e-3 - 3e-5) * 0.5 * (1 + math.cos(math.pi * 1500 / 9000))
    assert float(rows[2][1]) == pytest.approx(expected, rel=1e-5)
    until = run_cli("show", DEMO, "--steps", "2000").stdout
    assert [int(row[0]) for row in step_rows(until)] == [0, 1000, 2000]
    # The footer: where the LR ends (final_num_steps, an absolute step) and the value it holds.
    cosine = schedule.linear_ramp_to_cosine
    assert cosine is not None
    assert parse_table(until)[-2:] == [
        ["final LR", f"{cosine.final_learning_rate:.6g}", ""],
        ["from step", str(cosine.final_num_steps), "where each LR ends (its total steps)"],
    ]


def test_plot_writes_a_png_of_the_requested_size(tmp_path: Path) -> None:
    from matplotlib.image import imread

    result = run_cli("plot", DEMO, "-o", "out/lr.png", "--size", "640x360", "--log-y", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "out/lr.png" in result.stdout
    image = imread(tmp_path / "out" / "lr.png")
    assert image.shape[:2] == (360, 640)
    default = run_cli("plot", DEMO, "--steps", "50000", cwd=tmp_path)
    assert default.returncode == 0
    assert imread(tmp_path / "lr.png").shape[:2] == (500, 1000)


def test_list_names_every_optimizer_and_schedule_kind() -> None:
    result = run_cli("list")
    assert result.returncode == 0
    first_cells = {row[0] for row in parse_table(result.stdout)}
    schedule_keys = {kind.key for kind in SCHEDULES.values()}
    algorithm_keys = set(OptimizerConfig.field_groups("one_of")["optimizer"])
    assert schedule_keys | algorithm_keys <= first_cells
    for kind in SCHEDULES.values():
        summary = (kind.make.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        assert summary[:40] in result.stdout


def test_schema_validates_every_example(tmp_path: Path) -> None:
    result = run_cli("schema", "-o", "schema.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads((tmp_path / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    for path in EXAMPLES:
        document = yaml.safe_load(path.read_text())
        validator.validate(document.get("optimizer", document))
    for bad in ({}, {"adam": {"lr": 0.1}, "sgd": {"lr": 0.1}}, {"adam": {"lr": -1}}, {"adma": {"lr": 0.1}}):
        assert not validator.is_valid(bad), bad
    assert validator.is_valid({"adam": {"lr": 0.1}, "sgd": None, "adagrad": None})


def test_schema_with_key_wraps_the_document() -> None:
    result = run_cli("schema", "--key", "optimizer")
    schema = json.loads(result.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        validator.validate(yaml.safe_load(path.read_text()))
    assert not validator.is_valid({"optimizer": {"adam": {"lr": 0.1, "betas": [1.5, 0.9]}}})


def test_groups_describes_the_users_model_as_built(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "import torch\n\n"
        "def make(width=4):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, 1))\n"
    )
    (tmp_path / "config.yaml").write_text(
        "optimizer:\n  adamw: {lr: 0.002}\n  exclude_from_weight_decay: [bias]\n"
        "  param_groups:\n    - {name: head, params: ['1.*'], sgd: {lr: 0.1, momentum: 0.9}}\n"
    )
    result = run_cli(
        "groups",
        "config.yaml",
        "--model",
        "model.py:make",
        "--model-arg",
        "width=3",
        "--format",
        "json",
        "--params",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["head", "head.no_weight_decay", "default", "default.no_weight_decay"]
    # width 3: the first layer has a 3×3 weight and 3 biases, the head a 1×3 weight and 1 bias
    assert (rows["default"]["elements"], rows["default"]["state_bytes"]) == (9, 9 * 2 * 4)  # AdamW: 2 moments
    assert (rows["head"]["elements"], rows["head"]["state_bytes"]) == (3, 3 * 1 * 4)  # SGD momentum buffer
    assert rows["default.no_weight_decay"]["weight_decay"] == 0.0 and rows["default"]["weight_decay"] == 0.01
    assert rows["head"]["torch_class"] == "SGD" and rows["head"]["lr_at_start"] == 0.1
    assert rows["head"]["parameters"] == [{"name": "1.weight", "shape": [1, 3], "group": "head"}]
    table = run_cli(
        "groups", "config.yaml", "--model", "model.py:make", "--model-arg", "width=3", cwd=tmp_path
    )
    assert table.returncode == 0, table.stderr
    # float32: AdamW keeps 2 moments of the 9 + 3 entries of layer 0, SGD 1 buffer of the 3 + 1 of the head
    total_bytes = 4 * (2 * (9 + 3) + 1 * (3 + 1))
    assert re.search(rf"total\W+4\W+16\W+{total_bytes} B", table.stdout), table.stdout
    bad = run_cli("groups", "config.yaml", "--model", "model.py:nothing", cwd=tmp_path)
    assert bad.returncode == 2 and "model.py has no callable 'nothing'" in bad.stderr


def test_version_and_no_arguments_print_what_a_new_user_needs() -> None:
    from importlib.metadata import version

    assert run_cli("--version").stdout.strip() == f"tml-optim {version('tml-optimizers')}"
    bare = run_cli()
    assert bare.returncode == 0 and bare.stdout.startswith("usage: tml-optim")
    assert "Exit statuses: 0 success, 1 an invalid config" in " ".join(bare.stdout.split())


def test_output_that_is_not_a_terminal_is_never_cut(tmp_path: Path) -> None:
    name = "a_rather_long_param_group_name_for_the_towers_of_every_task"
    (tmp_path / "long.yaml").write_text(
        "optimizer:\n  sgd: {lr: 0.000123456789}\n"
        f"  param_groups:\n    - {{name: {name}, params: ['x.*'], lr_multiplier: 0.333333333}}\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    script = Path(sys.executable).with_name("tml-optim")
    result = subprocess.run(
        [str(script), "show", "long.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert name in result.stdout and "…" not in result.stdout
    assert "4.11523e-05" in result.stdout  # 0.000123456789 × 0.333333333, 6 significant digits


def test_without_the_cli_extra_the_command_says_which_extra_to_install() -> None:
    code = "import sys; sys.modules['rich'] = None; from tml.optimizers.cli.main import main"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tml-optim: error: the command needs the 'cli' extra (rich is not installed): "
        "pip install 'tml-optimizers[cli]'"
    )


def test_validate_for_ci_many_files_stdin_quiet_json_and_the_exit_statuses(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("optimizer:\n  sgd: {lr: 0.1}\n")
    (tmp_path / "bad.yaml").write_text("optimizer:\n  adam:\n    lr: -1\n")
    quiet = run_cli("validate", "--quiet", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert quiet.returncode == 1 and quiet.stdout == ""
    assert quiet.stderr.splitlines() == [
        "tml-optim: error: invalid config in bad.yaml:",
        "  bad.yaml:3:5: optimizer.adam.lr: Input should be greater than or equal to 0 (got -1)",
        "1 of 2 files are invalid",
    ]
    assert run_cli("validate", "-q", "good.yaml", cwd=tmp_path).stdout == ""
    report = run_cli("validate", "--format", "json", "good.yaml", "bad.yaml", "missing.yaml", cwd=tmp_path)
    assert report.returncode == 2  # a file that cannot be read outranks an invalid one
    assert json.loads(report.stdout) == [
        {"path": "good.yaml", "ok": True, "errors": []},
        {
            "path": "bad.yaml",
            "ok": False,
            "errors": [
                {
                    "line": 3,
                    "column": 5,  # the key lr: 4 spaces in
                    "path": "optimizer.adam.lr",
                    "message": "Input should be greater than or equal to 0 (got -1)",
                }
            ],
        },
        {
            "path": "missing.yaml",
            "ok": False,
            "errors": [{"line": None, "column": None, "path": "", "message": "missing.yaml: no such file"}],
        },
    ]
    script = Path(sys.executable).with_name("tml-optim")
    piped = subprocess.run(
        [str(script), "validate", "-"],
        input="optimizer:\n  sgd: {lr: 0.1}\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0 and piped.stdout.startswith("✓ <stdin> (at key optimizer): a valid")


@pytest.mark.parametrize(("suffix", "header"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_writes_the_format_its_suffix_names(tmp_path: Path, suffix: str, header: bytes) -> None:
    result = run_cli("plot", DEMO, "-o", tmp_path / f"lr{suffix}")
    assert result.returncode == 0, result.stderr
    data = (tmp_path / f"lr{suffix}").read_bytes()
    assert data.startswith(header) and len(data) > 5_000


# ---------------------------------------------------------------- files of bare schedules

SCHEDULES_FILE = ROOT / "examples" / "schedules.yaml"
SCHEDULE_NAMES = list(yaml.safe_load(SCHEDULES_FILE.read_text()))


def test_show_validate_and_plot_read_a_file_of_bare_schedules(tmp_path: Path) -> None:
    schedules = {
        name: load_config_from_yaml(LearningRate, SCHEDULES_FILE, key=name) for name in SCHEDULE_NAMES
    }
    shown = run_cli("show", SCHEDULES_FILE)
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.strip("┃").split("┃")][1:-1] == SCHEDULE_NAMES
    rows = step_rows(shown.stdout)
    assert {0, 100_000} <= {int(row[0]) for row in rows}
    for row in rows:
        for cell, schedule in zip(row[1:], schedules.values(), strict=False):
            assert float(cell) == pytest.approx(compute_lr(schedule, int(row[0])), rel=1e-5, abs=1e-12)
    # warmup_cosine: 2000 + 98000 steps; inverse_sqrt never ends.
    assert parse_table(shown.stdout)[-1][1:5] == ["100000", "100000", "never", str(500 + 20000 + 20000)]

    one = run_cli("show", SCHEDULES_FILE, "--key", "wsd", "--at", "0,90000")
    assert one.returncode == 0, one.stderr
    assert [float(row[1]) for row in step_rows(one.stdout)] == pytest.approx(
        [compute_lr(schedules["wsd"], step) for step in (0, 90_000)], rel=1e-5
    )

    checked = run_cli("validate", SCHEDULES_FILE)
    assert checked.returncode == 0, checked.stderr
    assert f"{len(SCHEDULE_NAMES)} valid schedule(s), no optimizer config" in checked.stdout
    assert [row[0] for row in parse_table(checked.stdout)] == SCHEDULE_NAMES

    plotted = run_cli("plot", SCHEDULES_FILE, "-o", tmp_path / "schedules.png")
    assert plotted.returncode == 0, plotted.stderr
    assert f"{len(SCHEDULE_NAMES)} curve(s)" in plotted.stdout
    data = (tmp_path / "schedules.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000


def test_a_broken_schedule_file_lists_every_issue_with_its_line(tmp_path: Path) -> None:
    text = (
        "short:\n"
        "  cosine_decy:  #! cosine_decy\n"
        "    learning_rate: 0.1\n"
        "long:\n"
        "  linear_ramp_to_constant:\n"
        "    learning_rate: 0.1\n"
        "    num_ramp_steps: -5  #! num_ramp_steps\n"
    )
    (tmp_path / "schedules.yaml").write_text(text)
    marks = [
        (number, line.index(line.split("#!")[1].strip()) + 1)
        for number, line in enumerate(text.splitlines(), start=1)
        if "#!" in line
    ]
    for command in ("show", "plot", "validate"):
        result = run_cli(command, "schedules.yaml", cwd=tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        lines = result.stderr.splitlines()
        assert lines[0] == "tml-optim: error: invalid schedules in schedules.yaml: 2 errors"
        assert lines[1].startswith(f"  schedules.yaml:{marks[0][0]}:{marks[0][1]}: short.cosine_decy: ")
        assert "did you mean 'cosine_decay'" in lines[1]
        assert lines[2].startswith(
            f"  schedules.yaml:{marks[1][0]}:{marks[1][1]}: long.linear_ramp_to_constant.num_ramp_steps: "
        )
        assert "(got -5)" in lines[2]


def test_plot_overlays_several_files_labelled_by_file_and_group(tmp_path: Path) -> None:
    from matplotlib.image import imread

    (tmp_path / "a.yaml").write_text(
        "optimizer:\n  adam: {lr: 0.001}\n"
        "  learning_rate: {linear_ramp_to_cosine: {learning_rate: 0.001, final_learning_rate: 0.0,"
        " num_ramp_steps: 100, final_num_steps: 2000}}\n"
        "  param_groups:\n    - {name: head, params: ['head.*'], lr_multiplier: 2.0}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "warm: {linear_ramp_to_cosine: {learning_rate: 0.001, final_learning_rate: 0.0,"
        " num_ramp_steps: 100, final_num_steps: 2000}}\n"
        "isqrt: {inverse_sqrt: {learning_rate: 0.001, warmup_steps: 300, timescale: 300}}\n"
    )
    result = run_cli("plot", "a.yaml", "b.yaml", "-o", "both.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The range: inverse_sqrt has no end, so 10 times its warmup (3000), past the cosines' 2000 + 10%.
    assert "(steps 0 to 3000, 4 curve(s) from 2 files)" in result.stdout
    svg = (tmp_path / "both.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and len(svg) > 20_000
    for label in ("a.yaml: head", "a.yaml: default", "b.yaml: isqrt", "a.yaml vs b.yaml"):
        assert label in svg, label
    # b's warm is a's default exactly: drawn distinguishably, and the legend says which it repeats.
    assert "b.yaml: warm (= a.yaml: default)" in svg

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "a.yaml").write_text((tmp_path / "a.yaml").read_text())
    png = run_cli("plot", "a.yaml", "old/a.yaml", "--steps", "500", "-o", "same.png", cwd=tmp_path)
    assert png.returncode == 0, png.stderr
    assert "(steps 0 to 500, 4 curve(s) from 2 files)" in png.stdout
    data = (tmp_path / "same.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
    assert imread(tmp_path / "same.png").shape[:2] == (500, 1000)
    svg_same = run_cli("plot", "a.yaml", "old/a.yaml", "-o", "same.svg", cwd=tmp_path)
    assert svg_same.returncode == 0
    assert "old/a.yaml: head (= a.yaml: head)" in (tmp_path / "same.svg").read_text(encoding="utf-8")

    broken = run_cli("plot", "a.yaml", "missing.yaml", cwd=tmp_path)
    assert broken.returncode == 2 and "missing.yaml: no such file" in broken.stderr


def test_plot_refuses_a_format_it_cannot_write_before_loading_anything(tmp_path: Path) -> None:
    result = run_cli("plot", tmp_path / "missing.yaml", "-o", tmp_path / "lr.jpg")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("cannot write .jpg images; use .png, .svg, .pdf")
    assert not (tmp_path / "lr.jpg").exists()


def test_validate_refuses_standard_input_past_the_size_limit_of_a_file() -> None:
    from tml.core.config.yaml_document import MAX_FILE_BYTES

    script = Path(sys.executable).with_name("tml-optim")
    result = subprocess.run(
        [str(script), "validate", "-"],
        input="#" * (MAX_FILE_BYTES + 1),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert f"<stdin>: more than the limit of {MAX_FILE_BYTES} bytes" in result.stderr


def test_validate_prints_each_groups_reduce_on_plateau(tmp_path: Path) -> None:
    (tmp_path / "plateau.yaml").write_text(
        "optimizer:\n"
        "  adam: {lr: 0.01}\n"
        "  reduce_on_plateau: {metric: loss, factor: 0.5, patience: 2, min_learning_rate: 1.0e-5}\n"
        "  param_groups:\n"
        "    - {name: tower, params: ['t.*'], reduce_on_plateau: {metric: auc, mode: max, threshold: 0.01,"
        " threshold_mode: abs, patience: 0, cooldown: 3}}\n"
        "    - {name: embeddings, params: ['e.*'], reduce_on_plateau: false}\n"
    )
    result = run_cli("validate", "plateau.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("reduce_on_plateau of")]
    assert lines == [
        "reduce_on_plateau of tower: 'auc' (max): x0.1 at the 1st report in a row that does not improve "
        "on the best by 0.01 (abs), then 3 report(s) of cooldown; floor 0",
        "reduce_on_plateau of default: 'loss' (min): x0.5 at the 3rd report in a row that does not improve "
        "on the best by 0.01% (rel), then 0 report(s) of cooldown; floor 1e-05",
    ]


def test_validate_prints_each_table_groups_own_reduce_on_plateau(tmp_path: Path) -> None:
    """A table group has the plateau its rule sets, not the optimizer's."""
    (tmp_path / "plateau.yaml").write_text(
        "optimizer:\n"
        "  adam: {lr: 0.01}\n"
        "  reduce_on_plateau: {metric: loss, factor: 0.5}\n"
        "  embedding_tables:\n"
        "    - {name: ids, tables: ['user'], exact_sgd: {lr: 0.1}, reduce_on_plateau: {metric: ctr_loss,"
        " patience: 4}}\n"
        "    - {name: rest, tables: ['*'], exact_sgd: {lr: 0.1}}\n"
    )
    result = run_cli("validate", "plateau.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("reduce_on_plateau of")]
    assert lines == [
        "reduce_on_plateau of default: 'loss' (min): x0.5 at the 11th report in a row that does not improve "
        "on the best by 0.01% (rel), then 0 report(s) of cooldown; floor 0",
        "reduce_on_plateau of table group ids: 'ctr_loss' (min): x0.1 at the 5th report in a row that does "
        "not improve on the best by 0.01% (rel), then 0 report(s) of cooldown; floor 0",
    ]
