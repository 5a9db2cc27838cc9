"""Noise sharing x learning rate for row-sparse SGD on batches of 2,048: one set of noise words
per batch, or one per group of centers (what picked the noise groups of ``--preset fast``, when
that preset was row-sparse SGD at lr 2500; fast_preset picked its optimiser since)."""

from experiments.sweeps import grid

BASE = {"noise.sharing": "per_batch", "batch_size": 2048, "optimizer.name": "sparse_sgd"}
METRIC = "simlex999_spearman"  # the measure in which shared noise words fell behind gensim

# Each keeps 128 to 2,048 noise words a step: one set of 128 per batch, or smaller sets for
# groups of 128 or 32 centers.
NOISE_SHARING = [
    {"noise.groups": 1, "noise.shared": 128},
    {"noise.groups": 16, "noise.shared": 32},
    {"noise.groups": 64, "noise.shared": 8},
]


def points() -> list[dict]:
    return [
        {**sharing, **point}
        for sharing in NOISE_SHARING
        for point in grid({"optimizer.lr": [1500.0, 2000.0, 2500.0, 3000.0], "seed": [0, 1, 2]})
    ]
