"""Learning rate x optimiser, 3 seeds, the book's configuration otherwise.

Each optimiser gets its own learning rates. The book's loss is a mean over the batch and over
each example's live slots, so one word's gradient is about 1 / (512 * 22) of word2vec's
per-pair gradient: plain SGD needs steps of about 100 or more, and Adagrad (whose accumulator
starts at 0.1, large against such gradients) steps of 1 or more, where Adam's 0.002 suffices.
"""

from experiments.sweeps import grid

SEEDS = (0, 1, 2)
LEARNING_RATES = {
    "adam": (0.001, 0.002, 0.005, 0.01),
    "adagrad": (0.1, 1.0, 10.0, 100.0),
    "sgd": (10.0, 100.0, 1000.0, 3000.0),
}


def points() -> list[dict]:
    return [
        point
        for optimizer, rates in LEARNING_RATES.items()
        for point in grid(optimizer=[optimizer], lr=rates, seed=SEEDS)
    ]
