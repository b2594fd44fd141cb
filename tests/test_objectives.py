"""Deep InfoMax terms: the bounds' values, the adversarial prior, and that training lowers the loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from infomax_cli.model.encoders import Encoder
from infomax_cli.model.objectives import (
    BOUNDS,
    DeepInfoMax,
    discriminator_loss,
    dv_bound,
    infonce_bound,
    jsd_bound,
)


def test_jsd_bound_matches_its_formula():
    pos, neg = torch.tensor([2.0, -1.0]), torch.tensor([[0.5, -3.0]])
    expected = (
        -(math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2
        - (math.log1p(math.exp(0.5)) + math.log1p(math.exp(-3.0))) / 2
    )
    assert jsd_bound(pos, neg).item() == pytest.approx(expected, abs=1e-6)


def test_bounds_are_finite_for_extreme_scores():
    pos, neg = torch.tensor([1e4, -1e4]), torch.tensor([[1e4, -1e4]])
    for bound in BOUNDS.values():
        assert torch.isfinite(bound(pos, neg))


def test_bounds_zero_when_critic_ignores_pairs():
    """A critic that scores joint and product pairs alike certifies no MI: DV and InfoNCE give 0."""
    pos, neg = torch.full((8,), 0.3), torch.full((3, 8), 0.3)
    assert dv_bound(pos, neg).item() == pytest.approx(0.0, abs=1e-6)
    assert infonce_bound(pos, neg).item() == pytest.approx(0.0, abs=1e-6)


def test_infonce_bound_is_at_most_log_of_candidates():
    pos, neg = torch.full((8,), 50.0), torch.full((3, 8), -50.0)
    assert infonce_bound(pos, neg).item() == pytest.approx(math.log(4), abs=1e-5)


def test_prior_discriminator_is_adversarial():
    """The discriminator's loss and the encoder's prior loss pull the discriminator's logit opposite ways."""
    torch.manual_seed(0)
    critics = DeepInfoMax(maps=4, hidden=8)
    latent = torch.rand(2, 4, 8, 8, requires_grad=True)
    d = critics.discriminator_loss(latent, torch.Generator().manual_seed(0))
    d.backward()
    # the discriminator step never moves the encoder
    assert latent.grad is None or latent.grad.abs().sum() == 0
    real, fake = torch.tensor([3.0]), torch.tensor([-3.0])
    assert discriminator_loss(real, fake) < discriminator_loss(fake, real)


@pytest.mark.parametrize("bound", sorted(BOUNDS))
@pytest.mark.slow
def test_training_lowers_the_loss_on_a_fixed_batch(bound):
    torch.manual_seed(0)
    enc = Encoder(["conv"] * 4, [4, 8, 8], maps=8, padding=1)
    critics = DeepInfoMax(maps=8, hidden=16, bound=bound, negatives=2)
    x = F.avg_pool2d(torch.rand(8, 1, 32, 32), 3, 1, 1)  # a fixed batch of smooth random images
    opt = torch.optim.Adam(
        [*enc.parameters(), *critics.local.parameters(), *critics.global_.parameters()], lr=1e-2
    )
    losses = []
    for _ in range(60):
        terms = critics.encoder_losses(x, enc(x))
        loss = terms["local"] + 0.5 * terms["global"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.02
