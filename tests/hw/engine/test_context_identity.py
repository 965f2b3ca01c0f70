"""Attention's P·V on the XNOR array: for a 0/1 mask b and ±1 values v (bits v⁺) over T keys,
Σ_k b_k·v_k = popcount(XNOR(b, v⁺)) + popcount(v⁺) − T. Checked against
``intref.and_popcount_context`` (the op's one definition) before the cycle model relies on it."""
import numpy as np
import pytest
import torch

from binaryvit.golden.intref import and_popcount_context


def xnor_array_context(b: np.ndarray, v: np.ndarray) -> np.ndarray:
    """What the array computes: ``b`` bits ``[Tq, T]``, ``v`` bits ``[T, d]`` → ``[Tq, d]``."""
    t = b.shape[1]
    xnor = (b[:, :, None] == v[None, :, :]).sum(axis=1)
    return xnor + v.sum(axis=0)[None, :] - t


@pytest.mark.parametrize("t", [1, 2, 15, 16, 17, 49, 64])
def test_identity_on_random_bits(t):
    rng = np.random.default_rng(t)
    for density in (0.1, 0.5, 0.9):
        b = rng.random((12, t)) < density
        v = rng.random((t, 8)) < 0.5
        want = and_popcount_context(torch.from_numpy(b), torch.from_numpy(v)).numpy()
        assert np.array_equal(xnor_array_context(b, v), want)


def test_identity_at_the_corners():
    t = 16
    for b_all in (False, True):
        for v_all in (False, True):
            b = np.full((3, t), b_all)
            v = np.full((t, 4), v_all)
            want = and_popcount_context(torch.from_numpy(b), torch.from_numpy(v)).numpy()
            got = xnor_array_context(b, v)
            assert np.array_equal(got, want)
            # an empty mask sums nothing; a full one sums all ±1 values
            assert (got == (0 if not b_all else (t if v_all else -t))).all()
