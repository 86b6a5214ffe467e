"""The evaluation report: a metrics table for the terminal, and a folder with a self-contained HTML page (plots
embedded as base64 PNG), a markdown page (plots as PNG files beside it) and the metrics as JSON.

Plots are drawn with matplotlib's Agg canvas on a private :class:`~matplotlib.figure.Figure` (no pyplot), so writing
a report neither needs a display nor changes the global backend of the caller.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from zeronas.metrics import ProxyData, ProxyMetrics, results_to_dict

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
JSON_FILE = "metrics.json"
META_ORDER = ("command", "ground_truth", "n_archs", "config_hash", "config", "date", "version")
DASH = "—"

# (header, function of the metrics) for the tables
COLUMNS: tuple[tuple[str, str], ...] = (
    ("proxy", "proxy"), ("dir", "direction"), ("Kendall τ [95% CI]", "tau"), ("Spearman ρ [95% CI]", "rho"),
    ("τ top-10%", "tau_top"), ("P@k", "precision"), ("top-1 ppl", "top1"), ("top-10 mean ppl", "top10"),
    ("div. AUC", "auc"), ("n", "n"), ("failed", "n_failed"), ("s/arch", "seconds"),
)

DEFINITIONS = (
    ("Direction", "every metric uses the proxy's registered direction (↑ higher is better, ↓ lower is better), "
                  "never the absolute value: a positive τ means the proxy ranks better cells higher."),
    ("Kendall τ, Spearman ρ", "τ-b and ρ between the oriented score and the negated mean test loss, over the cells "
                               "with an ok score that did not diverge (n)."),
    ("τ top-10%", "Kendall τ-b within the best 10% (top_fraction in metrics.json) of those cells by true test "
                  "loss."),
    ("P@k", "of the proxy's top k = ceil(top_fraction × the scored cells), the fraction that are among the k scored cells "
            "with the lowest true loss (diverged cells count as misses)."),
    ("top-1 ppl", "true test perplexity of the proxy's best cell among all cells with an ok score; inf when that "
                  "cell diverged."),
    ("top-10 mean ppl", "mean true perplexity of the proxy's 10 best cells; inf if any diverged (their count in "
                        "parentheses)."),
    ("div. AUC", "ROC-AUC of the score for telling cells that trained from diverged ones (1 = a better score "
                 "always means it trained, 0.5 = no information)."),
    ("95% CI", "percentile bootstrap over cells, seeded."),
    ("failed", "cells whose score is not ok (error, NaN, inf, out of memory, timeout, missing): excluded from every "
               "metric; in parentheses, how many of them diverged in training."),
    ("s/arch", "mean scoring seconds per cell, ok and failed scores alike (a combination: the sum of its members')."),
    ("Combinations", "a+b+c sums each member's rank (in its own direction) over the cells every member scored."),
)


# ----------------------------------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------------------------------

def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return DASH
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def _with_ci(x: float | None, ci: tuple[float, float] | None) -> str:
    if x is None:
        return DASH
    return f"{x:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci is not None else f"{x:.3f}"


def _ppl(x: float | None, diverged: bool = True) -> str:
    if x is None:
        return DASH
    if math.isinf(x):  # a diverged pick, or a finite loss too large for exp (e.g. 1e308 nats)
        return "inf (diverged)" if diverged else "inf (loss too large)"
    return f"{x:.1f}"


def _cells(m: ProxyMetrics) -> dict[str, str]:
    top10 = _num(m.top10_mean_ppl, 1)
    if m.top10_diverged:
        top10 += f" ({m.top10_diverged} div.)"
    return {
        "proxy": m.proxy,
        "direction": "↑" if m.higher_is_better else "↓",
        "tau": _with_ci(m.kendall_tau, m.kendall_tau_ci),
        "rho": _with_ci(m.spearman, m.spearman_ci),
        "tau_top": _with_ci(m.tau_top10, m.tau_top10_ci),
        "precision": DASH if m.precision_at_k is None else f"{m.precision_at_k:.3f} (k={m.k})",
        "top1": _ppl(m.top1_ppl, m.top1_diverged),
        "top10": top10,
        "auc": _with_ci(m.divergence_auc, m.divergence_auc_ci),
        "n": str(m.n),
        "n_failed": f"{m.n_failed} ({m.n_failed_diverged} div.)" if m.n_failed else "0",
        "seconds": DASH if m.seconds_per_arch is None else f"{m.seconds_per_arch:.3g}",
    }


def table_rows(results: Mapping[str, ProxyMetrics]) -> tuple[list[str], list[list[str]]]:
    """Headers and one row of formatted cells per proxy, in the given order."""
    headers = [h for h, _ in COLUMNS]
    rows = []
    for m in results.values():
        cells = _cells(m)
        rows.append([cells[key] for _, key in COLUMNS])
    return headers, rows


def format_table(results: Mapping[str, ProxyMetrics]) -> str:
    """A plain-text table for the terminal (columns aligned with spaces)."""
    headers, rows = table_rows(results)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    right = {i for i, (_, key) in enumerate(COLUMNS) if key in ("n", "n_failed", "seconds")}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(s.rstrip() for s in out)


def rich_table(results: Mapping[str, ProxyMetrics], title: str | None = None) -> Any:
    """The same table as a :class:`rich.table.Table` for a console."""
    from rich.table import Table

    headers, rows = table_rows(results)
    table = Table(title=title)
    for (_, key), h in zip(COLUMNS, headers):
        table.add_column(h, justify="right" if key in ("n", "n_failed", "seconds") else "left",
                         no_wrap=key == "proxy")
    for r in rows:
        table.add_row(*r)
    return table


def markdown_table(results: Mapping[str, ProxyMetrics]) -> str:
    headers, rows = table_rows(results)

    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def html_table(results: Mapping[str, ProxyMetrics]) -> str:
    headers, rows = table_rows(results)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# ----------------------------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScatterPoints:
    """What a scatter plot shows: trained cells at their perplexity, diverged cells on a band above them."""

    x_trained: np.ndarray
    ppl_trained: np.ndarray
    x_diverged: np.ndarray
    diverged_y: float  # the y of the diverged band, above every trained cell
    n_failed: int
    pick: tuple[float, float] | None  # the proxy's top-1 pick (x, y)


def scatter_points(data: ProxyData, metrics: ProxyMetrics | None = None) -> ScatterPoints:
    """The points of one proxy's plot (cells with a failed score are not shown, only counted)."""
    xs_t, ys_t, xs_d = [], [], []
    pick_x: float | None = None
    pick_diverged = False
    pick_ppl = math.nan
    for aid, v, loss in zip(data.arch_ids, data.values, data.losses):
        if v is None:
            continue
        if loss is None or not math.isfinite(loss):
            xs_d.append(v)
        else:
            xs_t.append(v)
            ys_t.append(math.exp(min(loss, 709.0)))
        if metrics is not None and aid == metrics.top1_arch:
            pick_x, pick_diverged = v, loss is None
            pick_ppl = math.nan if loss is None else math.exp(min(loss, 709.0))
    top = max(ys_t) if ys_t else 1.0
    band = top * 1.6
    pick = None if pick_x is None else (pick_x, band if pick_diverged else pick_ppl)
    n_failed = sum(1 for v in data.values if v is None)
    return ScatterPoints(np.array(xs_t, float), np.array(ys_t, float), np.array(xs_d, float), band, n_failed, pick)


