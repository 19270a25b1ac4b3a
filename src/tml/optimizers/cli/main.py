"""``tml-optim``: check, show, plot and train with an optimizer config from the command line.

Every subcommand takes ``--debug`` (a traceback instead of one line per error). Exit statuses: 0 success,
1 an invalid config or a failed job, 2 a usage error, 128 + N when ``train`` was stopped by signal N.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

try:
    from rich.console import Console
    from rich.table import Table
except ModuleNotFoundError as missing:  # installed without the cli extra
    raise SystemExit(
        f"tml-optim: error: the command needs the 'cli' extra ({str(missing.name).split('.')[0]} is not "
        "installed): "
        "pip install 'tml-optimizers[cli]'"
    ) from None

from tml.core.config import ConfigError
from tml.optimizers.algorithms import OptimizerAlgorithmConfig
from tml.optimizers.algorithms.custom import without_class_imports
from tml.optimizers.cli import catalog, horizon, summary
from tml.optimizers.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, UsageError
from tml.optimizers.cli.groups import group_schedules, load_model, rule_rows
from tml.optimizers.cli.loading import (
    LoadedConfig,
    LoadedSchedules,
    curves_of,
    load_config_or_schedules,
    load_curves,
    load_optimizer_config,
)
from tml.optimizers.cli.plotting import DEFAULT_SIZE, Curve, image_format, plot_curves
from tml.optimizers.cli.schema import optimizer_schema
from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.describe import TableGroupDescription, describe_param_groups, describe_table_groups
from tml.optimizers.fields import MAX_SCHEDULE_STEP
from tml.optimizers.runtime.resume import RESUME_POLICIES
from tml.optimizers.schedules.plateau import describe_plateau

PROGRAM = "tml-optim"
DESCRIPTION = (
    "Check, show, plot and train with a tml-optimizers config: an optimizer, its learning-rate "
    "schedules and param-group rules, in YAML."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and, as a console script, exits with) the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        parser.print_help()
        return EXIT_OK
    arguments = parser.parse_args(argv)
    console = make_console()
    try:
        status: int = arguments.run(arguments, console)
    except ConfigError as error:
        if arguments.debug:
            raise
        _print_config_error(error)
        return EXIT_FAILURE
    except CliError as error:
        if arguments.debug:
            raise
        _error_line(str(error))
        return error.exit_status
    except KeyboardInterrupt:
        if arguments.debug:
            raise
        _error_line("interrupted")
        return 128 + signal.SIGINT
    except Exception as error:
        if arguments.debug:
            raise
        message = " ".join(str(error).split())
        _error_line(f"{type(error).__name__}: {message} (run with --debug for the traceback)")
        return EXIT_FAILURE
    return status


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping lines without breaking a word at its hyphen (``tml-optim``,
    ``--model-arg`` stay whole)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = " ".join(text.split())
        return textwrap.fill(
            text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The subcommands of the parser (argparse names no public type for them)."""


def make_console() -> Console:
    """The console the commands print to: long paths on one line, and, when standard output is not
    a terminal (a file, a pipe, a CI log), no width limit, so no value or name is ever cut."""
    width = None if sys.stdout.isatty() else NO_TERMINAL_WIDTH
    return Console(highlight=False, soft_wrap=True, width=width)


