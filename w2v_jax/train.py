"""Loss, train state, the jitted train step and the epoch loop over device-resident batches."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from w2v_jax import packed
from w2v_jax.model import SkipGram

if TYPE_CHECKING:
    from w2v_jax.config import Config

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def masked_sigmoid_bce(logits: jax.Array, labels: jax.Array, mask: jax.Array,
                       normalize: bool = True) -> jax.Array:
    """Per-example sigmoid binary cross-entropy over the masked slots, [batch, length] -> [batch].

    ``normalize=True`` gives sum(bce * mask) / sum(mask), the loss the book trains on
    (``loss(pred, label, mask) / mask.sum(1) * L``); ``False`` gives the book's ``SigmoidBCELoss``,
    mean(bce * mask) over the length. A fully masked row gives 0 and a zero gradient.
    """
    mask = mask.astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)) * mask
    if not normalize:
        return bce.mean(axis=-1)
    live = mask.sum(axis=-1)
    # The safe denominator keeps both the value and the gradient of an empty row at 0, not NaN.
    return bce.sum(axis=-1) / jnp.where(live > 0, live, 1.0)


class TrainState(train_state.TrainState):
    """Flax's TrainState: step, params, optimiser and its state."""


def create_train_state(config: Config, vocab_size: int, key: jax.Array,
                       injectable: bool = False) -> TrainState:
    """Fresh parameters (Xavier-uniform) and optimiser state for a vocabulary of ``vocab_size``
    (``injectable``: see ``make_optimizer``)."""
    model = SkipGram(vocab_size=vocab_size, embed_size=config.embed_size)
    dummy = jnp.zeros((1, 1), jnp.int32)
    # One compiled init instead of Flax's op-by-op one: about 0.4 s less at start-up.
    init = jax.jit(lambda key: model.init(key, dummy, dummy)["params"])
    params = init(key)
    tx = make_optimizer(config, injectable)
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def make_optimizer(config: Config, injectable: bool = False) -> optax.GradientTransformation:
    """The optax optimiser of ``config``. ``injectable=True`` keeps its float hyperparameters
    in the optimiser state (``optax.inject_hyperparams``), so that train states with different
    learning rates can be stacked and trained together."""
    if config.optimizer == "adam":
        make, hyper = optax.adam, {"b1": config.adam_b1, "b2": config.adam_b2}
    else:
        # sparse_sgd updates the tables itself (w2v_jax.sparse); its optax state stays empty.
        make = {"adagrad": optax.adagrad, "sgd": optax.sgd, "sparse_sgd": optax.sgd}
        make, hyper = make[config.optimizer], {}
    if injectable:
        make = optax.inject_hyperparams(make)
    return make(learning_rate=config.lr, **hyper)


def batch_loss(params: Any, apply_fn: Callable, batch: Batch) -> tuple[jax.Array, Metrics]:
    """Mean masked BCE over the batch's real rows (rows with any live slot)."""
    pred = apply_fn({"params": params}, batch["centers"], batch["contexts_negatives"])
    per_example = masked_sigmoid_bce(pred.reshape(batch["labels"].shape), batch["labels"],
                                     batch["mask"])
    return mean_over_examples(per_example, batch["mask"])


def mean_over_examples(per_example: jax.Array, mask: jax.Array) -> tuple[jax.Array, Metrics]:
    """The mean of ``per_example`` [batch] over the real rows (rows of ``mask`` [batch, length]
    with any live slot), with the sum and the count as metrics."""
    num_examples = jnp.any(mask, axis=-1).sum().astype(jnp.float32)
    loss_sum = per_example.sum()
    return loss_sum / jnp.maximum(num_examples, 1.0), {"loss_sum": loss_sum,
                                                       "num_examples": num_examples}


def train_step(state: TrainState, batch: Batch,
               loss_fn: Callable = batch_loss) -> tuple[TrainState, Metrics]:
    """One optimiser step on one batch; pure, to be jitted by the caller with the state donated.
    ``loss_fn(params, apply_fn, batch)`` is ``batch_loss`` or a stand-in with its signature."""
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.apply_fn, batch)
    return state.apply_gradients(grads=grads), metrics


