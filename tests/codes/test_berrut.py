"""The Berrut code: exact where the mathematics is exact (nodes, constants, k = 2 with an affine F), every
pattern of up to r losses decoded, more refused, batches decoded like their groups."""

import json
import math

import pytest
import torch

from parm.codes import BerrutCode, DecodingError, MatrixCode, build_code, code_from_spec, erasure_patterns
from parm.codes.berrut import berrut_interpolate, berrut_matrix, chebyshev_points, systematic_points

SHAPES = [(1, 1), (1, 3), (2, 1), (2, 2), (3, 1), (4, 1), (4, 2), (5, 3), (8, 2)]


def _outputs(code: BerrutCode, f, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """F's outputs on the originals (B, k, m) and on the whole coded group, extras run by F itself (B, k + r, m)."""
    b, k = x.shape[:2]
    originals = f(x.flatten(0, 1)).view(b, k, -1)
    extras = f(code.encode(x).flatten(0, 1)).view(b, code.r, -1)
    return originals, torch.cat([originals, extras], dim=1)


def _affine_f(d: int = 12, m: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, m)).double()


def test_the_interpolant_passes_through_its_nodes_exactly_in_any_order() -> None:
    generator = torch.Generator().manual_seed(0)
    nodes = torch.randperm(9, generator=generator).to(torch.float64) / 3 - 1  # distinct, unordered
    values = torch.randn(9, 4, 3, generator=generator, dtype=torch.float64)
    assert torch.equal(berrut_interpolate(nodes, values, nodes), values)
    assert torch.equal(berrut_matrix(nodes, nodes), torch.eye(9, dtype=torch.float64))


def test_the_interpolant_is_berruts_formula_and_reproduces_constants() -> None:
    nodes = torch.tensor([-0.9, -0.2, 0.4, 1.0], dtype=torch.float64)
    values = torch.tensor([3.0, -1.0, 2.0, 5.0], dtype=torch.float64)
    z = 0.1  # by hand: sum_j (-1)^j y_j / (z - z_j) / sum_j (-1)^j / (z - z_j), nodes ascending
    terms = [(-1) ** j / (z - node) for j, node in enumerate(nodes.tolist())]
    expected = sum(t * y for t, y in zip(terms, values.tolist())) / sum(terms)
    at_z = berrut_interpolate(nodes, values.unsqueeze(1), torch.tensor([z], dtype=torch.float64))
    assert at_z.item() == pytest.approx(expected, rel=1e-14)
    points = torch.linspace(-3, 3, 601, dtype=torch.float64)
    weights = berrut_matrix(nodes, points)
    assert bool(torch.isfinite(weights).all())  # no pole on the real line, inside the nodes or outside them
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(601, dtype=torch.float64), rtol=0, atol=1e-13)


@pytest.mark.parametrize(("k", "r"), SHAPES)
def test_the_points_are_chebyshev_alphas_with_betas_between_them(k: int, r: int) -> None:
    alphas, betas = systematic_points(k, r)
    assert torch.equal(alphas, chebyshev_points(k))
    assert torch.allclose(alphas, -torch.cos((2 * torch.arange(k, dtype=torch.float64) + 1) * math.pi / (2 * k)))
    points = torch.cat([alphas, betas])
    assert len(betas) == r and len(torch.unique(points)) == k + r and bool((points.abs() < 1).all())
    if k > 1:  # every beta lies strictly inside the alphas' range, between two neighbouring alphas
        assert bool(((betas > alphas[0]) & (betas < alphas[-1])).all())
    if r <= k - 1:  # at most one beta per gap, each at the gap's angular midpoint (a second-kind point)
        gaps = torch.searchsorted(alphas, betas)
        assert len(torch.unique(gaps)) == r
        angles = torch.arccos(-betas) * k / math.pi
        torch.testing.assert_close(angles, angles.round())


def test_the_points_are_mirror_symmetric_where_the_spread_allows() -> None:
    for k, r in [(2, 1), (4, 1), (4, 2), (6, 1), (8, 1)]:
        alphas, betas = systematic_points(k, r)
        torch.testing.assert_close(betas, -betas.flip(0), rtol=0, atol=1e-15)
    assert systematic_points(4, 1)[1].abs().max() < 1e-15  # the one beta at 0


