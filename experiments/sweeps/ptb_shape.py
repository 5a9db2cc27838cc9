"""Embedding size x largest window x noise words per context, the book's Adam otherwise."""

from experiments.sweeps import grid

# lr 0.002 (the book's PyTorch value) rather than 0.01, which over-fits PTB by epoch 5.
BASE = {"optimizer.lr": 0.002}


def points() -> list[dict]:
    return grid({"embed_size": [50, 100, 200], "max_window": [2, 5], "noise.count": [2, 5]})