def gather_batch(examples: dict[str, jax.Array], rows: jax.Array) -> Batch:
    """The book's batch for ``rows`` of the device-resident examples.

    ``examples`` holds ``centers`` [N, 1], ``contexts_negatives`` [N, L] and the per-row counts
    ``num_contexts`` and ``num_live`` [N]; mask and labels are expanded here, on the device, which
    is cheaper than storing and moving two [N, L] arrays.
    """
    contexts_negatives = examples["contexts_negatives"][rows]
    slot = jnp.arange(contexts_negatives.shape[-1], dtype=jnp.int32)
    return {"centers": examples["centers"][rows],
            "contexts_negatives": contexts_negatives,
            "mask": slot < examples["num_live"][rows][:, None],
            "labels": slot < examples["num_contexts"][rows][:, None]}


def shared_noise_loss(params: Any, apply_fn: Callable, batch: Batch, noise: jax.Array,
                      num_noise: int) -> tuple[jax.Array, Metrics]:
    """The book's loss with noise words shared by groups of centers: ``noise`` int32
    [groups, shared], group g's words shared by the g-th batch / groups consecutive centers.

    Rows hold only contexts (``mask`` = ``labels``). Each center's shared noise term stands in
    for its num_noise noise words per context word, so it is weighted by
    num_contexts * num_noise / shared; the sum is normalised by the book's live-slot count
    num_contexts * (1 + num_noise), then averaged over the batch's real rows.
    """
    variables = {"params": params}
    mask = batch["mask"].astype(jnp.float32)
    pred = apply_fn(variables, batch["centers"], batch["contexts_negatives"]).reshape(mask.shape)
    noise_pred = apply_fn(variables, batch["centers"], noise, method=SkipGram.noise_logits)
    return mean_over_examples(shared_noise_bce(pred, noise_pred, mask, num_noise), mask)


def shared_noise_bce(pred: jax.Array, noise_pred: jax.Array, mask: jax.Array,
                     num_noise: int) -> jax.Array:
    """Per-example loss with shared noise words: context logits ``pred`` and ``mask``
    [..., batch, length], logits against the shared noise ``noise_pred`` [..., batch, shared]
    -> [..., batch] (see ``shared_noise_loss``)."""
    num_contexts = mask.sum(axis=-1)
    context_terms = (optax.sigmoid_binary_cross_entropy(pred, 1.0) * mask).sum(axis=-1)
    noise_terms = optax.sigmoid_binary_cross_entropy(noise_pred, 0.0).sum(axis=-1)
    weight = num_contexts * num_noise / noise_pred.shape[-1]
    live = num_contexts * (1 + num_noise)
    return (context_terms + weight * noise_terms) / jnp.where(live > 0, live, 1.0)


def draw_shared_noise(cdf: jax.Array, shape: int | tuple[int, ...],
                      key: jax.Array) -> jax.Array:
    """Noise words by inverse CDF, int32 of ``shape``, from the cumulative noise
    distribution ``cdf`` [V] (cdf[0] = 0, so index 0 is never drawn)."""
    uniform = jax.random.uniform(key, shape)
    return jnp.minimum(jnp.searchsorted(cdf, uniform, side="right"), cdf.shape[0] - 1
                       ).astype(jnp.int32)


def noise_cdf(noise_probs: np.ndarray) -> np.ndarray:
    """The cumulative noise distribution for ``draw_shared_noise``, ending exactly at 1."""
    cdf = np.cumsum(noise_probs, dtype=np.float64)
    cdf = (cdf / cdf[-1]).astype(np.float32)
    cdf[-1] = 1.0
    return cdf


