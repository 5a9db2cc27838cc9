"""Several runs in one compiled program: train states stacked side by side over shared batches.

Runs that differ only in float hyperparameters of the optimiser (``config.PER_RUN`` fields: the
learning rate, Adam's betas) see the same data, the same initial parameters and the same batch
order, so one gather of each batch serves them all and one dispatch runs a step of every run.
A seed changes the data draws and the initialisation, so runs with other seeds form other groups.
Batches reach the stacked step padded (``layout`` is not consulted: both layouts compute the same
loss, and stacking was measured on the padded one).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from w2v_jax import optim, pipeline
from w2v_jax.config import Config
from w2v_jax.step import TrainState, create_train_state
from w2v_jax.train import EpochStats, compiler_options, make_chunk_runner, pad_steps


@dataclasses.dataclass
class VectorisedRun:
    """One run of a vectorised group: what ``pipeline.train_skipgram`` would return for it,
    and, when its loss stopped being finite, where (its parameters are then not usable)."""

    config: Config
    params: dict
    history: list[EpochStats]
    compile_seconds: float
    diverged: str | None = None


def group_vectorisable(configs: Sequence[Config]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can train together, in first-seen
    order."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.vectorisation_key(), []).append(index)
    return list(groups.values())


def supports(config: Config) -> bool:
    """Whether ``config`` can train in a vectorised group (the dense optimisers: the row-sparse
    ones update their tables in place)."""
    return config.optimizer in optim.DENSE


def stack_states(configs: Sequence[Config], vocab_size: int,
                 optimizer: optim.Optimizer) -> TrainState:
    """One train state for all runs: each table [vocab, runs, embed] (a word's vectors of every
    run side by side, so that one gather or scatter of a row serves every run), the same
    initial parameters for all, and each run's learning rate (and betas) as a [runs, 1] array
    in the optimiser state, broadcasting over the tables."""
    first = configs[0]
    single = create_train_state(first, vocab_size, jax.random.key(first.seed), optimizer)
    params = jax.tree.map(lambda table: jnp.repeat(table[:, None], len(configs), axis=1),
                          single.params)
    opt_state = optimizer.init(params)
    hyper = dict(opt_state.hyperparams)
    hyper["learning_rate"] = _per_run([c.lr for c in configs])
    if first.optimizer == "adam":
        hyper["b1"] = _per_run([c.adam_b1 for c in configs])
        hyper["b2"] = _per_run([c.adam_b2 for c in configs])
    return TrainState(single.step, params, opt_state._replace(hyperparams=hyper))


def run_params(state: TrainState, run: int) -> dict:
    """The parameters of one run, [vocab, embed] tables as ``SkipGram`` holds them."""
    return jax.tree.map(lambda table: table[:, run], state.params)


def _per_run(values: list[float]) -> jax.Array:
    return jnp.asarray(values, jnp.float32)[:, None]


def train_together(configs: Sequence[Config], prepared: pipeline.PreparedData,
                   progress: bool = True) -> list[VectorisedRun]:
    """Train every config of one vectorisable group (see ``group_vectorisable``) at once.

    Each run ends with the parameters a run of ``pipeline.train_skipgram`` would have (up to
    float rounding). Its epoch statistics count its own centers over the group's wall time.
    A run whose loss turns non-finite is reported as diverged; the others train on.
    """
    if not all(supports(config) for config in configs):
        raise ValueError("optimizer='sparse_sgd' updates its tables in place; train its runs "
                         "one after another (pipeline.train_skipgram)")
    keys = {config.vectorisation_key() for config in configs}
    if len(keys) != 1:
        raise ValueError("train_together needs configs that differ only in "
                         "their PER_RUN fields; group them with group_vectorisable first")
    first, num_runs = configs[0], len(configs)
    # The one train step: its loss reads the runs' rows [.., runs, embed] side by side.
    optimizer, step = pipeline.optimizer_and_step(first, prepared.vocab, len(prepared.examples),
                                                  injectable=True)
    state = stack_states(configs, len(prepared.vocab), optimizer)
    run_chunk = make_chunk_runner(step, num_runs)
    examples = pipeline.to_device(prepared.examples)
    start = time.perf_counter()
    order = np.zeros((first.steps_per_dispatch, first.batch_size), np.int32)
    compiled = run_chunk.lower(state, examples, order, np.int32(0)).compile(
        compiler_options(first.deterministic))
    compile_seconds = time.perf_counter() - start
    histories: list[list[EpochStats]] = [[] for _ in configs]
    diverged: list[str | None] = [None] * num_runs
    for epoch in range(first.num_epochs):
        start = time.perf_counter()
        host_examples = prepared.examples
        if epoch > 0 and first.resample_each_epoch:
            host_examples = pipeline.draw_epoch_examples(first, prepared.dataset, epoch)
            examples = pipeline.to_device(host_examples)
        order, counts = pipeline.epoch_batches(first, host_examples, epoch)
        state, losses = _run_epoch(compiled, state, examples, order, first, epoch, progress)
        seconds = time.perf_counter() - start
        for run, loss in enumerate(losses):
            histories[run].append(EpochStats(epoch + 1, float(loss), seconds, *counts))
            if diverged[run] is None and not np.isfinite(loss):
                diverged[run] = f"non-finite loss in epoch {epoch + 1}"
    return [VectorisedRun(config, run_params(state, i), histories[i], compile_seconds,
                          diverged[i])
            for i, config in enumerate(configs)]


def _run_epoch(compiled: Callable, state: TrainState, examples: dict, order: np.ndarray,
               config: Config, epoch: int, progress: bool) -> tuple[TrainState, np.ndarray]:
    """The epoch's batches through the compiled loop; returns each run's mean loss."""
    loss_sums, num_examples = 0.0, 0.0
    steps = config.steps_per_dispatch
    desc = f"epoch {epoch + 1}/{config.num_epochs}"
    with tqdm(total=len(order), desc=desc, unit="step", disable=not progress, leave=False) as bar:
        for first in range(0, len(order), steps):
            num_steps = min(steps, len(order) - first)
            chunk = pad_steps(order[first:first + num_steps], steps)
            state, losses, rows = compiled(state, examples, chunk, np.int32(num_steps))
            # one host sync per dispatch; a non-finite loss stays non-finite in the sum
            loss_sums = loss_sums + np.asarray(losses, np.float64)[:num_steps].sum(axis=0)
            num_examples = num_examples + np.asarray(rows, np.float64)[:num_steps].sum(axis=0)
            bar.update(num_steps)
    return state, loss_sums / np.maximum(num_examples, 1.0)
