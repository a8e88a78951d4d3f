"""KerasTuner's `Oracle` reads a seed of 0 as "no seed" and draws a random one; keras-sage keeps 0."""

from __future__ import annotations

import keras_tuner


def keep_oracle_seed(oracle: keras_tuner.Oracle, seed: int | None) -> None:
    """Gives `oracle` the seed it was asked for, 0 included (`None` keeps KerasTuner's random seed)."""
    if seed is not None:
        oracle.seed = oracle._seed_state = seed
