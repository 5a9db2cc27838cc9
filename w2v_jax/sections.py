"""The sections of ``Config`` (``w2v_jax.config``): the noise words, the optimiser and the
execution, each a frozen dataclass validated on construction, and the roles a setting's metadata
can give it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from w2v_jax import compat
from w2v_jax.fields import check_types

# The roles a field's metadata can give it, so that no list of fields is kept by hand:
EXECUTION = "execution"
"""Changes how a run executes or how long it goes on, not what a step computes: a resumed run
may change it, and it is not part of a run's name."""
DATA = "data"
"""Changes the prepared data (vocabulary, subsampling, windows, noise words): runs that share
these share their data stage."""
PER_RUN = "per_run"
"""A float hyperparameter of the optimiser that changes neither the data nor any array's
shape: runs that differ only in these can train together (``run.train`` with a list of configs)."""


Optimizer = Literal["adam", "sparse_sgd", "rowwise_adagrad", "lazy_adam"]
NoiseSharing = Literal["per_context", "per_batch"]
Layout = Literal["auto", "packed", "padded"]
LrSchedule = Literal["constant", "linear"]


def role_field(default: Any, role: str) -> Any:
    """A dataclass field with ``default`` whose metadata gives it ``role``."""
    return dataclasses.field(default=default, metadata={"role": role})


MESH_AXES = ("data", "vocab")


def mesh_sizes(spec: str | None) -> dict[str, int]:
    """``Config.mesh`` ("data=N,vocab=M", either part may be left out) -> the sizes given,
    e.g. {"data": N, "vocab": M}. Raises ValueError naming what is wrong."""
    sizes: dict[str, int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, value = (text.strip() for text in part.partition("="))
        if name not in MESH_AXES or not value.isdigit() or int(value) < 1 or name in sizes:
            raise ValueError(
                f"Config.execution.mesh={spec!r}: write it as data=N,vocab=M with whole "
                f"numbers N, M >= 1 (either part may be left out)"
            )
        sizes[name] = int(value)
    return sizes


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """The noise words a step scores against (``Config.noise``)."""

    count: int = role_field(5, DATA)
    """Noise words drawn per context word (skip-gram) or per center (CBOW)."""
    sharing: NoiseSharing = role_field("per_context", DATA)
    """"per_context": count noise words for each context word, drawn on the host and padded
    into the book's batches (exact book). "per_batch": one set of shared noise words per
    batch, drawn on the device and scored against every center of the batch (a different
    estimator of the same loss: each context's noise term is weighted count / shared,
    and noise words may equal a context word); rows hold only contexts, so batches are 1/(1 +
    count) as wide. Faster; see the benchmark for its effect on quality."""
    shared: int = 128
    """Noise words per group of centers when sharing is "per_batch"."""
    groups: int = 1
    """With sharing "per_batch": a batch's centers fall in this many groups of consecutive
    centers, each with its own shared noise words (1: one set for the whole batch). More
    groups give each noise word fewer centers to answer to, nearer the book's own noise words
    per center, and cut the noise logits' work by the same factor; batch_size must be a
    multiple."""

    def __post_init__(self) -> None:
        check_types(self, "Config.noise")
        require_positive(self, "Config.noise", ("count", "shared", "groups"))

    @property
    def shared_by_batch(self) -> bool:
        return self.sharing == "per_batch"


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The optimiser and its learning rate (``Config.optimizer``)."""

    name: Optimizer = "adam"
    """"adam" (the book's): optax's, applied densely to both tables. Row-sparse, updating only
    the rows a batch touches (w2v_jax.training.optim): "sparse_sgd", SGD with its rate decaying
    linearly to lr * 1e-4 over the run, as word2vec's (with schedule="constant", the update
    of dense SGD, which it replaced); "rowwise_adagrad", Adagrad with one accumulator per row;
    "lazy_adam", Adam whose moments and bias correction move only on touched rows."""
    lr: float | None = role_field(None, PER_RUN)
    """Learning rate; None: the optimiser's own default (w2v_jax.training.optim.REGISTRY), 0.01
    for Adam, the book's MXNet value (its PyTorch code uses 0.002). Each optimiser's rate has
    its own scale (see docs/optimisers.md), so a rate is only meaningful with its optimiser."""
    schedule: LrSchedule | None = None
    """How the rate moves over the run: "constant", or "linear", down to lr * 1e-4 at the
    run's last step, as word2vec's (its small last steps let the vectors settle); None: the
    optimiser's own, "linear" for "sparse_sgd", "constant" for the others (the book's). A
    function of the step number, so a resumed run continues it; a decaying run's num_epochs
    is part of the run."""
    warmup_steps: int = 0
    """The rate rises linearly from lr / warmup_steps to lr over this many first steps (0:
    none), so that the first steps from random tables do not overshoot."""
    b1: float = role_field(0.9, PER_RUN)
    """Adam's decay rate of the first moment (used by "adam" and "lazy_adam")."""
    b2: float = role_field(0.999, PER_RUN)
    """Adam's decay rate of the second moment (used by "adam" and "lazy_adam")."""

    def __post_init__(self) -> None:
        removed = compat.removed_optimizer(self.name)
        if removed is not None:
            raise ValueError(removed)
        check_types(self, "Config.optimizer")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Config.optimizer.lr={self.lr!r} must be positive and finite")
        for name in ("b1", "b2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(
                    f"Config.optimizer.{name}={getattr(self, name)!r} must be in [0, 1)"
                )
        if self.warmup_steps < 0:
            raise ValueError(
                f"Config.optimizer.warmup_steps={self.warmup_steps} must be non-negative"
            )

    @property
    def rate_decays(self) -> bool:
        """Whether the rate decays over the whole run: ``schedule`` "linear", or None with
        sparse_sgd, whose rate decays as word2vec's (the other optimisers' stays constant)."""
        if self.schedule is None:
            return self.name == "sparse_sgd"
        return self.schedule == "linear"


