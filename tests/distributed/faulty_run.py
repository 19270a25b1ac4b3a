"""Worker (under torchrun): the distributed example with faults injected, for the kill -9 tests.

Options before ``--`` inject faults:
  --kill-rank R --kill-at-step S   rank R sends itself SIGKILL right after training step S
  --marker-dir DIR                 a fault happens once: its marker file here remembers it
  --attempt-log FILE               each run appends the first step it trains
The options after ``--`` are the example's. torchrun then stops the other rank and exits non-zero.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch import EXAMPLE, load_module

example = load_module(EXAMPLE, "distributed_train")


def kill_once(marker: Path) -> None:
    """SIGKILL this process, unless the fault already happened in an earlier attempt."""
    if marker.exists():
        return
    marker.write_text("killed")
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    separator = sys.argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-rank", type=int)
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--marker-dir", type=Path, required=True)
    parser.add_argument("--attempt-log", type=Path, required=True)
    faults = parser.parse_args(sys.argv[1:separator])
    faulthandler.dump_traceback_later(20, repeat=True)  # where a hang is, in the test's output
    rank = int(os.environ["RANK"])
    first_step: list[int] = []

    def on_step(step: int) -> None:
        if not first_step:
            first_step.append(step)
            if rank == 0:
                with faults.attempt_log.open("a") as log:
                    log.write(f"{step}\n")
        if step == faults.kill_at_step and rank == faults.kill_rank:
            kill_once(faults.marker_dir / "killed-at-step")

    example.main(sys.argv[separator + 1 :], on_step=on_step)


if __name__ == "__main__":
    main()
