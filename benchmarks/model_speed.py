"""Time forward+backward of the LSTM recipe and of benchmark cells beside torch.nn.LSTM.

Setting: batch 20, bptt 70, the NAS-Bench-NLP sizes (400 -> 600 -> 600 -> 400), CPU, float32. Only the recurrent
layers are timed (the embedding and decoder are the same for every cell). Reports the fastest of
``--repeats`` runs (CPU time with ``--threads 1``, robust on a shared machine; wall time otherwise) and each cell's time as a
multiple of torch.nn.LSTM's time for the same three layers.

    python benchmarks/model_speed.py [--cells 20] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.models.cell import CellLayer

SIZES = [(400, 600), (600, 600), (600, 400)]


class TorchLSTMStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.LSTM(i, o) for i, o in SIZES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x)
        return x


class CellStack(nn.Module):
    def __init__(self, cell) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CellLayer(cell, i, o) for i, o in SIZES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x)
        return x


def time_fwd_bwd(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    def once() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    once()  # warm-up
    # With one thread, the process's CPU time is robust to other jobs on the machine; otherwise wall time.
    clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    times = []
    for _ in range(repeats):
        t0 = clock()
        once()
        times.append(clock() - t0)
    return min(times)  # the least disturbed run: robust when the machine is shared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(70, 20, 400)
    base = time_fwd_bwd(TorchLSTMStack(), x, args.repeats)
    print(f"torch.nn.LSTM (3 layers): {base * 1000:.1f} ms forward+backward, threads={torch.get_num_threads()}")
    lstm = time_fwd_bwd(CellStack(reference_cell("lstm")), x, args.repeats)
    print(f"LSTM recipe: {lstm * 1000:.1f} ms = {lstm / base:.2f}x torch.nn.LSTM")
    distinct: dict[str, dict] = {}
    for row in load_recipe_list():
        if row["kind"] == "generated":
            distinct.setdefault(row["arch_sha1"], row)
    rows = list(distinct.values())
    picks = [rows[i * len(rows) // args.cells] for i in range(args.cells)]  # evenly over the list: k = 1, 2, 3
    ratios = []
    for row in picks:
        cell = parse_recipe(row["recipe"])
        t = time_fwd_bwd(CellStack(cell), x, args.repeats)
        ratios.append(t / base)
        print(f"  cell {row['recepie_id']} (k={cell.hidden_tuple_size}, {len(cell)} nodes): "
              f"{t * 1000:.1f} ms = {t / base:.2f}x")
    print(f"{len(ratios)} benchmark cells: median {statistics.median(ratios):.2f}x, "
          f"min {min(ratios):.2f}x, max {max(ratios):.2f}x torch.nn.LSTM")


if __name__ == "__main__":
    main()
