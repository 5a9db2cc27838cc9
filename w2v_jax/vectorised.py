"""Several runs in one compiled program: train states stacked side by side over shared batches.

Runs that differ only in float hyperparameters of the optimiser (``VECTORISABLE_FIELDS``: the
learning rate, Adam's betas) see the same data, the same initial parameters and the same batch
order, so one gather of each batch serves them all and one dispatch runs a step of every run.
A seed changes the data draws and the initialisation, so runs with other seeds form other groups.
Batches reach the stacked step padded (``layout`` is not consulted: both layouts compute the same
loss, and the stacked step was measured on the padded one).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from w2v_jax import pipeline
from w2v_jax.config import Config
from w2v_jax.model import lookup
from w2v_jax.train import (
    Batch,
    EpochStats,
    TrainState,
    compiler_options,
    create_train_state,
    make_chunk_runner,
    make_optimizer,
    masked_sigmoid_bce,
    pad_steps,
    shared_noise_bce,
)


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
    """Whether ``config`` can train in a vectorised group (every optimizer but sparse_sgd)."""
    return config.optimizer != "sparse_sgd"


def stack_states(configs: Sequence[Config], vocab_size: int) -> TrainState:
    """One train state for all runs: each table [vocab, runs, embed] (a word's vectors of every
    run side by side, so that one gather or scatter of a row serves every run), the same
    initial parameters for all, and each run's learning rate (and betas) as a [runs, 1] array
    in the optimiser state, broadcasting over the tables."""
    first = configs[0]
    single = create_train_state(first, vocab_size, jax.random.key(first.seed))
    params = jax.tree.map(lambda table: jnp.repeat(table[:, None], len(configs), axis=1),
                          single.params)
    tx = make_optimizer(first, injectable=True)
    state = TrainState.create(apply_fn=single.apply_fn, params=params, tx=tx)
    hyper = dict(state.opt_state.hyperparams)
    hyper["learning_rate"] = _per_run([c.lr for c in configs])
    if first.optimizer == "adam":
        hyper["b1"] = _per_run([c.adam_b1 for c in configs])
        hyper["b2"] = _per_run([c.adam_b2 for c in configs])
    return state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))


def run_params(state: TrainState, run: int) -> dict:
    """The parameters of one run, [vocab, embed] tables as ``SkipGram`` holds them."""
    return jax.tree.map(lambda table: table[:, run], state.params)


def stacked_batch_loss(params: dict, apply_fn: Callable, batch: Batch):
    """``train.batch_loss`` of every run at once: the sum of the runs' losses (each run's
    gradient is that of its own loss), with the loss sums [runs] as metrics."""
    del apply_fn  # the module's tables are [vocab, embed]; these hold every run
    v, u = _rows(params, batch["centers"][:, 0], batch["contexts_negatives"])
    pred = (v[:, None] * u).sum(axis=-1)  # [batch, length, runs]; no transposed copy of u
    per_example = masked_sigmoid_bce(pred.transpose(2, 0, 1), batch["labels"], batch["mask"])
    return _sum_of_means(per_example, batch["mask"])


def stacked_shared_noise_loss(params: dict, apply_fn: Callable, batch: Batch,
                              noise: jax.Array, num_noise: int):
    """``train.shared_noise_loss`` of every run at once (see ``stacked_batch_loss``)."""
    del apply_fn
    v, u = _rows(params, batch["centers"][:, 0], batch["contexts_negatives"])
    u_noise = lookup(params["context_embed"]["embedding"], noise)  # [groups, shared, runs, e]
    mask = batch["mask"].astype(jnp.float32)
    pred = (v[:, None] * u).sum(axis=-1).transpose(2, 0, 1)  # [runs, batch, length]
    groups, shared = noise.shape
    grouped = v.reshape(groups, -1, *v.shape[1:])
    noise_pred = jnp.einsum("gbre,gsre->rgbs", grouped, u_noise).reshape(-1, v.shape[0], shared)
    return _sum_of_means(shared_noise_bce(pred, noise_pred, mask, num_noise), mask)


def _rows(params: dict, centers: jax.Array, ids: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Center rows [batch, runs, embed] and context rows [*ids.shape, runs, embed]."""
    return (lookup(params["center_embed"]["embedding"], centers),
            lookup(params["context_embed"]["embedding"], ids))


def _sum_of_means(per_example: jax.Array, mask: jax.Array):
    num_examples = jnp.any(mask, axis=-1).sum().astype(jnp.float32)
    loss_sums = per_example.sum(axis=-1)
    metrics = {"loss_sum": loss_sums, "num_examples": jnp.broadcast_to(num_examples,
                                                                       loss_sums.shape)}
    return loss_sums.sum() / jnp.maximum(num_examples, 1.0), metrics


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
                         "VECTORISABLE_FIELDS; group them with group_vectorisable first")
    first, num_runs = configs[0], len(configs)
    state = stack_states(configs, len(prepared.vocab))
    step = pipeline.step_for(first, prepared.vocab, len(prepared.examples), stacked_batch_loss,
                             stacked_shared_noise_loss)
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