def make_shared_noise_step(noise_probs: np.ndarray, shared_noise: int, num_noise: int,
                           seed: int, loss_fn: Callable = shared_noise_loss,
                           noise_groups: int = 1) -> Callable:
    """A train step for noise_sharing="per_batch": each step draws its noise words, int32
    [noise_groups, shared_noise], on the device from a key folded with the step number, so
    a resumed run draws the same ones.
    ``loss_fn(params, apply_fn, batch, noise, num_noise)`` is ``shared_noise_loss`` or a
    stand-in with its signature."""
    cdf = noise_cdf(noise_probs)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        key = jax.random.fold_in(jax.random.key(seed), state.step)
        noise = draw_shared_noise(jnp.asarray(cdf), (noise_groups, shared_noise), key)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, metrics), grads = grad_fn(state.params, state.apply_fn, batch, noise, num_noise)
        return state.apply_gradients(grads=grads), metrics

    return step


def make_chunk_runner(step_fn: Callable = train_step, num_runs: int | None = None,
                      capacity: int | None = None) -> Callable:
    """A jitted function running up to ``steps`` train steps in one dispatch.

    ``run(state, examples, order, num_steps) -> (state, loss_sums, num_examples)``: ``examples``
    is a dict of device arrays with one row per center plus a padding row (see ``gather_batch``),
    ``order`` int32
    [steps, batch] picks each step's rows, and only the first ``num_steps`` steps run. The trip
    count is a traced value, so the short last dispatch of an epoch reuses the same program; a
    loop with a dynamic count (rather than a scan with a skip branch) spares a copy of the state
    per step. With ``num_runs``, ``step_fn`` trains that many stacked states at once and the
    loss sums and counts are [steps, num_runs]. With a ``capacity``, batches are packed
    (``packed.gather_packed``) rather than padded.
    """

    def gather(examples, rows):
        if capacity is None:
            return gather_batch(examples, rows)
        return packed.gather_packed(examples, rows, capacity)

    def run(state, examples, order, num_steps):
        def body(step, carry):
            state, loss_sums, counts = carry
            state, metrics = step_fn(state, gather(examples, order[step]))
            return (state, loss_sums.at[step].set(metrics["loss_sum"]),
                    counts.at[step].set(metrics["num_examples"]))

        runs = () if num_runs is None else (num_runs,)
        zeros = jnp.zeros((order.shape[0], *runs), jnp.float32)
        return jax.lax.fori_loop(0, num_steps, body, (state, zeros, zeros))

    return jax.jit(run, donate_argnums=0)


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """An epoch's loss and throughput: its own counts over its own wall time."""

    epoch: int
    loss: float
    seconds: float
    centers: int
    pairs: int
    step: int = 0
    """The global step at the epoch's end (0 where unknown)."""

    @property
    def centers_per_second(self) -> float:
        return self.centers / self.seconds

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds

    def to_dict(self) -> dict[str, float]:
        return {**dataclasses.asdict(self), "centers_per_second": self.centers_per_second,
                "pairs_per_second": self.pairs_per_second}


