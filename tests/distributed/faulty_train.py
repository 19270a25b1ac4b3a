"""Worker (under torchrun): ``tml-optim train`` with a fault injected, for the resume tests.

Options before ``--`` choose the fault, those after it are ``tml-optim``'s:
  --kill-rank R --kill-at-step S     rank R sends itself SIGKILL right after training step S
  --signal-rank R --signal-at-step S rank R sends itself SIGTERM right after training step S
                                     (the run then stops after the next step, on every rank)
  --kill-while-saving-step S         rank 0 sends itself SIGKILL while the checkpoint of step S is
                                     being written (every rank's shard written, the manifest not yet)
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tml.optimizers.distributed.checkpoint as checkpoint_module
from tml.optimizers.cli import main as cli_main
from tml.optimizers.demo import trainer as training


def main() -> int:
    separator = sys.argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-rank", type=int)
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--signal-rank", type=int)
    parser.add_argument("--signal-at-step", type=int)
    parser.add_argument("--kill-while-saving-step", type=int)
    faults = parser.parse_args(sys.argv[1:separator])
    faulthandler.dump_traceback_later(60, exit=True)  # where a hang is, in the test's output
    rank = int(os.environ["RANK"])
    update = training.ProgressReport.update

    def update_then_fault(
        report: training.ProgressReport, step: int, loss: float, learning_rates: Mapping[str, float]
    ) -> Any:
        update(report, step, loss, learning_rates)
        if rank == faults.kill_rank and step == faults.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == faults.signal_rank and step == faults.signal_at_step:
            os.kill(os.getpid(), signal.SIGTERM)

    training.ProgressReport.update = update_then_fault  # type: ignore[method-assign]
    write_manifest = checkpoint_module._write_manifest

    def interrupted_write(directory: Path, manifest: dict[str, Any]) -> None:
        if manifest["step"] == faults.kill_while_saving_step:  # only rank 0 writes the manifest
            os.kill(os.getpid(), signal.SIGKILL)
        write_manifest(directory, manifest)

    checkpoint_module._write_manifest = interrupted_write
    return cli_main.main(sys.argv[separator + 1 :])


if __name__ == "__main__":
    sys.exit(main())