@dataclasses.dataclass(frozen=True)
class ExecutionConfig:
    """How a run executes, not what a step computes (``Config.execution``): a resumed run may
    change any of these, and none is part of a run's name."""

    layout: Layout = role_field("auto", EXECUTION)
    """How a batch's rows reach the step: "padded", the book's [batch, L] rows as they are, or
    "packed", their live slots end to end (w2v_jax.feed.batches), skipping the padding. The same
    loss (only the order of float additions differs). "auto": packed on a CPU, where skipping
    the padding halves the book's step, padded on an accelerator, where the packed layout's
    per-pair gathers cost more than the padding they skip (docs/performance.md: On a GPU)."""
    steps_per_dispatch: int = role_field(64, EXECUTION)
    """Train steps run by one compiled loop call; the progress bar moves once per call."""
    checkpoint_every: int = role_field(0, EXECUTION)
    """Save a checkpoint every this many steps as well as at each epoch's end (0: epochs only)."""
    max_to_keep: int = role_field(3, EXECUTION)
    """Checkpoints kept in a workdir; older ones are deleted."""
    mesh: str | None = role_field(None, EXECUTION)
    """The devices as a mesh, "data=N,vocab=M" (w2v_jax.parallel): both tables and their
    optimiser state split over the M devices of the vocab axis, each batch's rows over the N
    of the data axis; an axis left out takes the devices the other leaves. None: every device
    on data. One device gives the same numbers as any mesh (up to the order of float sums),
    so a resumed run may change it."""
    deterministic: bool = role_field(False, EXECUTION)
    """Compile with XLA's deterministic ops, so that a GPU run is bitwise repeatable (GPU
    scatter-adds otherwise sum in a varying order). No effect on the CPU, where runs are
    bitwise repeatable already; its cost on a GPU is in the README."""

    def __post_init__(self) -> None:
        check_types(self, "Config.execution")
        require_positive(self, "Config.execution", ("steps_per_dispatch", "max_to_keep"))
        if self.checkpoint_every < 0:
            raise ValueError(
                f"Config.execution.checkpoint_every={self.checkpoint_every} must be non-negative"
            )
        mesh_sizes(self.mesh)  # raises on a malformed mesh


SECTIONS = {"noise": NoiseConfig, "optimizer": OptimizerConfig, "execution": ExecutionConfig}
"""Config's fields that group related settings; a setting in one is named by its path,
"optimizer.lr", in presets, sweeps, flags (--optimizer.lr) and messages."""


def require_positive(section: Any, prefix: str, names: tuple[str, ...]) -> None:
    """Raise ValueError naming ``prefix.name`` and its value for any of ``names`` below 1."""
    for name in names:
        if getattr(section, name) < 1:
            raise ValueError(f"{prefix}.{name}={getattr(section, name)!r} must be at least 1")
