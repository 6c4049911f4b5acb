import pytest
import torch

from parm.codes import LinearCode, SumCode
from parm.evaluation import group_indices, most_common_class, score_reconstructions
from parm.evaluation.report import results_table, write_evaluation_report
from parm.evaluation.runs import EvaluatedRun
from parm.tasks import CLASSIFICATION, LOCALIZATION, class_output


def _score(code, base, parity, groups, labels, default_class=0):
    return score_reconstructions(code, base, parity, groups, labels, task=CLASSIFICATION,
                                 default_output=class_output(default_class, base.shape[1]))


def _exact_setup(code, n=60, m=4, seed=0):
    """Base outputs of a bias-free linear F and parity outputs that are exactly the code's targets."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, m, generator=g, dtype=torch.float64)
    labels = base.argmax(1)
    labels[:10] = (labels[:10] + 1) % m  # F is wrong on 10 samples, so A_a < 1
    groups = group_indices(n, code.k, seed)
    parity = code.parity_targets(base[groups])
    return base, parity, groups, labels


@pytest.mark.parametrize("code", [SumCode(2), SumCode(4), LinearCode(3, 2)])
def test_exact_parities_rebuild_the_base_model_exactly(code):
    base, parity, groups, labels = _exact_setup(code)
    ev = _score(code, base, parity, groups, labels, default_class=1)
    assert ev.agreement == pytest.approx(1.0)
    assert ev.degraded_accuracy == pytest.approx(ev.available_accuracy)
    assert [s.lost for s in ev.by_lost] == list(range(1, code.r + 1))
    assert ev.by_lost[0].reconstructions == len(groups) * code.k  # each original lost once on its own


def test_useless_parities_score_like_chance_and_overall_mixes_linearly():
    code = SumCode(2)
    base, _, groups, labels = _exact_setup(code)
    ev = _score(code, base, torch.zeros(len(groups), 1, 4, dtype=torch.float64), groups, labels)
    assert ev.degraded_accuracy < 0.6 and ev.agreement < 0.6
    assert ev.overall_accuracy(0) == ev.available_accuracy and ev.overall_accuracy(1) == ev.degraded_accuracy
    assert ev.overall_accuracy(0.25) == pytest.approx(0.75 * ev.available_accuracy + 0.25 * ev.degraded_accuracy)
    assert set(ev.to_dict()["overall_accuracy"]) >= {"0.00", "0.10", "1.00"}


def test_default_baseline():
    assert most_common_class(torch.tensor([2, 1, 2, 0])) == 2
    code = SumCode(2)
    base, parity, groups, labels = _exact_setup(code)
    ev = _score(code, base, parity, groups, labels, default_class=3)
    assert ev.default_accuracy == pytest.approx((labels[groups.flatten()] == 3).float().mean().item())


def test_groups_are_disjoint_and_seeded():
    groups = group_indices(103, 4, seed=1)
    assert groups.shape == (25, 4) and len(torch.unique(groups)) == 100
    assert torch.equal(groups, group_indices(103, 4, seed=1))
    assert torch.equal(groups, group_indices(103, 4, torch.Generator().manual_seed(1)))  # training's draw, same stream


def test_report_files(tmp_path):
    runs = []
    for code in (SumCode(2), LinearCode(2, 2)):
        base, parity, groups, labels = _exact_setup(code)
        runs.append(EvaluatedRun("run", "base-mlp", "toy", _score(code, base, parity, groups, labels)))
    paths = write_evaluation_report(runs, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    table = results_table(runs)
    assert "A_d, 2 lost" in table and table.count("| base-mlp |") == 2


@pytest.mark.parametrize("code", [SumCode(2), LinearCode(3, 2)])
def test_a_linear_box_regressor_is_rebuilt_exactly_in_iou(code, tmp_path):
    """Regression through the same path: F linear, so the code's reconstructions are F's boxes exactly."""
    g = torch.Generator().manual_seed(3)
    corner = torch.rand(40, 2, generator=g, dtype=torch.float64) * 0.5
    truth = torch.cat([corner, corner + 0.25 + 0.25 * torch.rand(40, 2, generator=g, dtype=torch.float64)], 1)
    base = truth + 0.02 * torch.randn(40, 4, generator=g, dtype=torch.float64)  # F's boxes, near the truth
    groups = group_indices(40, code.k, 0)
    ev = score_reconstructions(code, base, code.parity_targets(base[groups]), groups, truth, task=LOCALIZATION,
                               default_output=truth.mean(0))
    assert ev.task == "localization" and ev.metric == "mean_iou" and 0.7 < ev.available_accuracy < 1
    assert ev.degraded_accuracy == pytest.approx(ev.available_accuracy) and ev.agreement == 1.0
    assert ev.degraded_measures["iou_at_least_0.5"] == pytest.approx(ev.available_measures["iou_at_least_0.5"])
    assert ev.default_accuracy < ev.available_accuracy  # the mean box is a poor answer
    paths = write_evaluation_report([EvaluatedRun("run", "box-cnn", "toy", ev)], tmp_path)
    assert all(p.exists() for p in paths)
    assert "| mean IoU |" in results_table([EvaluatedRun("run", "box-cnn", "toy", ev)])
