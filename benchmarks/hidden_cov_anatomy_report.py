"""Figures and tables of docs/findings.md, "Why the LSTMs sit in the middle" (see hidden_cov_anatomy.py).

Reads the per-cell spectra and features that ``hidden_cov_anatomy.py collect`` wrote, the store (every other
proxy's scores) and scores the reference cells itself (a few seconds each). Writes ``spectra.png``,
``repeats.png``, ``ranks.png`` and ``anatomy.md`` (the tables) into the output folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from zeronas.bench.nbnlp import Benchmark
from zeronas.core.spec import spec_proxies
from zeronas.metrics import collect, proxy_metrics, targets_from_architectures
from zeronas.proxies import ScoringConfig
from zeronas.proxies.registry import proxy_revisions
from zeronas.proxies.runner import score_cell
from zeronas.store import open_store

K = 1e-5
EPS = 1e-8
BAND = 1e-2  # the near-null band is [EPS, BAND)
SHARED = 260  # null directions every cell has at the default config (see zeronas.proxies._hidden.shared_nulls)
REFS = ("lstm", "nb_lstm", "gru", "nb_gru", "rnn")
LABELS = {"lstm": "LSTM", "nb_lstm": "NB-NLP LSTM (1000001)", "gru": "GRU", "nb_gru": "NB-NLP GRU (1000002)",
          "rnn": "tanh RNN"}
COLORS = {"lstm": "tab:red", "nb_lstm": "tab:orange", "gru": "tab:purple", "nb_gru": "tab:pink", "rnn": "tab:green"}
SPECS = ("hidden_cov", "hidden_cov!state_escape", "hidden_cov!hidden_rank", "hidden_cov!hidden_rank!state_escape",
         "state_rms!hidden_rank", "naswot!hidden_rank", "state_rms+naswot!hidden_rank",
         "hidden_rank+state_rms+state_memory!hidden_rank", "hidden_rank+state_rms+state_memory+naswot!hidden_rank",
         "hidden_rank+state_rms+state_memory!hidden_rank!state_escape",
         "hidden_rank+state_rms+state_memory+naswot!hidden_rank!state_escape")


def load(path: Path) -> dict[str, dict]:
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["id"]: r for r in rows if "error" not in r}


def hc(v: np.ndarray) -> float:
    return float(-(np.log(v + K) + 1.0 / (v + K)).sum())


def parts(spec: list[float] | None) -> dict[str, float]:
    """hidden_cov's eigenvalues cut in three: excess nulls (< EPS beyond the shared ones), the near-null band
    [EPS, BAND) and the bulk (>= BAND); each part's count and its share of the score."""
    if spec is None:
        return {}
    v = np.asarray(spec, dtype=float)
    null, band, bulk = v < EPS, (v >= EPS) & (v < BAND), v >= BAND
    return {"hidden_cov": hc(v), "excess_nulls": float(null.sum() - SHARED), "band_count": float(band.sum()),
            "band_cost": hc(v[band]), "bulk_cost": hc(v[bulk])}


def features(rows: dict[str, dict]) -> dict[str, dict[str, float]]:
    out = {}
    for cid, r in rows.items():
        f = parts(r.get("spec_real"))
        d = parts(r.get("spec_distinct"))
        if d:
            f["distinct_hidden_cov"] = d["hidden_cov"]
            f["distinct_band_count"] = d["band_count"]
        out[cid] = f
    return out


# Orientation: +1 when a higher value ranks a cell higher in the part's own reading
ORIENT = {"hidden_cov": 1, "excess_nulls": -1, "band_count": -1, "band_cost": 1, "bulk_cost": 1,
          "distinct_hidden_cov": 1, "distinct_band_count": -1}


def ranked_position(values: np.ndarray, x: float) -> int:
    """1 + the number of finite values strictly better than ``x`` (higher = better)."""
    finite = values[np.isfinite(values)]
    return int(1 + (finite > x).sum())


