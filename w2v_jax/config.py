"""The one configuration object of a run: the book's hyperparameters and how we execute them."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from w2v_jax.fields import check_types
from w2v_jax.rows import NOISE_FOR, Objective, RowLayout

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
Shuffle = Literal["host", "device"]
SubsampleFormula = Literal["book", "word2vec"]
LossWeighting = Literal["per_center", "per_slot"]
LrSchedule = Literal["constant", "linear"]


def _role(default: Any, role: str) -> Any:
    return dataclasses.field(default=default, metadata={"role": role})


REMOVED_OPTIMIZERS = {
    "sgd": "was removed: optimizer.name='sparse_sgd' with optimizer.schedule='constant' makes "
    "the same update on the rows a batch touches",
    "adagrad": "was removed (the panel of real corpora: below rowwise_adagrad on WordSim353 "
    "and the analogies, up to 2.2x the time): use optimizer.name='rowwise_adagrad'",
}
"""Choices of earlier versions, refused with what replaces them."""

_REMOVED = ("draw",)
"""Fields of earlier versions that changed nothing a step computes, dropped when read."""

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

    count: int = _role(5, DATA)
    """Noise words drawn per context word (skip-gram) or per center (CBOW)."""
    sharing: NoiseSharing = _role("per_context", DATA)
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
        _positive(self, "Config.noise", ("count", "shared", "groups"))

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
    lr: float | None = _role(None, PER_RUN)
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
    b1: float = _role(0.9, PER_RUN)
    """Adam's decay rate of the first moment (used by "adam" and "lazy_adam")."""
    b2: float = _role(0.999, PER_RUN)
    """Adam's decay rate of the second moment (used by "adam" and "lazy_adam")."""

    def __post_init__(self) -> None:
        if self.name in REMOVED_OPTIMIZERS:
            raise ValueError(f"Config.optimizer.name={self.name!r} {REMOVED_OPTIMIZERS[self.name]}")
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

    layout: Layout = _role("auto", EXECUTION)
    """How a batch's rows reach the step: "padded", the book's [batch, L] rows as they are, or
    "packed", their live slots end to end (w2v_jax.feed.batches), skipping the padding. The same
    loss (only the order of float additions differs). "auto": packed on a CPU, where skipping
    the padding halves the book's step, padded on an accelerator, where the packed layout's
    per-pair gathers cost more than the padding they skip (docs/performance.md: On a GPU)."""
    steps_per_dispatch: int = _role(64, EXECUTION)
    """Train steps run by one compiled loop call; the progress bar moves once per call."""
    checkpoint_every: int = _role(0, EXECUTION)
    """Save a checkpoint every this many steps as well as at each epoch's end (0: epochs only)."""
    max_to_keep: int = _role(3, EXECUTION)
    """Checkpoints kept in a workdir; older ones are deleted."""
    mesh: str | None = _role(None, EXECUTION)
    """The devices as a mesh, "data=N,vocab=M" (w2v_jax.parallel): both tables and their
    optimiser state split over the M devices of the vocab axis, each batch's rows over the N
    of the data axis; an axis left out takes the devices the other leaves. None: every device
    on data. One device gives the same numbers as any mesh (up to the order of float sums),
    so a resumed run may change it."""
    deterministic: bool = _role(False, EXECUTION)
    """Compile with XLA's deterministic ops, so that a GPU run is bitwise repeatable (GPU
    scatter-adds otherwise sum in a varying order). No effect on the CPU, where runs are
    bitwise repeatable already; its cost on a GPU is in the README."""

    def __post_init__(self) -> None:
        check_types(self, "Config.execution")
        _positive(self, "Config.execution", ("steps_per_dispatch", "max_to_keep"))
        if self.checkpoint_every < 0:
            raise ValueError(
                f"Config.execution.checkpoint_every={self.checkpoint_every} must be non-negative"
            )
        mesh_sizes(self.mesh)  # raises on a malformed mesh


SECTIONS = {"noise": NoiseConfig, "optimizer": OptimizerConfig, "execution": ExecutionConfig}
"""Config's fields that group related settings; a setting in one is named by its path,
"optimizer.lr", in presets, sweeps, flags (--optimizer.lr) and messages."""