def _minor_label(v: float, _: Any) -> str:
    """Label the 2x and 5x minor ticks of a log axis (plain numbers: 200, not 2x10^2)."""
    if v <= 0:
        return ""
    lead = round(v / 10 ** math.floor(math.log10(v)), 6)
    return f"{v:g}" if lead in (2.0, 5.0) else ""


def scatter_png(data: ProxyData, metrics: ProxyMetrics | None = None, dpi: int = 100) -> bytes:
    """One proxy's scatter plot (value vs true test perplexity, log y) as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    pts = scatter_points(data, metrics)
    fig = Figure(figsize=(5.6, 4.5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(pts.x_trained, pts.ppl_trained, s=7, alpha=0.45, color="tab:blue", linewidths=0,
               label=f"trained ({len(pts.x_trained)})", rasterized=True)
    if len(pts.x_diverged):
        ax.scatter(pts.x_diverged, np.full(len(pts.x_diverged), pts.diverged_y), s=16, marker="x",
                   color="tab:red", linewidths=0.8, alpha=0.7, label=f"diverged ({len(pts.x_diverged)})")
        ax.axhline(pts.diverged_y / 1.25, color="tab:red", lw=0.6, ls=":")
    if pts.pick is not None:
        ax.scatter([pts.pick[0]], [pts.pick[1]], s=120, marker="*", color="gold", edgecolors="black",
                   linewidths=0.7, zorder=5, label="top-1 pick")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    xs = np.concatenate([pts.x_trained, pts.x_diverged])
    if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 1e3:
        ax.set_xscale("log")
    what = "rank sum" if data.members else data.proxy
    ax.set_xlabel(f"{what} ({'higher' if data.higher_is_better else 'lower'} is better)")
    ax.set_ylabel("true test perplexity (diverged on top)")
    title = data.proxy
    if metrics is not None and metrics.kendall_tau is not None:
        title += f"   τ = {metrics.kendall_tau:.3f}"
    sub = f"{pts.n_failed} failed score{'s' if pts.n_failed != 1 else ''} not shown" if pts.n_failed \
        else "no failed scores"
    ax.set_title(f"{title}\n{sub}", fontsize=10)
    if len(xs):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    json: Path
    plots: dict[str, Path]


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._") or "proxy"
    slug, i = base, 2
    while slug.lower() in taken:
        slug, i = f"{base}_{i}", i + 1
    taken.add(slug.lower())
    return slug


def _meta_items(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in META_ORDER if k in meta] + [k for k in meta if k not in META_ORDER]
    items = []
    for k in keys:
        v = meta[k]
        text = v if isinstance(v, str) else json.dumps(v, indent=2, sort_keys=True, default=str)
        items.append((k, text))
    return items


def check_report_dir(directory: str | Path) -> Path:
    """Create the report folder now (or check the existing one) and make sure it can be written, so that a bad
    ``--report`` fails before any scoring instead of after it; :class:`ReportError` names the path."""
    d = Path(directory)
    try:  # the report names its own files: a path that is not text would fail when writing, after the scoring
        str(d).encode("utf-8")
    except UnicodeEncodeError:
        raise ReportError(f"--report {str(d).encode('utf-8', 'backslashreplace').decode()}: the path is not valid "
                          "UTF-8 text; choose another") from None
    if d.exists() and not d.is_dir():
        raise ReportError(f"--report {d}: exists and is not a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--report {d}: cannot create the folder: {exc.strerror or exc}") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise ReportError(f"--report {d}: the folder is not writable")
    return d


class ReportError(ValueError):
    """A report that cannot be written where asked."""


def write_report(directory: str | Path, results: Mapping[str, ProxyMetrics],
                 per_arch_data: Mapping[str, ProxyData], meta: Mapping[str, Any]) -> ReportFiles:
    """Write ``report.html`` (self-contained: the plots are base64 data URIs), ``report.md`` (table, plots as
    ``scatter_<proxy>.png`` beside it), the PNGs and ``metrics.json`` into ``directory`` (created if needed).

    ``results`` and ``per_arch_data`` are keyed by proxy (or combination) name; a proxy without per-architecture
    data gets a table row but no plot. ``meta`` holds the command, ground truth, config and its hash, date, n_archs,
    package version (any other keys are shown too)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    plots: dict[str, Path] = {}
    images: dict[str, str] = {}
    for name, m in results.items():
        data = per_arch_data.get(name)
        if data is None:
            continue
        png = scatter_png(data, m)
        path = out / f"scatter_{_slug(name, taken)}.png"
        path.write_bytes(png)
        plots[name] = path
        images[name] = base64.b64encode(png).decode("ascii")

    json_path = out / JSON_FILE
    json_path.write_text(json.dumps({"meta": dict(meta), "results": results_to_dict(results, json_safe=True)},
                                    indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8")
    md_path = out / MARKDOWN_FILE
    md_path.write_text(_markdown(results, plots, meta), encoding="utf-8")
    html_path = out / HTML_FILE
    html_path.write_text(_html(results, images, meta), encoding="utf-8")
    return ReportFiles(html_path, md_path, json_path, plots)


def _md_code(text: str) -> str:
    """``text`` as a markdown code span, fenced by more backticks than it holds in a row."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _markdown(results: Mapping[str, ProxyMetrics], plots: Mapping[str, Path], meta: Mapping[str, Any]) -> str:
    lines = ["# zeronas evaluation report", ""]
    for k, v in _meta_items(meta):
        if "\n" in v:
            lines += [f"- **{k}**:", "", "```json", v, "```", ""]
        else:
            lines.append(f"- **{k}**: {_md_code(v)}")  # as code: a file name is never read as HTML or markdown
    lines += ["", "## Metrics", "", markdown_table(results), "", "## Definitions", ""]
    lines += [f"- **{term}**: {text}" for term, text in DEFINITIONS]
    lines += ["", "## Proxy value vs true test perplexity", ""]
    for name, m in results.items():
        if name in plots:
            lines += [f"### {name}", "", f"![{name}]({plots[name].name})", ""]
        else:
            lines += [f"### {name}", "", "(no per-architecture data: no plot)", ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.metrics td:nth-child(n+10) { text-align: right; }
pre { margin: 0; font-size: 0.85em; white-space: pre-wrap; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figcaption { font-size: 0.85em; color: #555; }
dt { font-weight: 600; } dd { margin: 0 0 0.4em 1.5em; }
"""


def _html(results: Mapping[str, ProxyMetrics], images: Mapping[str, str], meta: Mapping[str, Any]) -> str:
    meta_rows = "".join(f"<tr><th>{html.escape(k)}</th><td><pre>{html.escape(v)}</pre></td></tr>"
                        for k, v in _meta_items(meta))
    figures = []
    for name in results:
        if name in images:
            figures.append(f'<figure><img alt="{html.escape(name, quote=True)}" '
                           f'src="data:image/png;base64,{images[name]}"><figcaption>{html.escape(name)}'
                           f"</figcaption></figure>")
    defs = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>" for t, d in DEFINITIONS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>zeronas evaluation report</title>"
        f"<style>{_CSS}</style></head><body>\n"
        "<h1>zeronas evaluation report</h1>\n"
        f"<table class=\"meta\">{meta_rows}</table>\n"
        f"<h2>Metrics</h2>\n{html_table(results)}\n"
        f"<h2>Definitions</h2>\n<dl>{defs}</dl>\n"
        "<h2>Proxy value vs true test perplexity</h2>\n"
        f"<div class=\"plots\">{''.join(figures)}</div>\n"
        "</body></html>\n"
    )


__all__: Sequence[str] = ["ReportFiles", "format_table", "markdown_table", "rich_table", "scatter_png",
                          "scatter_points", "table_rows", "write_report"]
