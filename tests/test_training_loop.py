"""The shared training loop: sharpness-aware minimization (SAM)."""

import json

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from training.loop import TrainConfig, _sharpness_aware_gradients, train


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=generator)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y.float())


def test_sam_takes_the_gradient_at_the_worst_nearby_weights_and_leaves_weights_and_statistics_alone():
    model, (x, y) = _net(), _data()
    params = list(model.parameters())
    _loss(model, x, y).backward()
    weights = [p.detach().clone() for p in params]
    gradient = [p.grad.clone() for p in params]
    statistics = model[1].running_mean.clone()

    rho = 0.3
    _sharpness_aware_gradients(model, params, rho, lambda: _loss(model, x, y))

    # by hand: move to w + rho * g / |g|, take the gradient there
    shifted = _net()
    norm = torch.sqrt(sum((g ** 2).sum() for g in gradient))
    with torch.no_grad():
        for p, w, g in zip(shifted.parameters(), weights, gradient):
            p.copy_(w + rho * g / norm)
    _loss(shifted, x, y).backward()
    for p, w, expected in zip(params, weights, (q.grad for q in shifted.parameters())):
        assert torch.equal(p.detach(), w)                                       # the weights are back where they were
        assert torch.allclose(p.grad, expected, atol=1e-6)
    assert not all(torch.allclose(p.grad, g) for p, g in zip(params, gradient))   # not the plain gradient
    assert torch.equal(model[1].running_mean, statistics)                       # the second pass counted no statistics
    assert model[1].momentum == 0.1


def test_training_with_sam_runs_and_moves_differently(tmp_path):
    x, y = _data()
    finals = {}
    for rho in (0.0, 0.5):
        model = _net()
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
        config = TrainConfig(out_dir=tmp_path / f"rho{rho}", epochs=3, lr=0.05, threads=1, log_every=0, sam_rho=rho)
        result = train(model, loader, DataLoader(TensorDataset(x, y), batch_size=64), config)
        assert result.best_metrics["auc"] > 0.9
        assert json.loads((config.out_dir / "train_config.json").read_text())["sam_rho"] == rho
        finals[rho] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert not torch.allclose(finals[0.0], finals[0.5])
