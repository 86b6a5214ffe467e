"""Check that every published NAS-Bench-NLP parameter count equals the count of the model zeronas builds.

    python benchmarks/check_parameter_counts.py [--build N]

Counts come from Serianni & Kalita's RNN_parameters.csv (the real trained models). Every row is checked with
the closed-form count; ``--build N`` also builds N real models and counts their parameters.
"""

from __future__ import annotations

import argparse

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.bench.published import published_parameter_counts
from zeronas.cells.recipe import parse_recipe
from zeronas.models.lm import build_model, count_parameters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=int, default=20, help="also build this many models and count for real")
    args = ap.parse_args()
    recipes = {row["recepie_id"]: row["recipe"] for row in load_recipe_list()}
    cells = {}
    checked = mismatched = built = 0
    for rid, published in published_parameter_counts():
        cell = cells.get(rid) or cells.setdefault(rid, parse_recipe(recipes[rid]))
        ours = count_parameters(cell)
        if built < args.build:
            real = build_model(cell).num_parameters()
            assert real == ours, f"closed form {ours} != built model {real} for {rid}"
            built += 1
        checked += 1
        if ours != published:
            mismatched += 1
            print(f"MISMATCH recepie_id {rid}: published {published}, zeronas {ours}")
    print(f"{checked} runs checked ({len(cells)} recepie ids), {mismatched} mismatches, {built} models built")
    raise SystemExit(1 if mismatched else 0)


if __name__ == "__main__":
    main()
