"""StyleGAN2's parts against direct computations: modulation/demodulation, equalised learning rate,
FIR resampling, minibatch stddev, the path-length and R1 penalties against autograd, the lazy
correction, the EMA half-life, style mixing, truncation, slerp; and the augmentations (DiffAugment
and ADA): differentiable, the same draws for every tensor of a call, ADA's p moving the right way.

Exactness tests run in float64, so a tolerance of 1e-10 relative to the values' scale covers the
round-off of the two orders of summation compared."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_lab.augment.ada import AdaptiveAugment
from gan_lab.augment.diffaugment import DiffAugment, cutout, translate
from gan_lab.errors import UserError
from gan_lab.losses.stylegan import ema_beta, lazy_regularization, path_length_penalty, path_lengths
from gan_lab.networks.stylegan import (
    Discriminator,
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    MinibatchStdLayer,
    SynthesisNetwork,
    binomial_filter,
    broadcast_ws,
    channels_at,
    check_resolution,
    downsample2d,
    filter2d,
    mix_styles,
    mixing_cutoff,
    modulated_conv2d,
    slerp,
    truncate,
    upsample2d,
)

TOL = 1e-10


def close(a, b, tol=TOL):
    a, b = a.detach(), b.detach()
    scale = max(float(b.abs().max()), 1.0)
    return float((a - b).abs().max()) <= tol * scale


# ------------------------------------------------------------------ modulation / demodulation


def per_sample_weights(weight, styles, demodulate=True):
    """w'[b,o,i,k] = s[b,i] w[o,i,k], divided by its norm over (i, k) (+1e-8): the paper's eq. 1-3."""
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        w = w / (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).sqrt()
    return w


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_the_per_sample_convolution(demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 8, 8, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 5, generator=g, dtype=torch.float64) + 1.0
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate)
    w = per_sample_weights(weight, styles, demodulate)
    direct = torch.stack([F.conv2d(x[b:b + 1], w[b], padding=1)[0] for b in range(3)])
    assert close(out, direct)


def test_demodulated_weights_have_unit_norm_per_output_channel():
    # read the effective per-sample weights back from the layer with impulses: a unit input at
    # channel i, pixel (2, 2) gives w'[b, o, i, :, :] (flipped) around that pixel
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.rand(2, 3, generator=g, dtype=torch.float64) * 3 + 0.1
    recovered = torch.zeros(2, 4, 3, 3, 3, dtype=torch.float64)
    for i in range(3):
        x = torch.zeros(2, 3, 5, 5, dtype=torch.float64)
        x[:, i, 2, 2] = 1.0
        out = modulated_conv2d(x, weight, styles)
        recovered[:, :, i] = out[:, :, 1:4, 1:4].flip(-1, -2)
    norms = recovered.square().sum(dim=(2, 3, 4))
    exact = 1.0 / (1.0 + 1e-8 / (per_sample_weights(weight, styles, False).square().sum(dim=(2, 3, 4))))
    assert close(norms, exact) and float((norms - 1).abs().max()) < 1e-6


def test_upsampling_modulated_conv_upsamples_then_convolves():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    weight = torch.randn(2, 3, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(2, 3, generator=g, dtype=torch.float64)
    f = binomial_filter().double()
    out = modulated_conv2d(x, weight, styles, up=True, resample_filter=f)
    w = per_sample_weights(weight, styles)
    direct = torch.stack([F.conv2d(upsample2d(x[b:b + 1], f), w[b], padding=1)[0] for b in range(2)])
    assert out.shape == (2, 2, 8, 8) and close(out, direct)


def test_upsampling_conv_equals_the_originals_transposed_form_inside_the_border():
    # StyleGAN2's code: a stride-2 transposed convolution, then the [1,3,3,1] filter (padding 1, gain 4).
    # Ours (upsample, then a 3x3 correlation) is the same map with the kernel flipped (a
    # re-parametrisation of a N(0, 1) weight) everywhere but the outermost 2 pixels
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 3, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    f = binomial_filter().double()
    original = filter2d(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), f, (1, 1), gain=4.0)
    ours = F.conv2d(upsample2d(x, f), weight.flip(2, 3), padding=1)
    assert original.shape == ours.shape == (2, 4, 12, 12)
    assert close(ours[..., 2:-2, 2:-2], original[..., 2:-2, 2:-2])


# ------------------------------------------------------------------ FIR resampling


def test_upsample_equals_zero_stuffing_then_filtering():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    f = binomial_filter().double()
    stuffed = torch.zeros(2, 3, 10, 10, dtype=torch.float64)
    stuffed[:, :, ::2, ::2] = x
    direct = filter2d(stuffed, f, (2, 1), gain=4.0)
    assert close(upsample2d(x, f), direct)
    # the gain keeps the mean of a constant image away from the borders
    assert close(upsample2d(torch.ones(1, 1, 6, 6, dtype=torch.float64), f)[..., 2:-2, 2:-2],
                 torch.ones(1, 1, 8, 8, dtype=torch.float64))


def test_downsample_equals_filtering_then_subsampling():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
    f = binomial_filter().double()
    assert close(downsample2d(x, f), filter2d(x, f, (1, 1))[:, :, ::2, ::2])
    assert binomial_filter().sum().item() == pytest.approx(1.0)


# ------------------------------------------------------------------ equalised learning rate


def test_equal_linear_scales_weights_at_run_time():
    torch.manual_seed(0)
    layer = EqualLinear(256, 300, lr_multiplier=0.01, bias_init=0.5).double()
    # stored N(0, 1) / lr_multiplier: the std of 76,800 draws is within 2% of 100
    assert float(layer.weight.detach().std()) == pytest.approx(100.0, rel=0.02)
    x = torch.randn(4, 256, dtype=torch.float64)
    expected = x @ (layer.weight * (0.01 / math.sqrt(256))).t() + layer.bias * 0.01
    assert close(layer(x), expected)
    # the gradient on the stored weight is the effective weight's gradient times the gain, so
    # every layer learns at the same relative rate whatever its fan-in
    layer(x).sum().backward()
    effective_grad = torch.ones(4, 300, dtype=torch.float64).t() @ x
    assert close(layer.weight.grad, effective_grad * (0.01 / math.sqrt(256)))


def test_equal_conv_gain_keeps_unit_variance():
    torch.manual_seed(0)
    conv = EqualConv2d(64, 64, 3, activation=False, bias=False)
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))
    x = torch.randn(16, 64, 16, 16)
    y = conv(x)[:, :, 1:-1, 1:-1]  # away from the zero padding
    # an N(0,1) weight times 1/sqrt(fan_in) keeps N(0,1) inputs at unit variance (within 5%: ~200k outputs
    # but only 64*64*9 random weights set the gain of each output channel)
    assert float(y.var()) == pytest.approx(1.0, rel=0.05)
    expected = F.conv2d(x, conv.weight * conv.weight_gain, padding=1)[:, :, 1:-1, 1:-1]
    assert float((y - expected).abs().max()) < 1e-4


# ------------------------------------------------------------------ networks


def test_channel_formula_and_shapes():
    assert [channels_at(r, 32768, 512) for r in (4, 8, 16, 32, 64, 128, 256)] == [512, 512, 512, 512, 512, 256, 128]
    assert [channels_at(r, 1024, 128) for r in (4, 8, 16, 32)] == [128, 128, 64, 32]
    synthesis = SynthesisNetwork(16, 32, 3, channel_base=256, channel_max=32)
    assert synthesis.num_ws == 2 * 5 - 2 and synthesis.layer_resolutions() == [4, 4, 8, 8, 16, 16, 32, 32]
    mapping = MappingNetwork(8, 16, num_layers=2)
    ws = broadcast_ws(mapping(torch.randn(5, 8)), synthesis.num_ws)
    for mode in ("random", "const", "none"):
        assert synthesis(ws, noise_mode=mode).shape == (5, 3, 32, 32)
    d = Discriminator(32, 3, channel_base=256, channel_max=32)
    assert d(torch.randn(5, 3, 32, 32)).shape == (5,)


def test_noise_modes():
    torch.manual_seed(0)
    synthesis = SynthesisNetwork(8, 16, 1, channel_base=64, channel_max=8)
    for p in synthesis.parameters():
        if p.dim() == 0:  # noise strengths start at 0; make the noise visible
            p.data.fill_(0.5)
    ws = torch.randn(2, synthesis.num_ws, 8)
    fixed = [synthesis(ws, "const") for _ in range(2)]
    assert torch.equal(fixed[0], fixed[1])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(synthesis(ws, "random", g1), synthesis(ws, "random", g2))
    assert not torch.equal(synthesis(ws, "random"), synthesis(ws, "random"))
    assert not torch.equal(synthesis(ws, "none"), fixed[0])


def test_minibatch_stddev_against_a_direct_computation():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(8, 6, 4, 4, generator=g, dtype=torch.float64)
    out = MinibatchStdLayer(group_size=4, num_channels=2)(x)
    assert out.shape == (8, 8, 4, 4) and torch.equal(out[:, :6], x)
    for j in range(8):
        group = x[[k for k in range(8) if k % 2 == j % 2]]  # strided groups: j, j+2, j+4, j+6
        for f in range(2):
            std = group[:, 3 * f:3 * f + 3].std(dim=0, unbiased=False)
            expected = (std.square() + 1e-8).sqrt().mean()
            assert float((out[j, 6 + f] - expected).abs().max()) < 1e-12
    # a batch the group size does not divide takes its largest divisor (6 -> groups of 3)
    six = MinibatchStdLayer(4)(x[:6])
    group = x[[0, 2, 4]]
    assert float((six[0, 6] - ((group.var(0, unbiased=False) + 1e-8).sqrt().mean())).abs().max()) < 1e-12


def test_check_resolution_is_one_line():
    assert check_resolution((1, 32, 32)) == (1, 32)
    for shape in [(1, 28, 28), (3, 32, 16), (3, 512, 512), (3, 8, 8)]:
        with pytest.raises(UserError) as err:
            check_resolution(shape)
        assert "\n" not in str(err.value) and "data.source.image_size" in str(err.value)


# ------------------------------------------------------------------ operations on W


def test_style_mixing_takes_the_second_w_from_the_crossover():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    ws = mix_styles(broadcast_ws(a, 8), broadcast_ws(b, 8), 5)
    assert torch.equal(ws[:, :5], broadcast_ws(a, 5)) and torch.equal(ws[:, 5:], broadcast_ws(b, 3))
    assert torch.equal(mix_styles(broadcast_ws(a, 8), broadcast_ws(b, 8), 8), broadcast_ws(a, 8))
    g = torch.Generator().manual_seed(0)
    cutoffs = [mixing_cutoff(8, 0.9, g) for _ in range(2000)]
    mixed = [c for c in cutoffs if c < 8]
    assert set(mixed) == set(range(1, 8))
    # 2000 draws: the mixed share is 0.9 within 4 standard errors (sqrt(0.09 / 2000) = 0.0067)
    assert abs(len(mixed) / 2000 - 0.9) < 4 * 0.0067
    assert all(mixing_cutoff(8, 0.0, g) == 8 for _ in range(50))


def test_truncation():
    w, avg = torch.randn(4, 8), torch.randn(8)
    assert torch.equal(truncate(w, avg, 0.0), avg.expand(4, 8))
    assert torch.equal(truncate(w, avg, 1.0), w)
    w, avg = w.double(), avg.double()
    assert close(truncate(w, avg, 0.5), avg + 0.5 * (w - avg))


def test_slerp_keeps_to_the_great_circle():
    a, b = torch.randn(5, 32, dtype=torch.float64), torch.randn(5, 32, dtype=torch.float64)
    assert close(slerp(a, b, 0.0), a) and close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    ua, ub = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    um = mid / mid.norm(dim=1, keepdim=True)
    # equal angles to both ends, and the norm halfway between theirs
    assert close((um * ua).sum(1), (um * ub).sum(1))
    assert close(mid.norm(dim=1), (a.norm(dim=1) + b.norm(dim=1)) / 2)


# ------------------------------------------------------------------ penalties and schedules


def test_path_lengths_against_an_explicit_jacobian():
    # a linear "generator" images = (ws flattened) @ A: J^T y is A y, known without autograd
    g = torch.Generator().manual_seed(7)
    a = torch.randn(3 * 4, 2 * 4 * 4, generator=g, dtype=torch.float64).requires_grad_(True)
    ws = torch.randn(5, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    images = (ws.reshape(5, 12) @ a).reshape(5, 2, 4, 4)
    noise = torch.randn(5, 2, 4, 4, generator=g, dtype=torch.float64)
    lengths = path_lengths(images, ws, noise)
    jty = ((noise / 4.0).reshape(5, 32) @ a.detach().t()).reshape(5, 3, 4)  # y = noise / sqrt(H W)
    expected = jty.square().sum(2).mean(1).sqrt()
    assert close(lengths, expected)
    penalty, mean = path_length_penalty(lengths, torch.tensor(0.7, dtype=torch.float64), 0.01)
    a_ = 0.7 + 0.01 * (float(expected.mean()) - 0.7)
    assert float(mean) == pytest.approx(a_, rel=1e-12)
    assert close(penalty, (expected - a_).square())
    # the penalty trains: its gradient reaches the generator's weights (A here) through the lengths
    (grad,) = torch.autograd.grad(penalty.sum(), a)
    assert float(grad.abs().sum()) > 0
    # batch_mean replaces the mean in the value, not in the graph
    _, shared = path_length_penalty(lengths, torch.tensor(0.7, dtype=torch.float64), 0.01,
                                    torch.tensor(2.0, dtype=torch.float64))
    assert float(shared) == pytest.approx(0.7 + 0.01 * 1.3, rel=1e-12)


def test_lazy_regularization_corrects_lr_and_betas():
    cfg = lazy_regularization({"name": "adam", "lr": 0.0025, "betas": [0.0, 0.99], "eps": 1e-8}, 16)
    c = 16 / 17
    assert cfg["lr"] == pytest.approx(0.0025 * c) and cfg["betas"] == pytest.approx([0.0, 0.99**c])
    assert cfg["eps"] == 1e-8 and lazy_regularization({"lr": 1.0}, 1) == {"lr": 1.0}


def test_ema_half_life():
    # after half_life images the EMA keeps half of the old weights
    beta = ema_beta(32, 1e9, 10.0, None)
    assert beta ** (10_000 / 32) == pytest.approx(0.5, rel=1e-9)
    # ramp-up: the half-life is at most rampup x images seen
    assert ema_beta(32, 3200, 10.0, 0.05) == pytest.approx(0.5 ** (32 / 160), rel=1e-12)
    assert ema_beta(32, 0, 10.0, 0.05) == 0.0


# ------------------------------------------------------------------ augmentation


def test_diffaugment_is_differentiable():
    torch.manual_seed(0)
    aug = DiffAugment()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    params = aug.draw(3, 8, 8, x.device)
    assert torch.autograd.gradcheck(lambda t: aug.apply(t, params), (x,))


def test_ada_is_differentiable():
    torch.manual_seed(0)
    aug = AdaptiveAugment(initial_p=1.0)
    for channels in (1, 3):
        x = torch.randn(2, channels, 8, 8, dtype=torch.float64, requires_grad=True)
        params = {k: v.double() for k, v in aug.draw(2, 8, 8, x.device).items()}
        assert torch.autograd.gradcheck(lambda t: aug.apply(t, params), (x,))


@pytest.mark.parametrize("make", [DiffAugment, lambda: AdaptiveAugment(initial_p=0.8)], ids=["diffaugment", "ada"])
def test_every_tensor_of_a_call_gets_the_same_draws(make):
    aug = make()
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.manual_seed(3)
    a, b = aug(real, real.clone())
    assert torch.equal(a, b) and not torch.equal(a, real)
    # the same policy for reals and fakes: the same stream state gives the same transformation
    torch.manual_seed(3)
    again = aug(real)
    assert torch.equal(again, a)
    # and different draws per image and per call
    assert not torch.equal(aug(real), a)


def test_translation_and_cutout_by_hand():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    moved = translate(x, torch.tensor([[1, -1]]))
    expected = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0]], dtype=torch.float32)
    assert torch.equal(moved[0, 0], expected)
    cut = cutout(torch.ones(1, 1, 4, 4), torch.tensor([[0, 3]]), 0.5)
    assert cut[0, 0].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]


def test_ada_at_p_zero_is_the_identity_and_at_p_one_changes_images():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.equal(AdaptiveAugment(initial_p=0.0)(x), x)
    torch.manual_seed(0)
    y = AdaptiveAugment(initial_p=1.0)(x)
    assert y.shape == x.shape and float((y - x).abs().mean()) > 0.05


def test_ada_p_moves_with_the_sign_of_d_on_reals():
    ada = AdaptiveAugment(target=0.6, interval=4, speed_kimg=1.0, initial_p=0.5)
    step = 4 * 8 / 1000  # images in one interval / (speed_kimg * 1000)
    for _ in range(3):
        ada.observe(torch.full((8,), 2.0))  # D sure the reals are real: overfitting, r_t = 1 > 0.6
    assert float(ada.p) == 0.5  # adjusted only every 4th observation
    ada.observe(torch.full((8,), 2.0))
    assert float(ada.p) == pytest.approx(0.5 + step) and float(ada.last_rt) == 1.0
    for _ in range(4):  # r_t = (5 positive - 3 negative) / 8 = 0.25 < 0.6: p goes down
        ada.observe(torch.tensor([1.0] * 5 + [-1.0] * 3))
    assert float(ada.p) == pytest.approx(0.5) and float(ada.last_rt) == pytest.approx(0.25)
    low = AdaptiveAugment(target=0.6, interval=1, speed_kimg=1.0)
    low.observe(-torch.ones(8))
    assert float(low.p) == 0.0  # clamped at 0
    fixed = AdaptiveAugment(target=None, initial_p=0.3)
    fixed.observe(torch.ones(8))
    assert float(fixed.p) == pytest.approx(0.3)