NO_TERMINAL_WIDTH = 10_000
"""The console width when standard output is not a terminal: wide enough for any table."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tml-optim`` and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks instead of one-line errors",
    )
    key_option = argparse.ArgumentParser(add_help=False)
    key_option.add_argument(
        "--key",
        help="dotted key of the optimizer config in the file (model.optimizer); default: the document "
        "itself, or the key named 'optimizer'",
    )
    run_options = argparse.ArgumentParser(add_help=False)
    run_options.add_argument(
        "--total-steps",
        type=_positive,
        help="the run's total_steps, for schedule lengths written as a percentage ('2%%'); an error if "
        "the config sets another",
    )
    run_options.add_argument(
        "--steps-per-epoch", type=_positive, help="steps per epoch, for schedule lengths in epochs ('3ep')"
    )
    loading_options = argparse.ArgumentParser(add_help=False, parents=[key_option, run_options])
    config_options = argparse.ArgumentParser(add_help=False, parents=[loading_options])
    config_options.add_argument("config", metavar="CONFIG", help="a YAML file holding an optimizer config")

    parser = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog=PROGRAM,
        description=DESCRIPTION,
        parents=[common],
        epilog="Exit statuses: 0 success, 1 an invalid config or a failed job, 2 a usage error (bad "
        "arguments, a missing or unreadable file), 128 + N when train is stopped by signal N. "
        "Example: tml-optim validate config.yaml",
    )
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {_version()}")
    parser.set_defaults(debug=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_validate(commands, common, loading_options)
    _add_show(commands, common, config_options)
    _add_plot(commands, common, loading_options)
    _add_groups(commands, common, config_options)
    _add_schema(commands, common)
    _add_list(commands, common)
    _add_train(commands, common, config_options)
    return parser


def _add_validate(
    commands: Commands,
    common: argparse.ArgumentParser,
    key_option: argparse.ArgumentParser,
) -> None:
    validate = commands.add_parser(
        "validate",
        formatter_class=HelpFormatter,
        parents=[common, key_option],
        help="check configs; print a summary or every error",
        description="Check each config: a summary of a valid one, every issue of an invalid one "
        "(file:line:column, path, rule, value). Exit status: 0 every config is valid, 1 one is "
        "invalid, 2 a usage error or a file that cannot be read. Example: "
        "tml-optim validate --quiet configs/*.yaml (in CI)",
    )
    validate.add_argument(
        "configs",
        metavar="CONFIG",
        nargs="+",
        help="YAML files holding an optimizer config (or bare schedules, name: schedule); - for stdin",
    )
    validate.add_argument("--quiet", "-q", action="store_true", help="print only the errors")
    validate.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: one object per file (path, ok, errors with line, column, path, message)",
    )
    validate.add_argument(
        "--import",
        dest="import_classes",
        action="store_true",
        help="import custom.class_path to check the class and its kwargs (runs the module's code: "
        "only for trusted files); without it, only the path's form is checked",
    )
    validate.set_defaults(run=run_validate)


def _add_show(
    commands: Commands,
    common: argparse.ArgumentParser,
    config_options: argparse.ArgumentParser,
) -> None:
    show = commands.add_parser(
        "show",
        formatter_class=HelpFormatter,
        parents=[common, config_options],
        help="a table of each group's learning rate at chosen steps",
        description="A table of each param group's learning rate at step 0, at every phase boundary and "
        "at --steps, in closed form, then where each one ends. CONFIG may also hold bare schedules "
        "(name: schedule). Example: tml-optim show config.yaml --at 0,1000,100000",
    )
    show.add_argument(
        "--steps", type=_positive, help="last step of the table (default: the last phase boundary)"
    )
    show.add_argument("--at", type=_step_list, help="comma-separated steps instead of the phase boundaries")
    show.add_argument(
        "--resume-from",
        metavar="CKPT",
        help="a checkpoint (a step-* directory, or a directory of them: the latest): each group's LR at "
        "its step under the checkpoint's schedule and under this config's, the jump a resume with "
        "resume: config would make",
    )
    show.set_defaults(run=run_show)


def _add_plot(
    commands: Commands,
    common: argparse.ArgumentParser,
    key_option: argparse.ArgumentParser,
) -> None:
    plot = commands.add_parser(
        "plot",
        formatter_class=HelpFormatter,
        parents=[common, key_option],
        help="an image of each group's learning rate over the steps; several files overlaid",
        description="One curve per param group, phase boundaries dotted; a log axis when the peaks span "
        "more than 100x. CONFIG may also hold bare schedules (name: schedule); several files are "
        "overlaid, each curve labelled by file and group. Example: tml-optim plot old.yaml new.yaml "
        "--steps 20000 -o lr.svg",
    )
    plot.add_argument(
        "configs",
        metavar="CONFIG",
        nargs="+",
        help="YAML files holding an optimizer config or bare schedules",
    )
    plot.add_argument(
        "-o", "--output", default="lr.png", help="the image to write, .png, .svg or .pdf (default: lr.png)"
    )
    plot.add_argument(
        "--steps",
        type=_positive,
        help="last step of the plot (default: where the last schedule ends + 10%%; 10x the warmup of one "
        "that decays for ever, such as inverse_sqrt)",
    )
    scale = plot.add_mutually_exclusive_group()
    scale.add_argument(
        "--log-y",
        action="store_const",
        const=True,
        dest="log_y",
        help="logarithmic learning-rate axis (default: when the groups' LRs span more than 100×)",
    )
    scale.add_argument("--linear-y", action="store_const", const=False, dest="log_y", help="linear axis")
    plot.add_argument(
        "--size",
        type=_size,
        default=DEFAULT_SIZE,
        help="image size in pixels, WIDTHxHEIGHT (default: 1000x500)",
    )
    plot.set_defaults(run=run_plot)


def _add_groups(
    commands: Commands,
    common: argparse.ArgumentParser,
    config_options: argparse.ArgumentParser,
) -> None:
    groups = commands.add_parser(
        "groups",
        formatter_class=HelpFormatter,
        parents=[common, config_options],
        help="the param groups built for your model: algorithm, kernel, LRs, sizes, optimizer state",
        description="Builds your model and describes the param groups build_optimizer would make of it "
        "(nothing is trained). Example: tml-optim groups config.yaml --model mypackage.models:make_model "
        "--model-arg towers=4 --params",
    )
    groups.add_argument(
        "--model",
        required=True,
        metavar="MODULE:FACTORY",
        help="a function returning the model: package.module:name or path/to/file.py:name",
    )
    groups.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of the factory (a YAML scalar: 4, 0.5, true, text); repeatable",
    )
    groups.add_argument("--params", action="store_true", help="also list every parameter with its group")
    groups.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    groups.set_defaults(run=run_groups)


def _add_schema(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    schema = commands.add_parser(
        "schema",
        formatter_class=HelpFormatter,
        parents=[common],
        help="the JSON Schema of the optimizer config",
        description="The JSON Schema of the optimizer config, for editors (yaml-language-server) and "
        "validators. Example: tml-optim schema --key optimizer -o optimizer.schema.json",
    )
    schema.add_argument("-o", "--output", help="write to this file instead of standard output")
    schema.add_argument(
        "--key", help="schema of a document holding the config under this dotted key (e.g. optimizer)"
    )
    schema.set_defaults(run=run_schema)


def _add_list(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    listing = commands.add_parser(
        "list",
        formatter_class=HelpFormatter,
        parents=[common],
        help="the optimizers and schedule kinds",
        description="Every algorithm key and schedule kind a config may use. Example: tml-optim list",
    )
    listing.set_defaults(run=run_list)


def _add_train(
    commands: Commands,
    common: argparse.ArgumentParser,
    config_options: argparse.ArgumentParser,
) -> None:
    train = commands.add_parser(
        "train",
        formatter_class=HelpFormatter,
        parents=[common, config_options],
        help="train the demo multi-task ranking model (the torchrec table model for embedding_tables)",
        description="Train the demo multi-task ranking model with the config, checkpointing as it goes; "
        "a config with embedding_tables trains the torchrec table model instead (three tables, two "
        "towers: tml.optimizers.demo.table_model). --resume continues bit-identically. Example: "
        "tml-optim train config.yaml --steps 2000 "
        "--checkpoint-dir runs/try (under torchrun: one rank per process, DCP checkpoints)",
    )
    train.add_argument("--steps", type=_positive, default=1000, help="total optimizer steps (default: 1000)")
    train.add_argument(
        "--checkpoint-dir", type=Path, help="where checkpoints go (default: runs/<config name>)"
    )
    train.add_argument(
        "--output-dir", type=Path, help="where the PNGs go (default: the checkpoint directory)"
    )
    train.add_argument(
        "--checkpoint-every",
        type=_non_negative,
        default=200,
        metavar="K",
        help="steps between checkpoints (0: only at the end and when stopped; default: 200)",
    )
    resume = train.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir"
    )
    resume.add_argument(
        "--fresh", action="store_true", help="start over even if --checkpoint-dir holds a checkpoint"
    )
    train.add_argument(
        "--resume-policy",
        choices=RESUME_POLICIES,
        help="with --resume, for a checkpoint written with another optimizer config: strict refuses "
        "it, listing the keys that differ; config applies this config's hyperparameters and "
        "schedules to the saved state (default: the config's resume, strict unless set)",
    )
    train.add_argument(
        "--seed", type=_non_negative, default=0, help="seed of the model and the data (default: 0)"
    )
    train.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="torch threads (default: 1: as fast for the small demo model, the same bits on any machine)",
    )
    train.add_argument("--log-every", type=_positive, help="steps between log lines when not on a terminal")
    train.set_defaults(run=run_train)


def _version() -> str:
    try:
        return importlib.metadata.version("tml-optimizers")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


# ---------------------------------------------------------------- subcommands


def run_validate(arguments: argparse.Namespace, console: Console) -> int:
    status = EXIT_OK
    reports: list[dict[str, Any]] = []
    imports = contextlib.nullcontext() if arguments.import_classes else without_class_imports()
    with imports:  # an untrusted file's custom class is not imported (its code would run)
        for config in arguments.configs:
            try:
                loaded = _load_any(arguments, config)
            except (ConfigError, UsageError) as error:
                if arguments.debug:
                    raise
                failed = EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE
                status = max(status, failed)
                reports.append({"path": str(config), "ok": False, "errors": _error_records(error)})
                if arguments.format == "text":
                    _print_error(error)
                continue
            reports.append({"path": str(config), "ok": True, "errors": []})
            if arguments.format == "text" and not arguments.quiet:
                if len(reports) > 1:
                    console.print()
                if isinstance(loaded, LoadedSchedules):
                    _print_schedules_summary(loaded, console)
                else:
                    _print_summary(loaded, console)
        invalid = sum(not report["ok"] for report in reports)
        if arguments.format == "json":
            print(json.dumps(reports, indent=2))
        elif invalid and len(reports) > 1:
            print(f"{invalid} of {len(reports)} files are invalid", file=sys.stderr)
    return status


def _error_records(error: Exception) -> list[dict[str, Any]]:
    """The issues of ``error`` as JSON records (line and column ``null`` where unknown)."""
    if not isinstance(error, ConfigError):
        return [{"line": None, "column": None, "path": "", "message": str(error)}]
    return [
        {
            "line": issue.position.line if issue.position else None,
            "column": issue.position.column if issue.position else None,
            "path": issue.dotted_path,
            "message": str(dataclasses.replace(issue, position=None, path=())),  # rule, value, hint
        }
        for issue in error.issues
    ]


def _print_error(error: Exception) -> None:
    if isinstance(error, ConfigError):
        _print_config_error(error)
    else:
        _error_line(str(error))


def _print_summary(loaded: LoadedConfig, console: Console) -> None:
    where = f" (at key {loaded.key})" if loaded.key else ""
    console.print(f"[green]✓[/] {loaded.file}{where}: a valid optimizer config")
    algorithm = loaded.config.algorithm()
    settings = ", ".join(f"{name}={value}" for name, value in algorithm.optimizer_kwargs().items())
    console.print(f"algorithm: {loaded.config.chosen('optimizer')[0]} ({_class_name(algorithm)}) {settings}")
    if not all(spec.resolved for spec in loaded.config.group_specs()):
        _print_run_lengths(loaded.config, console)  # the schedules are resolved (and checked) at build
        return
    rows = rule_rows(loaded.config)
    table = Table(
        title="param-group rules, in order (the first that matches a parameter claims it), then the "
        "parameters no rule claims" + (", then the table rules" if loaded.config.embedding_tables else ""),
        title_justify="left",
    )
    columns = ("group", "parameters", "algorithm", "weight decay", "× LR", "schedule", "peak LR")
    for column in (*columns, "final LR", "from step", "warmup", "phase boundaries"):
        table.add_column(column, no_wrap=column not in ("parameters", "phase boundaries"))
    for row in rows:
        facts = summary.schedule_facts(row.schedule, row.lr_multiplier)
        table.add_row(
            row.group if row.made_for_any_model else f"{row.group} (if any)",
            row.parameters,
            row.algorithm.key or type(row.algorithm).__name__,
            "—" if row.weight_decay is None else f"{row.weight_decay:g}",
            f"{row.lr_multiplier:g}",
            facts.kind,
            summary.format_lr(facts.peak),
            "—" if facts.final is None else summary.format_lr(facts.final),
            "never" if facts.final_from is None else str(facts.final_from),
            "—" if facts.warmup_steps is None else str(facts.warmup_steps),
            ", ".join(map(str, facts.milestones)) or "none",
        )
    console.print(table)
    for spec in loaded.config.group_specs():
        if spec.reduce_on_plateau is not None:
            console.print(f"reduce_on_plateau of {spec.name}: {describe_plateau(spec.reduce_on_plateau)}")
    for rule in loaded.config.embedding_tables:
        plateau = rule.plateau()
        if plateau is not None:
            console.print(f"reduce_on_plateau of table group {rule.name}: {describe_plateau(plateau)}")
    if loaded.config.layer_decay is not None:
        console.print(
            f"layer_decay (rate {loaded.config.layer_decay.rate:g}): each group is split per layer into "
            "<group>.layer_<l>, its LR multiplied by rate ** (layers + 1 - l); the layers come from the model"
        )
    console.print(
        "(if any): a group only when some parameter of the model falls in it; from step: the LR holds "
        "its final value from that step on (never: it keeps changing)"
    )
    console.print(f"the groups built for a model: tml-optim groups {loaded.file} --model MODULE:FACTORY")
    _print_run_lengths(loaded.config, console)


def _print_schedules_summary(loaded: LoadedSchedules, console: Console) -> None:
    where = f" (at key {loaded.key})" if loaded.key else ""
    count = len(loaded.schedules)
    console.print(f"[green]✓[/] {loaded.file}{where}: {count} valid schedule(s), no optimizer config")
    table = Table(title="schedules", title_justify="left")
    for column in ("schedule", "kind", "peak LR", "final LR", "from step", "warmup", "phase boundaries"):
        table.add_column(column, no_wrap=column != "phase boundaries")
    for name, schedule in loaded.schedules.items():
        facts = summary.schedule_facts(schedule)
        table.add_row(
            name,
            facts.kind,
            summary.format_lr(facts.peak),
            "—" if facts.final is None else summary.format_lr(facts.final),
            "never" if facts.final_from is None else str(facts.final_from),
            "—" if facts.warmup_steps is None else str(facts.warmup_steps),
            ", ".join(map(str, facts.milestones)) or "none",
        )
    console.print(table)
    console.print("from step: the LR holds its final value from that step on (never: it keeps changing)")


def _class_name(algorithm: OptimizerAlgorithmConfig) -> str:
    """The torch class an algorithm builds, or a custom class's path when it is not imported."""
    try:
        return catalog.public_name(algorithm.torch_class())
    except ValueError:  # custom, validated without importing it
        return f"{getattr(algorithm, 'class_path', '?')}, not imported"


