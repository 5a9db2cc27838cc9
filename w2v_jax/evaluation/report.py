"""A finished run's results: ``metrics.json``, ``loss.png`` and the evaluation of its vectors,
written into its workdir by ``run.train``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from w2v_jax import objectives, parallel
from w2v_jax.data.vocab import Vocab
from w2v_jax.evaluation import measures
from w2v_jax.evaluation.benchmark_files import ANALOGY_SETS, HEADLINE, BenchmarkError
from w2v_jax.evaluation.evaluate import COVERAGE_FLOOR, Embeddings
from w2v_jax.evaluation.explore import query_words
from w2v_jax.training import checkpoint, records
from w2v_jax.training.hooks import Hook, Moment, say
from w2v_jax.training.loop import Program

if TYPE_CHECKING:
    from w2v_jax.run import Run

logger = logging.getLogger("w2v_jax")


class EvaluationError(RuntimeError):
    """Evaluating a finished run failed; its checkpoint and results are kept."""


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What ``run.train`` evaluates at the end: the cosine neighbours of ``queries`` (none: PTB's
    ``chip``, else the most frequent content words, ``default_queries``) and the
    benchmarks of ``benchmarks_dir`` (default: the copies shipped with w2v_jax). A benchmark
    the vocabulary covers less than ``evaluate.COVERAGE_FLOOR`` of is said in one line and
    left unscored."""

    queries: tuple[str, ...] = ()
    neighbours: int = 5
    benchmarks_dir: str | os.PathLike | None = None
    each_epoch: bool | None = None
    """Score the vectors at each epoch's end too (``scoring_each_epoch``): the scores go into
    each epoch's entry of ``metrics.json`` (and ``Run.history``), the curves and
    ``scores.png``. True: the headline three (WordSim353, SimLex-999, the Google analogies);
    None: on one's own text where the run is evaluated (it has a workdir), the word pairs
    alone (the analogies, 3CosAdd over the whole vocabulary, cost 20 times as much), nothing
    on PTB, whose book run evaluates once, at the end; False: nothing."""

    def benchmarks_each_epoch(self, is_ptb: bool, has_workdir: bool) -> tuple[str, ...]:
        """What is scored at each epoch's end: names of ``benchmark_files.HEADLINE``."""
        if self.each_epoch is None:
            return WORD_PAIRS if has_workdir and not is_ptb else ()
        return HEADLINE if self.each_epoch else ()


WORD_PAIRS = tuple(name for name in HEADLINE if name not in ANALOGY_SETS)
"""The headline's word-pair benchmarks: what each epoch scores by default on one's own text."""


def scoring_each_epoch(
    program: Program, vocab: Vocab, evaluation: Evaluation, names: tuple[str, ...]
) -> Hook:
    """At each epoch's end, the scores of the benchmarks ``names`` (of ``benchmark_files.HEADLINE``)
    of every run's vectors then, kept in its epoch's statistics (so in metrics.json, the
    checkpoints' record, the curves and scores.png) and said in one line. Process 0 scores,
    the others join the tables' gather."""
    objective, size = program.config.objective, len(vocab)

    def score(moment: Moment) -> None:
        start = time.perf_counter()
        tables = parallel.on_host(parallel.trimmed(moment.state.params, size))
        history = moment.history
        if parallel.is_main_process():
            for run, run_epochs in enumerate(history.epochs):
                if history.diverged[run] is None:  # a diverged run's tables are not finite
                    scored = _scores(tables, None if program.num_runs is None else run)
                    run_epochs[-1] = dataclasses.replace(run_epochs[-1], scores=scored)
        seconds = time.perf_counter() - start
        history.exclude(seconds)  # the next epoch's time is its training's alone
        for run_epochs in history.epochs:
            run_epochs[-1] = dataclasses.replace(run_epochs[-1], scoring_seconds=seconds)
        scores = history.epochs[0][-1].scores or {}
        scored = {name: value for name, value in scores.items() if name in measures.SCORES}
        if all(value is None for value in scored.values()):
            return  # none covers enough of the vocabulary: the final evaluation says so, once
        what = (
            ", ".join(f"{name} {_score(value)}" for name, value in scored.items())
            if history.num_runs == 1
            else f"{history.num_runs} runs scored"
        )
        say(
            f"epoch {moment.epoch + 1}/{program.config.num_epochs} scores: {what} ({seconds:.1f} s)"
        )

    def _scores(tables: dict, run: int | None) -> dict[str, float | None]:
        """The measures of the vectors of ``tables`` (of run ``run`` of runs trained
        together)."""
        params = tables if run is None else {name: t[:, run] for name, t in tables.items()}
        vectors = objectives.vectors_of(params, "words", objective, size)
        embeddings = Embeddings(vocab.tokens, vectors)
        scores = embeddings.evaluate_benchmarks(evaluation.benchmarks_dir, names=names)
        measured = measures.quality(scores)
        return {key: measured[key] for key, (name, _) in measures.QUALITY.items() if name in names}

    return Hook(score, at_epoch_end=True)


