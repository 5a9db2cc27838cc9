"""Named settings: ``PRESETS`` (overrides of the book's ``Config``) and ``preset``, under which
a preset's rate stays with its own optimiser."""

from __future__ import annotations

from typing import Any

from w2v_jax.config import Config
from w2v_jax.sections import OptimizerConfig

OPTIMIZER, LR = "optimizer.name", "optimizer.lr"

# Every draw anew each epoch (subsampling, windows, noise words), as word2vec and gensim:
# trained on one draw, a run sees a fraction of its corpus's contexts and gains little from
# more epochs (results/panel).
ANEW = {"resample_each_epoch": True, "subsample_each_epoch": True}

# Named sets of overrides, settings by path; the defaults stay the book's.
PRESETS: dict[str, dict[str, Any]] = {
    "book": {},
    # Fast on a CPU (results/benchmark/README.md): noise words shared by groups of 128
    # centers, row-wise Adagrad, whose steps adapt to each row, so that its rate holds on any
    # corpus (results/sweeps/fast_preset, tests/test_presets.py), and word2vec's subsampling.
    "fast": {
        "noise.sharing": "per_batch",
        "noise.shared": 32,
        "noise.groups": 16,
        "batch_size": 2048,
        "optimizer.name": "rowwise_adagrad",
        "optimizer.lr": 0.2,
        "subsample": "word2vec",
        **ANEW,
    },
    # Large batches for accelerators: 16,384 centers a step, noise words shared by groups of
    # 256, row-wise Adagrad, word2vec's subsampling (results/sweeps/gpu_preset; its speed:
    # results/scale).
    "gpu": {
        "noise.sharing": "per_batch",
        "noise.shared": 32,
        "noise.groups": 64,
        "batch_size": 16384,
        "optimizer.name": "rowwise_adagrad",
        "optimizer.lr": 0.2,
        "subsample": "word2vec",
        "shuffle": "device",
        "execution.steps_per_dispatch": 256,
        **ANEW,
    },
    # The best of the PTB sweeps by WordSim353 over 3 seeds (results/sweeps/README.md).
    "best": {"optimizer.lr": 0.002, "num_epochs": 10, **ANEW},
}

OWN_TEXT = "fast"
"""The preset a corpus other than PTB trains by default (``experiments.train``, ``run.train``
without a config): the panel of real corpora's pick for quality and speed (results/panel)."""


def default_config(is_ptb: bool) -> Config:
    """The config a run trains when it is given none: the book's on PTB, ``OWN_TEXT``'s on
    any other corpus."""
    return Config() if is_ptb else preset(OWN_TEXT)


def preset(name: str, **overrides: Any) -> Config:
    """The Config of a named preset, with ``overrides`` (settings by path, as
    ``Config.replace``'s) on top. A preset's rate belongs to its optimiser: another
    ``optimizer.name`` without an ``optimizer.lr`` trains at that optimiser's own default rate
    (``preset_rate_note`` says so)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    values = {**PRESETS[name], **overrides}
    if _rate_left_behind(name, overrides):
        values[LR] = None
    return Config().replace(**values)


def preset_rate_note(name: str, overrides: dict[str, Any]) -> str | None:
    """One line when ``preset(name, **overrides)`` leaves the preset's rate behind, else None."""
    if not _rate_left_behind(name, overrides):
        return None
    from w2v_jax.training.optim import REGISTRY  # the optimisers' module reads this one

    own = PRESETS[name].get(OPTIMIZER, OptimizerConfig.name)
    chosen = overrides[OPTIMIZER]
    return (
        f"optimizer.name={chosen} trains at its own default rate {REGISTRY[chosen].default_lr:g}, "
        f"not the {name} preset's optimizer.lr={PRESETS[name][LR]}, which is {own}'s (choose a "
        f"rate with optimizer.lr=RATE)"
    )


def _rate_left_behind(name: str, overrides: dict[str, Any]) -> bool:
    """Whether ``overrides`` change the preset's optimiser but not its rate."""
    own = PRESETS[name].get(OPTIMIZER, OptimizerConfig.name)
    return LR in PRESETS[name] and LR not in overrides and overrides.get(OPTIMIZER, own) != own
