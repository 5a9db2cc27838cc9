"""The flat measures that summaries compare, read from the one ``metrics.json`` schema a run
writes (``report.metrics`` and its evaluation), whether the main job, a sweep's point or a
benchmark trained it. No import of the project or of JAX: a benchmark's peers (gensim)
import it in processes of their own."""

from __future__ import annotations

from typing import Any

PAIR_SETS = ("ws353_similarity", "ws353_relatedness", "men", "rare_words", "mturk")
"""The other word-pair benchmarks, measured as ``NAME_spearman`` and ``NAME_coverage``."""

QUALITY = {
    "wordsim353_spearman": ("wordsim353", "spearman"),
    "wordsim353_coverage": ("wordsim353", "coverage"),
    "simlex999_spearman": ("simlex999", "spearman"),
    "simlex999_coverage": ("simlex999", "coverage"),
    "analogy_accuracy": ("google_analogies", "accuracy"),
    "analogy_coverage": ("google_analogies", "coverage"),
    **{f"{name}_{key}": (name, key) for name in PAIR_SETS for key in ("spearman", "coverage")},
    "msr_analogy_accuracy": ("msr_analogies", "accuracy"),
    "msr_analogy_coverage": ("msr_analogies", "coverage"),
}
"""Each quality measure's place in ``Embeddings.evaluate_benchmarks``' scores."""

SCORES = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")
"""The headline scores: each epoch's, a sweep's summary's."""

EVERY_SCORE = tuple(name for name in QUALITY if not name.endswith("_coverage"))
"""Every benchmark's score (TensorBoard's curves of a run's final evaluation)."""

MEASURES = (*EVERY_SCORE, "final_loss", "centers_per_second")
"""What a sweep's summary records of each run (its CSV), any of which may sort it."""

SHOWN = (*SCORES, "final_loss", "centers_per_second")
"""What a sweep's README table shows of each run, beside the measure it is sorted by."""


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
        **{name: scored[name] for name in EVERY_SCORE},
        "final_loss": metrics.get("final_loss"),
        "centers_per_second": sum(stats["centers"] for stats in epochs) / seconds
        if seconds
        else None,
    }
