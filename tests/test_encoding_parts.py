"""The parts of the models with codes, alone: priors against their stated moments, the losses
against hand computations and autograd, each AAE phase's loss, GLO's code table and fitted
Gaussian, the cluster-to-label mapping and the reconstruction metric."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_lab.data.batch import Batch
from gan_lab.data.info import DIGIT_NAMES, DataInfo
from gan_lab.errors import UserError
from gan_lab.losses.autoencoding import (
    gaussian_kl,
    gradient_origin_latent,
    laplacian_l1,
    laplacian_pyramid,
    pyramid_levels,
    reconstruction_error,
)
from gan_lab.metrics.encoding import cluster_counts, majority_mapping, mapped_accuracy
from gan_lab.priors import CategoricalPrior, FittedGaussian, GaussianPrior, MixturePrior, SwissRollPrior, build_prior

MNIST = DataInfo("mnist_5k", "image", (1, 28, 28), num_classes=10, class_names=DIGIT_NAMES)
N = 200_000  # prior samples for the moment checks


# ------------------------------------------------------------------ priors


@pytest.mark.parametrize("prior", [GaussianPrior(3), MixturePrior(), SwissRollPrior(), CategoricalPrior(4),
                                   MixturePrior(components=3, radius=2.0, radial_std=0.5, tangential_std=0.1)],
                         ids=["gaussian", "mixture", "swiss_roll", "categorical", "mixture3"])
def test_prior_samples_have_the_stated_moments(prior):
    z, _ = prior.sample(N, torch.Generator().manual_seed(0))
    z = z.double()
    mean, cov = prior.mean(), prior.covariance()
    # the standard error of a sample mean is sqrt(var / N): 5 of them is a test that fails 1 in ~10^6
    se = (cov.diagonal() / N).sqrt()
    assert ((z.mean(0) - mean).abs() <= 5 * se + 1e-12).all()
    centred = z - mean
    sample_cov = centred.T @ centred / N
    # the s.e. of a sample covariance entry is at most sqrt(E[x_i^2 x_j^2] / N)
    se_cov = ((centred[:, :, None] ** 2 * centred[:, None, :] ** 2).mean(0) / N).sqrt()
    assert ((sample_cov - cov).abs() <= 5 * se_cov + 1e-12).all()


def test_mixture_moments_by_hand():
    # ten components evenly on a circle: mean 0, covariance (r^2 + s_r^2 + s_t^2) / 2 I
    prior = MixturePrior(components=10, radius=4.0, radial_std=1.0, tangential_std=0.25)
    assert torch.allclose(prior.mean(), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(prior.covariance(), (16 + 1 + 0.0625) / 2 * torch.eye(2, dtype=torch.float64))
    # component k of a sample: the one whose mean it is nearest to (the components barely overlap)
    z, c = prior.sample(2000, torch.Generator().manual_seed(1))
    nearest = torch.cdist(z.double(), prior.means).argmin(1)
    assert (nearest == c).double().mean() > 0.98
    z3, c3 = prior.sample(5, torch.Generator().manual_seed(1), component=torch.tensor([3, 3, 3, 3, 3]))
    assert (c3 == 3).all() and (torch.cdist(z3.double(), prior.means).argmin(1) == 3).all()


def test_swiss_roll_mean_in_closed_form():
    # E[t cos t], E[t sin t] for t ~ U(a, b): [t sin t + cos t] and [sin t - t cos t] over (b - a)
    prior = SwissRollPrior(scale=0.3, noise=0.1)
    a, b = prior.T0, prior.T1
    ex = ((b * math.sin(b) + math.cos(b)) - (a * math.sin(a) + math.cos(a))) / (b - a)
    ey = ((math.sin(b) - b * math.cos(b)) - (math.sin(a) - a * math.cos(a))) / (b - a)
    assert torch.allclose(prior.mean(), 0.3 * torch.tensor([ex, ey], dtype=torch.float64), atol=1e-12)


def test_priors_draw_from_the_given_generator_only():
    for prior in (GaussianPrior(2), MixturePrior(), SwissRollPrior(), CategoricalPrior(3)):
        a, _ = prior.sample(7, torch.Generator().manual_seed(5))
        torch.manual_seed(123)
        b, _ = prior.sample(7, torch.Generator().manual_seed(5))
        assert torch.equal(a, b)


def test_two_d_priors_refuse_other_sizes():
    with pytest.raises(UserError, match="mixture is a 2-D prior; it needs model.latent_dim=2, got 8"):
        build_prior("mixture", 8)
    with pytest.raises(UserError, match="swiss_roll is a 2-D prior"):
        build_prior("swiss_roll", 3)
    with pytest.raises(UserError, match="model.prior.name must be one of gaussian, mixture, swiss_roll"):
        build_prior("uniform", 2)


def test_fitted_gaussian_reproduces_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(500, 4, generator=g, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.5, 0, 0], [0, 1.0, 0.3, 0], [0, 0, 0.2, 0], [0, 0, 0, 2.0]], dtype=torch.float64) + 3
    fit = FittedGaussian.fit(codes)
    assert torch.allclose(fit.mean(), codes.mean(0))
    assert torch.allclose(fit.covariance(), torch.cov(codes.T))
    z, _ = fit.sample(N, torch.Generator().manual_seed(1))
    cov = fit.covariance()
    assert ((z.double().mean(0) - fit.mean()).abs() <= 5 * (cov.diagonal() / N).sqrt()).all()
    # for Gaussian samples the s.e. of a covariance entry is sqrt((S_ii S_jj + S_ij^2) / N)
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None] + cov**2) / N).sqrt()
    assert ((torch.cov(z.double().T) - cov).abs() <= 5 * se_cov).all()
    # fewer codes than dimensions: a singular covariance still samples (within the codes' span)
    few = FittedGaussian.fit(codes[:3])
    assert torch.isfinite(few.sample(10)[0]).all()


# ------------------------------------------------------------------ losses


def test_reconstruction_error_by_hand():
    out = torch.tensor([[[[0.5, -0.5]]], [[[1.0, 1.0]]]])
    target = torch.tensor([[[[0.0, 0.0]]], [[[1.0, -1.0]]]])
    assert torch.allclose(reconstruction_error(out, target, "mse"), torch.tensor([0.25, 2.0]))
    assert torch.allclose(reconstruction_error(out, target, "mse", "sum"), torch.tensor([0.5, 4.0]))
    # bce on intensities (x + 1) / 2: p = 0.75 and 0.25 against 0.5, both -0.5 log(0.75 * 0.25)
    first = -0.5 * (math.log(0.75) + math.log(0.25)) * 2 / 2
    assert reconstruction_error(out, target, "bce")[0].item() == pytest.approx(first, rel=1e-6)


def test_laplacian_pyramid_sums_back_to_the_image():
    from gan_lab.losses.autoencoding import _upsample

    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = laplacian_pyramid(x, 3)
    assert [tuple(level.shape[-2:]) for level in levels] == [(28, 28), (14, 14), (7, 7)]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + _upsample(rebuilt, band.shape[-2:])
    assert torch.allclose(rebuilt, x, atol=1e-12)
    assert pyramid_levels(28) == 3 and pyramid_levels(64) == 4 and pyramid_levels(8) == 1


def test_laplacian_l1_by_hand():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    # a constant shift c lives in the low-pass level alone: 4^2 * |c| * 49 px / 784 px = |c|
    c = torch.tensor([0.3, -0.2, 0.0]).view(3, 1, 1, 1)
    assert torch.allclose(laplacian_l1(x + c, x), c.abs().flatten(), atol=1e-6)
    # one level: the plain mean absolute error
    y = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(laplacian_l1(x, y, levels=1), (x - y).abs().flatten(1).mean(1))
    # a zero-mean checkerboard has no low-pass part: only the finest band sees it
    board = (torch.arange(28)[:, None] + torch.arange(28)[None]) % 2 * 2.0 - 1
    fine = laplacian_pyramid(board.view(1, 1, 28, 28), 3)
    assert fine[-1].abs().max() < 0.05 and fine[0].abs().mean() > 0.9


def test_gradient_origin_latent_equals_the_gradient_by_hand():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    # F(z) = W z + b, L_i = |F(z_i) - x_i|^2: the gradient at 0 is 2 W^T (b - x_i)
    z = gradient_origin_latent(lambda z0: ((z0 @ w.T + b - x) ** 2).sum(1), 4, 3, x)
    assert torch.allclose(z, -2 * (b - x) @ w)
    # each row is its own sample's: the latent of x_0 alone is the same
    alone = gradient_origin_latent(lambda z0: ((z0 @ w.T + b - x[:1]) ** 2).sum(1), 1, 3, x)
    assert torch.allclose(alone, z[:1])


def test_gaussian_kl_by_hand():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # 0.5 * sum(var + mu^2 - 1 - log var) = 0.5 * ((1 + 1 - 1 - 0) + (4 + 0 - 1 - log 4))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(0.5 * (1 + 3 - math.log(4.0)), rel=1e-6)


# ------------------------------------------------------------------ models: each phase by hand


def tiny_net():
    return {"arch": "dcgan", "dcgan": {"width": 4}}


def batch_of(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.arange(n) % 10, index=torch.arange(n))


def test_aae_phase_losses_by_hand():
    from gan_lab.families import AdversarialAutoencoder

    m = AdversarialAutoencoder("aae", MNIST, latent_dim=2, prior={"name": "mixture"}, net=tiny_net())
    batch = batch_of()
    enc, dec, d = m.nets["encoder"], m.nets["decoder"], m.nets["code_d"]
    loss, _ = m.reconstruction_loss(batch)
    assert loss.item() == pytest.approx(((dec(enc(batch.x)) - batch.x) ** 2).mean().item(), rel=1e-5)
    torch.manual_seed(3)
    d_loss, _ = m.discriminator_loss(batch)
    torch.manual_seed(3)
    prior_z, _ = m.prior.sample(len(batch))
    codes = enc(batch.x)
    expected = F.softplus(-d(prior_z)).mean() + F.softplus(d(codes)).mean()  # -log D(prior) - log(1 - D(code))
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    gen, _ = m.regularization_loss(batch)
    assert gen.item() == pytest.approx(F.softplus(-d(enc(batch.x))).mean().item(), rel=1e-5)


def test_semi_supervised_aae_phases_by_hand():
    from gan_lab.families import AdversarialAutoencoder

    m = AdversarialAutoencoder("aae_semi", MNIST, form="semi_supervised", latent_dim=3, net=tiny_net(),
                               supervised={"batch_size": 4})
    batch = batch_of()
    out = m.nets["encoder"](batch.x)
    logits, z = out[:, :10], out[:, 10:]
    assert out.shape == (6, 13)
    # the decoder reads (softmax y, z)
    h = m.decoder_input(batch.x)
    assert torch.allclose(h[:, :10], logits.softmax(1), atol=1e-6) and torch.allclose(h[:, 10:], z)
    torch.manual_seed(4)
    d_loss, logs = m.discriminator_loss(batch)
    torch.manual_seed(4)
    prior_z, _ = m.prior.sample(6)
    onehot, _ = m.category_prior.sample(6)
    d, cat = m.nets["code_d"], m.nets["cat_d"]
    expected = (F.softplus(-d(prior_z)).mean() + F.softplus(d(z)).mean()
                + F.softplus(-cat(onehot)).mean() + F.softplus(cat(logits.softmax(1))).mean())
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    m.labelled_pool = (batch.x, batch.y)
    torch.manual_seed(5)
    sup, _ = m.supervised_loss(batch)
    torch.manual_seed(5)
    pick = torch.randperm(6)[:4]
    picked_logits = m.nets["encoder"](batch.x[pick])[:, :10]  # batch norm: the encoder sees the picked 4 alone
    assert sup.item() == pytest.approx(F.cross_entropy(picked_logits, batch.y[pick]).item(), rel=1e-5)


def test_supervised_aae_decodes_style_with_the_label():
    from gan_lab.families import AdversarialAutoencoder

    m = AdversarialAutoencoder("aae_supervised", MNIST, form="supervised", latent_dim=4, net=tiny_net())
    batch = batch_of()
    h = m.decoder_input(batch.x, batch.y)
    assert h.shape == (6, 14) and torch.equal(h[:, 4:], F.one_hot(batch.y, 10).float())
    codes, predicted = m.encode(batch)
    assert codes.shape == (6, 4) and predicted is None
    with pytest.raises(UserError, match="decodes a style code with its label"):
        m.decoder_input(batch.x)


def test_glo_codes_stay_on_the_sphere_and_the_fit_loss_is_lap1():
    from gan_lab.families import GLO

    m = GLO("glo", MNIST, num_codes=20, latent_dim=5, init="random", net=tiny_net())
    table = m.nets["codes"]
    assert torch.allclose(table.weight.norm(dim=1), torch.ones(20))
    batch = batch_of()
    loss, _ = m.fit_loss(batch)
    g = m.nets["generator"]
    assert loss.item() == pytest.approx(laplacian_l1(g(table.weight[:6]), batch.x).mean().item(), rel=1e-5)
    with torch.no_grad():
        table.weight.mul_(3.0).add_(0.1)
    m.project_codes()
    assert torch.allclose(table.weight.norm(dim=1), torch.ones(20), atol=1e-6)
    # the sampling Gaussian is fitted to exactly these codes
    fit = m.sampling_prior()
    assert torch.allclose(fit.mean(), table.weight.double().mean(0), atol=1e-12)
    assert torch.allclose(fit.covariance(), torch.cov(table.weight.double().T), atol=1e-12)
    # held-out images get codes on the sphere too, each found alone
    codes = m.infer_codes(batch.x[:3])
    alone = m.infer_codes(batch.x[1:2])
    assert torch.allclose(codes.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(codes[1:2], alone, atol=1e-5)


def test_pca_codes_follow_the_principal_axes():
    from gan_lab.families.latent import pca_codes

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g, dtype=torch.float64) * torch.tensor([5.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    codes = pca_codes(x, 2).double()
    assert torch.allclose(codes.norm(dim=1), torch.ones(300, dtype=torch.float64), atol=1e-6)
    # the first two principal axes are the first two coordinates here (up to sign)
    projected = x[:, :2] / x[:, :2].norm(dim=1, keepdim=True)
    cos = (codes * projected).sum(1).abs()
    assert cos.median() > 0.99


def test_gon_latent_is_the_autograd_gradient_at_the_origin():
    from gan_lab.families import GON

    for variational in (False, True):
        m = GON("gon", MNIST, latent_dim=6, variational=variational, net=tiny_net())
        batch = batch_of(4)
        net = m.nets["generator"].eval()
        z = m.decoder_input(batch.x)
        for i in range(4):  # row i: the gradient of image i's own loss at z0 = 0
            z0 = torch.zeros(1, 6, requires_grad=True)
            out, mu, logvar = net(z0)  # eval: the variational form decodes mu
            loss = reconstruction_error(out, batch.x[i:i + 1], "bce", "sum")
            if variational:
                loss = loss + gaussian_kl(mu, logvar)
            (grad,) = torch.autograd.grad(loss.sum(), z0)
            assert torch.allclose(z[i], -grad[0], rtol=1e-4, atol=1e-6)
    # training differentiates through the latent: F's weights get a second-order gradient
    m = GON("gon", MNIST, latent_dim=6, net=tiny_net())
    loss, _ = m.fit_loss(batch_of(4))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.nets["generator"].parameters())


def test_gon_refuses_batch_norm():
    from gan_lab.families import GON

    with pytest.raises(UserError, match="must not use batch norm"):
        GON("gon", MNIST, net={"arch": "dcgan", "dcgan": {"width": 4, "batch_norm": True}})


# ------------------------------------------------------------------ clusters


def test_cluster_to_label_mapping_on_a_constructed_case():
    # 4 clusters, 3 labels: cluster 0 mostly label 2, cluster 1 a tie between 0 and 1 (the lower
    # wins), cluster 2 all label 1, cluster 3 empty (maps to -1: its samples always count wrong)
    clusters = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    labels = torch.tensor([2, 2, 0, 0, 1, 1, 1, 1])
    counts = cluster_counts(clusters, labels, 4, 3)
    assert counts.tolist() == [[1, 0, 2], [1, 1, 0], [0, 3, 0], [0, 0, 0]]
    mapping = majority_mapping(counts)
    assert mapping.tolist() == [2, 0, 1, -1]
    # scored on these samples: hits are 2 (cluster 0) + 1 (cluster 1) + 3 (cluster 2) of 8
    assert mapped_accuracy(counts, mapping) == pytest.approx(6 / 8)
    # scored on other samples with the same map; a test sample in the empty cluster is wrong
    test = cluster_counts(torch.tensor([0, 1, 3, 2]), torch.tensor([2, 1, 0, 1]), 4, 3)
    assert mapped_accuracy(test, mapping) == pytest.approx(2 / 4)
