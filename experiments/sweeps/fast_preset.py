"""What picked ``--preset fast``: the adaptive row-sparse optimisers x learning rate x
subsampling formula, 3 seeds, on the fast preset's batches (2,048 centers, noise words shared by
16 groups of 128 centers).

The adaptive optimisers scale each row's step by its own gradient history, so the rate is about
a step's length per coordinate whatever the batch or the corpus; the grid spans 16x around the
chosen rate, to show the margin on both sides.
"""

from experiments.sweeps import grid

BASE = {"noise.sharing": "per_batch", "noise.shared": 32, "noise.groups": 16, "batch_size": 2048}
METRIC = "simlex999_spearman"

LEARNING_RATES = {
    "lazy_adam": (0.005, 0.01, 0.02, 0.04, 0.08),
    "rowwise_adagrad": (0.025, 0.05, 0.1, 0.2, 0.4),
}


def points() -> list[dict]:
    return [
        point
        for optimizer, rates in LEARNING_RATES.items()
        for point in grid(
            {
                "optimizer.name": [optimizer],
                "subsample": ["book", "word2vec"],
                "optimizer.lr": rates,
                "seed": [0, 1, 2],
            }
        )
    ]