def test_k2_r1_sends_the_average_and_decodes_an_affine_f_exactly() -> None:
    code, f = BerrutCode(2, 1), _affine_f()
    x = torch.rand(16, 2, 1, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(code.encode(x)[:, 0], x.mean(dim=1))
    originals, outputs = _outputs(code, f, x)
    for mask in erasure_patterns(2, 1):
        torch.testing.assert_close(code.decode(outputs, mask), originals)


def test_the_encoding_is_systematic_and_linear() -> None:
    code = BerrutCode(4, 2)
    assert torch.equal(berrut_matrix(code.alphas, code.alphas), torch.eye(4, dtype=torch.float64))  # u(alpha_j) = X_j
    torch.testing.assert_close(code.coefficients, berrut_matrix(code.alphas, code.betas))
    torch.testing.assert_close(code.coefficients.sum(dim=1), torch.ones(2, dtype=torch.float64))
    x = torch.rand(3, 4, 2, 5, 5)
    assert code.encode(x).shape == (3, 2, 2, 5, 5)
    extra = berrut_interpolate(code.alphas, x[1].double(), code.betas)  # u(beta_i), the interpolant itself
    torch.testing.assert_close(code.encode(x)[1].double(), extra, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("k", "r"), SHAPES)
def test_equal_outputs_are_rebuilt_exactly_under_every_pattern(k: int, r: int) -> None:
    """Berrut's interpolant reproduces constants: if F's outputs are all equal, every reconstruction is exact."""
    code = BerrutCode(k, r)
    constant = torch.randn(1, 1, 7, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    outputs = constant.expand(4, k + r, 7).clone()
    for mask in erasure_patterns(k, r, parities_may_fail=True):
        torch.testing.assert_close(code.decode(outputs, mask), outputs[:, :k], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("k", "r"), [(1, 2), (3, 2)])
def test_a_constant_f_is_rebuilt_exactly(k: int, r: int) -> None:
    code, x = BerrutCode(k, r), torch.rand(5, k, 12, dtype=torch.float64)
    originals, outputs = _outputs(code, lambda v: torch.ones(len(v), 3, dtype=torch.float64) * 2.5, x)
    for mask in erasure_patterns(k, r):
        torch.testing.assert_close(code.decode(outputs, mask), originals, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("k", "r"), SHAPES)
def test_nothing_lost_returns_the_originals_bit_for_bit(k: int, r: int) -> None:
    code = BerrutCode(k, r)
    outputs = torch.randn(6, k + r, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(code.decode(outputs, torch.ones(k + r, dtype=torch.bool)), outputs[:, :k])
    only_extras_lost = torch.ones(k + r, dtype=torch.bool)
    only_extras_lost[k:] = False
    assert torch.equal(code.decode(outputs, only_extras_lost), outputs[:, :k])


@pytest.mark.parametrize(("k", "r"), SHAPES)
def test_every_pattern_of_up_to_r_losses_decodes_and_ignores_what_was_lost(k: int, r: int) -> None:
    code = BerrutCode(k, r)
    outputs = torch.randn(8, k + r, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    patterns = erasure_patterns(k, r, parities_may_fail=True)
    assert {int((~p).sum()) for p in patterns} == set(range(1, r + 1))
    for mask in patterns:
        garbage = outputs.masked_fill(~mask.view(1, -1, 1), float("nan"))
        decoded = code.decode(garbage, mask)
        assert torch.equal(decoded, code.decode(outputs, mask)) and bool(torch.isfinite(decoded).all())
        kept = mask[:k]
        assert torch.equal(decoded[:, kept], outputs[:, :k][:, kept])  # available originals pass through


@pytest.mark.parametrize(("k", "r"), [(2, 1), (4, 2)])
def test_more_than_r_losses_are_refused(k: int, r: int) -> None:
    code, mask = BerrutCode(k, r), torch.ones(k + r, dtype=torch.bool)
    mask[: r + 1] = False
    with pytest.raises(DecodingError, match=f"rebuilds at most {r}"):
        code.decode(torch.zeros(3, k + r, 4), mask)


def test_a_batch_decodes_as_its_groups_do() -> None:
    code = BerrutCode(5, 3)
    generator = torch.Generator().manual_seed(3)
    outputs = torch.randn(40, 8, 6, generator=generator, dtype=torch.float64)
    patterns = erasure_patterns(5, 3, parities_may_fail=True)
    drawn = patterns[torch.randint(len(patterns), (36,), generator=generator)]
    masks = torch.cat([drawn, torch.ones(4, 8, dtype=torch.bool)])  # and four groups with nothing lost
    batch = code.decode(outputs, masks)
    for group in range(len(outputs)):
        alone = code.decode(outputs[group : group + 1], masks[group])[0]
        torch.testing.assert_close(batch[group], alone, rtol=1e-12, atol=1e-12)
    assert len(code._decoders) == len(torch.unique(masks, dim=0))  # one decoding matrix per distinct pattern


def test_a_decoding_matrix_is_the_interpolant_through_the_available_points() -> None:
    code = BerrutCode(4, 2)
    mask = torch.tensor([False, True, True, False, True, True])
    matrix = code.decoding_matrix(mask)
    assert matrix.shape == (4, 6) and torch.equal(matrix[1], torch.eye(6, dtype=torch.float64)[1])
    available = torch.nonzero(mask).flatten()
    expected = berrut_matrix(code.nodes[available], code.alphas[[0, 3]])
    assert torch.equal(matrix[[0, 3]][:, available], expected) and not matrix[[0, 3]][:, ~mask].any()


def test_the_spec_round_trips_through_json() -> None:
    code = build_code("berrut", 4, 2)
    assert isinstance(code, BerrutCode) and isinstance(code, MatrixCode)
    again = code_from_spec(json.loads(json.dumps(code.spec())))
    assert isinstance(again, BerrutCode) and again.spec() == code.spec()
    assert torch.equal(again.coefficients, code.coefficients) and torch.equal(again.nodes, code.nodes)
    custom = BerrutCode(2, 1, alphas=[0.0, 2.0], betas=[1.0])
    assert code_from_spec(custom.spec()).spec() == {"name": "berrut", "k": 2, "r": 1, "alphas": [0.0, 2.0], "betas": [1.0]}


def test_bad_points_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="must be distinct"):
        BerrutCode(2, 1, alphas=[0.0, 1.0], betas=[1.0])
    with pytest.raises(ValueError, match="needs 1 finite betas"):
        BerrutCode(2, 1, betas=[0.1, 0.2])
    with pytest.raises(ValueError, match="k >= 1 and r >= 1"):
        BerrutCode(2, 0)
    with pytest.raises(NotImplementedError, match="runs F on its parities"):
        BerrutCode(2, 1).parity_targets(torch.zeros(1, 2, 3))
