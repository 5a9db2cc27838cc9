"""The one configuration object of a run: the book's hyperparameters and how we execute them."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from w2v_jax import compat
from w2v_jax.fields import check_types
from w2v_jax.rows import NOISE_FOR, Objective, RowLayout
from w2v_jax.sections import (
    DATA,
    EXECUTION,
    PER_RUN,
    SECTIONS,
    ExecutionConfig,
    NoiseConfig,
    OptimizerConfig,
    require_positive,
    role_field,
)

Shuffle = Literal["host", "device"]
SubsampleFormula = Literal["book", "word2vec"]
LossWeighting = Literal["per_center", "per_slot"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyperparameters of one run; defaults are the book's (d2l 14.4).

    Related settings are grouped in sections (``noise``, ``optimizer``, ``execution``); a
    setting is named by its path, ``"optimizer.lr"``: ``config.replace(**{"optimizer.lr":
    0.1})``, a preset's or a sweep's overrides, ``--optimizer.lr 0.1``.

    Frozen so that a run's config cannot drift after it is stored beside its results.
    Invalid values raise ValueError on construction, naming the setting and the value.
    """

    objective: Objective = role_field("skipgram", DATA)
    """What a step trains (w2v_jax.objectives): "skipgram", the book's, each center predicting
    its context words; "cbow", word2vec's continuous bag of words as gensim's cbow_mean=1,
    the mean of a center's context vectors predicting the center, noise.count noise words per
    center. Skip-gram's word vectors are its center table, CBOW's its context table."""
    batch_size: int = 512
    """Centers per minibatch."""
    max_window: int = role_field(5, DATA)
    """Largest context window; each center draws its window uniformly from 1..max_window."""
    embed_size: int = 100
    """Dimension d of both embedding tables."""
    num_epochs: int = role_field(5, EXECUTION)
    """Passes over the examples."""
    min_freq: int = role_field(10, DATA)
    """A token enters the vocabulary when it occurs at least this often."""
    subsample_t: float = role_field(1e-4, DATA)
    """Subsampling threshold t: a token is kept with probability min(1, sqrt(t / f))."""
    subsample: SubsampleFormula = role_field("book", DATA)
    """The subsampling formula: "book", min(1, sqrt(t / f)), exact; "word2vec", the C tool's
    and gensim's (sqrt(f / t) + 1) t / f, which keeps more of the frequent words (see
    w2v_jax.data.examples.keep_probabilities)."""
    seed: int = role_field(0, DATA)
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
    block_tokens: int = role_field(1 << 20, DATA)
    """The corpus is subsampled and turned into examples a block of about this many tokens
    (whole sentences) at a time, so that host memory holds a few blocks, never the corpus.
    PTB (887,521 tokens) is one block."""
    group_blocks: int = role_field(4, DATA)
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
        require_positive(
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
        for name, value in compat.settings_now(values).items():
            if name in SECTIONS and isinstance(value, dict):
                paths.update({f"{name}.{key}": setting for key, setting in value.items()})
            else:
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
    moved = compat.moved_message(path)
    if moved is not None:
        raise ValueError(moved)
    raise ValueError(f"unknown config setting {path!r}; settings: {', '.join(Config.paths())}")


def groups_trainable_together(configs: Sequence[Config]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can train together, in first-seen
    order."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.vectorisation_key(), []).append(index)
    return list(groups.values())
