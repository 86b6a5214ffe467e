"""Compare two revisions of a proxy in a results store: same statuses, the same order of the cells, how far apart.

A proxy whose numerics change (not its formula) gets a new revision; every figure that depends only on how the
proxy orders the cells (Kendall tau, top-k picks, divergence ROC-AUC, gated rankings) is then unchanged when the
new revision orders every cell exactly as the old one. This script reads both revisions' rows of each named proxy
(the same config and seed) and reports, over the cells that have both: how many statuses differ, the number of
pairs the two revisions order differently (0 means the same order, ties included), and the largest relative
difference of the values. Nothing is written.

    python benchmarks/compare_revisions.py --store docs/results/nbnlp-dev-scores.db \\
        --proxies hidden_cov,hidden_cov_l2,hidden_cov_l3 --old 1 --new 2 [--config-hash HASH] [--json]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

import numpy as np


def _rows(db: sqlite3.Connection, proxy: str, revision: int, config_hash: str) -> dict[str, tuple[str, float | None]]:
    query = ("SELECT canonical_id, status, value FROM results WHERE proxy = ? AND revision = ? AND config_hash = ? "
             "AND seed = 0")
    return {cid: (status, value) for cid, status, value in db.execute(query, (proxy, revision, config_hash))}


def discordant_pairs(a: np.ndarray, b: np.ndarray) -> int:
    """Pairs of cells that ``a`` and ``b`` order differently (a tie in one and not the other counts)."""
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    count = 0
    for i in range(len(a) - 1):
        da = np.sign(a[i + 1:] - a[i])
        db = np.sign(b[i + 1:] - b[i])
        count += int(np.count_nonzero(da != db))
    return count


def compare(db: sqlite3.Connection, proxy: str, old: int, new: int, config_hash: str) -> dict:
    before, after = _rows(db, proxy, old, config_hash), _rows(db, proxy, new, config_hash)
    both = sorted(set(before) & set(after))
    status_changed = [cid for cid in both if before[cid][0] != after[cid][0]]
    ok = [cid for cid in both if before[cid][0] == after[cid][0] == "ok"]
    a = np.array([before[cid][1] for cid in ok], dtype=np.float64)
    b = np.array([after[cid][1] for cid in ok], dtype=np.float64)
    rel = float(np.max(np.abs(b - a) / np.maximum(np.abs(a), 1e-300))) if ok else 0.0
    return {"proxy": proxy, "cells_with_both": len(both), "only_old": len(set(before) - set(after)),
            "only_new": len(set(after) - set(before)), "status_changed": len(status_changed), "ok_in_both": len(ok),
            "discordant_pairs": discordant_pairs(a, b), "largest_relative_difference": rel}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="path of a SQLite results store")
    ap.add_argument("--proxies", required=True, help="comma-separated proxy names")
    ap.add_argument("--old", type=int, default=1)
    ap.add_argument("--new", type=int, default=2)
    ap.add_argument("--config-hash", default=None, help="which stored config (default: the only one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    db = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    hashes = [h for (h,) in db.execute("SELECT config_hash FROM configs")]
    if args.config_hash is None and len(hashes) != 1:
        ap.error(f"the store holds {len(hashes)} configs ({', '.join(hashes)}): name one with --config-hash")
    config_hash = args.config_hash or hashes[0]
    results = [compare(db, p.strip(), args.old, args.new, config_hash) for p in args.proxies.split(",") if p.strip()]
    if args.json:
        print(json.dumps({"store": args.store, "config_hash": config_hash, "old": args.old, "new": args.new,
                          "proxies": results}, indent=1))
    else:
        print(f"config {config_hash}: revision {args.old} against {args.new}")
        for r in results:
            print(f"{r['proxy']:16s} {r['cells_with_both']:5d} cells in both ({r['only_old']} only old, "
                  f"{r['only_new']} only new), {r['status_changed']} status changed, {r['discordant_pairs']} "
                  f"pairs ordered differently, largest relative difference {r['largest_relative_difference']:.1e}")
    return 0 if all(r["status_changed"] == 0 and r["discordant_pairs"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
