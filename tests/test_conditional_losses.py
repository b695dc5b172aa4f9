"""ACGAN losses, BigGAN's orthogonal regulariser and truncation, and the Improved-Techniques
losses (feature matching, one-sided label smoothing, historical averaging, the SSGAN loss),
each against a hand computation in float64."""

import math

import pytest
import torch
from torch import nn

from gan_lab.errors import UserError
from gan_lab.losses.adversarial import LOSSES, minimax_d_loss, non_saturating_g_loss
from gan_lab.losses.conditional import (
    HistoricalAverage,
    acgan_d_loss,
    acgan_g_loss,
    check_label_smoothing,
    check_truncation,
    feature_matching_loss,
    orthogonal_regularization,
    smoothed_d_loss,
    ssgan_d_loss,
    ssgan_real_logit,
    truncated_normal,
)

D64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _log_softmax_rows(logits, labels):
    """-log softmax(l)[y] per row, written out: log(sum exp l) - l_y."""
    return [math.log(sum(math.exp(v) for v in row)) - row[y] for row, y in zip(logits.tolist(), labels.tolist())]


def _softplus(v):
    return math.log1p(math.exp(v))


# ---------------------------------------------------------------------------------------------
# ACGAN
# ---------------------------------------------------------------------------------------------


def test_acgan_d_loss_matches_hand_computation():
    g = _gen()
    adv_r, adv_f = torch.randn(4, generator=g, dtype=D64), torch.randn(4, generator=g, dtype=D64)
    cls_r, cls_f = torch.randn(4, 3, generator=g, dtype=D64), torch.randn(4, 3, generator=g, dtype=D64)
    y_r, y_f = torch.tensor([0, 1, 2, 1]), torch.tensor([2, 2, 0, 1])
    loss, logs = acgan_d_loss(adv_r, adv_f, cls_r, cls_f, y_r, y_f, real_class_weight=0.7, fake_class_weight=0.3)
    adv = (sum(_softplus(-v) for v in adv_r.tolist()) + sum(_softplus(v) for v in adv_f.tolist())) / 4
    ce_r = sum(_log_softmax_rows(cls_r, y_r)) / 4
    ce_f = sum(_log_softmax_rows(cls_f, y_f)) / 4
    assert float(loss) == pytest.approx(adv + 0.7 * ce_r + 0.3 * ce_f, rel=1e-12)
    assert float(logs["d_class_real"]) == pytest.approx(ce_r, rel=1e-12)
    assert float(logs["d_class_fake"]) == pytest.approx(ce_f, rel=1e-12)
    assert float(logs["d_adv"]) == pytest.approx(adv, rel=1e-12)


def test_acgan_g_loss_matches_hand_computation():
    g = _gen(1)
    adv_f = torch.randn(5, generator=g, dtype=D64)
    cls_f = torch.randn(5, 4, generator=g, dtype=D64)
    y_f = torch.tensor([3, 0, 1, 2, 3])
    loss, logs = acgan_g_loss(None, adv_f, cls_f, y_f, class_weight=2.0)
    adv = sum(_softplus(-v) for v in adv_f.tolist()) / 5  # non-saturating: -log sigmoid(l)
    ce = sum(_log_softmax_rows(cls_f, y_f)) / 5
    assert float(loss) == pytest.approx(adv + 2.0 * ce, rel=1e-12)
    assert float(logs["g_class"]) == pytest.approx(ce, rel=1e-12)
    # the adversarial part is pluggable (e.g. hinge for a hinge ACGAN)
    loss_h, _ = acgan_g_loss(None, adv_f, cls_f, y_f, adv_loss=LOSSES["hinge"].g_loss, class_weight=0.0)
    assert float(loss_h) == pytest.approx(-float(adv_f.mean()), rel=1e-12)
    assert acgan_g_loss.__kwdefaults__["adv_loss"] is non_saturating_g_loss
    assert acgan_d_loss.__kwdefaults__["adv_loss"] is minimax_d_loss


# ---------------------------------------------------------------------------------------------
# BigGAN: orthogonal regularisation, truncation
# ---------------------------------------------------------------------------------------------