def _score(value: float | None) -> str:
    return "unscored" if value is None else f"{value:.3f}"


def metrics(run: Run) -> dict[str, Any]:
    """What ``metrics.json`` records of a run before its evaluation."""
    data = run.data
    return {
        "config": run.config.to_dict(),
        "corpus": corpus_record(run),
        **records.where_it_ran(),
        "vocab_size": len(run.vocab),
        "num_centers": data.num_centers,
        # A corpus of one group has the same pairs every epoch; a larger one's examples are
        # drawn as it trains (see "epochs").
        "num_pairs": data.examples.num_pairs if data.examples is not None else None,
        "blocks": data.num_blocks,
        "data_seconds": data.seconds,
        "compile_seconds": run.compile_seconds,
        "feed": run.feed,
        "checkpoint_seconds": run.checkpoint_seconds,
        "resumed_from_step": run.resumed_from,
        "diverged": run.diverged,
        "epochs": [stats.to_dict() for stats in run.history],
        "final_loss": run.history[-1].loss if run.history else None,
        "loss_curve": run.curve,
    }


def corpus_record(run: Run) -> dict[str, Any]:
    """The corpus a run trained on: its config, the files read with their sizes, what reading
    found and the cache entry."""
    encoded = run.data.encoded
    return {
        **run.data.corpus.to_dict(),
        "files": [[str(path), path.stat().st_size] for path in dict.fromkeys(encoded.files)],
        "lines": encoded.lines,
        "tokens": len(encoded.corpus.ids),
        "split_lines": encoded.split_lines,
        "forgotten_words": encoded.forgotten,
        "cache_entry": str(encoded.entry),
    }


def write_results(
    runs: list[Run], workdir: Path, evaluation: Evaluation | None, main: bool, alone: bool
) -> None:
    """``metrics.json`` and ``loss.png`` of a run trained ``alone``, or of runs trained
    together (one entry each under "runs", even for one), then the evaluation, written again
    with it: a run alone's vectors read back from its final checkpoint, runs trained together's
    from the tables they hold. Each run's ``metrics`` holds what was written. Process 0
    writes; the others join its checkpoint read."""
    if not main:
        if evaluation is not None and alone:
            Embeddings.from_checkpoint(workdir)  # Orbax synchronises the processes opening it
        return
    kept = _finished_before(runs, workdir, alone)
    for run, previous in zip(runs, kept or [None] * len(runs)):
        run.metrics = metrics(run) if previous is None else previous
    if kept is None:
        _write(runs, workdir, alone)
        _plot(runs[0], workdir)
    if evaluation is None:
        return
    before = [_without_timing(run.metrics) for run in runs]
    try:
        for run in runs:
            if run.diverged is None:  # a diverged run's tables are not finite
                run.metrics.update(evaluate(run, evaluation, alone))
    except (BenchmarkError, checkpoint.CheckpointError) as err:
        for run in runs:
            run.metrics["evaluation_error"] = str(err)
        _write(runs, workdir, alone)
        raise EvaluationError(
            f"evaluation failed: {err} (the run's checkpoint, metrics.json and loss.png are "
            f"in {workdir})"
        ) from None
    if kept is None or before != [_without_timing(run.metrics) for run in runs]:
        _write(runs, workdir, alone)


