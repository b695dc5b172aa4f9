"""Loss and penalty math against hand-computed values and direct autograd."""

import math

import pytest
import torch
from torch import nn

from gan_lab.losses import adversarial as A
from gan_lab.losses import penalties as P
from gan_lab.errors import UserError

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def mean(xs):
    return sum(xs) / len(xs)


def close(t, v):
    # float32 results of a few operations on O(1) values against Python-float (or same-formula float32)
    # references: a few eps32 (1.2e-7) at most, 0.6 eps32 measured; rel=1e-6 is 8 eps32, and
    # abs=1e-6 only matters for the exact zeros
    assert float(torch.as_tensor(t).detach()) == pytest.approx(v, rel=1e-6, abs=1e-6)


def test_minimax_and_non_saturating():
    r, f = REAL.tolist(), FAKE.tolist()
    d = -mean([math.log(sig(v)) for v in r]) - mean([math.log(1 - sig(v)) for v in f])
    close(A.minimax_d_loss(REAL, FAKE), d)
    close(A.minimax_g_loss(REAL, FAKE), mean([math.log(1 - sig(v)) for v in f]))
    close(A.non_saturating_g_loss(REAL, FAKE), -mean([math.log(sig(v)) for v in f]))


def test_saturating_loss_has_vanishing_gradient_where_d_wins():
    # The reason for the non-saturating loss: with D confident the sample is fake
    # (logit -8), d/dlogit of log(1 - sigmoid) is ~ -sigmoid(-8), tiny; the NS loss is ~ -1.
    f = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(A.minimax_g_loss(None, f), f)
    (g_ns,) = torch.autograd.grad(A.non_saturating_g_loss(None, f), f)
    assert abs(float(g_sat)) < 1e-3 and abs(float(g_ns)) > 0.99


def test_least_squares():
    close(A.least_squares_d_loss(REAL, FAKE), 0.5 * mean([1.0, 4.0]) + 0.5 * mean([0.25, 9.0]))
    close(A.least_squares_g_loss(REAL, FAKE), 0.5 * mean([0.25, 16.0]))


def test_wasserstein_and_hinge():
    close(A.wasserstein_d_loss(REAL, FAKE), mean([0.5, -3.0]) - mean([2.0, -1.0]))
    close(A.wasserstein_g_loss(REAL, FAKE), -mean([0.5, -3.0]))
    close(A.hinge_d_loss(REAL, FAKE), mean([0.0, 2.0]) + mean([1.5, 0.0]))
    close(A.hinge_g_loss(REAL, FAKE), 1.25)


def test_relativistic_average_forms():
    # real - mean(fake) = [2 + 1.25, -1 + 1.25]; fake - mean(real) = [0.5 - 0.5, -3 - 0.5]
    r, f = [3.25, 0.25], [0.0, -3.5]
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    close(A.ragan_sgan_d_loss(REAL, FAKE), mean([sp(-v) for v in r]) + mean([sp(v) for v in f]))
    close(A.ragan_sgan_g_loss(REAL, FAKE), mean([sp(v) for v in r]) + mean([sp(-v) for v in f]))
    close(A.ragan_lsgan_d_loss(REAL, FAKE), mean([(v - 1) ** 2 for v in r]) + mean([(v + 1) ** 2 for v in f]))
    close(A.ragan_lsgan_g_loss(REAL, FAKE), mean([(v - 1) ** 2 for v in f]) + mean([(v + 1) ** 2 for v in r]))
    close(A.ragan_hinge_d_loss(REAL, FAKE), mean([max(0, 1 - v) for v in r]) + mean([max(0, 1 + v) for v in f]))
    close(A.ragan_hinge_g_loss(REAL, FAKE), mean([max(0, 1 - v) for v in f]) + mean([max(0, 1 + v) for v in r]))
    assert A.get_loss("ragan_hinge").g_uses_real and not A.get_loss("hinge").g_uses_real


def test_unknown_loss_and_penalty_are_user_errors():
    with pytest.raises(UserError, match="hinge"):
        A.get_loss("nope")
    with pytest.raises(UserError, match="gp"):
        P.get_penalty("nope")
    assert P.get_penalty("none") is None


class Quadratic(nn.Module):
    """D(x) = sum(a * x^2) per sample: its input gradient 2 a x is known in closed form."""

    def __init__(self, a=0.7):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return (self.a * x.pow(2)).flatten(1).sum(1)


def test_gradient_penalty_matches_closed_form_and_autograd():
    torch.manual_seed(0)
    d = Quadratic()
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    torch.manual_seed(1)
    pen = P.gradient_penalty(d, real, fake)
    torch.manual_seed(1)
    alpha = torch.rand(6, 1)
    x_hat = alpha * real + (1 - alpha) * fake
    expected = ((2 * 0.7 * x_hat).norm(dim=1) - 1).pow(2).mean()
    close(pen, float(expected))
    # trainable: d pen / d a matches autograd through the expected formula
    (grad_a,) = torch.autograd.grad(pen, d.a)
    a = torch.tensor(0.7, requires_grad=True)
    ref = ((2 * a * x_hat).norm(dim=1) - 1).pow(2).mean()
    (ref_a,) = torch.autograd.grad(ref, a)
    close(grad_a, float(ref_a))


def test_gradient_penalty_on_conv_shaped_inputs():
    d = Quadratic(0.5)  # grad = x, so ||grad|| = ||x_hat||
    real = torch.ones(4, 1, 2, 2)
    pen = P.gradient_penalty(d, real, real.clone())  # interpolates of equal points = the point
    close(pen, (2.0 - 1.0) ** 2)


def test_lipschitz_penalty_is_one_sided():
    small = Quadratic(0.01)
    x = torch.randn(8, 2)
    close(P.lipschitz_penalty(small, x, x.clone()), 0.0)  # ||grad|| < 1: no penalty
    big = Quadratic(0.5)
    x = torch.full((3, 4), 1.5)  # ||grad|| = ||x|| = 3
    close(P.lipschitz_penalty(big, x, x.clone()), 4.0)


def test_wasserstein_div_penalty():
    d = Quadratic(0.5)  # grad = x
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    fake = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    close(P.wasserstein_div_penalty(d, real, fake, p=6.0), mean([1.0, 64.0]) + mean([8.0, 0.0]))
    close(P.wasserstein_div_penalty(d, real, fake, p=2.0), mean([1.0, 4.0]) + mean([2.0, 0.0]))


def test_r1_penalty():
    d = Quadratic(1.0)  # grad = 2x
    real = torch.tensor([[1.0, 2.0]])
    close(P.r1_penalty(d, real), 0.5 * (4 + 16))
