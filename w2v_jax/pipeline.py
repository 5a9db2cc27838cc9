"""A whole skip-gram run: the data stage, then the training epochs. Experiments call this."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from w2v_jax import batches, checkpoint, data, optim, parallel, stream
from w2v_jax.config import Config
from w2v_jax.corpus import EncodedCorpus, TextCorpus, encode
from w2v_jax.loop import EpochProgress, EpochStats, Trainer
from w2v_jax.step import TrainState, create_train_state, make_train_step


@dataclasses.dataclass
class PreparedData:
    """The data stage's output: vocabulary, corpus in blocks, and for a corpus of one window
    (such as PTB) the first epoch's examples; a larger corpus's are drawn as it trains
    (``stream.Stream``)."""

    dataset: data.Dataset
    examples: data.Examples | None
    seconds: float
    source: EncodedCorpus | None = None
    """For a corpus of files: how it was read (its summary, its cache entry)."""

    @property
    def vocab(self) -> data.Vocab:
        return self.dataset.vocab

    @property
    def num_centers(self) -> int:
        """The centers of an epoch."""
        return self.dataset.num_centers


def prepare_data(
    config: Config,
    data_dir: str | os.PathLike | None = None,
    text: str | None = None,
    corpus: TextCorpus
    | EncodedCorpus
    | str
    | os.PathLike
    | Sequence[str | os.PathLike]
    | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> PreparedData:
    """Encode the corpus, cut it into blocks and count their centers, and, for a corpus of one
    window, draw the first epoch's examples (windows and noise words); timed as a whole.

    The corpus is ``corpus`` (files, directories or globs, or a ``TextCorpus`` saying how to
    read them; encoded once into ``cache_dir``, see ``w2v_jax.corpus``), else ``text`` (one
    sentence a line, in memory), else PTB's training split from ``data_dir``.
    """
    start = time.perf_counter()
    source = None
    if corpus is not None:
        source = corpus
        if not isinstance(source, EncodedCorpus):
            if not isinstance(source, TextCorpus):
                source = TextCorpus(source)
            source = encode(source, config.min_freq, cache_dir)
        vocab, ids = source.vocab, source.corpus
    else:
        vocab, ids = data.encode_text(
            data.read_ptb(data_dir) if text is None else text, config.min_freq
        )
    dataset = data.build_dataset(
        vocab, ids, config.subsample_t, config.seed, config.subsample, config.block_tokens
    )
    windows = stream.Stream(config, dataset)
    examples = windows.first_window() if windows.one_window else None
    return PreparedData(dataset, examples, time.perf_counter() - start, source)


@dataclasses.dataclass
class TrainingRun:
    """What a run produced: final state, per-epoch statistics, the loss curve and timings."""

    config: Config
    prepared: PreparedData
    state: TrainState
    history: list[EpochStats]
    compile_seconds: float
    resumed_from: int | None = None
    checkpoint_seconds: float = 0.0
    curve: list[list[float]] = dataclasses.field(default_factory=list)
    """[global step, mean loss of the dispatch that ended there] for every dispatch, resumed
    runs included."""
    diverged: str | None = None
    """Where its loss stopped being finite, for a run trained with others (``train_together``);
    its parameters are then not usable. A run alone raises FloatingPointError instead."""

    @property
    def vocab(self) -> data.Vocab:
        return self.prepared.vocab

    @property
    def params(self):
        """The tables, one row per word (a mesh's padding rows left out)."""
        return parallel.trimmed(self.state.params, len(self.vocab))


class TrainingInterrupted(Exception):
    """Training stopped on request (``should_stop``) after a dispatch; with a workdir, a
    checkpoint of that point was written first, so the same call resumes from it."""

    def __init__(self, epoch: int, step: int, saved: bool) -> None:
        super().__init__(
            f"interrupted at epoch {epoch}, step {step}"
            + ("" if saved else " (no workdir: nothing was saved)")
        )
        self.epoch, self.step, self.saved = epoch, step, saved


def train_skipgram(
    config: Config,
    prepared: PreparedData,
    on_epoch_end: Callable[[EpochStats], None] | None = None,
    progress: bool = True,
    workdir: str | os.PathLike | None = None,
    restart: bool = False,
    on_resume: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingRun:
    """Train for ``config.num_epochs`` epochs on the prepared data.

    With a ``workdir``, checkpoints go to ``workdir/checkpoints`` at every epoch's end and every
    ``config.checkpoint_every`` steps, and a run finding checkpoints there continues from the
    newest complete one (``restart=True`` deletes them first and starts over), calling
    ``on_resume(step)`` before it trains; a damaged step is moved to ``workdir/damaged``.
    ``should_stop()`` is asked after every dispatch: when it says yes, a checkpoint of that
    point is saved and TrainingInterrupted raised. ``config.lr`` None trains with its
    optimiser's default rate, which the returned run's config names.
    """
    each_epoch = None if on_epoch_end is None else (lambda stats: on_epoch_end(stats[0]))
    group = _Group([config], prepared, stacked=False)
    return group.train(workdir, restart, progress, each_epoch, on_resume, should_stop)[0]


def train_together(
    configs: Sequence[Config],
    prepared: PreparedData,
    progress: bool = True,
    workdir: str | os.PathLike | None = None,
    restart: bool = False,
    on_resume: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[TrainingRun]:
    """Train runs that differ only in their optimiser's hyperparameters (``config.PER_RUN``
    fields; group them with ``groups_trainable_together``) in one program: one state whose
    tables are [vocab, runs, embed], one gather of each batch for all. They see the same data,
    initial parameters and batch order, so each ends with the parameters ``train_skipgram``
    would give it (up to float rounding). Every optimiser and layout; checkpoints, resuming and
    ``should_stop`` as ``train_skipgram``'s. A run whose loss turns non-finite is reported in
    its ``diverged``; the others train on. Each returned run holds its own parameters (its
    optimiser state stays in the checkpoints) and counts its centers over the group's time.
    """
    keys = {config.vectorisation_key() for config in configs}
    if len(keys) != 1:
        raise ValueError(
            "train_together needs configs that differ only in "
            "their PER_RUN fields; group them with groups_trainable_together"
        )
    group = _Group(list(configs), prepared, stacked=True)
    return group.train(workdir, restart, progress, None, on_resume, should_stop)


def groups_trainable_together(configs: Sequence[Config]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can train together, in first-seen
    order."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.vectorisation_key(), []).append(index)
    return list(groups.values())


class _Group:
    """One or more runs trained in one program: their optimiser, step, state and loop."""

    def __init__(self, configs: list[Config], prepared: PreparedData, stacked: bool) -> None:
        self.configs = [config.replace(lr=optim.learning_rate(config)) for config in configs]
        self.config, self.prepared = self.configs[0], prepared
        self.num_runs = len(configs) if stacked else None
        self.placement = parallel.Placement.from_spec(self.config.mesh)
        self.placement.check_batch(self.config.batch_size)
        self.optimizer, self.step = optimizer_and_step(
            self.configs, prepared.vocab, stream.total_steps(self.config, prepared.dataset)
        )

    def train(self, workdir, restart, progress, on_epoch_end, on_resume, should_stop):
        config = self.config
        state = create_train_state(
            config,
            len(self.prepared.vocab),
            jax.random.key(config.seed),
            self.optimizer,
            self.num_runs,
            self.placement,
        )
        saver = (
            None if workdir is None else _Saver(self.configs, self.prepared.vocab, workdir, restart)
        )
        trainer = Trainer(
            config.steps_per_dispatch,
            self.step,
            config.deterministic,
            self.num_runs,
            self.placement,
        )
        try:
            asked = should_stop or (lambda: False)
            state, log, resumed_from = _train(
                config,
                self.prepared,
                state,
                trainer,
                saver,
                on_epoch_end,
                progress,
                on_resume,
                lambda: parallel.any_process(asked()),
            )
        finally:
            if saver is not None:  # the writes under way finish, whatever stopped training
                saver.close()
        common = dict(
            prepared=self.prepared,
            compile_seconds=trainer.compile_seconds,
            resumed_from=resumed_from,
            checkpoint_seconds=saver.seconds if saver is not None else 0.0,
        )
        if self.num_runs is None:
            return [
                TrainingRun(
                    config, state=state, history=log.histories[0], curve=log.curve, **common
                )
            ]
        vocab_size = len(self.prepared.vocab)
        return [
            TrainingRun(
                run_config,
                state=TrainState(state.step, _run_params(state, run, vocab_size), None),
                history=log.histories[run],
                curve=_run_curve(log.curve, run),
                diverged=log.diverged[run],
                **common,
            )
            for run, run_config in enumerate(self.configs)
        ]


def _run_params(state: TrainState, run: int, vocab_size: int) -> dict:
    """The parameters of one run of a stacked state, [vocab, embed] tables."""
    return parallel.trimmed(jax.tree.map(lambda table: table[:, run], state.params), vocab_size)


def _run_curve(curve: list[list], run: int) -> list[list[float]]:
    return [[step, losses[run]] for step, losses in curve]


def _train(config, prepared, state, trainer, saver, on_epoch_end, progress, on_resume, should_stop):
    num_runs = trainer.num_runs or 1
    position, log, resumed_from = _Position(), _Log.empty(num_runs), None
    if saver is not None and saver.has_checkpoint():
        resumed_from, state, position, log = saver.resume(state)
        trainer.diverged = list(log.diverged)
        if on_resume is not None:
            on_resume(resumed_from)
    windows = stream.Stream(config, prepared.dataset, prepared.examples, trainer.placement)
    epochs = range(position.epoch, config.num_epochs)
    if windows.one_window:
        # Sized over every epoch of the run, done ones too, and at least as large as when it
        # was saved: a resumed run compiles the program an uninterrupted one runs (a GPU sums
        # another capacity in another order). Larger corpora size it window by window.
        log.capacity = batch_capacity(
            config, windows.first_window(), range(config.num_epochs), log.capacity or 0
        )
    elif batches.resolved_layout(config.layout) == "packed":
        log.capacity = log.capacity or batches.CAPACITY_STEP
    if epochs:  # a finished run resumed for its results compiles nothing
        windows.start(position.epoch, position.within.batch)  # drawn while it compiles
        if windows.one_window or log.capacity is None:
            # Packed windows of a larger corpus compile for the first window's capacity.
            trainer.compile(state, windows.device_shapes(), config.batch_size, log.capacity)
    for epoch in epochs:
        start, waited = time.perf_counter(), windows.wait_seconds
        resume = position.within if epoch == position.epoch else None
        state, done, counts = _run_epoch(
            config, trainer, state, windows, epoch, progress, resume, saver, log, should_stop
        )
        # The epoch's own wall time includes waiting for its examples.
        seconds = time.perf_counter() - start
        losses = np.broadcast_to(done.mean_loss, (num_runs,))
        stats = [
            EpochStats(
                epoch + 1,
                float(loss),
                seconds,
                *counts,
                step=int(state.step),
                feed_seconds=windows.wait_seconds - waited,
            )
            for loss in losses
        ]
        for history, run_stats in zip(log.histories, stats):
            history.append(run_stats)
        log.diverged = list(trainer.diverged)
        if saver is not None:
            saver.save(state, _Position(epoch + 1, EpochProgress()), log)
        if on_epoch_end is not None:
            on_epoch_end(stats)
        if epoch + 1 < config.num_epochs and should_stop():
            raise TrainingInterrupted(epoch + 1, int(state.step), saver is not None)
    return state, log, resumed_from


def optimizer_and_step(
    configs: Config | Sequence[Config], vocab: data.Vocab, total_steps: int
) -> tuple[optim.Optimizer, Callable]:
    """The optimiser of ``configs`` (one run's, or one for runs trained together; a schedule
    spans the run's ``total_steps``) and the train step that uses it."""
    config = configs[0] if isinstance(configs, (list, tuple)) else configs
    optimizer = optim.make(configs, total_steps)
    noise_probs = data.noise_distribution(vocab.counts) if config.shares_noise else None
    return optimizer, make_train_step(config, optimizer, noise_probs)


def state_bytes(config: Config, vocab_size: int) -> dict[str, Any]:
    """The bytes a run's tables and its optimiser's state will take, from their shapes alone
    (nothing is allocated): ``{"tables": ..., "optimiser": ...}`` in all (a mesh's padding
    rows included), ``"per_device"`` on each device of the run's mesh (``config.mesh``, named
    in ``"mesh"``)."""
    optimizer = optim.make(config.replace(lr=optim.learning_rate(config)), total_steps=1)
    placement = parallel.Placement.from_spec(config.mesh)
    rows = placement.rows(vocab_size)
    shapes = jax.eval_shape(
        lambda key: create_train_state(config, vocab_size, key, optimizer, placement=placement),
        jax.random.key(0),
    )
    shardings = placement.state_shardings(shapes, rows)

    def size(tree) -> int:
        return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))

    per_device = sum(
        math.prod(sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
        for leaf, sharding in zip(jax.tree.leaves(shapes), jax.tree.leaves(shardings), strict=True)
    )
    return {
        "tables": size(shapes.params),
        "optimiser": size(shapes.opt_state),
        "per_device": per_device,
        "mesh": placement.description,
    }


def batch_capacity(
    config: Config, host_examples: data.Examples, epochs, at_least: int = 0
) -> int | None:
    """Pairs a packed batch must hold for every batch of ``epochs`` over the examples of a
    corpus of one window, at least ``at_least``; None when the batches are padded
    (``batches.resolved_layout``)."""
    if batches.resolved_layout(config.layout) != "packed":
        return None
    orders = [
        np.asarray(stream.window_order(config, len(host_examples), epoch, 0)) for epoch in epochs
    ]
    orders = orders or [np.zeros((0, config.batch_size), np.int32)]  # nothing left to train
    return batches.capacity_for(host_examples.num_live, np.concatenate(orders), at_least)


def _run_epoch(config, trainer, state, windows, epoch, progress, resume, saver, log, should_stop):
    plan = windows.plan(epoch)
    done = resume or EpochProgress()
    checkpoint_every = config.checkpoint_every if saver else 0
    centers = pairs = 0
    desc = f"epoch {epoch + 1}/{config.num_epochs}"
    with tqdm(
        total=plan.num_batches,
        initial=done.batch,
        desc=desc,
        unit="step",
        disable=not progress,
        leave=False,
    ) as bar:

        def after_dispatch(state, done, dispatch):
            log.curve.append([dispatch.global_step, np.asarray(dispatch.mean_loss).tolist()])
            bar.update(dispatch.steps)
            centers = float(np.max(dispatch.num_examples))
            bar.set_postfix_str(
                f"loss {_losses_text(done.mean_loss)}, {centers / dispatch.seconds:,.0f} centers/s"
            )
            if done.batch == plan.num_batches:  # the epoch's end is saved by the caller
                return
            stop = should_stop()
            due = checkpoint_every and dispatch.global_step % checkpoint_every == 0
            if saver is not None and (stop or due):
                log.diverged = list(trainer.diverged)
                saver.save(state, _Position(epoch, done), log)
            if stop:
                raise TrainingInterrupted(epoch + 1, dispatch.global_step, saver is not None)

        for window in windows.windows(epoch, plan.window_of(done.batch)):
            first = done.batch - window.first_batch  # batches done before a resume
            natural = stream.window_order(config, window.rows, epoch, window.index)
            order = window.device_order(natural)
            centers += (
                window.rows if not first else int((np.asarray(natural[first:]) < window.rows).sum())
            )
            window_pairs, most_live = window.counts(order, first, trainer.placement)
            pairs += window_pairs
            if not windows.one_window and log.capacity is not None:
                log.capacity = batches.rounded_capacity(most_live, log.capacity)
            state, done = trainer.run_epoch(
                state,
                window.device,
                order,
                epoch + 1,
                after_dispatch,
                done,
                checkpoint_every,
                log.capacity,
                offset=window.first_batch,
            )
    return state, done, (centers, pairs)


def _losses_text(mean_loss) -> str:
    losses = np.atleast_1d(mean_loss)
    if len(losses) == 1:
        return f"{losses[0]:.3f}"
    return f"{np.nanmin(losses):.3f}..{np.nanmax(losses):.3f} over {len(losses)} runs"


@dataclasses.dataclass
class _Log:
    """What a run carries in its checkpoints besides arrays and position: each run's epoch
    statistics and divergence, the loss curve and its packed batches' capacity (None:
    padded)."""

    histories: list[list[EpochStats]]
    diverged: list[str | None]
    curve: list[list] = dataclasses.field(default_factory=list)
    capacity: int | None = None

    @classmethod
    def empty(cls, num_runs: int) -> _Log:
        return cls([[] for _ in range(num_runs)], [None] * num_runs)

    def to_dict(self) -> dict:
        return {
            "histories": [[stats.to_dict() for stats in history] for history in self.histories],
            "diverged": self.diverged,
            "curve": self.curve,
            "capacity": self.capacity,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> _Log:
        # A checkpoint written before runs could train together holds one "history".
        histories = saved.get("histories") or [saved.get("history", [])]
        histories = [
            [
                EpochStats(**{k: v for k, v in stats.items() if k in _STATS_FIELDS})
                for stats in history
            ]
            for history in histories
        ]
        return cls(
            histories,
            saved.get("diverged") or [None] * len(histories),
            saved.get("curve", []),
            saved.get("capacity"),
        )


@dataclasses.dataclass(frozen=True)
class _Position:
    """Where training stands: the epoch under way (0-based) and how far into it."""

    epoch: int = 0
    within: EpochProgress = dataclasses.field(default_factory=EpochProgress)


class _Saver:
    """Checkpoints of one run, or of runs trained together, in ``workdir/checkpoints``:
    saving, and resuming from them. The config item is the run's config, or {"runs": [...]}
    for runs trained together."""

    def __init__(self, configs: list[Config], vocab: data.Vocab, workdir, restart: bool) -> None:
        self.configs, self.vocab = configs, vocab
        self.directory = Path(workdir).absolute() / "checkpoints"
        self.damaged = self.directory.parent / "damaged"
        try:
            if restart and self.directory.exists() and parallel.is_main_process():
                shutil.rmtree(self.directory)
            parallel.barrier("restart")  # no process opens what process 0 is deleting
            self.manager = checkpoint.open_manager(self.directory, configs[0].max_to_keep)
        except OSError as err:
            raise checkpoint.CheckpointError(
                f"cannot write checkpoints into {self.directory} ({err.strerror or err}): "
                f"choose a workdir you can write to"
            ) from err
        self.seconds = 0.0

    def has_checkpoint(self) -> bool:
        return bool(self.manager.all_steps())

    def save(self, state: TrainState, position: _Position, log: _Log) -> None:
        start = time.perf_counter()
        progress = {"epoch": position.epoch, **position.within.to_dict(), **log.to_dict()}
        config = (
            self.configs[0].to_dict()
            if len(self.configs) == 1
            else {"runs": [config.to_dict() for config in self.configs]}
        )
        checkpoint.save(
            self.manager,
            int(state.step),
            state.params,
            state.opt_state,
            progress,
            config,
            json.loads(self.vocab.to_json()),
        )
        self.seconds += time.perf_counter() - start  # the blocking part; writing goes on behind

    def resume(self, state: TrainState):
        targets = {
            "params": _abstract(state.params),
            "progress": None,
            "config": None,
            "vocab": None,
        }
        if jax.tree.leaves(state.opt_state):  # a stateless optimiser saves none
            targets["opt_state"] = _abstract(state.opt_state)
        step, restored = checkpoint.restore_latest(
            self.manager, targets, check=self._check_compatible, set_aside=self.damaged
        )
        opt_state = jax.tree.unflatten(
            jax.tree.structure(state.opt_state), jax.tree.leaves(restored.get("opt_state", ()))
        )
        state = state.replace(
            step=parallel.put(np.int32(step), state.step.sharding),
            params=restored["params"],
            opt_state=opt_state,
        )
        saved = restored["progress"]
        within = EpochProgress.from_dict(saved)
        return step, state, _Position(saved["epoch"], within), _Log.from_dict(saved)

    def _check_compatible(self, saved: dict) -> None:
        saved_configs = saved["config"].get("runs", [saved["config"]])
        if len(saved_configs) != len(self.configs):
            raise checkpoint.CheckpointError(
                f"the checkpoints in {self.directory} hold {len(saved_configs)} runs trained "
                f"together, this call trains {len(self.configs)}: start over with "
                f"restart=True or use another workdir."
            )
        for saved_config, config in zip(saved_configs, self.configs):
            self._check_config(saved_config, config)
        saved_vocab = saved["vocab"]
        if tuple(saved_vocab["tokens"]) != self.vocab.tokens:
            raise checkpoint.CheckpointError(
                f"the checkpoints in {self.directory} were made with another vocabulary "
                f"({len(saved_vocab['tokens'])} words, this run has {len(self.vocab)}): start "
                f"over with restart=True or use another workdir."
            )
        epoch, batch = saved["progress"]["epoch"], saved["progress"]["batch"]
        begun = epoch + (1 if batch else 0)
        num_epochs = self.configs[0].num_epochs
        if begun > num_epochs:
            held = f"{epoch} epochs" + (f" and {batch} steps of epoch {epoch + 1}" if batch else "")
            raise checkpoint.CheckpointError(
                f"the checkpoints in {self.directory} hold {held}, more than this run's "
                f"num_epochs={num_epochs}: ask for num_epochs={begun} or more to "
                f"use them, restart=True to train {num_epochs} from scratch, or "
                f"use another workdir."
            )

    def _check_config(self, saved_config: dict, config: Config) -> None:
        for name in config.resume_fields():
            # A field added since the checkpoint was made had its default then.
            saved_value = saved_config.get(name, _DEFAULTS[name])
            if saved_value != getattr(config, name):
                raise checkpoint.CheckpointError(
                    f"the checkpoints in {self.directory} were made with {name}="
                    f"{saved_value!r}, this run has {name}="
                    f"{getattr(config, name)!r}: resuming would not continue that run. "
                    f"Start over with restart=True or use another workdir."
                )

    def close(self) -> None:
        """Wait for the writes still under way."""
        self.manager.wait_until_finished()
        self.manager.close()


_STATS_FIELDS = {field.name for field in dataclasses.fields(EpochStats)}
_DEFAULTS = Config().to_dict()


def _abstract(tree):
    """Shapes, dtypes and shardings: Orbax restores each array where this run keeps it."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