def _load(
    arguments: argparse.Namespace, path: str, *, require_run: bool = False, total_steps: int | None = None
) -> LoadedConfig:
    """The config of ``path`` at ``--key``, with the run of ``--total-steps`` (or ``total_steps``) and
    ``--steps-per-epoch``."""
    return load_optimizer_config(
        path,
        arguments.key,
        total_steps=total_steps or arguments.total_steps,
        steps_per_epoch=arguments.steps_per_epoch,
        require_run=require_run,
    )


def _load_any(
    arguments: argparse.Namespace, path: str, *, require_run: bool = False
) -> LoadedConfig | LoadedSchedules:
    """As :func:`_load`, or the bare schedules of a file that holds no optimizer config."""
    return load_config_or_schedules(
        path,
        arguments.key,
        total_steps=arguments.total_steps,
        steps_per_epoch=arguments.steps_per_epoch,
        require_run=require_run,
    )


def _print_run_lengths(config: OptimizerConfig, console: Console) -> None:
    """The schedule lengths written relative to the run, each with the steps it resolves to."""
    lengths = config.run_lengths()
    if not lengths:
        return
    run = ", ".join(f"{name} {value}" for name, value in vars(config.run()).items() if value is not None)
    console.print(f"schedule lengths relative to the run ({run or 'no run given'}):")
    for path, written, steps in lengths:
        resolved = f"{steps} steps" if steps is not None else "resolved at build (give --total-steps)"
        console.print(f"  {path}: {written!r} → {resolved}")


