"""Training speed: tokens/second of the LSTM recipe (zeronas) beside the same model built from torch.nn.LSTM.

Both language models have the NAS-Bench-NLP sizes (embedding 400, layers 400 -> 600 -> 600 -> 400, tied decoder,
PTB vocabulary 10,000) and run the same training step on PTB: batch 20, fixed bptt 70, hidden state carried and
detached, cross-entropy, backward, gradient clipping 0.25, Adam. Dropouts are off in both (torch.nn.LSTM has no
DropConnect on its recurrent weights, so "the same dropouts" is not possible). The third figure is
:func:`zeronas.train.train` itself on the full protocol (all dropouts, AR/TAR, variable bptt), training steps only.

    python benchmarks/train_speed.py [--steps 10] [--warmup 1] [--threads N] [--device cpu] [--no-protocol]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from zeronas.cells.reference import reference_cell
from zeronas.data.corpus import batchify, get_batch, load_ptb
from zeronas.models.lm import ModelConfig, build_model, detach_state
from zeronas.train import TrainConfig, train

EMB, HID, LAYERS = 400, 600, 3


class TorchLSTMLM(nn.Module):
    """Embedding -> 3 torch.nn.LSTM layers (400 -> 600 -> 600 -> 400) -> tied decoder, no dropout."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, EMB)
        sizes = [(EMB, HID), (HID, HID), (HID, EMB)]
        self.layers = nn.ModuleList(nn.LSTM(i, o) for i, o in sizes)
        self.decoder = nn.Linear(EMB, vocab_size)
        self.decoder.weight = self.encoder.weight
        self.vocab_size = vocab_size

    def init_hidden(self, batch_size: int):
        ref = self.encoder.weight
        return [(ref.new_zeros(1, batch_size, layer.hidden_size), ref.new_zeros(1, batch_size, layer.hidden_size))
                for layer in self.layers]

    def forward(self, tokens: torch.Tensor, hidden):
        out = self.encoder(tokens)
        new_hidden = []
        for layer, h in zip(self.layers, hidden):
            out, h = layer(out, h)
            new_hidden.append(h)
        return self.decoder(out), new_hidden


def tokens_per_second(model: nn.Module, source: torch.Tensor, steps: int, warmup: int, bptt: int) -> float:
    """Run warmup + steps training steps over consecutive windows; tokens/s over the timed steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1.2e-6)
    params = list(model.parameters())
    model.train()
    hidden = model.init_hidden(source.size(1))
    tokens = 0
    start = 0.0
    # One thread on the CPU: the process's CPU time, robust to other jobs on a shared machine; else wall time.
    clock = time.process_time if (source.device.type == "cpu" and torch.get_num_threads() == 1) else time.perf_counter
    for step in range(warmup + steps):
        if step == warmup:
            start = clock()
            tokens = 0
        i = (step * bptt) % (source.size(0) - bptt - 1)
        data, targets = get_batch(source, i, bptt)
        hidden = detach_state(hidden)
        optimizer.zero_grad(set_to_none=True)
        logits, hidden = model(data, hidden)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.25)
        optimizer.step()
        tokens += targets.numel()
    if source.device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (clock() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--bptt", type=int, default=70)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-protocol", action="store_true", help="skip the zeronas.train.train figure")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    corpus = load_ptb()
    source = batchify(corpus.train, args.batch).to(device)
    print(f"batch {args.batch}, bptt {args.bptt}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"device {device}, threads {torch.get_num_threads()}")

    torch.manual_seed(0)
    base = tokens_per_second(TorchLSTMLM(corpus.vocab_size).to(device), source, args.steps, args.warmup, args.bptt)
    print(f"torch.nn.LSTM model:        {base:10,.0f} tokens/s")
    ours_model = build_model(reference_cell("lstm"), corpus.vocab_size, seed=0,
                             config=ModelConfig().without_dropout()).to(device)
    ours = tokens_per_second(ours_model, source, args.steps, args.warmup, args.bptt)
    print(f"zeronas LSTM recipe:        {ours:10,.0f} tokens/s = {ours / base:.2f}x torch.nn.LSTM")
    if not args.no_protocol:
        cfg = TrainConfig(epochs=1, max_steps=args.steps, batch_size=args.batch, bptt=args.bptt,
                          device=args.device, max_eval_tokens=2_000, eval_batch_size=10, test_batch_size=10)
        result = train(reference_cell("lstm"), cfg, corpus, progress=False)
        tps = result.tokens_per_second
        print(f"zeronas train() protocol:   {tps:10,.0f} tokens/s = {tps / base:.2f}x torch.nn.LSTM "
              "(dropouts, AR/TAR, variable bptt; first step included)")


if __name__ == "__main__":
    main()
