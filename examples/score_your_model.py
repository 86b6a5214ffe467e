"""Score your own PyTorch recurrent language models with zeronas's zero-cost proxies.

Two models, end to end, on the bundled Penn Treebank:

1. an AWD-LSTM-style language model built on ``torch.nn.LSTM`` (found by the built-in adapter), and
2. a recurrent cell of your own design, written as an ``nn.Module`` and stepped in a loop (``cell_lm``); it reports
   its activations to zeronas through an optional ``observer`` argument, so the activation-pattern proxies
   (NASWOT, linear regions, Fisher) can read it too.

    python examples/score_your_model.py                 # all proxies, a 2-layer model of width 200
    python examples/score_your_model.py --emb 32 --hidden 32 --proxies zen,grad_norm,naswot,state_escape
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import zeronas
from zeronas.data.corpus import load_ptb


class LSTMLanguageModel(nn.Module):
    """An AWD-LSTM-style model: embedding, two nn.LSTM layers (the last one embedding-sized), a tied decoder."""

    def __init__(self, vocab: int, emb: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        self.rnns = nn.ModuleList([nn.LSTM(emb, hidden), nn.LSTM(hidden, emb)])
        self.decoder = nn.Linear(emb, vocab)
        self.decoder.weight = self.encoder.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # your training code's forward; zeronas needs none
        out = self.encoder(tokens)
        for rnn in self.rnns:
            out, _ = rnn(out)
        return self.decoder(out)


class MinimalGatedCell(nn.Module):
    """A cell of one's own: a minimal gated unit, f = sigmoid(W_f [x, h]), h' = (1 - f) h + f tanh(W [x, f h])."""

    def __init__(self, n_in: int, n_hidden: int) -> None:
        super().__init__()
        self.hidden_size = n_hidden
        self.forget = nn.Linear(n_in + n_hidden, n_hidden)
        self.candidate = nn.Linear(n_in + n_hidden, n_hidden)
        self.macs_per_step = 2 * (n_in + n_hidden) * n_hidden + 3 * n_hidden  # two matmuls, three products

    def forward(self, x: torch.Tensor, h: torch.Tensor, observer=None) -> torch.Tensor:
        pre_f = self.forget(torch.cat([x, h], dim=1))
        f = torch.sigmoid(pre_f)
        pre_c = self.candidate(torch.cat([x, f * h], dim=1))
        c = torch.tanh(pre_c)
        if observer is not None:  # optional: lets NASWOT, linear regions and Fisher see the activations
            observer("forget", "activation_sigm", pre_f, f)
            observer("candidate", "activation_tanh", pre_c, c)
        return (1 - f) * h + f * c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emb", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--proxies", default="", help="comma-separated proxy names (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    proxies = [p for p in args.proxies.split(",") if p] or None

    corpus = load_ptb()  # or zeronas.data.corpus.load_corpus("my_text_folder"), or a 1-D tensor of token ids
    vocab = len(corpus.vocab)
    config = zeronas.ScoringConfig(seed=args.seed)  # probe batch 10 x 35 of PTB training text; --device: device=
    torch.manual_seed(args.seed)

    # found by the built-in adapter: the nn.Embedding, the nn.LSTM modules in order, the decoder nn.Linear
    lstm_model = LSTMLanguageModel(vocab, args.emb, args.hidden)

    cells = [MinimalGatedCell(args.emb, args.hidden), MinimalGatedCell(args.hidden, args.emb)]
    own = zeronas.cell_lm(nn.Embedding(vocab, args.emb), cells, nn.Linear(args.emb, vocab))

    results = {"nn.LSTM LM": zeronas.score_model(lstm_model, proxies, tokens=corpus, config=config),
               "own cell LM": zeronas.score_model(own, proxies, tokens=corpus, config=config)}
    names = list(next(iter(results.values())))
    print(f"{'proxy':16s}" + "".join(f"{label:>28s}" for label in results))
    for name in names:
        cells_out = []
        for scores in results.values():
            s = scores[name]
            cells_out.append(f"{s.value:>28.6g}" if s.ok else f"{s.status:>28s}")
        print(f"{name:16s}" + "".join(cells_out))
    for label, scores in results.items():
        for s in scores.values():
            if not s.ok:
                print(f"{label}: {s.proxy}: {s.status}: {s.message}")


if __name__ == "__main__":
    main()