def run_show(arguments: argparse.Namespace, console: Console) -> int:
    with without_class_imports():  # the schedules need no class: an untrusted file runs no code
        loaded = _load_any(arguments, arguments.config, require_run=True)
    if arguments.resume_from is not None:
        if not isinstance(loaded, LoadedConfig):
            raise UsageError(f"{loaded.file}: --resume-from needs an optimizer config, not bare schedules")
        return _show_resume(loaded, arguments.resume_from, console)
    curves = curves_of(loaded)
    _print_lr_table(
        curves.schedules,
        curves.multipliers,
        f"learning rate per {curves.of}: {curves.file}",
        arguments,
        console,
    )
    if curves.config is not None:
        _print_run_lengths(curves.config, console)
    return EXIT_OK


def _print_lr_table(
    schedules: dict[str, LearningRate],
    multipliers: dict[str, float],
    title: str,
    arguments: argparse.Namespace,
    console: Console,
) -> None:
    """``show``'s table: a row per step, a column per schedule, then where each one's LR ends."""
    facts = {name: summary.schedule_facts(schedule) for name, schedule in schedules.items()}
    if arguments.at is not None:
        steps = sorted(set(arguments.at))
    else:
        finals = [fact.final_from for fact in facts.values() if fact.final_from is not None]
        steps = summary.milestone_steps(schedules.values(), arguments.steps)
        steps = sorted({*steps, *(step for step in finals if step <= steps[-1])})
    values = summary.learning_rates(schedules, steps, multipliers)
    table = Table(title=title, title_justify="left")
    table.add_column("step", justify="right")
    for name in schedules:
        table.add_column(name, justify="right")
    table.add_column("phase boundary of")
    for index, step in enumerate(steps):
        marks = ", ".join(name for name, fact in facts.items() if step in fact.milestones)
        table.add_row(str(step), *(summary.format_lr(values[name][index]) for name in schedules), marks)
    table.add_section()
    table.add_row(
        "final LR",
        *(
            "—" if fact.final is None else summary.format_lr(multipliers.get(name, 1.0) * fact.final)
            for name, fact in facts.items()
        ),
        "",
    )
    table.add_row(
        "from step",
        *("never" if fact.final_from is None else str(fact.final_from) for fact in facts.values()),
        "where each LR ends (its total steps)",
    )
    console.print(table)


