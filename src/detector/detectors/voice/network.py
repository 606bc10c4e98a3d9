"""The synthetic-speech network: a log linear-filterbank front end and a compact LCNN back end.

LCNN with Max-Feature-Map activations is the ASVspoof LA baseline family (Lavrentyeva et al. 2019; Wang & Yamagishi
2021). The front end is gain invariant by construction (a power floor relative to the window's mean power, then
per-band mean removal over time), so loudness cannot be a cue. Its band is set per bundle: the shipped version 1
sees 0-4 kHz only, so bandwidth cannot be a cue at all; the version-2 recipe (the defaults here) sees the full 0-8 kHz
band, where most vocoder traces are, and keeps bandwidth from being a cue through its training data (every real clip
has a vocoded twin of the same band, and random band-limits hit both classes alike). Codecs, noise and rooms are
handled by augmentation.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import nn

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 160                     # 10 ms
WIN = 400                     # 25 ms
N_BANDS = 80                  # linear bands (finer than mel at the top of the band); a multiple of 16
MAX_FREQUENCY = 8000.0


class LogFilterbank(nn.Module):
    """Waveform [B, T] -> normalized log linear-filterbank energies [B, 1, bands, frames]."""

    def __init__(self, bands: int = N_BANDS, max_frequency: float = MAX_FREQUENCY) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN), persistent=False)
        fbank = AF.linear_fbanks(N_FFT // 2 + 1, 0.0, max_frequency, bands, SAMPLE_RATE)
        self.register_buffer("fbank", fbank, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave.float(), N_FFT, HOP, WIN, self.window, return_complex=True).abs().pow(2)
        power = torch.matmul(spec.transpose(1, 2), self.fbank).transpose(1, 2)        # [B, bands, frames]
        floor = 1e-5 * power.mean(dim=(1, 2), keepdim=True) + 1e-12
        logp = torch.log(power + floor)
        logp = logp - logp.mean(dim=2, keepdim=True)
        return logp.unsqueeze(1)


class MaxFeatureMap(nn.Module):
    """Conv with 2x output channels, then the element-wise max of the two halves."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, kernel, stride=stride, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return torch.maximum(a, b)


def _block(cin: int, cmid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(MaxFeatureMap(cin, cmid, 1), nn.BatchNorm2d(cmid), MaxFeatureMap(cmid, cout, 3),
                         nn.MaxPool2d(2), nn.BatchNorm2d(cout))


class LCNN(nn.Module):
    """Features [B, 1, bands, frames] -> synthetic logit [B]. Global mean+std pooling over time: any length works."""

    def __init__(self, width: int = 12, bands: int = N_BANDS, dropout: float = 0.3):
        super().__init__()
        w = width
        # stride 2 in time at the stem: 20 ms steps keep the spectral detail and halve the cost of every layer
        self.stem = nn.Sequential(MaxFeatureMap(1, w, 5, stride=(1, 2)), nn.MaxPool2d(2))
        self.blocks = nn.Sequential(_block(w, w, 2 * w), _block(2 * w, 2 * w, 3 * w), _block(3 * w, 3 * w, 2 * w))
        pooled_channels = 2 * w * (bands // 16)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * pooled_channels, 64), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(64, 1))

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The head's hidden layer [B, 64], from mean and std over time of the last block's channels."""
        x = self.blocks(self.stem(features))                  # [B, C, bands/16, frames/32]
        x = x.flatten(1, 2)
        return self.head[:-1](torch.cat([x.mean(dim=2), x.std(dim=2)], dim=1))

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head[-1](hidden).squeeze(1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Features [..., 1, bands, frames] -> logits [...] (training feeds [B, 2, ...]: a window and its twin)."""
        lead = features.shape[:-3]
        return self.classify(self.embed(features.reshape(-1, *features.shape[-3:]))).reshape(lead)


class LCNNEnsemble(nn.Module):
    """The mean logit of several LCNNs trained by one recipe with different seeds: runs of a recipe spread widely, and
    averaging them lowers that variance without picking one."""

    def __init__(self, members: list[LCNN]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(features) for member in self.members]).mean(dim=0)


class SpoofNet(nn.Module):
    """Waveform windows [B, T] at 16 kHz -> synthetic logits [B]; with `members` > 1 the back end is an ensemble."""

    def __init__(self, width: int = 12, bands: int = N_BANDS, max_frequency: float = MAX_FREQUENCY, members: int = 1):
        super().__init__()
        self.frontend = LogFilterbank(bands, max_frequency)
        self.backend = (LCNN(width, bands) if members == 1
                        else LCNNEnsemble([LCNN(width, bands) for _ in range(members)]))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backend(self.frontend(wave))