def rank_text(values: np.ndarray, x: float) -> str:
    """The rank of ``x`` among ``values`` and itself, as a range when it ties with others."""
    finite = values[np.isfinite(values)]
    first, ties = int(1 + (finite > x).sum()), int((finite == x).sum())
    return f"{first:,}" if ties == 0 else f"{first:,}-{first + ties:,} (tied)"


def table_parts(feats: dict, bench: Benchmark) -> list[str]:
    ids = [a.canonical_id for a in bench]
    loss = np.array([np.nan if a.diverged else a.mean_test_loss for a in bench])
    trained = np.isfinite(loss)
    best = trained & (loss <= np.nanquantile(loss, 0.01))
    healthy = np.array([feats[i].get("excess_nulls") == 0 for i in ids])
    lines = ["| part of `hidden_cov` | Kendall τ (trained) | τ among cells with no excess null | "
             + " | ".join(LABELS[r] for r in REFS) + " | best 1%: median rank |", "|---|---:|---:|"
             + "---:|" * len(REFS) + "---:|"]
    for name, sign in ORIENT.items():
        v = sign * np.array([feats[i].get(name, np.nan) for i in ids], dtype=float)
        ok = np.isfinite(v) & trained
        tau = stats.kendalltau(v[ok], -loss[ok]).statistic
        tau_h = stats.kendalltau(v[ok & healthy], -loss[ok & healthy]).statistic
        refs = [rank_text(v, sign * feats[r][name]) for r in REFS]
        med = np.median([ranked_position(v, x) for x in v[best & np.isfinite(v)]])
        n = int(np.isfinite(v).sum()) + 1
        tau_h_text = "(constant)" if np.isnan(tau_h) else f"{tau_h:+.3f}"
        lines.append(f"| `{name}` | {tau:+.3f} | {tau_h_text} | " + " | ".join(f"{r} of {n:,}" for r in refs)
                     + f" | {med:,.0f} |")
    return lines


def group_spectra(rows: dict, bench: Benchmark, key: str) -> dict[str, np.ndarray]:
    """Median spectrum (descending) of the best 1%, of the other trained cells, of the diverged cells."""
    loss = {a.canonical_id: (None if a.diverged else a.mean_test_loss) for a in bench}
    cut = np.quantile([v for v in loss.values() if v is not None], 0.01)
    groups: dict[str, list] = {"best 1%": [], "other trained": [], "diverged": []}
    for cid, l in loss.items():
        s = rows.get(cid, {}).get(key)
        if s is None:
            continue
        g = "diverged" if l is None else ("best 1%" if l <= cut else "other trained")
        groups[g].append(np.sort(np.asarray(s))[::-1])
    return {g: np.median(np.array(v), axis=0) for g, v in groups.items() if v}


