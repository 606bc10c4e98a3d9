"""Class-conditional domain-adversarial training: the reversed gradient, the ramp, the per-class domain loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.domain_adversarial import DomainAdversary, reverse_gradient


class _Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.out = nn.Linear(3, 4), nn.Linear(4, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(hidden).squeeze(1)


def _batch():
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0], dtype=torch.float32)
    domains = torch.tensor([0, 1, 1, 0, 2, 1, 2, 0], dtype=torch.float32)    # within each class
    return x, torch.stack([labels, domains], dim=1)


def test_reverse_gradient_is_identity_forward_and_negated_backward():
    x = torch.randn(5, requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full((5,), -0.3))


def test_evaluation_returns_the_detectors_logit_alone():
    detector = _Detector()
    adversary = DomainAdversary(detector, 4, (2, 3), weight=1.0, total_steps=10).eval()
    x, _ = _batch()
    assert torch.allclose(adversary(x), detector.classify(detector.embed(x)))


def test_ramp_starts_at_zero_and_reaches_the_weight():
    adversary = DomainAdversary(_Detector(), 4, (2, 3), weight=0.5, total_steps=10).train()
    x, _ = _batch()
    assert adversary.coefficient() == 0.0
    for _ in range(12):
        adversary(x)
    assert adversary.coefficient() == pytest.approx(0.5 * (2 / (1 + torch.exp(torch.tensor(-10.0))) - 1))
    assert int(adversary.state_dict()["step"]) == 12              # a checkpoint keeps the ramp's place


def test_encoder_gets_the_detection_gradient_minus_the_domain_gradient():
    """Past the ramp, the encoder's gradient is d(detection loss) - weight * d(domain loss): it is pushed to hide the
    domain, while the domain heads themselves learn to find it (their gradient is not reversed)."""
    weight = 0.7
    x, targets = _batch()
    detector = _Detector()
    adversary = DomainAdversary(detector, 4, (2, 3), weight=weight, total_steps=1).train()
    adversary.step.fill_(10**6)
    coefficient = adversary.coefficient()
    adversary.loss(adversary(x), targets).backward()
    total = detector.encoder.weight.grad.clone()
    head_grad = adversary.domain_heads[1][0].weight.grad.clone()

    labels, domains = targets[:, 0], targets[:, 1].long()
    hidden = detector.embed(x)
    detection = F.binary_cross_entropy_with_logits(detector.classify(hidden), labels)
    domain = sum(F.cross_entropy(head(hidden)[labels == k], domains[labels == k]) * (labels == k).float().mean()
                 for k, head in enumerate(adversary.domain_heads))
    g_detection = torch.autograd.grad(detection, detector.encoder.weight, retain_graph=True)[0]
    g_domain, g_head = torch.autograd.grad(domain, [detector.encoder.weight, adversary.domain_heads[1][0].weight])
    assert torch.allclose(total, g_detection - coefficient * g_domain, atol=1e-6)
    assert torch.allclose(head_grad, g_head, atol=1e-6)


def test_domain_columns_follow_the_detector_logit_class_by_class():
    """Real domains first, then synthetic: a class with a single domain keeps its one column (and adds no loss)."""
    x, targets = _batch()
    targets[:, 1] = torch.where(targets[:, 0] == 0, 0.0, targets[:, 1])
    adversary = DomainAdversary(_Detector(), 4, (1, 3), weight=1.0, total_steps=1).train()
    outputs = adversary(x)
    assert outputs.shape == (8, 1 + 1 + 3)
    synthetic = targets[:, 0] == 1
    expected = (F.binary_cross_entropy_with_logits(outputs[:, 0], targets[:, 0])
                + F.cross_entropy(outputs[synthetic, 2:], targets[synthetic, 1].long()) * synthetic.float().mean())
    assert torch.allclose(adversary.loss(outputs, targets), expected)