def _show_resume(loaded: LoadedConfig, checkpoint: str, console: Console) -> int:
    path, state = horizon.read_scheduler_state(checkpoint)
    step, rows = horizon.resume_rows(loaded.config, state)
    table = Table(title=f"learning rate at the resume step {step} of {path}", title_justify="left")
    for column in ("group", "checkpoint (before)", "this config (after)", "change"):
        table.add_column(column, justify="left" if column in ("group", "change") else "right")
    for row in rows:
        before = "—" if row.before is None else summary.format_lr(row.before)
        table.add_row(row.group, before, summary.format_lr(row.after), row.change)
    console.print(table)
    if any(horizon.is_jump(row) for row in rows):
        console.print(
            "the schedules differ: a resume under resume: config (or --resume-policy config) continues "
            f"from step {step} on this config's curve; strict refuses the checkpoint"
        )
    _print_run_lengths(loaded.config, console)
    return EXIT_OK


def run_plot(arguments: argparse.Namespace, console: Console) -> int:
    try:
        image_format(arguments.output)
    except ValueError as error:
        raise UsageError(str(error)) from None
    with without_class_imports():
        sources = [
            load_curves(
                path,
                arguments.key,
                total_steps=arguments.total_steps,
                steps_per_epoch=arguments.steps_per_epoch,
                require_run=True,
            )
            for path in arguments.configs
        ]
    names = [Path(source.file).name for source in sources]
    if len(set(names)) < len(names):  # the same file name in two folders: the paths as given
        names = [source.file for source in sources]
    curves = [
        Curve(
            name if len(sources) == 1 else f"{file_name}: {name}",
            schedule,
            source.multipliers.get(name, 1.0),
            index,
        )
        for index, (source, file_name) in enumerate(zip(sources, names, strict=True))
        for name, schedule in source.schedules.items()
    ]
    schedules = [curve.schedule for curve in curves]
    end = arguments.steps if arguments.steps is not None else summary.default_end(schedules)
    kinds = sorted({source.of for source in sources})
    of = kinds[0] if len(kinds) == 1 else "param group or schedule"
    path = plot_curves(
        curves,
        arguments.output,
        end=end,
        log_y=arguments.log_y,
        size=arguments.size,
        title=f"learning rate per {of} ({' vs '.join(names)})",
    )
    files = f" from {len(sources)} files" if len(sources) > 1 else ""
    console.print(f"wrote {path} (steps 0 to {end}, {len(curves)} curve(s){files})")
    for source in sources:
        if source.config is not None:
            _print_run_lengths(source.config, console)
    return EXIT_OK


