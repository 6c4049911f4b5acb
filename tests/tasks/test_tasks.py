import pytest
import torch

from parm.tasks import (
    BOX_OUTPUTS,
    CLASSIFICATION,
    LOCALIZATION,
    Task,
    box_iou,
    class_output,
    get_task,
    register_task,
)


def test_box_iou_is_exact_on_hand_made_boxes():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.2, 0.2], [0.1, 0.1, 0.3, 0.4]])
    b = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.7, 0.7], [0.1, 0.1, 0.3, 0.4]])
    expected = torch.tensor([0.0625 / (0.25 + 0.25 - 0.0625), 1.0, 0.0, 1.0])
    assert torch.allclose(box_iou(a, b), expected)
    swapped = torch.tensor([[0.5, 0.5, 0.0, 0.0]])  # corners the wrong way round: no area, no overlap
    assert box_iou(swapped, a[:1]).item() == 0.0 and box_iou(swapped, swapped).item() == 0.0


def test_localization_measures_and_default_box():
    truth = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    outputs = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.25, 0.25]])
    measures = LOCALIZATION.measures(outputs, truth)
    assert list(measures) == ["mean_iou", "iou_at_least_0.5"]  # the headline first
    assert measures == {"mean_iou": 0.5, "iou_at_least_0.5": 0.5}
    assert LOCALIZATION.agreement(outputs, truth) == 0.5
    assert torch.equal(LOCALIZATION.default_output(truth, 4), torch.tensor([0.25, 0.25, 0.75, 0.75]))
    assert LOCALIZATION.format(0.6712) == "0.671" and len(BOX_OUTPUTS) == 4
    assert LOCALIZATION.loss(truth, truth).item() == 0.0 and LOCALIZATION.loss(outputs, truth).item() > 0


def test_classification_measures_default_and_loss():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [1.0, 0.0, 2.0]])
    labels = torch.tensor([0, 2, 2, 1])
    assert CLASSIFICATION.measures(logits, labels) == {"accuracy": 0.5, "top5_accuracy": 1.0}
    assert CLASSIFICATION.per_sample(logits, labels).tolist() == [1.0, 0.0, 1.0, 0.0]
    default = CLASSIFICATION.default_output(labels, 3)  # the most common training class, surely
    assert default.argmax().item() == 2 and torch.softmax(default, 0)[2] > 0.999
    assert CLASSIFICATION.format(0.8762) == "87.62%"
    with pytest.raises(ValueError, match="0..2"):
        class_output(3, 3)


def test_a_user_task_is_registered_by_name():
    class Counting(Task):  # regression of one count, judged by the share within 0.5
        name, metric, metric_label, percent = "counting-test", "within_half", "within 0.5", True

        def loss(self, outputs, targets):
            return (outputs - targets).pow(2).mean()

        def per_sample(self, outputs, targets):
            return ((outputs - targets).abs() < 0.5).float().squeeze(-1)

        def measures(self, outputs, targets):
            return {"within_half": self.per_sample(outputs, targets).mean().item()}

        def agreement(self, outputs, reference):
            return self.score(outputs, reference)

        def default_output(self, train_targets, num_outputs):
            return train_targets.float().mean(0)

    task = register_task(Counting())
    assert get_task("counting-test") is task
    assert task.score(torch.tensor([[1.2], [3.0]]), torch.tensor([[1.0], [2.0]])) == 0.5
    with pytest.raises(ValueError, match="register_task"):
        get_task("no-such-task")
