"""The cost of scoring an adapted ``torch.nn.LSTM`` language model against the same-size cell-language LSTM recipe.

Both models have the default scoring sizes (embedding 400, LSTM layers 400->600->600->400, tied decoder over the
PTB vocabulary) and the same weights (the ``nn.LSTM`` modules get the recipe model's, as in the faithfulness test);
each proxy both can run is timed on both, alternating, ``--repeats`` times, and the median seconds are compared.
Goal of issue 11: the adapted model costs no more than 1.2x the recipe.

    python benchmarks/adapter_speed.py [--repeats 3] [--threads 1] [--proxies a,b]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from zeronas.cells.reference import reference_cell
from zeronas.data.corpus import load_ptb
from zeronas.models.adapters import rnn_lm
from zeronas.models.lm import build_model
from zeronas.core.config import ScoringConfig
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import list_proxies
from zeronas.proxies.runner import score_model


def nn_lstm_copy(recipe: nn.Module) -> nn.Module:
    """An nn.LSTM language model (one module per layer) holding the recipe model's weights."""
    rnns = []
    for layer in recipe.layers:
        lin = layer.linears
        rnn = nn.LSTM(layer.input_size, layer.hidden_size)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.cat([lin[g].weight_0 for g in "ifgo"]))
            rnn.weight_hh_l0.copy_(torch.cat([lin[g].weight_1 for g in "ifgo"]))
            rnn.bias_ih_l0.copy_(torch.cat([lin[g].bias for g in "ifgo"]))
            rnn.bias_hh_l0.zero_()
        rnns.append(rnn)
    emb = nn.Embedding(recipe.vocab_size, recipe.emb_size)
    dec = nn.Linear(recipe.emb_size, recipe.vocab_size)
    with torch.no_grad():
        emb.weight.copy_(recipe.encoder.weight)
        dec.bias.copy_(recipe.decoder.bias)
    dec.weight = emb.weight
    return rnn_lm(emb, rnns, dec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--proxies", default="", help="comma-separated (default: every proxy)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ScoringConfig()
    corpus = load_ptb()
    names = [p for p in args.proxies.split(",") if p] or [s.name for s in list_proxies()]
    ctx = ScoringContext(reference_cell("lstm"), config, corpus)
    recipe = build_model(reference_cell("lstm"), ctx.vocab_size, seed=config.seed, config=ctx.model_config()).eval()
    adapted = nn_lstm_copy(recipe)

    times: dict[str, dict[str, list[float]]] = {n: {"recipe": [], "nn.LSTM": []} for n in names}
    for r in range(args.repeats):
        for label, model in (("recipe", recipe), ("nn.LSTM", adapted)):
            start = time.perf_counter()
            scores = score_model(model, names, tokens=corpus, config=config)
            print(f"repeat {r + 1}/{args.repeats} {label}: {time.perf_counter() - start:.1f} s", flush=True)
            for n, s in scores.items():
                if s.status != "unsupported":
                    times[n][label].append(s.seconds)

    print(f"\n{'proxy':16s} {'recipe s':>9s} {'nn.LSTM s':>10s} {'ratio':>6s}")
    total = {"recipe": 0.0, "nn.LSTM": 0.0}
    for n in names:
        if not times[n]["recipe"] or not times[n]["nn.LSTM"]:
            continue
        a, b = statistics.median(times[n]["recipe"]), statistics.median(times[n]["nn.LSTM"])
        total["recipe"] += a
        total["nn.LSTM"] += b
        print(f"{n:16s} {a:9.3f} {b:10.3f} {b / a if a else float('nan'):6.2f}")
    ratio = total["nn.LSTM"] / total["recipe"]
    print(f"{'all':16s} {total['recipe']:9.3f} {total['nn.LSTM']:10.3f} {ratio:6.2f}  (goal <= 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