class Trainer:
    """Compiles the chunk runner and runs epochs of device-resident examples through it.

    Padded batches need one program. Packed ones (``capacity``) need one per pair capacity; an
    epoch whose batches need more pairs than the program holds compiles a larger one.
    ``deterministic`` compiles with XLA's deterministic ops (see Config.deterministic).
    """

    def __init__(self, steps_per_dispatch: int, step_fn: Callable = train_step,
                 deterministic: bool = False) -> None:
        self.steps_per_dispatch = steps_per_dispatch
        self._step_fn = step_fn
        self._compiler_options = compiler_options(deterministic)
        self._compiled = None
        self.capacity: int | None = None
        self.compile_seconds = 0.0

    def compile(self, state: TrainState, examples: dict[str, jax.Array], batch_size: int,
                capacity: int | None = None) -> None:
        """Compile ahead of time, so that compile time is measured apart from training time."""
        start = time.perf_counter()
        order = np.zeros((self.steps_per_dispatch, batch_size), np.int32)
        runner = make_chunk_runner(self._step_fn, capacity=capacity)
        self._compiled = runner.lower(state, examples, order, np.int32(0)).compile(
            self._compiler_options)
        self.capacity = capacity
        self.compile_seconds += time.perf_counter() - start

    def run_epoch(self, state: TrainState, examples: dict[str, jax.Array], order: np.ndarray,
                  epoch: int, counts: tuple[int, int],
                  on_dispatch: Callable[[TrainState, EpochProgress, Dispatch], None] | None = None,
                  resume: EpochProgress | None = None, checkpoint_every: int = 0,
                  capacity: int | None = None) -> tuple[TrainState, EpochStats]:
        """Train on the batches of ``order`` (int32 [num_batches, batch]).

        ``counts`` is the (centers, pairs) of the batches this call runs; ``resume`` starts
        after the batches an interrupted run already did, carrying their loss. After every
        dispatch, ``on_dispatch(state, progress, dispatch)`` is called (the caller logs,
        checkpoints or stops there); with ``checkpoint_every``, dispatches end on the global
        steps that are its multiples. ``capacity``: pairs per packed batch (None: padded
        batches). Raises FloatingPointError on a non-finite loss.
        """
        if self._compiled is None or capacity != self.capacity:
            self.compile(state, examples, order.shape[1], capacity)
        done = resume or EpochProgress()
        global_step = int(state.step)
        start = time.perf_counter()
        while done.batch < len(order):
            num_steps = min(self.steps_per_dispatch, len(order) - done.batch)
            if checkpoint_every:  # end dispatches on checkpoint steps
                num_steps = min(num_steps, checkpoint_every - global_step % checkpoint_every)
            chunk = pad_steps(order[done.batch:done.batch + num_steps], self.steps_per_dispatch)
            began = time.perf_counter()
            state, losses, rows = self._compiled(state, examples, chunk, np.int32(num_steps))
            losses = np.asarray(losses)[:num_steps]  # one host sync per dispatch, not per step
            check_finite(losses, epoch, done.batch)
            dispatch = Dispatch(num_steps, global_step + num_steps, float(losses.sum()),
                                float(np.asarray(rows).sum()), time.perf_counter() - began)
            done = EpochProgress(done.batch + num_steps, done.loss_sum + dispatch.loss_sum,
                                 done.num_examples + dispatch.num_examples)
            global_step += num_steps
            if on_dispatch is not None:
                on_dispatch(state, done, dispatch)
        seconds = time.perf_counter() - start
        return state, EpochStats(epoch, done.mean_loss, seconds, *counts)


def compiler_options(deterministic: bool) -> dict[str, Any] | None:
    """XLA options for ``Config.deterministic``: GPU scatter-adds in a fixed order (they
    otherwise add in whatever order the threads finish, so runs differ in the last bits).
    CPU programs are deterministic already; XLA ignores the GPU option there."""
    return {"xla_gpu_deterministic_ops": True} if deterministic else None


@dataclasses.dataclass(frozen=True)
class Dispatch:
    """One compiled call: its steps, the global step after it, the loss summed over its real
    rows, those rows (centers) and its wall time (it ends with the host reading the losses)."""

    steps: int
    global_step: int
    loss_sum: float
    num_examples: float
    seconds: float

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(self.num_examples, 1.0)


@dataclasses.dataclass(frozen=True)
class EpochProgress:
    """How far an epoch got: batches done and the loss summed over their real rows."""

    batch: int = 0
    loss_sum: float = 0.0
    num_examples: float = 0.0

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(self.num_examples, 1.0)


def pad_steps(order: np.ndarray, steps: int) -> np.ndarray:
    """``order`` grown to ``steps`` rows (the extra rows are never run), for a fixed shape."""
    if len(order) == steps:
        return order
    return np.concatenate([order, np.zeros((steps - len(order), order.shape[1]), order.dtype)])


def check_finite(losses: np.ndarray, epoch: int, first_batch: int) -> None:
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        step = first_batch + int(bad[0]) + 1
        raise FloatingPointError(f"non-finite loss {losses[bad[0]]} in epoch {epoch} at step "
                                 f"{step} of the epoch: lower the learning rate or check the data")
