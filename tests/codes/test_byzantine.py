"""Wrong outputs found from the redundancy: exact on linear cases (a linear F makes every clean syndrome zero)."""

import pytest
import torch

from parm.codes import BerrutCode, LinearCode
from parm.codes.byzantine import CONSISTENT, decode_without_wrong, locate_wrong, syndromes

SHAPES = [(2, 2), (3, 2), (4, 2), (4, 3), (8, 2), (12, 3)]


def exact_outputs(code: LinearCode, groups: int = 6, m: int = 5, seed: int = 0) -> torch.Tensor:
    """The k + r outputs of a linear F on random groups: originals F(X_i), parities sum_i a_ji F(X_i), exactly."""
    generator = torch.Generator().manual_seed(seed)
    originals = torch.randn(groups, code.k, m, generator=generator, dtype=torch.float64)
    return torch.cat([originals, code.parity_targets(originals)], dim=1)


@pytest.mark.parametrize(("k", "r"), SHAPES)
def test_clean_outputs_of_a_linear_f_have_zero_syndromes_and_are_consistent(k: int, r: int) -> None:
    code = LinearCode(k, r)
    outputs = exact_outputs(code)
    assert syndromes(code, outputs).abs().max() < 1e-9
    assert (locate_wrong(code, outputs, tolerance=1e-9) == CONSISTENT).all()


@pytest.mark.parametrize(("k", "r"), SHAPES)
def test_one_wrong_output_in_any_slot_is_located_and_the_originals_decoded_exactly_without_it(k: int, r: int) -> None:
    code = LinearCode(k, r)
    clean = exact_outputs(code, groups=code.n)
    wrong = clean.clone()
    slots = torch.arange(code.n)  # group g gets a wrong output in slot g
    generator = torch.Generator().manual_seed(1)
    wrong[slots, slots] += 3 * torch.randn(code.n, clean.shape[-1], generator=generator, dtype=torch.float64)
    assert torch.equal(locate_wrong(code, wrong, tolerance=1e-6), slots)
    decoded, found = decode_without_wrong(code, wrong, tolerance=1e-6)
    assert torch.equal(found, slots)
    torch.testing.assert_close(decoded, clean[:, :k], rtol=0, atol=1e-9)


def test_another_querys_output_returned_in_a_slot_is_located_too() -> None:
    code = LinearCode(4, 2)
    clean = exact_outputs(code, groups=2)
    swapped = clean.clone()
    swapped[0, 1] = clean[1, 1]  # instance of slot 1 answered group 0 with group 1's output
    assert locate_wrong(code, swapped, tolerance=1e-6).tolist() == [1, CONSISTENT]


def test_two_wrong_outputs_are_reported_as_more_than_one_not_blamed_on_a_third() -> None:
    code = LinearCode(4, 2)
    wrong = exact_outputs(code, groups=1)
    wrong[0, 0] += 1.0
    wrong[0, 2] -= 2.0
    # exact outputs afford a strict fit, which tells two wrong outputs from one (the default is loose, for parity models)
    assert locate_wrong(code, wrong, tolerance=1e-6, fit=0.1).tolist() == [code.n]


def test_a_tolerance_absorbs_an_approximate_codes_noise_and_still_catches_a_wrong_output() -> None:
    code = LinearCode(3, 2)
    clean = exact_outputs(code, groups=4)
    noisy = clean + 1e-3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert (locate_wrong(code, noisy, tolerance=0.01) == CONSISTENT).all()
    noisy[2, 4] += 5.0
    assert locate_wrong(code, noisy, tolerance=0.01).tolist() == [CONSISTENT, CONSISTENT, 4, CONSISTENT]


def test_the_berrut_codes_syndromes_locate_a_wrong_output_of_a_constant_f() -> None:
    """Berrut interpolation reproduces constants, so an F with one output for every input is exact for it."""
    code = BerrutCode(4, 2)
    outputs = torch.ones(1, code.n, 3, dtype=torch.float64) * torch.tensor([0.2, -1.0, 3.0], dtype=torch.float64)
    assert locate_wrong(code, outputs, tolerance=1e-9).tolist() == [CONSISTENT]
    outputs[0, 5] += 1.0
    assert locate_wrong(code, outputs, tolerance=1e-9).tolist() == [5]


def test_one_parity_can_detect_but_not_locate() -> None:
    with pytest.raises(ValueError, match="r >= 2"):
        locate_wrong(LinearCode(2, 1), torch.zeros(1, 3, 2), tolerance=0.1)
