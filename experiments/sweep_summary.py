"""The summary of a sweep: a CSV of every point, a Markdown table sorted by a metric (and the
mean and spread over seeds), and a plot of the metric against each swept parameter."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

from w2v_jax.evaluation import measures

if TYPE_CHECKING:
    from experiments.sweep import Point

METRICS = measures.MEASURES
DEFAULT_METRIC = "wordsim353_spearman"
_LOWER_IS_BETTER = {"final_loss"}


def write(points: list[Point], directory: Path, metric: str, name: str, command: str) -> list[dict]:
    """Write summary.csv, README.md (sweep ``name`` as ``command`` ran it) and <metric>.png;
    returns the rows (finished points)."""
    swept = sorted({name for p in points for name in p.overrides})
    rows = []
    for point in points:
        if point.finished:
            metrics = json.loads((point.workdir / "metrics.json").read_text())
            # NaN: diverged, or a benchmark left unscored (None)
            measured = {
                name: math.nan if value is None else value
                for name, value in measures.of_run(metrics).items()
            }
            rows.append(
                {
                    "point": point.workdir.name,
                    **point.overrides,
                    "status": status(metrics),
                    **measured,
                }
            )
    rows.sort(key=lambda row: _sort_key(row, metric))
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["point", *swept, "status", *METRICS], restval="")
        writer.writeheader()
        writer.writerows(rows)
    (directory / "README.md").write_text(markdown(name, command, rows, swept, metric, len(points)))
    plot(rows, [name for name in swept if name != "seed"], metric, directory / f"{metric}.png")
    return rows


def status(metrics: dict) -> str:
    """A finished point's run: "finished", or "diverged" where its loss turned non-finite (a
    point written before points wrote the main job's metrics.json said so in "status")."""
    diverged = metrics.get("diverged") or metrics.get("status") == "diverged"
    return "diverged" if diverged else "finished"


def over_seeds(rows: list[dict], swept: list[str], metric: str) -> list[dict]:
    """Rows grouped by every swept parameter but the seed: per metric the mean and standard
    deviation over the seeds (``{metric: (mean, sd)}``) and the count ``n``, best first."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple((name, row.get(name)) for name in swept if name != "seed")
        groups.setdefault(key, []).append(row)
    summary = []
    for key, members in groups.items():
        entry: dict[str, Any] = {**dict(key), "n": len(members)}
        for name in METRICS:
            entry[name] = _mean_and_sd([member[name] for member in members])
        summary.append(entry)
    summary.sort(key=lambda entry: _sort_key({metric: entry[metric][0]}, metric))
    return summary


_QUALITY = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy", "final_loss")


def markdown(
    name: str, command: str, rows: list[dict], swept: list[str], metric: str, total: int
) -> str:
    lines = [
        f"# Sweep {name}",
        "",
        f"`{command}`: {len(rows)} of {total} points finished, sorted by {metric}.",
        "",
    ]
    quality = list(dict.fromkeys([*_QUALITY, metric]))
    if "seed" in swept:
        params = [n for n in swept if n != "seed"]
        lines += [
            "Over seeds (mean ± standard deviation):",
            "",
            "| " + " | ".join([*params, "seeds", *quality]) + " |",
            "|" + " --- |" * (len(params) + 1 + len(quality)),
        ]
        lines += [
            "| "
            + " | ".join(
                [
                    *(_cell(g[p]) for p in params),
                    str(g["n"]),
                    *(f"{g[m][0]:.3f} ± {g[m][1]:.3f}" for m in quality),
                ]
            )
            + " |"
            for g in over_seeds(rows, swept, metric)
        ]
        lines.append("")
    columns = [*swept, "status", *dict.fromkeys([*measures.SHOWN, metric])]
    lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], params: list[str], metric: str, path: Path) -> None:
    """One panel per swept parameter: the metric of every finished point against its value."""
    if not params:
        return
    fig, axes = plt.subplots(1, len(params), figsize=(3.5 * len(params), 3), squeeze=False)
    for ax, name in zip(axes[0], params):
        values = [row.get(name) for row in rows]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        labels = sorted({str(v) for v in values})
        xs = values if numeric else [labels.index(str(v)) for v in values]
        ax.scatter(xs, [row[metric] for row in rows], alpha=0.7)
        if numeric and min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _mean_and_sd(values: list[float]) -> tuple[float, float]:
    """Mean and standard deviation; NaN for both when a value is missing (a diverged run)."""
    if not all(math.isfinite(value) for value in values):
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _sort_key(row: dict, metric: str) -> tuple:
    value = row.get(metric, math.nan)
    if value is None or not math.isfinite(value):
        return (1, 0.0)
    return (0, value if metric in _LOWER_IS_BETTER else -value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return "(base)" if value is None else str(value)
