"""The flat measures that summaries compare, read from the one ``metrics.json`` schema a run
writes (``report.metrics`` and its evaluation), whether the main job, a sweep's point or a
benchmark trained it. No import of the project or of JAX: a benchmark's peers (gensim)
import it in processes of their own."""

from __future__ import annotations

from typing import Any

QUALITY = {
    "wordsim353_spearman": ("wordsim353", "spearman"),
    "wordsim353_coverage": ("wordsim353", "coverage"),
    "simlex999_spearman": ("simlex999", "spearman"),
    "simlex999_coverage": ("simlex999", "coverage"),
    "analogy_accuracy": ("google_analogies", "accuracy"),
    "analogy_coverage": ("google_analogies", "coverage"),
}
"""Each quality measure's place in ``Embeddings.evaluate_benchmarks``' scores."""

SCORES = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")

MEASURES = (*SCORES, "final_loss", "centers_per_second")
"""What a sweep's summary compares of each run."""


def quality(scores: dict[str, Any]) -> dict[str, float | None]:
    """The flat quality measures of ``Embeddings.evaluate_benchmarks``' scores (None for a
    benchmark left unscored)."""
    return {name: scores.get(bench, {}).get(key) for name, (bench, key) in QUALITY.items()}


def of_run(metrics: dict[str, Any]) -> dict[str, float | None]:
    """``MEASURES`` of a run's ``metrics.json``: its scores (None: unscored, not evaluated or
    diverged), its final loss and its centers a second over all its epochs."""
    scored = quality(metrics.get("evaluation") or {})
    epochs = metrics.get("epochs") or []
    seconds = sum(stats["seconds"] for stats in epochs)
    return {
        **{name: scored[name] for name in SCORES},
        "final_loss": metrics.get("final_loss"),
        "centers_per_second": sum(stats["centers"] for stats in epochs) / seconds
        if seconds
        else None,
    }
