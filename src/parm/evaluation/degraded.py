"""Degraded-mode accuracy: how well a code rebuilds the predictions of lost originals.

A split is cut into coding groups of k (a seeded permutation); every group is scored under every
erasure pattern of 1 to r lost originals. Reconstructions are judged in the dataset's task's measures
(`parm.tasks`: accuracy for classification, mean IoU for localization) against the true targets (A_d)
and against the base model's own outputs (agreement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from parm.codes import Code, erasure_patterns, lost_originals
from parm.data.dataset import Preprocess, Split
from parm.evaluation.predict import eval_batch
from parm.tasks import Task

OVERALL_FRACTIONS = tuple(i / 20 for i in range(21))


def group_indices(n: int, k: int, seed: int | torch.Generator = 0) -> torch.Tensor:
    """Disjoint coding groups (n // k, k) of sample indices: each sample in at most one group.

    A seed gives the same groups every time (evaluation); a generator draws the next grouping from
    its stream (training: fresh groups every epoch, which resume continues with the generator).
    """
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[: (n // k) * k].view(-1, k)


@torch.no_grad()
def parity_outputs(
    parity_models: Sequence[nn.Module],
    code: Code,
    split: Split,
    preprocess: Preprocess,
    groups: torch.Tensor,
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The r parity models' outputs (G, r, m) on the encoded groups, on the CPU (``batch_size`` None: 256 groups
    per batch on the CPU, `GPU_BATCH` on a GPU)."""
    batch_size = batch_size or eval_batch(device, 256)
    states = [model.training for model in parity_models]
    for model in parity_models:
        model.eval()
    chunks = []
    for start in range(0, len(groups), batch_size):
        index = groups[start : start + batch_size]
        x = preprocess(split.x[index.flatten()].to(device)).view(*index.shape, *split.x.shape[1:])
        parities = code.encode(x)
        chunks.append(torch.stack([model(parities[:, j]) for j, model in enumerate(parity_models)], 1).float().cpu())
    for model, state in zip(parity_models, states):
        model.train(state)
    return torch.cat(chunks)


@dataclass
class ErasureScore:
    """Reconstruction quality for one number of lost originals per group."""

    lost: int
    patterns: int
    reconstructions: int
    accuracy: float  # the task's headline measure (`Task.metric`): accuracy, or mean IoU for localization
    measures: dict[str, float]  # every measure of the task, the headline first
    agreement: float  # reconstructions that answer as the base model does (`Task.agreement`)
    mse: float  # mean squared error of reconstructions against the base model's outputs


@dataclass
class DegradedEvaluation:
    """A_a, A_d (overall and per number of lost originals) and the default-prediction baseline, in the task's
    headline measure (``metric``), each beside every measure of the task."""

    code: dict[str, Any]
    task: str
    metric: str
    available_accuracy: float
    available_measures: dict[str, float]
    degraded_accuracy: float
    degraded_measures: dict[str, float]
    agreement: float
    mse: float
    default_output: list[float]
    default_accuracy: float
    groups: int
    by_lost: list[ErasureScore] = field(default_factory=list)

    def overall_accuracy(self, f: float) -> float:
        """A_o(f) = (1 - f) A_a + f A_d: accuracy when a fraction f of predictions is rebuilt."""
        return (1 - f) * self.available_accuracy + f * self.degraded_accuracy

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["overall_accuracy"] = {f"{f:.2f}": self.overall_accuracy(f) for f in OVERALL_FRACTIONS}
        return data


def score_reconstructions(
    code: Code,
    base_outputs: torch.Tensor,
    parity_out: torch.Tensor,
    groups: torch.Tensor,
    targets: torch.Tensor,
    *,
    task: Task,
    default_output: torch.Tensor,
) -> DegradedEvaluation:
    """Decode every group under every pattern of 1..r lost originals and score what was rebuilt.

    Runs on the device of ``base_outputs`` (where a learned code's decoder must live too).
    """
    device = base_outputs.device
    groups, targets = groups.to(device), targets.to(device)
    outputs = torch.cat([base_outputs[groups], parity_out.to(base_outputs)], dim=1)  # (G, k + r, m)
    per_lost: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
    for mask in erasure_patterns(code.k, code.r):
        lost = lost_originals(mask, code.k)
        rebuilt = code.decode(outputs, mask)[:, lost].flatten(0, 1)
        members = groups[:, lost].flatten()
        per_lost.setdefault(len(lost), []).append((rebuilt, targets[members], base_outputs[members]))
    scores = []
    for lost, parts in sorted(per_lost.items()):
        rebuilt, truth, base = (torch.cat(column) for column in zip(*parts))
        measures = task.measures(rebuilt, truth)
        scores.append(
            ErasureScore(
                lost=lost,
                patterns=len(parts),
                reconstructions=len(truth),
                accuracy=measures[task.metric],
                measures=measures,
                agreement=task.agreement(rebuilt, base),
                mse=(rebuilt - base).pow(2).mean().item(),
            )
        )
    total = sum(s.reconstructions for s in scores)
    members = groups.flatten()

    def weighted(value: Any) -> float:
        return sum(value(s) * s.reconstructions for s in scores) / total

    available = task.measures(base_outputs[members], targets[members])
    default = default_output.to(base_outputs).expand(len(members), -1)
    return DegradedEvaluation(
        code=code.spec(),
        task=task.name,
        metric=task.metric,
        available_accuracy=available[task.metric],
        available_measures=available,
        degraded_accuracy=weighted(lambda s: s.accuracy),
        degraded_measures={name: weighted(lambda s: s.measures[name]) for name in available},
        agreement=weighted(lambda s: s.agreement),
        mse=weighted(lambda s: s.mse),
        default_output=default_output.tolist(),
        default_accuracy=task.score(default, targets[members]),
        groups=len(groups),
        by_lost=scores,
    )


@torch.no_grad()
def evaluate_code(
    code: Code,
    parity_models: Sequence[nn.Module],
    split: Split,
    preprocess: Preprocess,
    base_outputs: torch.Tensor,
    groups: torch.Tensor,
    *,
    task: Task,
    default_output: torch.Tensor,
    device: torch.device | str = "cpu",
) -> DegradedEvaluation:
    """Run the parity models on the encoded groups of ``split`` and score the reconstructions."""
    out = parity_outputs(parity_models, code, split, preprocess, groups, device=device)
    return score_reconstructions(code, base_outputs.to(device), out, groups, split.y, task=task,
                                 default_output=default_output)
