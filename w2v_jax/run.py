"""The run: ``train(config, corpus, workdir)`` is what every entry point, sweep, notebook and
benchmark calls.

It prepares the data (``prepare``: the corpus encoded once into its cache, PTB included, cut
into blocks), builds the compiled program (``loop.Program``), creates or resumes the state, and
runs one host loop over dispatches. Periodic actions (the progress bar, the epoch line,
checkpoints, stopping on request, a caller's own) are ``Hook`` s, each due every so many steps
and/or at each epoch's end, decided by one rule (``itstime``); dispatches end on the steps a
hook is due. With a workdir it writes ``metrics.json`` (config, corpus, command, machine,
versions, timings, losses, evaluation), ``loss.png`` and checkpoints. Notes (the workdir, the
data, memory, epochs, resuming) go to the ``w2v_jax`` logger, which entry scripts print.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from w2v_jax import feed, parallel, presets
from w2v_jax.config import Config, groups_trainable_together
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data import blocks
from w2v_jax.data import corpus as corpus_module
from w2v_jax.data.vocab import Vocab
from w2v_jax.evaluation import measures, report
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.evaluation.report import Evaluation
from w2v_jax.feed import device
from w2v_jax.objectives import vectors_of
from w2v_jax.rows import Rows
from w2v_jax.training import curves as curves_module
from w2v_jax.training import hooks as hooks_module
from w2v_jax.training import host_loop, memory
from w2v_jax.training import workdir as workdir_module
from w2v_jax.training.history import EpochStats, History
from w2v_jax.training.hooks import Hook, Moment, TrainingInterrupted, itstime, say
from w2v_jax.training.loop import Program
from w2v_jax.training.resume import RunCheckpoints
from w2v_jax.training.step import TrainState

logger = logging.getLogger("w2v_jax")


@dataclasses.dataclass
class Data:
    """The data stage's output: the corpus encoded and cut into blocks and, for a corpus of
    one group (such as PTB), the first epoch's examples; a larger corpus's are drawn as it
    trains (``feed.Stream``)."""

    corpus: CorpusConfig
    encoded: corpus_module.EncodedCorpus
    dataset: blocks.Dataset
    examples: Rows | None
    seconds: float

    @property
    def vocab(self) -> Vocab:
        return self.dataset.vocab

    @property
    def num_centers(self) -> int:
        """The centers of an epoch."""
        return self.dataset.num_centers

    @property
    def num_blocks(self) -> int:
        return len(self.dataset.blocks) - 1

    def summary(self) -> str:
        blocks = f"{self.num_blocks:,} block" + ("s" if self.num_blocks != 1 else "")
        what = "PTB" if self.corpus.is_ptb else self.encoded.summary()
        repeats = (
            f" x{self.corpus.repeats}" if self.corpus.is_ptb and self.corpus.repeats > 1 else ""
        )
        return (
            f"{what}{repeats}: {len(self.vocab):,} words, {self.num_centers:,} centers in "
            f"{blocks}, {self.seconds:.2f} s"
        )


def as_corpus(corpus: CorpusConfig | str | os.PathLike | Sequence | None) -> CorpusConfig:
    """A corpus config from a config, paths (files, directories, globs, "ptb") or None (PTB)."""
    if corpus is None or isinstance(corpus, CorpusConfig):
        return corpus or CorpusConfig()
    return CorpusConfig(paths=(corpus,) if isinstance(corpus, str | os.PathLike) else corpus)


def prepare(
    config: Config,
    corpus: CorpusConfig | str | os.PathLike | Sequence | None = None,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Data:
    """Encode the corpus (read from its cache entry after the first time), cut it into blocks
    and count their centers and, for a corpus of one group, draw the first epoch's examples;
    timed as a whole. PTB is fetched into ``data_dir`` (default $W2V_JAX_DATA, else the user
    cache); encoded corpora go to ``cache_dir`` (default $W2V_JAX_CACHE, else the user cache)."""
    start = time.perf_counter()
    corpus = as_corpus(corpus)
    encoded = corpus_module.encode(corpus, config.min_freq, cache_dir, data_dir=data_dir)
    for note in encoded.notes:
        logger.warning(note)
    num_blocks = len(blocks.block_bounds(encoded.corpus.offsets, config.block_tokens)) - 1
    on_device = device.drawn_on(config, num_blocks) == "device"
    dataset = blocks.build_dataset(
        encoded.vocab,
        encoded.corpus,
        config.subsample_t,
        config.seed,
        config.subsample,
        config.block_tokens,
        device.count_on_device if on_device else None,
    )
    examples = None if on_device else feed.first_examples(config, dataset)
    return Data(corpus, encoded, dataset, examples, time.perf_counter() - start)


@dataclasses.dataclass
class Run:
    """What a run produced: its final state, record and metrics."""

    config: Config
    data: Data
    state: TrainState
    history: list[EpochStats]
    curve: list[list[float]]
    """[global step, mean loss of the dispatch that ended there] for every dispatch."""
    compile_seconds: float
    checkpoint_seconds: float = 0.0
    resumed_from: int | None = None
    diverged: str | None = None
    """Where its loss stopped being finite, for a run trained with others; its parameters are
    then not usable. A run alone raises FloatingPointError instead."""
    workdir: Path | None = None
    feed: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Where its examples were drawn and the bytes they sent to the devices
    (``feed.Stream.feed``)."""
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What ``metrics.json`` holds (empty on the processes other than the first)."""

    @property
    def vocab(self) -> Vocab:
        return self.data.vocab

    @property
    def params(self) -> Any:
        """The tables, one row per word (a mesh's padding rows left out)."""
        return parallel.trimmed(self.state.params, len(self.vocab))

    def embeddings(self, table: str = "words") -> Embeddings:
        """The vectors for queries, benchmarks and export (``table``: "words", the objective's
        word vectors, "center", "context" or "sum", ``objectives.table_names``), as
        ``Embeddings.from_checkpoint`` reads them from the run's workdir."""
        vectors = vectors_of(self.params, table, self.config.objective, len(self.vocab))
        return Embeddings(self.vocab.tokens, vectors)


def train(
    config: Config | Sequence[Config] | None = None,
    corpus: CorpusConfig | str | os.PathLike | Sequence | None = None,
    workdir: str | os.PathLike | None = None,
    *,
    data: Data | None = None,
    restart: bool = False,
    progress: bool = True,
    hooks: Sequence[Hook] = (),
    should_stop: Callable[[], bool] | None = None,
    evaluation: Evaluation | None = Evaluation(),
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    check_memory: bool = True,
    tensorboard: bool | Sequence[str | os.PathLike] = True,
) -> Run | list[Run]:
    """Train ``config`` for ``config.num_epochs`` epochs on ``corpus`` (default PTB). Without a
    config: the book's on PTB, on any other corpus the preset made for one's own text
    (``presets.default_config``, said in one line).

    A sequence of configs trains runs that differ only in their optimiser's hyperparameters
    (``PER_RUN`` settings; group them with ``groups_trainable_together``) in one program,
    one state whose tables are [vocab, runs, embed]: they see the same data, initial
    parameters and batch order, so each ends where training it alone would (up to float
    rounding); a run whose loss turns non-finite is marked ``diverged`` and the others train
    on. It returns a list of runs then, one run otherwise.

    ``data`` is a prepared data stage to reuse (``prepare``; runs of one ``Config.data_key``
    can share one). With a ``workdir``, checkpoints go to ``workdir/checkpoints`` at each
    epoch's end and every ``execution.checkpoint_every`` steps, a run continues from the newest
    complete one there (``restart=True`` deletes them first), and its results are written
    there and evaluated (``evaluation``; None: not evaluated; ``Evaluation.each_epoch``: at
    each epoch's end too). ``tensorboard``: its curves as TensorBoard event files
    (``training.curves``) in ``workdir/tensorboard`` (runs trained together: a directory each
    under it, named by the settings they differ in), in the given directories, one a run (a
    sweep's points), or none (False).
    ``should_stop()`` is asked after every dispatch: when it says yes, a checkpoint of that
    point is saved and TrainingInterrupted raised. ``hooks`` run after the built-in ones.
    Before anything is allocated, a run that would not fit in the device's free memory is
    refused with ``memory.NotEnoughMemory`` (``check_memory=False``: go ahead anyway)."""
    if config is None:
        config = presets.default_config(as_corpus(corpus if data is None else data.corpus).is_ptb)
        if config != Config():
            say(f"config: the {presets.OWN_TEXT} preset, the default for one's own text")
    configs = list(config) if isinstance(config, list | tuple) else [config]
    if len({c.vectorisation_key() for c in configs}) != 1:
        raise ValueError(
            "configs trained together must differ only in their PER_RUN settings; "
            "group them with groups_trainable_together"
        )
    main = parallel.is_main_process()
    if data is None:
        # Process 0 encodes the corpus first, so that the others find it in the cache.
        data = parallel.main_process_first(lambda: prepare(configs[0], corpus, data_dir, cache_dir))
    stacked = isinstance(config, list | tuple)
    placement = parallel.Placement.from_spec(configs[0].execution.mesh)
    stream = feed.open_stream(configs[0], data.dataset, data.examples, placement)
    # Said and checked before anything is allocated or a workdir made.
    needed = memory.needs(configs[0], len(data.vocab), len(configs), stream.device_bytes())
    if check_memory:
        memory.check(configs[0], needed, *memory.free_bytes())
    workdir = None if workdir is None else Path(workdir)
    with workdir_module.held(workdir, main):  # after the corpus: a bad one leaves no workdir
        say(f"data: {data.summary()}")
        say(memory.line(configs[0], needed))
        say(stream.line())
        program = Program(configs, data.vocab, stream.plan.total_steps, stacked, placement)
        state, history = program.init_state(), History.empty(len(configs))
        saver = None
        if workdir is not None:
            if main:
                workdir_module.ensure_room(workdir, RunCheckpoints.bytes_of(state))
            corpus, vocab = data.corpus, data.vocab
            saver = RunCheckpoints(workdir, program.configs, corpus, vocab, restart, stacked)

        curves = None
        if main:  # process 0 writes the curves
            curves = curves_module.for_program(
                tensorboard, workdir, program, stream.plan.total_steps, measures.EVERY_SCORE
            )
        before_saving = [] if curves is None else [curves.hook()]
        each_epoch = ()
        if evaluation is not None:
            each_epoch = evaluation.benchmarks_each_epoch(data.corpus.is_ptb, workdir is not None)
        if each_epoch:
            scoring = report.scoring_each_epoch(program, data.vocab, evaluation, each_epoch)
            before_saving.insert(0, scoring)

        def all_hooks() -> list[Hook]:  # made once resumed: the progress bar starts there
            built_in = hooks_module.built_in(
                program, stream, saver, progress and main, should_stop, before_saving
            )
            return [*built_in, *hooks]

        finished = False
        try:
            state, history, resumed_from = host_loop.resume_and_train(
                program,
                stream,
                state,
                history,
                saver,
                all_hooks,
                hooks_module.deferring(should_stop),
            )
            # Asked during the last dispatch (on any process): the run is saved, evaluation undone.
            if should_stop is not None and parallel.any_process(should_stop()):
                raise TrainingInterrupted(
                    configs[0].num_epochs - 1, int(state.step), saver is not None
                )
            runs = _runs(program, data, state, history, resumed_from, saver, workdir, stream.feed())
            if workdir is not None:
                report.write_results(runs, workdir, evaluation, main, alone=not stacked)
            if curves is not None:
                scores = [measures.quality(run.metrics.get("evaluation") or {}) for run in runs]
                curves.final_scores(scores, int(state.step))
            finished = True
        finally:
            if curves is not None:
                curves.close(finished)
    return runs if stacked else runs[0]


def _runs(
    program: Program,
    data: Data,
    state: TrainState,
    history: History,
    resumed_from: int | None,
    saver: RunCheckpoints | None,
    workdir: Path | None,
    feed_record: dict[str, Any],
) -> list[Run]:
    """One Run per run of the program; runs trained together each get their own tables."""
    common = dict(
        data=data,
        feed=feed_record,
        compile_seconds=program.compile_seconds,
        checkpoint_seconds=saver.seconds if saver is not None else 0.0,
        resumed_from=resumed_from,
        workdir=workdir,
    )
    if program.num_runs is None:
        return [
            Run(
                program.config,
                state=state,
                history=history.epochs[0],
                curve=history.curve,
                **common,
            )
        ]
    return [
        Run(
            run_config,
            state=TrainState(
                state.step, jax.tree.map(lambda table, run=run: table[:, run], state.params), None
            ),
            history=history.epochs[run],
            curve=[[step, losses[run]] for step, losses in history.curve],
            diverged=history.diverged[run],
            **common,
        )
        for run, run_config in enumerate(program.configs)
    ]


__all__ = [
    "Data",
    "Evaluation",
    "Hook",
    "Moment",
    "Program",
    "Run",
    "TrainingInterrupted",
    "groups_trainable_together",
    "itstime",
    "prepare",
    "train",
]