def test_orthogonal_regularization_matches_its_formula_and_gradient():
    g = _gen(2)
    conv = torch.randn(4, 3, 2, 2, generator=g, dtype=D64, requires_grad=True)
    lin = torch.randn(5, 6, generator=g, dtype=D64, requires_grad=True)
    bias = torch.randn(5, generator=g, dtype=D64, requires_grad=True)
    beta = 1e-4
    reg = orthogonal_regularization([conv, lin, bias], beta)
    # the formula, written with explicit loops: beta * sum_{i != j} (w_i . w_j)^2 over filters
    expected = 0.0
    for p in (conv, lin):
        w = p.detach().reshape(p.shape[0], -1).tolist()
        for i in range(len(w)):
            for j in range(len(w)):
                if i != j:
                    expected += sum(a * b for a, b in zip(w[i], w[j])) ** 2
    assert float(reg.detach()) == pytest.approx(beta * expected, rel=1e-12)
    # the same as the matrix form beta * ||W^T W ⊙ (1 - I)||_F^2 with W = w^T (columns = filters)
    w = lin.detach().reshape(5, -1)
    W = w.T
    gram = W.T @ W
    assert float(orthogonal_regularization([lin], beta).detach()) == pytest.approx(
        beta * float(((gram * (1 - torch.eye(5, dtype=D64))) ** 2).sum()), rel=1e-12)
    # gradient 4 beta (w w^T ⊙ (1 - I)) w: twice BigGAN-PyTorch's hand-written 2 beta (...) w
    reg.backward()
    mask = 1 - torch.eye(5, dtype=D64)
    torch.testing.assert_close(lin.grad, 4 * beta * ((w @ w.T) * mask) @ w)
    assert bias.grad is None  # 1-D tensors are not regularised
    # orthogonal filters cost nothing, whatever their norms
    q = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=D64))[0][:4] * torch.tensor([[1.0], [2.0], [3.0], [4.0]],
                                                                                          dtype=D64)
    assert float(orthogonal_regularization([q])) == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("psi", [2.0, 1.0, 0.5, 0.1, 0.01])
def test_truncated_normal_stays_within_psi(psi):
    z = truncated_normal((500, 16), psi, _gen(3))
    assert z.shape == (500, 16)
    assert float(z.abs().max()) <= psi
    # resampling (not clamping): no pile-up at the bounds
    assert float((z.abs() == psi).double().mean()) < 0.01


def test_truncated_normal_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a = truncated_normal((64, 8), 0.5, _gen(4))
    b = truncated_normal((64, 8), 0.5, _gen(4))
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)
    # psi = inf: plain normal draws (the same numbers as randn with that generator)
    assert torch.equal(truncated_normal((3, 4), math.inf, _gen(5)), torch.randn(3, 4, generator=_gen(5)))
    # a mild threshold: the std of a N(0,1) truncated at 1 is sqrt(1 - 2 phi(1) / (2 Phi(1) - 1))
    z = truncated_normal((200_000,), 1.0, _gen(6), dtype=D64)
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    std = math.sqrt(1 - 2 * phi1 / math.erf(1 / math.sqrt(2)))
    assert float(z.std()) == pytest.approx(std, abs=5 * std / math.sqrt(2 * 200_000))


@pytest.mark.parametrize("psi", [0, -0.5, float("nan"), "1", True])
def test_truncation_must_be_positive(psi):
    with pytest.raises(UserError, match="truncation"):
        check_truncation(psi)
    with pytest.raises(UserError, match="truncation"):
        truncated_normal((2, 2), psi, _gen())


# ---------------------------------------------------------------------------------------------
# Improved Techniques
# ---------------------------------------------------------------------------------------------


def test_feature_matching_loss_matches_hand_computation():
    real = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]], dtype=D64)  # mean [2, 1, 0]
    fake = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [3.0, 2.0, 1.0]], dtype=D64, requires_grad=True)  # [1,1,1]
    loss = feature_matching_loss(real, fake)
    assert float(loss.detach()) == pytest.approx(1.0 + 0.0 + 1.0)
    assert float(feature_matching_loss(real, fake, reduction="mean").detach()) == pytest.approx(2.0 / 3)
    loss.backward()  # d/d fake_ij = -2 (mean_real - mean_fake)_j / n_fake
    torch.testing.assert_close(fake.grad, (-2 * torch.tensor([1.0, 0.0, -1.0], dtype=D64) / 3).expand(3, 3))


def test_one_sided_label_smoothing_targets():
    g = _gen(7)
    real, fake = torch.randn(6, generator=g, dtype=D64), torch.randn(6, generator=g, dtype=D64)
    alpha = 0.9
    # binary cross-entropy with target alpha on real rows and 0 on fake rows, from probabilities
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    bce = lambda p, t: -(t * math.log(p) + (1 - t) * math.log(1 - p))  # noqa: E731
    expected = sum(bce(sig(v), alpha) for v in real.tolist()) / 6 + sum(bce(sig(v), 0.0) for v in fake.tolist()) / 6
    assert float(smoothed_d_loss(real, fake, alpha)) == pytest.approx(expected, rel=1e-10)
    assert float(smoothed_d_loss(real, fake, 1.0)) == pytest.approx(float(minimax_d_loss(real, fake)), rel=1e-12)
    # the optimum for a real logit moves from +inf to logit(alpha)
    logit = torch.tensor([math.log(alpha / (1 - alpha))], dtype=D64, requires_grad=True)
    smoothed_d_loss(logit, torch.tensor([-50.0], dtype=D64), alpha).backward()
    assert float(logit.grad) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("loss", ["wasserstein", "hinge", "least_squares", "ragan_hinge"])
