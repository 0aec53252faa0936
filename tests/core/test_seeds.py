"""Named random streams: a value depends on its key alone, and no two streams or keys share one."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from augframe.core.seeds import Stream, derive_rng, derive_seeds

keys = st.lists(st.integers(0, 2**32 - 1), max_size=3)


@given(st.integers(0, 2**63), st.sampled_from(Stream), keys, st.integers(1, 16))
def test_seeds_are_uint32_and_depend_on_the_key_alone(entropy, stream, key, count):
    seeds = derive_seeds(entropy, stream, *key, count=count)
    assert seeds.dtype == np.uint32 and seeds.shape == (count,)
    np.testing.assert_array_equal(
        seeds, derive_seeds(entropy, stream, *key, count=count)
    )
    # asking for more extends the same sequence: a slot's seed never depends
    # on how many slots the frame has
    np.testing.assert_array_equal(
        derive_seeds(entropy, stream, *key, count=count + 5)[:count], seeds
    )


def test_streams_entropies_and_keys_never_share_a_sequence():
    """Keys of one length, as each stream uses them (SeedSequence reads a key
    and the same key with trailing zeros as one: no stream mixes those)."""
    keys = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 7)]
    seen = {
        derive_seeds(entropy, stream, *key, count=4).tobytes()
        for entropy in (0, 1)
        for stream in Stream
        for key in keys
    }
    assert len(seen) == 2 * len(Stream) * len(keys)
    assert len({int(s) for s in Stream}) == len(Stream)  # tags are distinct


def test_a_generator_gives_the_same_draws_on_any_thread():
    expected = derive_rng(7, Stream.ORDER, 3, 1).permutation(50)
    got: list[np.ndarray] = []
    threads = [
        threading.Thread(
            target=lambda: got.append(derive_rng(7, Stream.ORDER, 3, 1).permutation(50))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4 and all(np.array_equal(g, expected) for g in got)
    assert not np.array_equal(
        derive_rng(7, Stream.ORDER, 3, 2).permutation(50), expected
    )
    assert not np.array_equal(
        derive_rng(7, Stream.PLAN, 3, 1).permutation(50), expected
    )