def _positive(section: Any, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(section, name) < 1:
            raise ValueError(f"{prefix}.{name}={getattr(section, name)!r} must be at least 1")


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyperparameters of one run; defaults are the book's (d2l 14.4).

    Related settings are grouped in sections (``noise``, ``optimizer``, ``execution``); a
    setting is named by its path, ``"optimizer.lr"``: ``config.replace(**{"optimizer.lr":
    0.1})``, a preset's or a sweep's overrides, ``--optimizer.lr 0.1``.

    Frozen so that a run's config cannot drift after it is stored beside its results.
    Invalid values raise ValueError on construction, naming the setting and the value.
    """

    objective: Objective = _role("skipgram", DATA)
    """What a step trains (w2v_jax.objectives): "skipgram", the book's, each center predicting
    its context words; "cbow", word2vec's continuous bag of words as gensim's cbow_mean=1,
    the mean of a center's context vectors predicting the center, noise.count noise words per
    center. Skip-gram's word vectors are its center table, CBOW's its context table."""
    batch_size: int = 512
    """Centers per minibatch."""
    max_window: int = _role(5, DATA)
    """Largest context window; each center draws its window uniformly from 1..max_window."""
    embed_size: int = 100
    """Dimension d of both embedding tables."""
    num_epochs: int = _role(5, EXECUTION)
    """Passes over the examples."""
    min_freq: int = _role(10, DATA)
    """A token enters the vocabulary when it occurs at least this often."""
    subsample_t: float = _role(1e-4, DATA)
    """Subsampling threshold t: a token is kept with probability min(1, sqrt(t / f))."""
    subsample: SubsampleFormula = _role("book", DATA)
    """The subsampling formula: "book", min(1, sqrt(t / f)), exact; "word2vec", the C tool's
    and gensim's (sqrt(f / t) + 1) t / f, which keeps more of the frequent words (see
    w2v_jax.data.examples.keep_probabilities)."""
    seed: int = _role(0, DATA)
    """Seeds every random choice: data draws, shuffling and parameter initialisation."""
    resample_each_epoch: bool = False
    """Draw new windows and noise words every epoch (the book's exercise 4); off as in the book,
    which draws them once and trains on the same ones every epoch."""
    subsample_each_epoch: bool = False
    """Draw a new subsampling every epoch, as word2vec and gensim do, so that each epoch trains
    on other occurrences of the frequent words; off as in the book, which subsamples once.
    Every preset but the book's draws everything anew (this and resample_each_epoch)."""
    loss_weighting: LossWeighting = "per_center"
    """How the batch's pairs weigh in its loss. "per_center" (the book's): each center's loss
    is the mean over its live slots, the batch's the mean over its centers, so a center with
    one context weighs as much as one with ten. "per_slot" (word2vec's objective, which takes
    a step per (center, context) pair): the mean over every live slot of the batch, so each
    pair weighs the same."""
    shuffle: Shuffle = "host"
    """Where each epoch's batch order is drawn: "host", a numpy permutation (the data stage's
    generator, so that a run's batches can be rebuilt on the host); "device", a JAX
    permutation drawn on the accelerator, another order from the same seed, for corpora of
    millions of centers, where the host's permutation (about 0.1 s per million centers) would
    bound the speed."""
    block_tokens: int = _role(1 << 20, DATA)
    """The corpus is subsampled and turned into examples a block of about this many tokens
    (whole sentences) at a time, so that host memory holds a few blocks, never the corpus.
    PTB (887,521 tokens) is one block."""
    group_blocks: int = _role(4, DATA)
    """Blocks shuffled together: each epoch draws an order of the blocks and shuffles the rows
    within each group of this many consecutive blocks of it. A full shuffle would mix every
    row of the corpus; a group mixes a few blocks' rows, enough to break the corpus's local
    order at a bounded memory (a group's examples are on the host and the device at once). A
    corpus of at most group_blocks blocks is one group: a full shuffle."""
    noise: NoiseConfig = NoiseConfig()
    """The noise words (NoiseConfig)."""
    optimizer: OptimizerConfig = OptimizerConfig()
    """The optimiser and its rate (OptimizerConfig)."""
    execution: ExecutionConfig = ExecutionConfig()
    """How the run executes (ExecutionConfig)."""

    def __post_init__(self) -> None:
        check_types(self, "Config")
        _positive(
            self,
            "Config",
            (
                "batch_size",
                "max_window",
                "embed_size",
                "num_epochs",
                "min_freq",
                "block_tokens",
                "group_blocks",
            ),
        )
        if not (math.isfinite(self.subsample_t) and self.subsample_t > 0):
            raise ValueError(f"Config.subsample_t={self.subsample_t!r} must be positive and finite")
        if self.seed < 0:
            raise ValueError(f"Config.seed={self.seed} must be non-negative")
        if self.batch_size % self.noise.groups:
            raise ValueError(
                f"Config.noise.groups={self.noise.groups} must divide batch_size={self.batch_size}"
            )

    @property
    def row_layout(self) -> RowLayout:
        """What a row of examples holds for a center (its objective's layout)."""
        noise_each = 0 if self.noise.shared_by_batch else self.noise.count
        return RowLayout(self.max_window, noise_each, NOISE_FOR[self.objective])

    def subsample_draw(self, epoch: int) -> int:
        """The subsampling ``epoch`` (0-based) trains on: its own, or epoch 0's, the book's."""
        return epoch if self.subsample_each_epoch else 0

    def examples_draw(self, epoch: int) -> int:
        """The windows and noise words ``epoch`` trains on: its own, or epoch 0's, the book's."""
        return epoch if self.resample_each_epoch else 0

    def get(self, path: str) -> Any:
        """The setting at ``path`` ("batch_size", "optimizer.lr")."""
        return functools.reduce(getattr, path.split("."), self)

    @classmethod
    def paths(cls) -> tuple[str, ...]:
        """Every setting's path, the sections' settings as "section.name"."""
        return tuple(path for path, _ in _settings())

    @classmethod
    def paths_of(cls, role: str) -> tuple[str, ...]:
        """The paths of the settings whose metadata gives them ``role`` (EXECUTION, DATA or
        PER_RUN)."""
        return tuple(path for path, field in _settings() if field.metadata.get("role") == role)

    def vectorisation_key(self) -> tuple:
        """Equal for configs that can train together in one program: they may differ in the
        PER_RUN settings and in execution settings other than num_epochs."""
        per_run = self.paths_of(PER_RUN)
        shared = [path for path in self.math_paths() if path not in per_run]
        return tuple((path, self.get(path)) for path in [*shared, "num_epochs"])

    def data_key(self) -> tuple:
        """Equal for configs whose prepared data (vocabulary, subsampling, the first epoch's
        windows and noise words) is the same."""
        return tuple((path, self.get(path)) for path in self.paths_of(DATA))

    def math_paths(self) -> tuple[str, ...]:
        """Paths of the settings that change what training computes (all but EXECUTION's)."""
        execution = self.paths_of(EXECUTION)
        return tuple(path for path in self.paths() if path not in execution)

    def resume_paths(self) -> tuple[str, ...]:
        """Settings a run resumed from a checkpoint must match: the math settings and, where
        the learning rate decays over the whole run, num_epochs, since growing it would make
        the rate jump back up."""
        decays = self.optimizer.rate_decays
        return (*self.math_paths(), *(("num_epochs",) if decays else ()))

    def replace(self, **paths: Any) -> Config:
        """A copy with the settings at ``paths`` changed (validated like a new Config):
        ``replace(num_epochs=3)``, ``replace(**{"optimizer.lr": 0.1})``, or a whole section,
        ``replace(noise=NoiseConfig(...))``."""
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for path, value in paths.items():
            _check_path(path)
            section, _, name = path.partition(".")
            if name:
                sections.setdefault(section, {})[name] = value
            else:
                top[section] = value
        for section, changes in sections.items():
            top[section] = dataclasses.replace(top.get(section, getattr(self, section)), **changes)
        return dataclasses.replace(self, **top)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """The Config of ``to_dict``'s form; a config saved by an earlier version (settings
        that have moved into a section, or were removed) is read as it was meant."""
        paths: dict[str, Any] = {}
        for name, value in values.items():
            if name in SECTIONS and isinstance(value, dict):
                paths.update({f"{name}.{key}": setting for key, setting in value.items()})
            elif name in MOVED:
                paths[MOVED[name]] = value
            elif name not in _REMOVED:
                paths[name] = value
        return cls().replace(**paths)


def _settings(cls: type = Config, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    """(path, field) of every setting of ``cls``, a section's settings under its name."""
    settings = []
    for field in dataclasses.fields(cls):
        if field.name in SECTIONS and cls is Config:
            settings += _settings(SECTIONS[field.name], f"{field.name}.")
        else:
            settings.append((prefix + field.name, field))
    return settings


def _check_path(path: str) -> None:
    """Raise ValueError for a path that names no setting: one that moved into a section says
    where it went; another lists the settings."""
    if path in SECTIONS or path in Config.paths():
        return
    if path in MOVED:
        raise ValueError(f"Config.{path} is Config.{MOVED[path]} now: set {MOVED[path]}")
    raise ValueError(f"unknown config setting {path!r}; settings: {', '.join(Config.paths())}")


MOVED = {
    "num_noise": "noise.count",
    "noise_sharing": "noise.sharing",
    "shared_noise": "noise.shared",
    "noise_groups": "noise.groups",
    "optimizer": "optimizer.name",
    "lr": "optimizer.lr",
    "lr_schedule": "optimizer.schedule",
    "lr_warmup_steps": "optimizer.warmup_steps",
    "adam_b1": "optimizer.b1",
    "adam_b2": "optimizer.b2",
    **{
        name: f"execution.{name}"
        for name in (
            "layout",
            "steps_per_dispatch",
            "checkpoint_every",
            "max_to_keep",
            "mesh",
            "deterministic",
        )
    },
}
"""Settings of earlier versions' flat Config and their paths now: saved configs are read
with them, and a call that names one is told its path."""


def groups_trainable_together(configs: Sequence[Config]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can train together, in first-seen
    order."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.vectorisation_key(), []).append(index)
    return list(groups.values())