def test_label_smoothing_refuses_non_cross_entropy_losses(loss):
    with pytest.raises(UserError, match="cross-entropy"):
        check_label_smoothing(loss, 0.9)


def test_label_smoothing_checks_alpha():
    assert check_label_smoothing("non_saturating", 0.9) == 0.9
    assert check_label_smoothing("minimax", 1) == 1.0
    for bad in (0.5, 0.0, 1.1, "0.9"):
        with pytest.raises(UserError, match="alpha"):
            check_label_smoothing("non_saturating", bad)


def test_historical_average_penalty_and_state():
    net = nn.Linear(2, 1).double()
    ha = HistoricalAverage(weight=0.5)
    assert float(ha.penalty(net)) == 0.0  # no history yet
    snapshots = []
    for step in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(float(step + 1))
        ha.update(net)
        snapshots.append([p.detach().clone() for p in net.parameters()])
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(-1.0)
    means = [sum(s[i] for s in snapshots) / 3 for i in range(2)]
    expected = 0.5 * sum(float(((p.detach() - m) ** 2).sum()) for p, m in zip(net.parameters(), means))
    pen = ha.penalty(net)
    assert float(pen.detach()) == pytest.approx(expected, rel=1e-12)
    pen.backward()  # gradient 2 * weight * (theta - mean)
    for p, m in zip(net.parameters(), means):
        torch.testing.assert_close(p.grad, 2 * 0.5 * (p.detach() - m))
    # exact resume
    other = HistoricalAverage(weight=0.0)
    other.load_state_dict(ha.state_dict())
    assert float(other.penalty(net).detach()) == pytest.approx(expected, rel=1e-12)
    ha.update(net)
    other.update(net)
    assert float(other.penalty(net).detach()) == float(ha.penalty(net).detach())
    with pytest.raises(UserError, match="weight"):
        HistoricalAverage(weight=-1.0)


def _explicit_k_plus_1(real_logits, fake_logits, y, labeled):
    """The SSGAN loss from an explicit (K+1)-way softmax whose last (fake) logit is 0."""
    sup, unsup_r, unsup_f = [], [], []
    for row, label, lab in zip(real_logits.tolist(), y.tolist(), labeled.tolist()):
        ext = row + [0.0]
        norm = sum(math.exp(v) for v in ext)
        p = [math.exp(v) / norm for v in ext]
        if lab:  # -log p(y | x, y < K+1) = -log(p_y / (1 - p_fake))
            sup.append(-math.log(p[label] / (1 - p[-1])))
        unsup_r.append(-math.log(1 - p[-1]))
    for row in fake_logits.tolist():
        ext = row + [0.0]
        norm = sum(math.exp(v) for v in ext)
        unsup_f.append(-math.log(math.exp(0.0) / norm))
    sup_v = sum(sup) / len(sup) if sup else 0.0
    return sup_v, sum(unsup_r) / len(unsup_r) + sum(unsup_f) / len(unsup_f)


def test_ssgan_logit_trick_equals_the_explicit_k_plus_1_softmax():
    g = _gen(8)
    real = torch.randn(6, 4, generator=g, dtype=D64) * 2
    fake = torch.randn(5, 4, generator=g, dtype=D64) * 2
    y = torch.tensor([0, 3, 1, 2, 2, 0])
    labeled = torch.tensor([True, False, True, True, False, False])
    loss, logs = ssgan_d_loss(real, fake, y, labeled, unsupervised_weight=0.5)
    sup, unsup = _explicit_k_plus_1(real, fake, y, labeled)
    assert float(logs["d_sup"]) == pytest.approx(sup, rel=1e-12)
    assert float(logs["d_unsup"]) == pytest.approx(unsup, rel=1e-12)
    assert float(loss) == pytest.approx(sup + 0.5 * unsup, rel=1e-12)
    # D(x) = Z / (Z + 1) = sigmoid(logsumexp l)
    z = real.exp().sum(1)
    torch.testing.assert_close(torch.sigmoid(ssgan_real_logit(real)), z / (z + 1))


def test_ssgan_loss_without_labelled_rows():
    real = torch.randn(4, 3, dtype=D64, requires_grad=True)
    fake = torch.randn(4, 3, dtype=D64)
    loss, logs = ssgan_d_loss(real, fake, None, torch.zeros(4, dtype=torch.bool))
    _, unsup = _explicit_k_plus_1(real.detach(), fake, torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.bool))
    assert float(logs["d_sup"]) == 0.0
    assert float(loss.detach()) == pytest.approx(unsup, rel=1e-12)
    loss.backward()
    assert real.grad is not None
