"""The serving codecs: numpy for matrix codes (linear, Berrut) gives what the code's own torch arithmetic gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parm.codes import DecodingError, LearnedCode, build_code
from parm.serving.core.codec import LinearCodec, TorchCodec, codec_for


@pytest.mark.parametrize(("name", "k", "r"), [("sum", 2, 1), ("sum", 4, 1), ("linear", 2, 2), ("linear", 3, 3),
                                              ("linear", 5, 2), ("berrut", 2, 1), ("berrut", 4, 2), ("berrut", 3, 4)])
def test_the_numpy_codec_matches_the_codes_torch_arithmetic(name: str, k: int, r: int) -> None:
    code, rng = build_code(name, k, r), np.random.default_rng(k * 10 + r)
    numpy_codec, torch_codec = codec_for(code), TorchCodec(code)
    assert isinstance(numpy_codec, LinearCodec)
    groups = [[rng.normal(size=(1, 4, 4)).astype(np.float32) for _ in range(size)] for size in (k, k - 1 or 1, k)]
    np.testing.assert_allclose(numpy_codec.encode(groups), torch_codec.encode(groups), rtol=1e-5, atol=1e-5)

    batch = 64
    outputs = rng.normal(size=(batch, k + r, 10)).astype(np.float32)
    available = np.ones((batch, k + r), dtype=bool)
    for row in range(batch):  # every group misses up to r outputs, chosen at random
        available[row, rng.choice(k + r, size=rng.integers(0, r + 1), replace=False)] = False
    outputs[~available] = np.nan  # unavailable entries may hold anything
    rebuilt = numpy_codec.decode(outputs, available)
    np.testing.assert_allclose(rebuilt, torch_codec.decode(outputs, available), rtol=1e-4, atol=1e-4)
    kept = available[:, :k]
    np.testing.assert_array_equal(rebuilt[kept], outputs[:, :k][kept])  # available originals pass through exactly


@pytest.mark.parametrize(("name", "k"), [("concat", 2), ("concat", 4)])
def test_a_code_that_tiles_is_served_with_its_own_encoder_and_the_sum_decoder(name: str, k: int) -> None:
    """The concatenation code decodes as the sum code, but its parity is k downsized images side by side, not their
    sum (a served concat run once summed them: reconstructions at half their offline quality)."""
    code, rng = build_code(name, k), np.random.default_rng(k)
    codec = codec_for(code)
    groups = [[rng.random((1, 8, 8)).astype(np.float32) for _ in range(k)] for _ in range(3)]
    x = torch.from_numpy(np.array(groups))
    np.testing.assert_array_equal(codec.encode(groups), code.encode(x).numpy())
    assert not np.allclose(codec.encode(groups), x.sum(1, keepdim=True).numpy())
    outputs = rng.normal(size=(3, k + 1, 10)).astype(np.float32)
    available = np.ones((3, k + 1), dtype=bool)
    available[:, 0] = False
    np.testing.assert_allclose(codec.decode(outputs, available)[:, 0], outputs[:, k] - outputs[:, 1:k].sum(1), rtol=1e-5,
                               atol=1e-5)


def test_the_numpy_codec_refuses_groups_missing_more_than_r() -> None:
    codec = codec_for(build_code("sum", 2, 1))
    codec.decode(np.zeros((2, 3, 10), np.float32), np.array([[True, False, True], [True, True, True]]))  # kept
    for _ in range(2):  # a refused pattern is never kept, alone or beside patterns that decode
        with pytest.raises(DecodingError, match="rebuilds at most 1"):
            codec.decode(np.zeros((1, 3, 10), np.float32), np.array([[True, False, False]]))
        with pytest.raises(DecodingError, match="rebuilds at most 1"):
            codec.decode(np.zeros((2, 3, 10), np.float32), np.array([[True, False, True], [False, False, True]]))


def test_codes_that_are_not_linear_run_through_torch() -> None:
    assert isinstance(codec_for(LearnedCode(2, 1, input_shape=(1, 4, 4), num_outputs=10)), TorchCodec)
