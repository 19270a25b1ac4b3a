"""The measurements behind ``auto``'s rule for optimizers without a fused kernel (``docs/speed.md``).

For RMSprop, Adamax and NAdam (no fused CPU kernel in torch 2.13): the for-loop vs ``foreach`` on
the three layouts. (Adam, AdamW, SGD with momentum and Adagrad, which have fused kernels, are in
``benchmarks.optimizer_step``.)

Run: ``python -m benchmarks.implementations``.
"""

from __future__ import annotations

import torch

from benchmarks.common import interleaved_medians
from benchmarks.optimizer_step import EXAMPLE, LAYOUTS, _tensors

NO_FUSED: dict[str, type[torch.optim.Optimizer]] = {
    "RMSprop": torch.optim.RMSprop,
    "Adamax": torch.optim.Adamax,
    "NAdam": torch.optim.NAdam,
}


def main() -> None:
    torch.set_num_threads(1)
    print("| layout | optimizer | for_loop ms | foreach ms | foreach/for_loop |")
    print("|---|---|---|---|---|")
    for layout, (count, size) in LAYOUTS.items():
        if layout == EXAMPLE:
            continue
        params = _tensors(count, size, seed=0)
        for name, optimizer_class in NO_FUSED.items():
            variants = {
                choice: optimizer_class(params, lr=1e-3, foreach=choice == "foreach").step
                for choice in ("for_loop", "foreach")
            }
            ms = {key: value * 1e3 for key, value in interleaved_medians(variants, repeats=5).items()}
            print(
                f"| {layout} | {name} | {ms['for_loop']:.2f} | {ms['foreach']:.2f} "
                f"| {ms['foreach'] / ms['for_loop']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
