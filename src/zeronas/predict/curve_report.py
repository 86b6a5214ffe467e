"""The learning curve as a text table, a markdown file, JSON and a PNG plot (matplotlib's Agg canvas, no pyplot)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Mapping

COLUMNS = (("labels", "labels"), ("n_train", "fitted on"), ("kendall_tau", "tau"), ("tau_top10", "tau top10%"),
           ("kendall_tau_quality", "tau(loss)"), ("tau_top10_quality", "top10%(loss)"),
           ("divergence_auc", "AUC(score)"), ("auc_p_diverge", "AUC(p_div)"), ("top1_ppl_median", "top-1 ppl"),
           ("top1_percentile", "top-1 pct"), ("top10_diverged", "top10 div"))
PANELS = (("kendall_tau", "Kendall tau over trained cells (dotted: the loss prediction)"),
          ("tau_top10", "tau within the best 10% (dotted: the loss prediction)"),
          ("divergence_auc", "divergence ROC-AUC (dotted: of P(diverge))"),
          ("top1_percentile", "top-1 pick: share of held-out cells better"))


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key in ("labels",):
        return str(v)
    if key == "n_train":
        return f"{v:.0f}"
    if key == "top1_ppl_median":
        return f"{v:.1f}"
    if key == "top1_percentile":
        return f"{100 * v:.1f}%"
    if key == "top10_diverged":
        return f"{v:.1f}"
    return f"{v:+.3f}" if key.startswith(("kendall_tau", "tau_top10")) else f"{v:.3f}"


def rows(curve: Mapping[str, Any]) -> list[list[str]]:
    """One row per (method, labels): the predictor(s) first, then the label-free baselines."""
    out = []
    for method, points in curve["methods"].items():
        for p in points:
            out.append([method] + [_fmt(k, p.get(k)) for k, _ in COLUMNS])
    return out


def text_table(curve: Mapping[str, Any]) -> str:
    header = ["method"] + [title for _, title in COLUMNS]
    body = rows(curve)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + body)


def markdown(curve: Mapping[str, Any]) -> str:
    header = ["method"] + [title for _, title in COLUMNS]
    lines = ["# Predictor learning curve", "", f"Command: `{curve.get('command', '')}`", "",
             f"Ground truth: {curve['ground_truth']} ({curve['n_cells']} cells, {curve['n_diverged']} diverged); "
             f"scoring config {curve['config_hash']}; {curve['repeats']} repeats per point (`all`: "
             f"{curve['folds']}-fold cross-validation); every figure on cells outside the fitted sample.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(curve)]
    lines += ["", "Columns: *labels* asked for and *fitted on* (the mean size of the fitted sample; `all` = 4/5 of the "
              "cells, each fold in turn); *tau* and *tau top10%*: Kendall tau of the ranking score over the held-out "
              "cells that trained, and within the best 10% of them; *tau(loss)*, *top10%(loss)*: the same for the "
              "loss prediction alone (the score without its divergence factor); *AUC(score)*: divergence ROC-AUC of "
              "the ranking score; *AUC(p_div)*: of the predicted probability of divergence; *top-1 ppl*: median test "
              "perplexity of the top-1 pick (a diverged pick counts as infinite); *top-1 pct*: mean share of "
              "held-out trained cells better than the pick (100% if it diverged); *top10 div*: mean number of "
              "diverged cells among the top 10. Label-free baselines are measured on the same held-out cells."]
    return "\n".join(lines) + "\n\n![learning curve](curve.png)\n"


def curve_png(curve: Mapping[str, Any], dpi: int = 100) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    methods = curve["methods"]
    n_all = curve.get("n_cells", 0)
    # the second measure of a panel, drawn dotted for the predictors: the loss prediction's tau, P(diverge)'s AUC
    companions = {"kendall_tau": "kendall_tau_quality", "tau_top10": "tau_top10_quality",
                  "divergence_auc": "auc_p_diverge"}
    for ax, (key, title) in zip(axes.flat, PANELS):
        for i, (method, points) in enumerate(methods.items()):
            color = f"C{i % 10}"
            baseline = method in curve.get("baselines", [])
            for k, style in ((key, "-"), (companions.get(key), ":")):
                if k is None:
                    continue
                xs = [p["n_train"] for p in points if p.get("n_train") is not None and p.get(k) is not None]
                ys = [p[k] for p in points if p.get("n_train") is not None and p.get(k) is not None]
                if not xs:
                    continue
                if baseline:  # label-free: one level, drawn across the whole axis
                    ax.axhline(float(sum(ys) / len(ys)), color=color, linestyle="--", linewidth=1, label=method)
                else:
                    label = method if style == "-" else f"{method}: {'P(diverge)' if k == 'auc_p_diverge' else 'loss'}"
                    ax.plot(xs, ys, marker="o" if style == "-" else ".", linestyle=style, color=color, label=label)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"labelled cells fitted on (of {n_all})", fontsize=8)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_curve(directory: str | Path, curve: Mapping[str, Any]) -> list[Path]:
    """``curve.json``, ``curve.md`` and ``curve.png`` in ``directory`` (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = [d / "curve.json", d / "curve.md", d / "curve.png"]
    files[0].write_text(json.dumps(curve, indent=1) + "\n", encoding="utf-8")
    files[1].write_text(markdown(curve), encoding="utf-8")
    files[2].write_bytes(curve_png(curve))
    return files

