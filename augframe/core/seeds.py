"""Named random streams derived from one root seed (internal).

Every random choice in augframe comes from `SeedSequence([entropy, tag, ...])`
with a tag naming what it is for, so streams never overlap and a value depends
only on its key, never on which thread or process draws it.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Stream", "derive_rng", "derive_seeds"]


class Stream(enum.IntEnum):
    """What a random stream is used for (the tag in its key)."""

    PLAN = 1  # which natives a frame takes, slot order
    SLOT = 2  # the pipeline seed of each slot and attempt
    ORDER = 3  # the sample order of each epoch
    EXAMPLES = 4  # which samples are written as examples
    SUBSTITUTE = 5  # replacements for unreadable natives
    SERVE = 6  # serve-time augmentation of each batch
    ROLL = 7  # which slots a rolling frame's slice refreshes, what fills them


def derive_seeds(entropy: int, stream: Stream, *key: int, count: int) -> np.ndarray:
    """`count` independent uint32 seeds of `stream` for `key`.

    Example:
    >>> derive_seeds(0, Stream.SLOT, 1, count=3).shape
    (3,)
    """
    return np.random.SeedSequence([entropy, int(stream), *key]).generate_state(
        count, np.uint32
    )


def derive_rng(entropy: int, stream: Stream, *key: int) -> np.random.Generator:
    """A generator of `stream` for `key`.

    Example:
    >>> int(derive_rng(0, Stream.ORDER, 1, 0).integers(10)) == int(
    ...     derive_rng(0, Stream.ORDER, 1, 0).integers(10))
    True
    """
    return np.random.default_rng(np.random.SeedSequence([entropy, int(stream), *key]))
