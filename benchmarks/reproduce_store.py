"""Recompute stored scores with the current code and compare them bit for bit.

A results store holds every score with the config that produced it. This script draws ``--n`` architectures
from the store (seeded), recomputes each of their stored proxies under the stored config, in this process, and
reports for each proxy how many recomputed scores are identical to the stored ones (same status; the same float64
value, bit for bit), and the largest relative difference otherwise. Nothing is written to the store.

    python benchmarks/reproduce_store.py [--store sqlite:///docs/results/nbnlp-dev-scores.db] [--n 20] [--seed 0]
        [--config-hash HASH] [--threads 1] [--proxies a,b] [--dump FILE]

``--dump`` writes what was recomputed (status and exact value per architecture and proxy): run this script with
another version's ``src`` first on ``PYTHONPATH`` and compare the two files to see whether two versions of the code
compute the same values bit for bit on this machine, whatever the machine that filled the store computed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import defaultdict
from pathlib import Path

import torch

from zeronas.cells.recipe import parse_recipe
from zeronas.proxies.registry import proxy_revisions
from zeronas.proxies.runner import score_cell
from zeronas.store import open_store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="sqlite:///docs/results/nbnlp-dev-scores.db")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config-hash", default=None, help="which stored config (default: the only one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--proxies", default="", help="comma-separated: only these stored proxies (default: all)")
    ap.add_argument("--dump", default="", help="also write every recomputed score to this JSON file (status and "
                                                "float.hex value per architecture and proxy), to compare two versions")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    with open_store(args.store, read_only=True) as store:
        configs = store.configs()
        if args.config_hash is None and len(configs) != 1:
            ap.error(f"the store holds {len(configs)} configs ({', '.join(configs)}): name one with --config-hash")
        chash = args.config_hash or next(iter(configs))
        if chash not in configs:
            ap.error(f"config {chash} is not in the store (it holds {', '.join(configs)})")
        config = configs[chash]
        wanted = [p for p in args.proxies.split(",") if p] or None
        table = store.scores_table(config, wanted, revisions=proxy_revisions(wanted))
        ids = sorted(table)
        random.Random(args.seed).shuffle(ids)
        chosen = ids[: args.n]
        recipes = {cid: store.recipe(cid) for cid in chosen}

    dumped: dict[str, dict[str, list]] = {}
    same: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    worst: dict[str, float] = defaultdict(float)
    for i, cid in enumerate(chosen, 1):
        stored = table[cid]
        fresh = score_cell(parse_recipe(recipes[cid], source=f"store {cid}"), list(stored), config)
        dumped[cid] = {p: [s.status, None if s.value is None else float(s.value).hex()] for p, s in fresh.items()}
        for proxy, old in stored.items():
            new = fresh[proxy]
            total[proxy] += 1
            if old.status == new.status and old.value == new.value:
                same[proxy] += 1
            elif old.value is not None and new.value is not None:
                rel = abs(new.value - old.value) / max(abs(old.value), 1e-300)
                worst[proxy] = max(worst[proxy], rel)
            else:
                worst[proxy] = math.inf  # a status changed
        print(f"[{i}/{len(chosen)}] {cid[:12]}", file=sys.stderr, flush=True)

    print(f"config {chash}, {len(chosen)} architectures drawn with seed {args.seed}")
    print(f"{'proxy':16s} {'identical':>10s} {'largest rel. diff':>18s}")
    for proxy in sorted(total):
        diff = "-" if proxy not in worst else ("status changed" if math.isinf(worst[proxy]) else f"{worst[proxy]:.2e}")
        print(f"{proxy:16s} {same[proxy]:>4d}/{total[proxy]:<5d} {diff:>18s}")
    print(f"all identical: {sum(same.values())}/{sum(total.values())}")
    if args.dump:
        Path(args.dump).write_text(json.dumps(dumped, indent=0, sort_keys=True) + "\n")
    return 0 if sum(same.values()) == sum(total.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