def run_groups(arguments: argparse.Namespace, console: Console) -> int:
    loaded = _load(arguments, arguments.config, require_run=True)
    model = load_model(arguments.model, arguments.model_arg)
    try:
        described = describe_param_groups(model, loaded.config)
        table_groups = describe_table_groups(model, loaded.config)
    except ValueError as error:
        raise CliError(f"{arguments.config}: {error}") from None
    if arguments.format == "json":
        rows = [group.as_dict() for group in described]
        if not arguments.params:
            rows = [{key: value for key, value in row.items() if key != "parameters"} for row in rows]
        print(json.dumps(rows + [group.as_dict() for group in table_groups], indent=2))
        return EXIT_OK
    table = Table(title=f"{len(described)} param group(s) of {type(model).__name__}", title_justify="left")
    columns = ("group", "algorithm", "kernel", "LR at 0", "peak LR", "weight decay", "× LR")
    for column in (*columns, "tensors", "elements", "state"):
        table.add_column(column, justify="right" if column in ("tensors", "elements", "state") else "left")
    for group in described:
        table.add_row(
            group.name,
            f"{group.algorithm} ({group.torch_class})",
            group.kernel,
            summary.format_lr(group.lr_at_start),
            summary.format_lr(group.lr_peak),
            "—" if group.weight_decay is None else f"{group.weight_decay:g}",
            f"{group.lr_multiplier:g}",
            f"{group.tensors:,}",
            f"{group.elements:,}",
            "unknown" if group.state_bytes is None else _bytes(group.state_bytes),
        )
    known = [group.state_bytes for group in described if group.state_bytes is not None]
    state = _bytes(sum(known)) + ("" if len(known) == len(described) else " + unknown")
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        "",
        "",
        "",
        "",
        f"{sum(g.tensors for g in described):,}",
        f"{sum(g.elements for g in described):,}",
        state,
    )
    console.print(table)
    if table_groups:
        _print_table_groups(table_groups, type(model).__name__, console)
    if arguments.params:
        parameters = Table(title="parameters", title_justify="left")
        for column in ("parameter", "shape", "group"):
            parameters.add_column(column)
        for group in described:
            for parameter in group.parameters:
                parameters.add_row(
                    parameter.name, "×".join(map(str, parameter.shape)) or "scalar", group.name
                )
        console.print(parameters)
    return EXIT_OK


