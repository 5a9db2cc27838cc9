"""What picked ``--preset gpu``: large batches (16,384 centers) with the adaptive row-sparse
optimisers x learning rate, 3 seeds, noise words shared by 64 groups of 256 centers. Fewer,
larger steps need longer ones than the fast preset's; the grid spans 16x around the chosen
rate."""

from experiments.sweeps import grid

BASE = {
    "noise.sharing": "per_batch",
    "noise.shared": 32,
    "noise.groups": 64,
    "batch_size": 16384,
    "subsample": "word2vec",
}
METRIC = "simlex999_spearman"

LEARNING_RATES = {
    "lazy_adam": (0.0125, 0.025, 0.05, 0.1, 0.2),
    "rowwise_adagrad": (0.05, 0.1, 0.2, 0.4, 0.8),
}


def points() -> list[dict]:
    return [
        point
        for optimizer, rates in LEARNING_RATES.items()
        for point in grid({"optimizer.name": [optimizer], "optimizer.lr": rates, "seed": [0, 1, 2]})
    ]
