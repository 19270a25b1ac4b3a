"""The resume matrix (issue 13): every algorithm × layout × transport, each case checking the same
config (bit-identical), a changed hyperparameter (strict refuses, config applies) and another shape
(refused). The cases are in resume_matrix.py; the 2-rank subset runs in one torchrun job
(resume_matrix_worker.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch import HERE, torchrun
from resume_matrix import TRANSPORTS, cases, run_case


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("key", "layout"), cases(), ids=[f"{key}-{layout}" for key, layout in cases()])
def test_resume_matrix_in_one_process(key: str, layout: str, transport: str, tmp_path: Path) -> None:
    run_case(key, layout, transport, tmp_path)


TWO_RANK_CASES = [
    ("adam", "plain"),
    ("adamw", "flatten"),
    ("nadam", "mixed with a flat child"),
    ("sgd", "mixed"),
    ("adafactor", "plain"),
]
"""The 2-rank subset: one case per layout, fused and flat Adam kinds, a non-elementwise class."""


def test_resume_matrix_on_two_gloo_ranks(tmp_path: Path) -> None:
    torchrun(2, HERE / "resume_matrix_worker.py", str(tmp_path), json.dumps(TWO_RANK_CASES), timeout=240)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == {f"{key}-{layout}": "ok" for key, layout in TWO_RANK_CASES}
