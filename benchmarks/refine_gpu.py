"""The GPU check of issue 18, one script (about 8 minutes on one H100; prepared on a machine without a GPU).

1. ``zeronas train`` on NAS-Bench-NLP's LSTM recipe (recepie_id 1000001, the example cell with a tanh output
   gate) for 0.25 epoch of PTB with the full protocol, and a ``torch.nn.LSTM`` (cuDNN) language model of the same
   size (benchmarks/train_speed.py's ``TorchLSTMLM``: embedding 400, layers 400 -> 600 -> 600 -> 400, tied decoder;
   no dropout, fixed bptt 70) for the same 0.25 epoch: tokens per second side by side.
2. ``zeronas refine`` on 9 NAS-Bench-NLP cells (a seeded sample, ``--seed``) with the reference cells beside them,
   rungs 0.25, 0.75 and 2.25 epochs, eta 3, on the GPU: the table, the winner and the continue command.

The refine runs under a time limit (what is left of ``--minutes``); it is resumable, so running this script again
with the same ``--out`` continues it (the training comparison is then read back from ``OUT/train.json``).

    python benchmarks/refine_gpu.py [--device cuda] [--out refine-gpu] [--minutes 8] [--smoke]

``--smoke``: a CPU dry run of the whole script in a minute (TrainConfig.quick sizes, tiny budgets), to check the
script itself where there is no GPU. Run from the repository root (it puts ``src`` on the path).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

LSTM_RECIPE_ID = 1000001


def zeronas(args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run the zeronas command line of this checkout; progress goes to this terminal, stdout is returned."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    print("$ zeronas " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "zeronas", *args], env=env, stdout=subprocess.PIPE, text=True,
                          timeout=timeout)


def lstm_recipe_file(out: Path) -> Path:
    from zeronas.bench.nbnlp import load_recipe_list

    entry = next(e for e in load_recipe_list() if e["recepie_id"] == LSTM_RECIPE_ID)
    path = out / "nbnlp_lstm_1000001.json"
    path.write_text(json.dumps(entry["recipe"], indent=1))
    return path


def train_recipe(out: Path, device: str, fraction: float, smoke: bool) -> dict:
    """zeronas train on the recipe for ``fraction`` of an epoch (as --steps: the steps that cover it)."""
    from zeronas.data.corpus import load_ptb
    from zeronas.train import TrainConfig, tokens_per_epoch

    cfg = TrainConfig.quick() if smoke else TrainConfig()
    mean_len = cfg.bptt * 0.975  # variable bptt's mean batch length
    steps = math.ceil(fraction * tokens_per_epoch(load_ptb(), cfg) / (cfg.batch_size * mean_len))
    args = ["train", str(lstm_recipe_file(out)), "--steps", str(steps), "--device", device, "--json", "-q"]
    done = zeronas(args + (["--quick"] if smoke else []))
    if done.returncode != 0:
        raise SystemExit(f"zeronas train failed (exit {done.returncode})")
    return json.loads(done.stdout)


def train_torch_lstm(device: str, tokens: int, smoke: bool) -> dict:
    """The torch.nn.LSTM model trained on the first ``tokens`` training tokens' worth of steps."""
    import torch

    from train_speed import TorchLSTMLM, tokens_per_second
    from zeronas.data.corpus import batchify, load_ptb

    corpus = load_ptb()
    source = batchify(corpus.train[:40_000] if smoke else corpus.train, 20).to(device)
    steps = max(1, math.ceil(tokens / (20 * 70)))
    torch.manual_seed(0)
    model = TorchLSTMLM(corpus.vocab_size).to(device)
    tps = tokens_per_second(model, source, steps, 1, 70)
    return {"tokens_per_second": tps, "steps": steps, "num_parameters": sum(p.numel() for p in model.parameters())}


def compare(out: Path, device: str, smoke: bool) -> dict:
    saved = out / "train.json"
    if saved.exists():
        return json.loads(saved.read_text())
    recipe = train_recipe(out, device, 0.25, smoke)
    torch_lstm = train_torch_lstm(device, recipe["tokens"], smoke)
    result = {"device": device, "zeronas_lstm_recipe": {k: recipe[k] for k in (
        "tokens_per_second", "steps", "tokens", "train_seconds", "seconds", "num_parameters", "val_ppl")},
              "torch_nn_lstm": torch_lstm}
    saved.write_text(json.dumps(result, indent=1))
    return result


def refine(out: Path, device: str, seed: int, budget_s: float, smoke: bool) -> int:
    from zeronas.bench.nbnlp import Benchmark

    cells = [a.canonical_id for a in Benchmark.nbnlp().sample(9, seed=seed)]
    args = ["refine", *cells, "--rungs", "0.25,0.75,2.25", "--eta", "3", "--device", device,
            "--checkpoint", str(out / "refine"), "--plot", str(out / "refine.png")]
    if smoke:
        args += ["--quick", "--rungs", "0.05,0.15,0.45", "-q"]
    try:
        done = zeronas(args, timeout=max(30.0, budget_s))
    except subprocess.TimeoutExpired:
        print(f"refine stopped at the time limit ({budget_s:.0f} s); run this script again to resume it")
        return 124
    print(done.stdout)
    return done.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("refine-gpu"))
    ap.add_argument("--minutes", type=float, default=8.0, help="time for the whole script; the refine gets the rest")
    ap.add_argument("--seed", type=int, default=0, help="which 9 benchmark cells (Benchmark.sample)")
    ap.add_argument("--smoke", action="store_true", help="a CPU dry run of the script at TrainConfig.quick sizes")
    args = ap.parse_args()
    start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.smoke else args.device
    result = compare(args.out, device, args.smoke)
    ours, base = result["zeronas_lstm_recipe"], result["torch_nn_lstm"]
    print(f"0.25 epoch of PTB on {device}:")
    print(f"  zeronas train, LSTM recipe 1000001: {ours['tokens_per_second']:10,.0f} tokens/s ({ours['steps']} steps, "
          f"{ours['num_parameters']:,} parameters, val ppl {ours['val_ppl']:.1f}, {ours['seconds']:.0f} s with "
          "validation and test)")
    print(f"  torch.nn.LSTM (cuDNN), same size:   {base['tokens_per_second']:10,.0f} tokens/s ({base['steps']} steps, "
          f"{base['num_parameters']:,} parameters, no dropout)")
    print(f"  ratio: {ours['tokens_per_second'] / base['tokens_per_second']:.2f}x", flush=True)
    epochs = 11 * 0.25 + 3 * 0.5 + 1 * 1.5  # 9 cells + lstm + gru; 11 -> 3 -> 1 at eta 3
    print(f"refine: {epochs:g} epochs of training in all; at the recipe's speed about "
          f"{epochs * 929_589 / ours['tokens_per_second'] / 60:.1f} minutes plus validation", flush=True)
    left = args.minutes * 60 - (time.monotonic() - start)
    code = refine(args.out, device, args.seed, left, args.smoke)
    print(f"total {time.monotonic() - start:.0f} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
