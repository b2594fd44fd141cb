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

from ..rundir import TERMS
from .align import critic_view
from .geometry import Geometry

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
# Each bound's value when the critic cannot tell joint from product pairs (scores all equal): the JSD bound
# is then -2 ln 2; InfoNCE and DV are 0. bound - chance is the objective's own MI estimate, zero at chance.
CHANCE = {"jsd": -2 * math.log(2), "infonce": 0.0, "dv": 0.0}


def mi_estimate(loss_term: float, bound: str) -> float:
    """The objective's MI estimate in nats from a term's loss (= -bound): -loss - chance, so 2 ln 2 - loss
    for JSD and -loss for InfoNCE and DV; zero when the critic is at chance."""
    return -loss_term - CHANCE[bound]


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(fake): the encoder's prior loss."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(real) - log(1 - D(fake)), written with softplus so it never takes log(0)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


# --- the objective networks ---


class LocalCritic(nn.Module):
    """Scores (pixel, latent vector) at every location: an MLP on their concatenation, applied per pixel.

    The first layer is split into its latent and image parts, so the latent's part is computed once and
    shared by the positive and every negative image.
    """

    def __init__(self, maps: int, hidden: int):
        super().__init__()
        self.z_in = nn.Linear(maps, hidden)
        self.x_in = nn.Linear(1, hidden, bias=False)
        self.body = nn.Sequential(
            nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, images: list[torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        """images: K tensors (B, 1, H, W); latent (B, maps, H, W) -> scores (K, B, H, W)."""
        hz = self.z_in(latent.permute(0, 2, 3, 1))
        return torch.stack(
            [self.body(hz + self.x_in(x.permute(0, 2, 3, 1))).squeeze(-1) for x in images]
        )


class GlobalCritic(nn.Module):
    """One score per (image, latent) pair: strided convs on their concatenation, pooled, then an MLP.

    As in the local critic, the first convolution is split so the latent's part is shared.
    """

    def __init__(self, maps: int, hidden: int):
        super().__init__()
        self.z_in = nn.Conv2d(maps, hidden, 3, stride=2)
        self.x_in = nn.Conv2d(1, hidden, 3, stride=2, bias=False)
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, images: list[torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        """images: K tensors (B, 1, H, W); latent (B, maps, H, W) -> scores (K, B)."""
        hz = self.z_in(latent)
        return torch.stack([self.body(hz + self.x_in(x)).squeeze(-1) for x in images])


class PriorDiscriminator(nn.Module):
    """Logit that a latent vector (one location, `maps` values) came from the uniform prior."""

    def __init__(self, maps: int, hidden: int, stride: int = 4):
        super().__init__()
        self.stride = stride
        self.net = nn.Sequential(
            nn.Linear(maps, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def vectors(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent vectors on a regular grid of locations (every `stride` pixels): (B * locations, maps)."""
        z = latent[:, :, :: self.stride, :: self.stride]
        return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.net(vectors).squeeze(1)


class DeepInfoMax(nn.Module):
    """The critics and the prior discriminator; `encoder_losses` gives every term of one step.

    The critics see the image and the latent on the same pixels, aligned as the measurement aligns them
    (`align` and the encoder's `geom`; see geometry.py): `resize` keeps the study's image resized to the
    latent, `geometry` crops both to the pixels each latent pixel's receptive field is centred on."""

    def __init__(
        self,
        maps: int,
        hidden: int,
        bound: str = "jsd",
        negatives: int = 1,
        align: str = "resize",
        geom: Geometry | None = None,
    ):
        super().__init__()
        if bound not in BOUNDS:
            raise ValueError(f"unknown bound {bound!r}: use one of {sorted(BOUNDS)}")
        self.local = LocalCritic(maps, hidden)
        self.global_ = GlobalCritic(maps, hidden)
        self.prior = PriorDiscriminator(maps, hidden)
        self.bound_name = bound
        self.bound = BOUNDS[bound]
        self.negatives = negatives
        self.align, self.geom = align, geom

    def encoder_losses(self, image: torch.Tensor, latent: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses for the encoder and critics: -local bound, -global bound, prior (non-saturating)."""
        image, seen = critic_view(image, latent, self.align, self.geom)
        k = min(self.negatives, image.shape[0] - 1)
        images = [image] + [torch.roll(image, shifts=s, dims=0) for s in range(1, k + 1)]
        local = self.local(images, seen)
        global_ = self.global_(images, seen)
        fake = self.prior(self.prior.vectors(latent))
        terms = (
            -self.bound(local[0], local[1:]),
            -self.bound(global_[0], global_[1:]),
            nonsaturating_generator_loss(fake),
        )
        return dict(zip(TERMS, terms, strict=True))

    def discriminator_loss(
        self, latent: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The prior discriminator's loss: uniform samples are real, (detached) latent vectors fake."""
        fake = self.prior.vectors(latent.detach())
        where = generator.device if generator is not None else fake.device
        real = torch.rand(fake.shape, generator=generator, device=where).to(fake.device)
        return discriminator_loss(self.prior(real), self.prior(fake))