def _print_table_groups(groups: list[TableGroupDescription], model: str, console: Console) -> None:
    """``groups``' second table: one row per table group, its tables with their rows × dimension."""
    table = Table(
        title=f"{len(groups)} table group(s) of {model} (embedding_tables, before sharding)",
        title_justify="left",
    )
    columns = ("group", "algorithm", "tables (rows × dim)", "LR at 0", "peak LR", "weight decay")
    for column in (*columns, "rows", "elements", "state"):
        table.add_column(column, justify="right" if column in ("rows", "elements", "state") else "left")
    for group in groups:
        table.add_row(
            group.name,
            group.algorithm,
            ", ".join(f"{t.name} {t.rows:,}×{t.dim}" for t in group.tables),
            summary.format_lr(group.lr_at_start),
            summary.format_lr(group.lr_peak),
            "—" if group.weight_decay is None else f"{group.weight_decay:g}",
            f"{group.rows:,}",
            f"{group.elements:,}",
            _bytes(group.state_bytes),
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        "",
        "",
        "",
        f"{sum(g.rows for g in groups):,}",
        f"{sum(g.elements for g in groups):,}",
        _bytes(sum(g.state_bytes for g in groups)),
    )
    console.print(table)
    console.print(
        "state: the fused kernel's optimizer state (float32): exact_sgd none, exact_adagrad 4·dim bytes "
        "per row, exact_row_wise_adagrad 4, adam and lamb 8·dim, partial_row_wise_adam 4·dim + 4"
    )


