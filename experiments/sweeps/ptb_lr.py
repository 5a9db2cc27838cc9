"""Learning rate x optimiser, 3 seeds, the book's configuration otherwise.

Each optimiser gets its own learning rates: plain SGD on the book's per-example mean loss
needs steps a hundred times larger than Adam's.
"""

from experiments.sweeps import grid

SEEDS = (0, 1, 2)
LEARNING_RATES = {
    "adam": (0.001, 0.002, 0.005, 0.01),
    "adagrad": (0.03, 0.1, 0.3),
    "sgd": (3.0, 10.0, 30.0),
}


def points() -> list[dict]:
    return [point for optimizer, rates in LEARNING_RATES.items()
            for point in grid(optimizer=[optimizer], lr=rates, seed=SEEDS)]