def _finished_before(runs: list[Run], workdir: Path, alone: bool) -> list[dict] | None:
    """The metrics.json of a run that was finished already (this call trained nothing), one
    entry per run: kept as it was, its timings those of the training; None otherwise."""
    if any(run.resumed_from != int(run.state.step) for run in runs):
        return None
    try:
        values = json.loads((workdir / "metrics.json").read_text())
        kept = [values] if alone else values["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return kept if len(kept) == len(runs) else None


def _without_timing(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key != "evaluation_seconds"}


def write_alone(run: Run, directory: Path) -> None:
    """A run trained with others: its metrics.json and loss.png in ``directory``, as a run
    trained alone writes them (a sweep's point)."""
    records.write_json(directory / "metrics.json", run.metrics)
    _plot(run, directory)


def _plot(run: Run, directory: Path) -> None:
    """``loss.png`` and, where epochs were scored, ``scores.png``."""
    objective = objectives.REGISTRY[run.config.objective].title
    title = f"{run.data.corpus.name} {objective}, {len(run.history)} epochs"
    records.plot_loss(run.curve, run.history, title, directory / "loss.png")
    scored = [stats for stats in run.history if stats.scores is not None]
    if any(stats.scores.get(name) is not None for stats in scored for name in measures.SCORES):
        records.plot_scores(scored, measures.SCORES, title, directory / "scores.png")


def _write(runs: list[Run], workdir: Path, alone: bool) -> None:
    values = runs[0].metrics if alone else {"runs": [run.metrics for run in runs]}
    records.write_json(workdir / "metrics.json", values)


def evaluate(run: Run, evaluation: Evaluation, from_checkpoint: bool) -> dict[str, Any]:
    """Neighbours and benchmark scores of the run's vectors: those of its final checkpoint
    (``from_checkpoint``), else those it holds. A benchmark the vocabulary covers too little
    of is left unscored (``evaluate.COVERAGE_FLOOR``), its entry says so."""
    start = time.perf_counter()
    embeddings = Embeddings.from_checkpoint(run.workdir) if from_checkpoint else run.embeddings()
    queries = evaluation.queries or default_queries(embeddings, run.data.corpus.is_ptb)
    return {
        "neighbours": neighbours_of(embeddings, queries, evaluation.neighbours),
        "evaluation": embeddings.evaluate_benchmarks(evaluation.benchmarks_dir),
        "evaluation_seconds": time.perf_counter() - start,
    }


def neighbours_of(embeddings: Embeddings, words, k: int) -> dict[str, list[list]]:
    """Each word's ``k`` cosine neighbours, [[word, cosine], ...]; a word the vocabulary
    lacks is said in one line (``absent``) and left out."""
    neighbours = {}
    for word in words:
        if word not in embeddings:
            logger.warning(absent(embeddings, word))
            continue
        neighbours[word] = [[token, cosine] for token, cosine in embeddings.most_similar(word, k)]
    return neighbours


def absent(embeddings: Embeddings, word: str) -> str:
    """One line for a word the vocabulary lacks, naming its lowercase form where the
    vocabulary holds that instead (a run trained with ``--lowercase`` has no capitals)."""
    lower = word.lower()
    if lower == word or lower not in embeddings:
        return f"{word}: not in the vocabulary"
    if all(token == token.lower() for token in embeddings.vocab):
        return f"{word}: not in the vocabulary, {lower} is (this run's words are lowercased)"
    return f"{word}: not in the vocabulary, {lower} is"


PTB_QUERY = "chip"
"""The book's query word on PTB."""


def default_queries(embeddings: Embeddings, is_ptb: bool) -> list[str]:
    """The words whose neighbours are shown when none are asked for: the book's ``chip`` on
    PTB, else the run's own (``explore.query_words``), said in one line."""
    if is_ptb and PTB_QUERY in embeddings:
        return [PTB_QUERY]
    words, what = query_words(embeddings.vocab)
    logger.info(
        f"query words: {', '.join(words)}, {what} (choose others with Evaluation(queries=...))"
    )
    return words


def unscored(score: dict[str, Any]) -> str:
    """Why a benchmark was not scored: its coverage, below the floor."""
    what = "questions" if "questions" in score else "pairs"
    return (
        f"{score[what]:,} {what} known ({score['coverage']:.0%}), below the "
        f"{COVERAGE_FLOOR:.0%} needed"
    )
