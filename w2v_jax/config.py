"""The one configuration object of a run: the book's hyperparameters and how we execute them."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
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
EncodingErrors = Literal["strict", "replace"]
Tokenizer = Literal["whitespace", "words"]
LossWeighting = Literal["per_center", "per_slot"]
LrSchedule = Literal["constant", "linear"]


def _role(default: Any, role: str) -> Any:
    return dataclasses.field(default=default, metadata={"role": role})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyperparameters of one run; defaults are the book's (d2l 14.4).

    Frozen so that a run's config cannot drift after it is stored beside its results.
    Invalid values raise ValueError on construction, naming the field and the value.
    """

    objective: Objective = _role("skipgram", DATA)
    """What a step trains (w2v_jax.objectives): "skipgram", the book's, each center predicting
    its context words; "cbow", word2vec's continuous bag of words as gensim's cbow_mean=1,
    the mean of a center's context vectors predicting the center, num_noise noise words per
    center. Skip-gram's word vectors are its center table, CBOW's its context table."""
    batch_size: int = 512
    """Centers per minibatch."""
    max_window: int = _role(5, DATA)
    """Largest context window; each center draws its window uniformly from 1..max_window."""
    num_noise: int = _role(5, DATA)
    """Noise words drawn per context word (skip-gram) or per center (CBOW)."""
    embed_size: int = 100
    """Dimension d of both embedding tables."""
    lr: float | None = _role(None, PER_RUN)
    """Learning rate; None: the optimiser's own default (w2v_jax.training.optim.REGISTRY), 0.01 for
    Adam, the book's MXNet value (its PyTorch code uses 0.002). Each optimiser's rate has its
    own scale (see docs/optimisers.md), so a rate is only meaningful with its
    optimiser."""
    optimizer: Optimizer = "adam"
    """"adam" (the book's): optax's, applied densely to both tables. Row-sparse, updating only
    the rows a batch touches (w2v_jax.training.optim): "sparse_sgd", SGD with its rate decaying
    linearly to lr * 1e-4 over the run, as word2vec's (with lr_schedule="constant", the update
    of dense SGD, which it replaced);
    "rowwise_adagrad", Adagrad with one accumulator per row; "lazy_adam", Adam whose moments
    and bias correction move only on touched rows."""
    lr_schedule: LrSchedule | None = None
    """How the rate moves over the run: "constant", or "linear", down to lr * 1e-4 at the
    run's last step, as word2vec's (its small last steps let the vectors settle); None: the
    optimiser's own, "linear" for "sparse_sgd", "constant" for the others (the book's). A
    function of the step number, so a resumed run continues it; a decaying run's num_epochs
    is part of the run."""
    lr_warmup_steps: int = 0
    """The rate rises linearly from lr / lr_warmup_steps to lr over this many first steps
    (0: none), so that the first steps from random tables do not overshoot."""
    adam_b1: float = _role(0.9, PER_RUN)
    """Adam's decay rate of the first moment (used by "adam" and "lazy_adam")."""
    adam_b2: float = _role(0.999, PER_RUN)
    """Adam's decay rate of the second moment (used by "adam" and "lazy_adam")."""
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
    noise_sharing: NoiseSharing = _role("per_context", DATA)
    """"per_context": num_noise noise words for each context word, drawn on the host and padded
    into the book's batches (exact book). "per_batch": one set of shared_noise noise words per
    batch, drawn on the device and scored against every center of the batch (a different
    estimator of the same loss: each context's noise term is weighted num_noise / shared_noise,
    and noise words may equal a context word); rows hold only contexts, so batches are 1/(1 +
    num_noise) as wide. Faster; see the benchmark for its effect on quality."""
    shared_noise: int = 128
    """Noise words per group of centers when noise_sharing is "per_batch"."""
    loss_weighting: LossWeighting = "per_center"
    """How the batch's pairs weigh in its loss. "per_center" (the book's): each center's loss
    is the mean over its live slots, the batch's the mean over its centers, so a center with
    one context weighs as much as one with ten. "per_slot" (word2vec's objective, which takes
    a step per (center, context) pair): the mean over every live slot of the batch, so each
    pair weighs the same."""
    noise_groups: int = 1
    """With noise_sharing "per_batch": a batch's centers fall in this many groups of
    consecutive centers, each with its own shared_noise noise words (1: one set for the whole
    batch). More groups give each noise word fewer centers to answer to, nearer the book's
    own noise words per center, and cut the noise logits' work by the same factor; batch_size
    must be a multiple."""
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
        if self.optimizer in REMOVED_OPTIMIZERS:
            self._require("optimizer", False, REMOVED_OPTIMIZERS[self.optimizer])
        check_types(self)
        positive = (
            "batch_size",
            "max_window",
            "num_noise",
            "embed_size",
            "num_epochs",
            "min_freq",
            "steps_per_dispatch",
            "max_to_keep",
            "shared_noise",
            "noise_groups",
            "block_tokens",
            "group_blocks",
        )
        for name in positive:
            self._require(name, getattr(self, name) >= 1, "must be at least 1")
        for name in ("lr", "subsample_t"):
            value = getattr(self, name)
            if value is not None:
                self._require(
                    name, math.isfinite(value) and value > 0, "must be positive and finite"
                )
        self._require(
            "noise_groups",
            self.batch_size % self.noise_groups == 0,
            f"must divide batch_size={self.batch_size}",
        )
        for name in ("adam_b1", "adam_b2"):
            self._require(name, 0 <= getattr(self, name) < 1, "must be in [0, 1)")
        mesh_sizes(self.mesh)  # raises on a malformed mesh
        for name in ("seed", "checkpoint_every", "lr_warmup_steps"):
            self._require(name, getattr(self, name) >= 0, "must be non-negative")

    def _require(self, name: str, ok: bool, why: str) -> None:
        if not ok:
            raise ValueError(f"Config.{name}={getattr(self, name)!r} {why}")

    @property
    def shares_noise(self) -> bool:
        return self.noise_sharing == "per_batch"

    @property
    def row_layout(self) -> RowLayout:
        """What a row of examples holds for a center (its objective's layout)."""
        noise_each = 0 if self.shares_noise else self.num_noise
        return RowLayout(self.max_window, noise_each, NOISE_FOR[self.objective])

    def subsample_draw(self, epoch: int) -> int:
        """The subsampling ``epoch`` (0-based) trains on: its own, or epoch 0's, the book's."""
        return epoch if self.subsample_each_epoch else 0

    def examples_draw(self, epoch: int) -> int:
        """The windows and noise words ``epoch`` trains on: its own, or epoch 0's, the book's."""
        return epoch if self.resample_each_epoch else 0

    @classmethod
    def fields_of(cls, role: str) -> tuple[str, ...]:
        """The fields whose metadata gives them ``role`` (EXECUTION, DATA or PER_RUN)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("role") == role)

    def vectorisation_key(self) -> tuple:
        """Equal for configs that can train together in one program: they may differ in the
        PER_RUN fields and in execution fields other than num_epochs."""
        per_run = self.fields_of(PER_RUN)
        shared = [name for name in self.math_fields() if name not in per_run]
        return tuple((name, getattr(self, name)) for name in [*shared, "num_epochs"])

    def data_key(self) -> tuple:
        """Equal for configs whose prepared data (vocabulary, subsampling, the first epoch's
        windows and noise words) is the same."""
        return tuple((name, getattr(self, name)) for name in self.fields_of(DATA))

    def math_fields(self) -> tuple[str, ...]:
        """Fields that change what training computes (all but the EXECUTION ones)."""
        execution = self.fields_of(EXECUTION)
        return tuple(f.name for f in dataclasses.fields(self) if f.name not in execution)

    @property
    def rate_decays(self) -> bool:
        """Whether the rate decays over the whole run: ``lr_schedule`` "linear", or None with
        sparse_sgd, whose rate decays as word2vec's (the other optimisers' stays constant)."""
        if self.lr_schedule is None:
            return self.optimizer == "sparse_sgd"
        return self.lr_schedule == "linear"

    def resume_fields(self) -> tuple[str, ...]:
        """Fields a run resumed from a checkpoint must match: the math fields and, where the
        learning rate decays over the whole run, num_epochs, since growing it would make the
        rate jump back up."""
        return (*self.math_fields(), *(("num_epochs",) if self.rate_decays else ()))

    def replace(self, **overrides: Any) -> Config:
        """A copy with some fields changed (validated like a new Config)."""
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {name: value for name, value in values.items() if name not in _REMOVED}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)


REMOVED_OPTIMIZERS = {
    "sgd": "was removed: optimizer='sparse_sgd' with lr_schedule='constant' makes the same "
    "update on the rows a batch touches",
    "adagrad": "was removed (the panel of real corpora: below rowwise_adagrad on WordSim353 "
    "and the analogies, up to 2.2x the time): use optimizer='rowwise_adagrad'",
}
"""Choices of earlier versions, refused with what replaces them."""

_REMOVED = ("draw",)
"""Fields of earlier versions that changed nothing a step computes, dropped when read."""

PTB = "ptb"
"""The corpus name that means PTB's training split (``CorpusConfig.paths``)."""
MAX_SENTENCE_LENGTH = 10_000


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Which text a run trains on and how it is read: saved with the run's checkpoints and in
    its ``metrics.json``, part of the corpus cache's key (``w2v_jax.data.corpus.encode``).

    Invalid values raise ValueError on construction, naming the field and the value.
    """

    paths: tuple[str, ...] = (PTB,)
    """Text files, directories (every file under them) or globs; plain, .gz, .bz2 or .xz; one
    sentence a line. "ptb": PTB's training split, fetched and verified (the default)."""
    tokenizer: Tokenizer = "whitespace"
    """"whitespace": a token is what lies between spaces, punctuation included (PTB's text is
    already split so); "words": runs of letters, digits and punctuation left out, from
    min_word_length to max_word_length characters, as gensim's simple_preprocess (which also
    lowercases: add lowercase)."""
    lowercase: bool = False
    """Lowercase every token."""
    deaccent: bool = False
    """Strip accents before splitting (é -> e), as simple_preprocess's deacc=True."""
    min_word_length: int = 2
    """The "words" tokenizer leaves out shorter words (simple_preprocess's min_len)."""
    max_word_length: int = 15
    """The "words" tokenizer leaves out longer words (simple_preprocess's max_len)."""
    max_sentence_length: int = MAX_SENTENCE_LENGTH
    """Longer lines are split into sentences of this many tokens (as word2vec and gensim)."""
    encoding_errors: EncodingErrors = "strict"
    """"strict": a file that is not UTF-8 is an error naming the byte; "replace": such bytes
    are read as U+FFFD."""
    max_vocab_size: int | None = None
    """Bound on the distinct words held while counting, forgetting rare ones as word2vec and
    gensim do (None: no bound)."""
    repeats: int = 1
    """The files read this many times in turn: a larger corpus with the same statistics, for
    speed benchmarks (PTB x16)."""

    def __post_init__(self) -> None:
        paths = (self.paths,) if isinstance(self.paths, str | os.PathLike) else self.paths
        object.__setattr__(self, "paths", tuple(map(str, paths)))
        check_types(self)
        if not self.paths:
            raise ValueError(
                "CorpusConfig.paths=(): name one or more files, directories or globs, or ptb"
            )
        for name in ("max_sentence_length", "repeats", "min_word_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"CorpusConfig.{name}={getattr(self, name)} must be at least 1")
        if self.max_word_length < self.min_word_length:
            raise ValueError(
                f"CorpusConfig.max_word_length={self.max_word_length} is below "
                f"min_word_length={self.min_word_length}: no word could be kept"
            )
        if self.max_vocab_size is not None and self.max_vocab_size < 1:
            raise ValueError(
                f"CorpusConfig.max_vocab_size={self.max_vocab_size} must be at least 1"
            )

    @property
    def is_ptb(self) -> bool:
        return self.paths == (PTB,)

    @property
    def name(self) -> str:
        """A short name for directories: "ptb", else the first path's last part."""
        name = Path(self.paths[0].rstrip("/")).name or "corpus"
        return name + (f"x{self.repeats}" if self.repeats > 1 else "")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "paths": list(self.paths)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CorpusConfig:
        return cls(**{**values, "paths": tuple(values["paths"])})


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
                f"Config.mesh={spec!r}: write it as data=N,vocab=M with whole "
                f"numbers N, M >= 1 (either part may be left out)"
            )
        sizes[name] = int(value)
    return sizes


def groups_trainable_together(configs: Sequence[Config]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can train together, in first-seen
    order."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.vectorisation_key(), []).append(index)
    return list(groups.values())
