"""Deep InfoMax objective with the study's twist: every objective network sees the image and the latent.

- local critic: scores (image pixel, latent vector) at every location (1x1 convs on their concatenation);
- global critic: one score per (image, latent) pair (strided convs on the concatenation, pooled);
- prior: a discriminator with its own optimiser tells latent vectors from a uniform prior on [0, 1]^maps;
  the encoder gets the non-saturating GAN loss.
Positives pair image i with latent i; negatives pair latent i with image i+k (k = 1..K) of the batch.

The MI bounds (`jsd`, `infonce`, `dv`) are pure functions of positive and negative scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


# --- MI lower bounds: pos (B, ...) scores of joint pairs, neg (K, B, ...) scores of product pairs ---


def jsd_bound(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon MI bound (Hjelm et al. 2019): E_P[-softplus(-T)] - E_Q[softplus(T)]."""
    return -F.softplus(-pos).mean() - F.softplus(neg).mean()


def dv_bound(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan bound: E_P[T] - log E_Q[exp T]."""
    return pos.mean() - (torch.logsumexp(neg.reshape(-1), dim=0) - math.log(neg.numel()))


def infonce_bound(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """InfoNCE bound (van den Oord et al. 2018): E[log softmax of the positive among 1+K] + log(1+K)."""
    scores = torch.cat([pos.unsqueeze(0), neg], dim=0)
    return (pos - torch.logsumexp(scores, dim=0)).mean() + math.log(scores.shape[0])


BOUNDS = {"jsd": jsd_bound, "infonce": infonce_bound, "dv": dv_bound}


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(fake): the encoder's prior loss."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(real) - log(1 - D(fake)), written with softplus so it never takes log(0)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


# --- the objective networks ---


def resize_to(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The image resized (bilinear) to the latent's spatial size, when the sizes differ."""
    if image.shape[-2:] == like.shape[-2:]:
        return image
    return F.interpolate(image, size=like.shape[-2:], mode="bilinear", align_corners=False)


class LocalCritic(nn.Module):
    """Scores (pixel, latent vector) at every location: an MLP on their concatenation, applied per pixel.

    The first layer is split into its latent and image parts, so the latent's part is computed once and
    shared by the positive and every negative image.
    """

    def __init__(self, maps: int, hidden: int):
        super().__init__()
        self.z_in = nn.Linear(maps, hidden)
        self.x_in = nn.Linear(1, hidden, bias=False)
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, images: list[torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        """images: K tensors (B, 1, H, W); latent (B, maps, H, W) -> scores (K, B, H, W)."""
        hz = self.z_in(latent.permute(0, 2, 3, 1))
        return torch.stack([self.body(hz + self.x_in(x.permute(0, 2, 3, 1))).squeeze(-1) for x in images])


class GlobalCritic(nn.Module):
    """One score per (image, latent) pair: strided convs on their concatenation, pooled, then an MLP.

    As in the local critic, the first convolution is split so the latent's part is shared.
    """

    def __init__(self, maps: int, hidden: int):
        super().__init__()
        self.z_in = nn.Conv2d(maps, hidden, 3, stride=2)
        self.x_in = nn.Conv2d(1, hidden, 3, stride=2, bias=False)
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(hidden, hidden, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, images: list[torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        """images: K tensors (B, 1, H, W); latent (B, maps, H, W) -> scores (K, B)."""
        hz = self.z_in(latent)
        return torch.stack([self.body(hz + self.x_in(x)).squeeze(-1) for x in images])


class PriorDiscriminator(nn.Module):
    """Logit that a latent vector (one location, `maps` values) came from the uniform prior."""

    def __init__(self, maps: int, hidden: int, stride: int = 4):
        super().__init__()
        self.stride = stride
        self.net = nn.Sequential(nn.Linear(maps, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def vectors(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent vectors on a regular grid of locations (every `stride` pixels): (B * locations, maps)."""
        z = latent[:, :, :: self.stride, :: self.stride]
        return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.net(vectors).squeeze(1)


class DeepInfoMax(nn.Module):
    """The critics and the prior discriminator; `losses` gives every term of one step."""

    def __init__(self, maps: int, hidden: int, bound: str = "jsd", negatives: int = 1):
        super().__init__()
        if bound not in BOUNDS:
            raise ValueError(f"unknown bound {bound!r}: use one of {sorted(BOUNDS)}")
        self.local = LocalCritic(maps, hidden)
        self.global_ = GlobalCritic(maps, hidden)
        self.prior = PriorDiscriminator(maps, hidden)
        self.bound = BOUNDS[bound]
        self.negatives = negatives

    def encoder_losses(self, image: torch.Tensor, latent: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses for the encoder and critics: -local bound, -global bound, prior (non-saturating)."""
        image = resize_to(image, latent)
        k = min(self.negatives, image.shape[0] - 1)
        images = [image] + [torch.roll(image, shifts=s, dims=0) for s in range(1, k + 1)]
        local = self.local(images, latent)
        global_ = self.global_(images, latent)
        fake = self.prior(self.prior.vectors(latent))
        return {
            "local": -self.bound(local[0], local[1:]),
            "global": -self.bound(global_[0], global_[1:]),
            "prior": nonsaturating_generator_loss(fake),
        }

    def discriminator_loss(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The prior discriminator's loss: uniform samples are real, (detached) latent vectors fake."""
        fake = self.prior.vectors(latent.detach())
        where = generator.device if generator is not None else fake.device
        real = torch.rand(fake.shape, generator=generator, device=where).to(fake.device)
        return discriminator_loss(self.prior(real), self.prior(fake))
