"""Learning rate x optimiser, 3 seeds, the book's configuration otherwise: Adam, and plain SGD
at a constant rate (row-sparse SGD, the same update as dense SGD).

Each optimiser gets its own learning rates. The book's loss is a mean over the batch and over
each example's live slots, so one word's gradient is about 1 / (512 * 22) of word2vec's
per-pair gradient: plain SGD needs steps of about 100 or more, where Adam's 0.002 suffices.
"""

from experiments.sweeps import grid

SEEDS = (0, 1, 2)
LEARNING_RATES = {
    "adam": (0.001, 0.002, 0.005, 0.01),
    "sparse_sgd": (10.0, 100.0, 1000.0, 3000.0),
}
CONSTANT = {"sparse_sgd": {"optimizer.schedule": "constant"}}


def points() -> list[dict]:
    return [
        {**point, **CONSTANT.get(optimizer, {})}
        for optimizer, rates in LEARNING_RATES.items()
        for point in grid({"optimizer.name": [optimizer], "optimizer.lr": rates, "seed": SEEDS})
    ]