def _bytes(count: int) -> str:
    """A size in bytes as printed: ``512 B``, ``1.5 KiB``, ``3.0 MiB``."""
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def run_schema(arguments: argparse.Namespace, console: Console) -> int:
    text = json.dumps(optimizer_schema(arguments.key), indent=2) + "\n"
    if arguments.output:
        Path(arguments.output).write_text(text, encoding="utf-8")
        console.print(f"wrote {arguments.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_list(arguments: argparse.Namespace, console: Console) -> int:
    optimizers = Table(title="optimizers (keys of an optimizer config)", title_justify="left")
    for column in ("key", "builds", "description"):
        optimizers.add_column(column)
    for entry in catalog.optimizer_entries():
        optimizers.add_row(entry.key, entry.target, entry.description)
    schedules = Table(title="schedule kinds (keys of learning_rate)", title_justify="left")
    for column in ("key", "config", "description"):
        schedules.add_column(column)
    for entry in catalog.schedule_entries():
        schedules.add_row(entry.key, entry.target, entry.description)
    console.print(optimizers)
    console.print(schedules)
    return EXIT_OK


def run_train(arguments: argparse.Namespace, console: Console) -> int:
    from tml.optimizers.demo.distributed import launched_ranks  # loaded only to train
    from tml.optimizers.demo.trainer import TrainOptions, train

    if launched_ranks().rank != 0:  # under torchrun, rank 0 alone prints progress and results
        console = Console(quiet=True)
    loaded = _load(arguments, arguments.config)
    if loaded.config.total_steps is None and any(
        text.endswith("%") for _, text, _ in loaded.config.run_lengths()
    ):
        # Relative lengths and no total_steps: the run is --steps long.
        loaded = _load(arguments, arguments.config, require_run=True, total_steps=arguments.steps)
    checkpoint_dir = arguments.checkpoint_dir or Path("runs") / Path(arguments.config).stem
    options = TrainOptions(
        steps=arguments.steps,
        checkpoint_dir=checkpoint_dir,
        output_dir=arguments.output_dir or checkpoint_dir,
        resume=arguments.resume,
        resume_policy=arguments.resume_policy,
        fresh=arguments.fresh,
        checkpoint_every=arguments.checkpoint_every,
        seed=arguments.seed,
        log_every=arguments.log_every,
        threads=arguments.threads,
    )
    _print_training_header(loaded, options.steps, console)
    result = train(loaded, options, console)
    loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
    console.print(f"trained {result.steps} steps, final loss {loss}")
    console.print(f"checkpoint: {result.checkpoint}")
    console.print(f"loss curve: {result.loss_plot}")
    console.print(f"learning rate plot: {result.lr_plot}")
    return EXIT_OK


def _print_training_header(loaded: LoadedConfig, steps: int, console: Console) -> None:
    groups = ", ".join(
        f"{name} ({summary.schedule_facts(schedule).kind})"
        for name, schedule in group_schedules(loaded.config).items()
    )
    model = "the table model (torchrec)" if loaded.config.embedding_tables else "the demo ranking model"
    console.print(f"training {model} for {steps} steps with {loaded.file}; groups: {groups}")


# ---------------------------------------------------------------- errors and argument types


def _print_config_error(error: ConfigError) -> None:
    _error_line(error.title + (f": {len(error.issues)} errors" if len(error.issues) > 1 else ":"))
    for issue in error.issues:
        print(f"  {issue}", file=sys.stderr)


def _error_line(message: str) -> None:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _step_list(text: str) -> list[int]:
    steps = [_non_negative(part.strip()) for part in text.split(",") if part.strip()]
    if not steps:
        raise argparse.ArgumentTypeError("expected comma-separated steps such as 0,1000,5000")
    too_large = [step for step in steps if step >= MAX_SCHEDULE_STEP]
    if too_large:
        raise argparse.ArgumentTypeError(
            f"steps must be below 2**53 = {MAX_SCHEDULE_STEP} (float64 does not hold every integer "
            f"above it), got {too_large[0]}"
        )
    return steps


def _size(text: str) -> tuple[int, int]:
    width, separator, height = text.lower().partition("x")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1000x500, got {text}")
    size = (_integer(width), _integer(height))
    if min(size) < 50 or max(size) > 10_000:
        raise argparse.ArgumentTypeError(f"each side must be between 50 and 10000 pixels, got {text}")
    return size


def _integer(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


__all__ = ["PROGRAM", "UsageError", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