def fig_spectra(rows: dict, bench: Benchmark, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    for ax, key, title in zip(fig.subplots(1, 2, sharey=True), ("spec_real", "spec_distinct"),
                              ("probe of real PTB text (199 distinct tokens in 350)", "probe of 350 distinct tokens")):
        for g, med in group_spectra(rows, bench, key).items():
            ax.plot(np.arange(1, len(med) + 1), np.clip(med, 1e-16, None), color="0.5",
                    ls={"best 1%": "-", "other trained": "--", "diverged": ":"}[g], lw=2, label=f"median, {g}")
        for r in REFS[:4] + ("rnn",):
            s = np.sort(np.asarray(rows[r][key]))[::-1]
            ax.plot(np.arange(1, len(s) + 1), np.clip(s, 1e-16, None), color=COLORS[r], lw=1, label=LABELS[r])
        ax.axhline(EPS, color="k", lw=0.5)
        ax.axhline(BAND, color="k", lw=0.5, ls="--")
        ax.axvline(600 - SHARED, color="k", lw=0.5, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(1e-15, 1e3)
        ax.set_xlim(150, 360)
        ax.set_xlabel("eigenvalue index (descending)")
        ax.set_title(title, fontsize=9)
    fig.axes[0].set_ylabel("eigenvalue of the layer-1 unit correlation")
    fig.axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("The small end of hidden_cov's spectrum: the near-null band [1e-8, 1e-2) between the horizontal "
                 "lines; right of the dotted line, the 260 nulls every cell has", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def fig_repeats(feats: dict, bench: Benchmark, path: Path) -> None:
    """Near-null band count on the real probe against the distinct-token probe, coloured by test ppl."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    pts = [(feats[a.canonical_id].get("band_count"), feats[a.canonical_id].get("distinct_band_count"), a.test_ppl)
           for a in bench if not a.diverged and feats[a.canonical_id].get("excess_nulls") == 0]
    x, y, ppl = (np.array(v, dtype=float) for v in zip(*pts))
    sc = ax.scatter(x, y, c=np.log(np.clip(ppl, None, 400)), s=6, cmap="viridis_r")
    fig.colorbar(sc, ax=ax, label="log test ppl (trained cells with no excess null)")
    for r in REFS:
        ax.scatter([feats[r]["band_count"]], [feats[r]["distinct_band_count"]], color=COLORS[r], s=60, marker="*",
                   label=LABELS[r], edgecolor="k", lw=0.5)
    ax.plot([0, 340], [0, 340], color="k", lw=0.5)
    ax.set_xlabel("eigenvalues in [1e-8, 1e-2): real PTB probe")
    ax.set_ylabel("eigenvalues in [1e-8, 1e-2): probe of 350 distinct tokens")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def reference_scores(proxies: list[str]) -> dict[str, dict]:
    """The reference cells scored now at the default config (they are not in the benchmark)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from hidden_cov_anatomy import reference_cells

    return {name: score_cell(cell, proxies) for name, cell in reference_cells() if name in REFS}


def spec_positions(spec: str, table: dict, targets: dict, ref_scores: dict) -> tuple[np.ndarray, dict[str, int]]:
    """The spec's values over the benchmark cells (NaN = failed), and each reference's rank when it is added to
    them (1 + the cells ranked strictly above it; a rank sum is recomputed with the reference in)."""
    data = collect(spec, table, targets)
    values = np.array([np.nan if v is None else v for v in data.values], dtype=float)
    ranks = {}
    for name, scores in ref_scores.items():
        with_ref = dict(table, **{name: scores})
        d = collect(spec, with_ref, dict(targets, **{name: None}))
        v = np.array([np.nan if x is None else x for x in d.values], dtype=float)
        ranks[name] = ranked_position(v[:-1], v[-1]) if math.isfinite(v[-1]) else -1
    return values, ranks


def best_in_top(values: np.ndarray, losses: np.ndarray, share: float, top: float = 0.1) -> tuple[int, int]:
    """How many of the best ``share`` of trained cells are among the spec's top ``top`` of its scored cells
    (ties broken by a seeded permutation, as the metrics' picks are)."""
    trained = np.isfinite(losses)
    best = trained & (losses <= np.nanquantile(losses, share))
    ok = np.flatnonzero(np.isfinite(values))
    order = ok[np.lexsort((np.random.default_rng(0).random(len(ok)), -values[ok]))]
    chosen = order[:math.ceil(top * len(ok))]
    return int(best[chosen].sum()), int(best.sum())


def table_specs(store: str, bench: Benchmark) -> tuple[list[str], dict]:
    members = sorted({m for s in SPECS for m in spec_proxies(s)})
    with open_store(f"sqlite:///{store}" if "://" not in store else store, read_only=True) as st:
        table = st.scores_table(ScoringConfig(), members, revisions=proxy_revisions(members))
    archs = [a for a in bench if a.canonical_id in table]
    targets = targets_from_architectures(archs)
    losses = np.array([np.nan if targets[a.canonical_id] is None else targets[a.canonical_id] for a in archs])
    refs = reference_scores(members)
    lines = ["| spec | Kendall τ [95% CI] | τ best 10% | divergence AUC | diverged in top 10 | best 1% in top 10% "
             "| best 5% in top 10% | " + " | ".join(LABELS[r] for r in REFS) + " |",
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(REFS)]
    positions = {}
    for spec in SPECS:
        m = proxy_metrics(collect(spec, table, targets), n_boot=1000, seed=0)
        values, ranks = spec_positions(spec, table, targets, refs)
        n = int(np.isfinite(values).sum()) + 1
        b1, n1 = best_in_top(values, losses, 0.01)
        b5, n5 = best_in_top(values, losses, 0.05)
        lo, hi = m.kendall_tau_ci
        lines.append(f"| `{spec}` | {m.kendall_tau:.3f} [{lo:.3f}, {hi:.3f}] | {m.tau_top10:+.3f} | "
                     f"{m.divergence_auc:.3f} | {m.top10_diverged} | {b1}/{n1} | {b5}/{n5} | "
                     + " | ".join(f"{ranks[r]:,} of {n:,}" for r in REFS) + " |")
        positions[spec] = (values, ranks, losses)
    return lines, positions


def fig_ranks(positions: dict, path: Path) -> None:
    """Where the references and the best 1% sit (percent of the ranking from the top) under each spec."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 0.45 * len(positions) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for row, (spec, (values, ranks, losses)) in enumerate(positions.items()):
        n = np.isfinite(values).sum() + 1
        best = np.isfinite(losses) & (losses <= np.nanquantile(losses, 0.01)) & np.isfinite(values)
        pct = [100 * ranked_position(values, x) / n for x in values[best]]
        ax.scatter(pct, [row] * len(pct), color="0.6", s=12, label="best 1% of the split" if row == 0 else None)
        for r in REFS:
            ax.scatter([100 * ranks[r] / n], [row], color=COLORS[r], s=40, marker="*",
                       label=LABELS[r] if row == 0 else None, zorder=3)
    ax.axvline(10, color="k", lw=0.5, ls="--")
    ax.set_yticks(range(len(positions)), [s.replace("!", " ! ") for s in positions], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("rank, % of the development split from the top (dashed: the goal, top 10%)")
    ax.legend(fontsize=7, loc="lower right")
    fig.subplots_adjust(left=0.38, right=0.98, bottom=0.12, top=0.98)
    fig.savefig(path, dpi=110)


def report(data: Path, out: Path, store: str, wt2: Path | None = None, curves: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    bench = Benchmark.nbnlp()
    rows = load(data)
    feats = features(rows)
    fig_spectra(rows, bench, out / "spectra.png")
    fig_repeats(feats, bench, out / "repeats.png")
    spec_lines, positions = table_specs(store, bench)
    fig_ranks(positions, out / "ranks.png")
    text = ["# The parts of hidden_cov, and the fixes tried", "",
            "Generated by `python benchmarks/hidden_cov_anatomy.py report` (see docs/findings.md).", "",
            "## Parts (spectra from `collect`)", "", *table_parts(feats, bench), "",
            "## Specs (scores from the store; references scored now)", "", *spec_lines, ""]
    if wt2 is not None and curves is not None:
        text += ["## WikiText-2: the logs' cells, WikiText-2 probe (from `collect --corpus wikitext-2`)", "",
                 *table_wt2(wt2, curves), ""]
    (out / "anatomy.md").write_text("\n".join(text))


def curve_losses(curves: Path) -> dict[str, float | None]:
    """Per canonical id, the mean over its logs of the final test loss of the WikiText-2 curve table (None: every
    log of the cell failed or diverged)."""
    import csv
    import gzip

    from zeronas.cells.recipe import parse_recipe

    last: dict[str, tuple[int, float | None, str]] = {}
    with gzip.open(curves, "rt", newline="") as fh:
        for line in csv.DictReader(fh):
            key, epoch = line["recepie_id"], int(line["epoch"])
            loss = float(line["test_loss"]) if line["status"] == "OK" and line["test_loss"] else None
            loss = loss if loss is not None and math.isfinite(loss) else None
            if key not in last or epoch > last[key][0]:
                last[key] = (epoch, loss, line["recipe"])
    by_cell: dict[str, list] = {}
    for _, loss, recipe in last.values():
        by_cell.setdefault(parse_recipe(recipe).canonical_id, []).append(loss)
    return {cid: (float(np.mean([x for x in v if x is not None])) if any(x is not None for x in v) else None)
            for cid, v in by_cell.items()}


def table_wt2(data: Path, curves: Path) -> list[str]:
    """The parts and the fix on the WikiText-2 logs' cells, WikiText-2 probe (no store: from ``collect``)."""
    rows = load(data)
    losses = curve_losses(curves)
    ids = [c for c in losses if c in rows]
    cols = {"hidden_cov": [], "hidden_rank": [], "state_rms": [], "state_memory": []}
    for c in ids:
        v = rows[c].get("spec_real")
        p = parts(v)
        cols["hidden_cov"].append(p.get("hidden_cov", np.nan))
        cols["hidden_rank"].append(-p["excess_nulls"] if p else np.nan)
        cols["state_rms"].append(-rows[c]["rms"] if v is not None else np.nan)
        cols["state_memory"].append(rows[c]["history"] if v is not None else np.nan)
    x = {k: np.array(v, dtype=float) for k, v in cols.items()}
    ok = np.all([np.isfinite(v) for v in x.values()], axis=0)
    fix = np.full(len(ids), np.nan)
    fix[ok] = sum(stats.rankdata(x[k][ok]) for k in ("hidden_rank", "state_rms", "state_memory"))
    fix[ok] += (x["hidden_rank"][ok] == 0) * len(ids)  # the gate: no excess null direction ranks first
    x["hidden_rank+state_rms+state_memory!hidden_rank"] = fix
    loss = np.array([np.nan if losses[c] is None else losses[c] for c in ids])
    trained = np.isfinite(loss)
    named = {"nb_rnn": "NB-NLP RNN (1000000)", "nb_lstm": "NB-NLP LSTM (1000001)", "nb_gru": "NB-NLP GRU (1000002)"}
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from hidden_cov_anatomy import reference_cells

    canonical = {name: cell.canonical_id for name, cell in reference_cells()}
    pos = {n: ids.index(canonical[n]) if canonical[n] in ids else None for n in named}
    lines = [f"{len(ids)} distinct cells of the WikiText-2 logs ({int(trained.sum())} trained); rank of the three "
             "NB-NLP example cells, which are among them (their WikiText-2 test ppl: "
             + ", ".join(f"{named[n]} {math.exp(loss[i]):.1f}" for n, i in pos.items() if i is not None) + ")", "",
             "| score (WikiText-2 probe) | Kendall τ (trained) | best 5% in top 10% | best 10% in top 20% | "
             + " | ".join(named.values()) + " |", "|---|---:|---:|---:|" + "---:|" * len(named)]
    others = np.ones(len(ids), dtype=bool)
    others[[i for i in pos.values() if i is not None]] = False  # the counts leave the example cells out
    for k, v in x.items():
        m = np.isfinite(v) & trained
        tau = stats.kendalltau(v[m], -loss[m]).statistic
        ranks = [rank_text(np.delete(v, i), v[i]) if i is not None and np.isfinite(v[i]) else "-" for i in pos.values()]
        b5, n5 = best_in_top(v[others], loss[others], 0.05, 0.1)
        b10, n10 = best_in_top(v[others], loss[others], 0.1, 0.2)
        lines.append(f"| `{k}` | {tau:+.3f} | {b5}/{n5} | {b10}/{n10} | " + " | ".join(ranks) + " |")
    return lines
