import pytest
import torch

from parm.codes import (
    ConcatenationCode,
    DecodingError,
    LinearCode,
    SumCode,
    build_code,
    code_from_spec,
    erasure_patterns,
)
from parm.codes.concat import grid_cells
from parm.codes.linear import vandermonde_coefficients, worst_condition


def _linear_f(d: int = 12, m: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, m, bias=False)).double()


def _outputs_with_exact_parities(code, f, x):
    """Base outputs of the originals and, as parity model, F itself on the encoded parities."""
    b, k = x.shape[:2]
    originals = f(x.flatten(0, 1)).view(b, k, -1)
    parities = f(code.encode(x).flatten(0, 1)).view(b, code.r, -1)
    return originals, torch.cat([originals, parities], dim=1)


def _relative_error(estimate, truth):
    return float(((estimate - truth).norm() / truth.norm()).detach())


@pytest.mark.parametrize("k", [2, 3, 4])
def test_sum_code_is_exact_for_a_linear_f(k):
    code, f = SumCode(k), _linear_f()
    x = torch.rand(64, k, 1, 3, 4, dtype=torch.float64)
    originals, outputs = _outputs_with_exact_parities(code, f, x)
    for mask in erasure_patterns(k, 1):
        decoded = code.decode(outputs * mask.view(1, -1, 1), mask)  # lost outputs zeroed
        assert _relative_error(decoded, originals) < 1e-4


@pytest.mark.parametrize("k", [2, 3, 5])
def test_linear_code_r2_is_exact_for_every_pattern_of_one_or_two_erasures(k):
    code, f = LinearCode(k, 2), _linear_f()
    x = torch.rand(32, k, 1, 3, 4, dtype=torch.float64)
    originals, outputs = _outputs_with_exact_parities(code, f, x)
    patterns = erasure_patterns(k, 2, parities_may_fail=True)
    assert {int((~p).sum()) for p in patterns} == {1, 2}
    for mask in patterns:
        decoded = code.decode(outputs.masked_fill(~mask.view(1, -1, 1), 1e9), mask)  # garbage where lost
        assert _relative_error(decoded, originals) < 1e-4, mask


def test_decode_handles_a_different_pattern_per_group():
    code, f = LinearCode(3, 2), _linear_f()
    x = torch.rand(5, 3, 12, dtype=torch.float64)
    originals, outputs = _outputs_with_exact_parities(code, f, x)
    masks = erasure_patterns(3, 2, parities_may_fail=True)[torch.tensor([0, 3, 7, 7, 11])]
    decoded = code.decode(outputs, masks)
    assert _relative_error(decoded, originals) < 1e-4


def test_r1_linear_with_ones_is_the_sum_code():
    x = torch.rand(8, 3, 7)
    assert torch.equal(LinearCode(3, 1, [[1.0, 1.0, 1.0]]).encode(x), SumCode(3).encode(x))
    assert torch.allclose(SumCode(3).encode(x)[:, 0], x.sum(dim=1))
    assert torch.equal(vandermonde_coefficients(4, 1), torch.ones(1, 4, dtype=torch.float64))


@pytest.mark.parametrize("k,r,bound", [(2, 2, 10), (4, 2, 25), (4, 3, 150), (8, 4, 2e4)])
def test_default_coefficients_are_well_conditioned(k, r, bound):
    code = LinearCode(k, r)
    assert code.coefficients[0].eq(1).all()
    assert code.condition < bound  # real-number codes condition worse as k and r grow


def test_singular_coefficients_are_refused():
    with pytest.raises(ValueError, match="singular"):
        LinearCode(2, 2, [[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="2 x 3"):
        LinearCode(3, 2, [[1.0, 1.0], [1.0, 2.0]])
    assert worst_condition(torch.tensor([[1.0, 1.0], [1.0, 2.0]], dtype=torch.float64)) < 10


def test_decoding_refuses_more_than_r_lost_outputs():
    code = LinearCode(3, 2)
    outputs = torch.rand(2, 5, 4)
    with pytest.raises(DecodingError, match="r = 2"):
        code.decode(outputs, torch.tensor([False, False, True, True, False]))
    with pytest.raises(DecodingError, match="r = 1"):
        SumCode(2).decode(torch.rand(1, 3, 4), torch.tensor([[False, False, True]]))


def test_available_originals_pass_through_untouched():
    code = SumCode(2)
    outputs = torch.rand(4, 3, 6)
    decoded = code.decode(outputs, torch.tensor([True, False, True]))
    assert torch.equal(decoded[:, 0], outputs[:, 0])
    assert torch.allclose(decoded[:, 1], outputs[:, 2] - outputs[:, 0])


def test_erasure_patterns_counts():
    assert erasure_patterns(2, 1).tolist() == [[False, True, True], [True, False, True]]
    assert len(erasure_patterns(3, 2)) == 3 + 3  # one or two of three originals lost
    # parities may fail: C(5,1) + C(5,2) minus parity-only losses (2 single, 1 pair)
    assert len(erasure_patterns(3, 2, parities_may_fail=True)) == 5 + 10 - 2 - 1


def test_grid_layouts():
    assert grid_cells(2, 28, 28) == [(0, 28, 0, 14), (0, 28, 14, 28)]
    assert grid_cells(4, 28, 28) == [(0, 14, 0, 14), (0, 14, 14, 28), (14, 28, 0, 14), (14, 28, 14, 28)]
    assert len(grid_cells(3, 28, 28)) == 3 and grid_cells(3, 28, 28)[2] == (14, 28, 0, 14)


@pytest.mark.parametrize("k", [2, 3, 4, 9])
def test_concatenation_tiles_downsized_images(k):
    x = torch.stack([torch.full((2, 1, 28, 28), float(i + 1)) for i in range(k)], dim=1)  # image i is constant i+1
    parity = ConcatenationCode(k).encode(x)
    assert parity.shape == (2, 1, 1, 28, 28)
    for i, (top, bottom, left, right) in enumerate(grid_cells(k, 28, 28)):
        assert torch.allclose(parity[:, 0, :, top:bottom, left:right], torch.tensor(float(i + 1)))


def test_concatenation_antialiases():
    stripes = torch.zeros(1, 2, 1, 8, 8)
    stripes[..., ::2] = 1.0  # one-pixel vertical stripes vanish into their mean when halved in width
    parity = ConcatenationCode(2).encode(stripes)
    assert torch.allclose(parity, torch.full_like(parity, 0.5), atol=0.1)


def test_specs_round_trip():
    for code in (SumCode(3), LinearCode(4, 2), ConcatenationCode(4), LinearCode(2, 2, [[1, 1], [1, 2]])):
        again = code_from_spec(code.spec())
        assert type(again) is type(code) and (again.k, again.r) == (code.k, code.r)
        assert torch.equal(again.coefficients, code.coefficients)
    with pytest.raises(ValueError, match="unknown code"):
        build_code("reed-solomon", 2)
    with pytest.raises(ValueError, match="concat code has exactly one parity"):
        build_code("concat", 2, 2)
