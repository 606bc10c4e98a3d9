"""Class-conditional domain-adversarial training (Ganin et al. 2016, DANN; conditioned on the class as in Li et al.
2018): a detector trained on a few corpora learns what each corpus sounds or looks like as readily as what
synthesis leaves behind. Per class, a domain classifier learns which domain (corpus, generator) a sample comes from
among samples of that class, and a gradient reversal between it and the detector's hidden layer teaches the detector
to hide exactly that. Conditioning on the class matters: domains that hold only one class would otherwise make the
adversary fight the detection task itself."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.loop import bce_loss


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by -coefficient."""
    return _ReverseGradient.apply(x, coefficient)


class DomainAdversary(nn.Module):
    """Wraps a binary detector with `embed(inputs) -> hidden [B, H]` and `classify(hidden) -> logit [B]`.

    In training mode the output is [B, 1 + real domains + synthetic domains]: the synthetic logit, then each class's
    domain logits (read from the reversed hidden layer); `loss` takes targets [B, 2] = (label, domain index within
    the sample's class). The reversal's strength ramps from 0 to `weight` over `total_steps` (DANN's schedule), so
    the domain classifiers learn before they push. Evaluation mode returns the detector's logit alone, so the loop's
    validation and the exported detector are unchanged."""

    def __init__(self, detector: nn.Module, hidden: int, domains: tuple[int, int], weight: float, total_steps: int):
        super().__init__()
        self.detector, self.weight, self.total_steps, self.domains = detector, weight, max(1, total_steps), domains
        self.domain_heads = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, max(1, n))) for n in domains)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))     # in checkpoints: resume keeps the ramp

    def coefficient(self) -> float:
        progress = min(1.0, int(self.step) / self.total_steps)
        return self.weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.detector.embed(inputs)
        logit = self.detector.classify(hidden).reshape(-1, 1)
        if not self.training:
            return logit[:, 0]
        reversed_hidden = reverse_gradient(hidden, self.coefficient())
        self.step += 1
        return torch.cat([logit] + [head(reversed_hidden) for head in self.domain_heads], dim=1)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Binary loss of the detector plus each class's domain cross-entropy (averaged over the whole batch)."""
        labels, domains = targets[:, 0].float(), targets[:, 1].long()
        loss = bce_loss(outputs, labels)
        start = 1
        for label, (count, head) in enumerate(zip(self.domains, self.domain_heads)):
            width = head[-1].out_features
            mask = labels == label
            if count > 1 and mask.any():
                domain_loss = F.cross_entropy(outputs[mask, start:start + width], domains[mask])
                loss = loss + domain_loss * mask.float().mean()
            start += width
        return loss
