"""A whole skip-gram run: the data stage, then the training epochs. Experiments call this."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import jax
from tqdm.auto import tqdm

from w2v_jax import data
from w2v_jax.config import Config
from w2v_jax.train import EpochStats, Trainer, TrainState, create_train_state


@dataclasses.dataclass
class PreparedData:
    """The data stage's output: vocabulary, corpus and the first epoch's examples."""

    dataset: data.Dataset
    examples: data.Examples
    seconds: float

    @property
    def vocab(self) -> data.Vocab:
        return self.dataset.vocab


def prepare_data(config: Config, data_dir: str | os.PathLike | None = None,
                 text: str | None = None) -> PreparedData:
    """Read PTB (or ``text``, one sentence a line), build the vocabulary, subsample, and draw the
    first epoch's windows and noise words; timed as a whole."""
    start = time.perf_counter()
    if text is None:
        text = data.read_ptb(data_dir)
    dataset = data.build_dataset(text, config.min_freq, config.subsample_t, config.seed)
    examples = draw_epoch_examples(config, dataset, epoch=0)
    return PreparedData(dataset, examples, time.perf_counter() - start)


def draw_epoch_examples(config: Config, dataset: data.Dataset, epoch: int) -> data.Examples:
    """The examples of ``epoch``: drawn once for the whole run unless resample_each_epoch."""
    draw_epoch = epoch if config.resample_each_epoch else 0
    rng = data.stream_rng(config.seed, data.EXAMPLES_STREAM, draw_epoch)
    return data.draw_examples(dataset.corpus, dataset.noise_table, config.max_window,
                              config.num_noise, config.max_len, rng)


def to_device(examples: data.Examples) -> dict[str, jax.Array]:
    """The examples with their padding row, as device arrays keyed by field name."""
    padded = examples.with_padding_row()
    return {field.name: jax.device_put(getattr(padded, field.name))
            for field in dataclasses.fields(padded)}


@dataclasses.dataclass
class TrainingRun:
    """What a run produced: final state, per-epoch statistics and timings."""

    config: Config
    prepared: PreparedData
    state: TrainState
    history: list[EpochStats]
    compile_seconds: float

    @property
    def vocab(self) -> data.Vocab:
        return self.prepared.vocab

    @property
    def params(self):
        return self.state.params


def train_skipgram(config: Config, prepared: PreparedData,
                   on_epoch_end: Callable[[EpochStats], None] | None = None,
                   progress: bool = True) -> TrainingRun:
    """Train for ``config.num_epochs`` epochs on the prepared data."""
    state = create_train_state(config, len(prepared.vocab), jax.random.key(config.seed))
    trainer = Trainer(config.steps_per_dispatch)
    examples = to_device(prepared.examples)
    trainer.compile(state, examples, config.batch_size)
    history = []
    for epoch in range(config.num_epochs):
        start = time.perf_counter()
        if epoch > 0 and config.resample_each_epoch:
            host_examples = draw_epoch_examples(config, prepared.dataset, epoch)
            examples = to_device(host_examples)
        else:
            host_examples = prepared.examples
        state, stats = _run_epoch(config, trainer, state, examples, host_examples, epoch, progress)
        # The epoch's own wall time includes drawing its examples, when it draws them.
        stats = dataclasses.replace(stats, seconds=time.perf_counter() - start)
        history.append(stats)
        if on_epoch_end is not None:
            on_epoch_end(stats)
    return TrainingRun(config, prepared, state, history, trainer.compile_seconds)


def _run_epoch(config, trainer, state, examples, host_examples, epoch, progress):
    num_centers = len(host_examples)
    shuffle = data.stream_rng(config.seed, data.SHUFFLE_STREAM, epoch)
    order = data.batch_order(num_centers, config.batch_size, shuffle)
    counts = (num_centers, host_examples.num_pairs)
    desc = f"epoch {epoch + 1}/{config.num_epochs}"
    with tqdm(total=len(order), desc=desc, unit="step", disable=not progress, leave=False) as bar:
        return trainer.run_epoch(state, examples, order, epoch + 1, counts, bar.update)
