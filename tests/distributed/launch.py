"""Helpers of the multi-process tests: run torchrun with a timeout, load the example as a module."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "distributed_train.py"
HERE = Path(__file__).resolve().parent


def load_module(path: Path, name: str) -> ModuleType:
    """Import a script by path (the tests and the workers share the example's model and data)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child_environment() -> dict[str, str]:
    """The environment of a launched job: one thread per rank, this venv's scripts on PATH."""
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


# A worker that dies in C++ with this line (std::terminate) has been seen, rarely and only on a loaded
# machine, in a job that passes on every other run; its Python stack is not known yet (faulthandler
# is on in child_environment to catch it). Such a job is run once more, and said so; a second abort fails.
ABORT_IN_CPP = "terminate called without an active exception"


def run(
    command: list[str], *, cwd: Path | None = None, timeout: float = 150, expect_failure: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail on a non-zero exit status (or on zero, with ``expect_failure``).

    On timeout, SIGTERM the command's process group (torchrun then stops its workers, which run in
    sessions of their own), SIGKILL it after 10 s, and fail: a hang never blocks the suite.
    """
    result = _run_once(command, cwd=cwd, timeout=timeout)
    if result.returncode != 0 and not expect_failure and ABORT_IN_CPP in result.stdout:
        print(f"a worker aborted in C++ ({ABORT_IN_CPP!r}); running once more:\n{result.stdout[-3000:]}")
        result = _run_once(command, cwd=cwd, timeout=timeout)
    if (result.returncode != 0) != expect_failure:
        raise AssertionError(f"exit status {result.returncode}: {' '.join(command)}\n{result.stdout[-6000:]}")
    return result


def _run_once(command: list[str], *, cwd: Path | None, timeout: float) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=child_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        raise AssertionError(f"timed out after {timeout} s: {' '.join(command)}\n{output[-4000:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def torchrun(
    nproc: int,
    script: Path,
    *args: str,
    timeout: float = 150,
    expect_failure: bool = False,
    cwd: Path | None = None,
) -> str:
    """``torchrun --standalone`` (its rendezvous store takes a free port) with ``nproc`` ranks; the output."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "--monitor-interval=0.2",
        str(script),
        *args,
    ]
    return run(command, cwd=cwd, timeout=timeout, expect_failure=expect_failure).stdout
