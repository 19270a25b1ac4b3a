"""Worker (under torchrun, gloo): the resume matrix's DCP cases on every rank, with a DDP model.

Usage: torchrun --nproc_per_node 2 resume_matrix_worker.py OUT_DIR CASES_JSON
Writes ``results.json`` from rank 0: case -> "ok" or the first failure on any rank.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resume_matrix import run_case


def main() -> None:
    out, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
    dist.init_process_group("gloo")
    results = {}
    for key, layout in cases:
        try:
            run_case(key, layout, "dcp", out / f"{key}-{layout}".replace(" ", "_"))
            outcome = "ok"
        except BaseException:  # every failure is reported, not raised: the other ranks must go on
            outcome = traceback.format_exc(limit=4)
        gathered: list[str | None] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, outcome)
        results[f"{key}-{layout}"] = next((entry for entry in gathered if entry != "ok"), "ok")
    if dist.get_rank() == 0:
        (out / "results.json").write_text(json.dumps(results, indent=1))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
