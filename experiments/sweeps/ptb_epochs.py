"""Epochs x resampling windows and noise words each epoch (the book's exercise 4)."""

from experiments.sweeps import grid

BASE = {"optimizer.lr": 0.002}


def points() -> list[dict]:
    return grid({"num_epochs": [5, 10, 15], "resample_each_epoch": [False, True]})
