"""The best settings of ptb_lr, ptb_shape and ptb_epochs, alone and combined, over 3 seeds."""

from experiments.sweeps import grid

BASE = {"optimizer.lr": 0.002}  # the best learning rate of ptb_lr (3 seeds)
CANDIDATES = (
    {},  # ptb_lr's best
    {"embed_size": 200},  # ptb_shape's best (1 seed)
    {"num_epochs": 10, "resample_each_epoch": True},  # ptb_epochs' best (1 seed)
    {"embed_size": 200, "num_epochs": 10, "resample_each_epoch": True},
)


def points() -> list[dict]:
    return [{**candidate, **seed} for candidate in CANDIDATES for seed in grid({"seed": [0, 1, 2]})]
