"""Tests of the image-to-image translation parts: U-Net, PatchGAN, ResNet generator, the Pix2Pix
and CycleGAN losses, the history buffer, the jitter, the translation data sets (embedded and
real folder layouts) and the translation metrics."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_lab.data import GANDataModule
from gan_lab.data.sources import translation as T
from gan_lab.data.sources.embedded import MNIST5k, mnist_5k_images, stratified_split
from gan_lab.errors import UserError
from gan_lab.losses.translation import (
    ImagePool,
    apply_jitter,
    cycle_loss,
    cyclegan_g_loss,
    identity_loss,
    jitter,
    jitter_params,
    l1_loss,
    paired_jitter,
    pix2pix_g_loss,
    pix2pix_l1_only_loss,
    translation_adversarial,
    translation_d_loss,
)
from gan_lab.metrics import translation as M
from gan_lab.networks.translation import (
    PatchDiscriminator,
    ResNetTranslator,
    UNetGenerator,
    patch_layers_for_size,
    patch_output_size,
    patch_receptive_field,
    resnet_blocks_for_size,
    unet_depth,
    unet_padded_size,
)


def one_line_user_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# ================================================================================================
# U-Net
# ================================================================================================
@pytest.mark.parametrize("size, depth, padded", [(28, 5, 32), (32, 5, 32), (27, 5, 32), (64, 6, 64), (256, 8, 256)])
def test_unet_depth_rule(size: int, depth: int, padded: int) -> None:
    assert unet_depth(size) == depth
    assert unet_padded_size(size) == (padded, padded)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_unet_shapes(size: int, norm: str) -> None:
    torch.manual_seed(0)
    g = UNetGenerator(1, 3, size, width=4, norm=norm)
    y = g(torch.randn(2, 1, size, size))
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0


def test_unet_bottleneck_is_1x1_at_256_px() -> None:
    torch.manual_seed(0)
    g = UNetGenerator(3, 3, 256, width=1)
    assert g.depth == 8 and len(g.down) == 8
    seen = {}
    g.down[-1].register_forward_hook(lambda m, i, o: seen.update(bottleneck=o.shape))
    assert g(torch.randn(2, 3, 256, 256)).shape == (2, 3, 256, 256)
    assert seen["bottleneck"] == (2, 8, 1, 1)  # width * 8 channels at 1x1


@pytest.mark.parametrize("size, pads", [(28, (2, 2, 2, 2)), (27, (2, 3, 2, 3))])
def test_unet_pads_with_replicate_and_crops_back(size: int, pads: tuple[int, int, int, int]) -> None:
    """The documented rule: pad each side up to 32 (replicate, split evenly, the odd pixel
    right/bottom), run the 32 px network, crop the input's window back out."""
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, size, width=4).eval()
    x = torch.randn(2, 1, size, size, dtype=torch.float64)
    g = g.double()
    left, right, top, bottom = pads
    padded = F.pad(x, pads, mode="replicate")
    assert padded.shape[-1] == 32
    expected = g(padded)[..., top : top + size, left : left + size]
    torch.testing.assert_close(g(x), expected, rtol=0, atol=0)


def test_unet_skip_connections_carry_the_input_past_the_bottleneck() -> None:
    """With the bottleneck's input weights zeroed, an encoder-decoder would give one output for
    every input; the U-Net's outputs still depend on the input through its skips."""
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, width=4, dropout=False).eval()
    with torch.no_grad():
        g.down[-1][-1].weight.zero_()
        if g.down[-1][-1].bias is not None:
            g.down[-1][-1].bias.zero_()
    a, b = g(torch.randn(1, 1, 32, 32)), g(torch.randn(1, 1, 32, 32))
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("size, levels", [(256, (4, 5, 6)), (32, (1, 2, 3)), (28, (1, 2, 3)), (8, (1,))])
def test_unet_decoder_dropout_levels(size: int, levels: tuple[int, ...]) -> None:
    g = UNetGenerator(1, 1, size, width=1)
    assert g.dropout_levels == levels
    dropouts = [m for m in g.modules() if type(m).__name__ == "_Dropout"]
    assert len(dropouts) == len(levels) and all(m.p == 0.5 for m in dropouts)
    assert UNetGenerator(1, 1, size, width=1, dropout=False).dropout_levels == ()


def test_unet_dropout_is_the_noise_source() -> None:
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, width=4, norm="instance")
    x = torch.randn(2, 1, 32, 32)
    g.train()
    assert not torch.equal(g(x), g(x))  # fresh masks each call
    g.eval()
    assert torch.equal(g(x), g(x))
    assert not torch.equal(g(x, dropout=True), g(x, dropout=True))  # the paper's test-time dropout
    first = g(x, generator=torch.Generator().manual_seed(5), dropout=True)
    again = g(x, generator=torch.Generator().manual_seed(5), dropout=True)
    other = g(x, generator=torch.Generator().manual_seed(6), dropout=True)
    assert torch.equal(first, again) and not torch.equal(first, other)
    g.train()
    assert torch.equal(g(x, dropout=False), g(x, dropout=False))


def test_network_parameter_counts_match_the_original_code() -> None:
    """The original code prints 54.414 M (unet_256), 41.829 M (unet_128), 11.378 M
    (resnet_9blocks), 7.838 M (resnet_6blocks) for 3 -> 3 channels, and 2.769 M / 2.765 M for
    the basic PatchGAN on 6 (pix2pix pair) / 3 (CycleGAN) channels, all with their default norm."""

    def millions(net: torch.nn.Module) -> float:
        return round(sum(p.numel() for p in net.parameters()) / 1e6, 3)

    assert millions(UNetGenerator(3, 3, 256)) == 54.414
    assert millions(UNetGenerator(3, 3, 128)) == 41.829
    assert millions(ResNetTranslator(3, 3, 256)) == 11.378
    assert millions(ResNetTranslator(3, 3, 128)) == 7.838
    assert millions(PatchDiscriminator(3, 3)) == 2.769
    assert millions(PatchDiscriminator(3, 0, norm="instance")) == 2.765


def test_unet_bad_settings_are_user_errors() -> None:
    for kwargs in ({"norm": "layer"}, {"depth": 6}, {"depth": 0}, {"width": 0}, {"dropout": "yes"}):
        with pytest.raises(UserError) as excinfo:
            UNetGenerator(1, 1, 32, **kwargs)
        one_line_user_error(excinfo)
    with pytest.raises(UserError) as excinfo:
        UNetGenerator(1, 1, 1)
    one_line_user_error(excinfo)


# ================================================================================================
# PatchGAN
# ================================================================================================
def test_patch_receptive_field_documented_values() -> None:
    assert [patch_receptive_field(n) for n in range(1, 6)] == [16, 34, 70, 142, 286]
    for n in range(1, 6):
        assert PatchDiscriminator(1, 1, width=2, n_layers=n).receptive_field == patch_receptive_field(n)
    assert PatchDiscriminator(3, 3).receptive_field == 70  # the default is the paper's 70x70 PatchGAN


@pytest.mark.parametrize("n_layers, size", [(1, 48), (2, 64), (3, 128)])
def test_patch_receptive_field_matches_gradient_support(n_layers: int, size: int) -> None:
    """Backpropagate one central logit to the input: the pixels with a non-zero gradient form
    a square exactly as wide as the computed receptive field."""
    torch.manual_seed(0)
    d = PatchDiscriminator(1, 0, width=2, n_layers=n_layers, norm="none").double()
    x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    support = torch.nonzero(x.grad[0, 0] != 0)
    rows, cols = support[:, 0], support[:, 1]
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < size - 1 and cols.max() < size - 1  # not clipped
    field = patch_receptive_field(n_layers)
    assert int(rows.max() - rows.min() + 1) == field
    assert int(cols.max() - cols.min() + 1) == field
    assert len(support) == field * field


@pytest.mark.parametrize("size, n_layers", [(28, 1), (28, 3), (32, 2), (64, 3)])
def test_patch_discriminator_shapes(size: int, n_layers: int) -> None:
    torch.manual_seed(0)
    out_side = patch_output_size(size, n_layers)
    cond = PatchDiscriminator(3, 1, width=4, n_layers=n_layers, image_size=size)
    out = cond(torch.randn(2, 3, size, size), torch.randn(2, 1, size, size))
    assert out.shape == (2, 1, out_side, out_side)
    plain = PatchDiscriminator(3, 0, width=4, n_layers=n_layers, norm="instance", image_size=size)
    assert plain(torch.randn(2, 3, size, size)).shape == (2, 1, out_side, out_side)
    with pytest.raises(ValueError):
        cond(torch.randn(2, 3, size, size))
    with pytest.raises(ValueError):
        plain(torch.randn(2, 3, size, size), torch.randn(2, 1, size, size))


def test_patch_discriminator_judges_the_pair_condition_first() -> None:
    """The pair is cat([condition, image]): the first conv's first input channels see the
    condition."""
    torch.manual_seed(0)
    d = PatchDiscriminator(2, 1, width=2, n_layers=1, norm="none")
    with torch.no_grad():
        d.model[0].weight[:, 1:].zero_()  # only the condition channel is seen
    x1, x2, c = torch.randn(1, 2, 32, 32), torch.randn(1, 2, 32, 32), torch.randn(1, 1, 32, 32)
    torch.testing.assert_close(d(x1, c), d(x2, c))


def test_patch_layers_for_size_follows_the_paper_ratio() -> None:
    assert [patch_layers_for_size(s) for s in (28, 32, 64, 128, 256)] == [1, 1, 1, 2, 3]


def test_patch_discriminator_bad_settings_are_user_errors() -> None:
    for kwargs in ({"n_layers": 4, "image_size": 28}, {"n_layers": 0}, {"norm": "layer"}, {"width": 0}):
        with pytest.raises(UserError) as excinfo:
            PatchDiscriminator(1, 1, **kwargs)
        one_line_user_error(excinfo)
    assert "n_layers <= 3" in str(pytest.raises(UserError, PatchDiscriminator, 1, 1, n_layers=4, image_size=28).value)


def test_spectral_patch_discriminator() -> None:
    d = PatchDiscriminator(1, 1, width=2, n_layers=2, norm="spectral")
    assert d(torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)).shape == (2, 1, 6, 6)
    assert d.receptive_field == 34


# ================================================================================================
# ResNet generator
# ================================================================================================
@pytest.mark.parametrize("size", [28, 32, 64])
def test_resnet_translator_shapes(size: int) -> None:
    torch.manual_seed(0)
    g = ResNetTranslator(1, 3, size, width=4)
    assert g.n_blocks == 6
    y = g(torch.randn(2, 1, size, size))
    assert y.shape == (2, 3, size, size) and y.abs().max() <= 1.0


def test_resnet_translator_structure() -> None:
    assert [resnet_blocks_for_size(s) for s in (28, 32, 128, 256, 512)] == [6, 6, 6, 9, 9]
    g = ResNetTranslator(3, 3, 256, width=1)
    assert g.n_blocks == 9
    kinds = {type(m).__name__ for m in g.modules()}
    assert {"ReflectionPad2d", "InstanceNorm2d", "ConvTranspose2d", "ResidualBlock"} <= kinds
    assert "BatchNorm2d" not in kinds and "Dropout" not in kinds
    norms = [m for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert all(not m.affine and not m.track_running_stats for m in norms)
    strided = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 2
    assert ResNetTranslator(1, 1, 32, width=2, n_blocks=2).n_blocks == 2


def test_resnet_residual_block_adds_its_branch() -> None:
    """A residual block adds its branch to its input: a zeroed branch is the identity."""
    block = ResNetTranslator(1, 1, 32, width=2, n_blocks=1).model[10]
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
    x = torch.randn(2, 8, 8, 8)
    torch.testing.assert_close(block(x), x)


def test_resnet_translator_bad_sizes_are_user_errors() -> None:
    for size in (30, 4, 0):
        with pytest.raises(UserError) as excinfo:
            ResNetTranslator(1, 1, size)
        one_line_user_error(excinfo)
    with pytest.raises(UserError):
        ResNetTranslator(1, 1, 32, norm="group")


# ================================================================================================
# losses
# ================================================================================================
def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


REAL = torch.tensor([0.0, 2.0, -1.0, 0.5]).view(1, 1, 2, 2)  # a 2x2 logit map
FAKE = torch.tensor([-1.0, 0.0, 1.5, -0.5]).view(1, 1, 2, 2)


def test_pix2pix_adversarial_terms_match_the_original_objective() -> None:
    """non_saturating, original scale: D = 0.5 * (BCE(D(real), 1) + BCE(D(fake), 0)) and
    G = BCE(D(fake), 1), averaged over patches."""
    adv = translation_adversarial("non_saturating")
    r, f = REAL.flatten().tolist(), FAKE.flatten().tolist()
    bce_real = sum(softplus(-v) for v in r) / 4  # -log sigmoid(v)
    bce_fake = sum(softplus(v) for v in f) / 4  # -log(1 - sigmoid(v))
    assert adv.d(REAL, FAKE).item() == pytest.approx(0.5 * (bce_real + bce_fake), rel=1e-6)
    assert adv.g(None, FAKE).item() == pytest.approx(sum(softplus(-v) for v in f) / 4, rel=1e-6)
    bce = F.binary_cross_entropy_with_logits
    by_torch = 0.5 * (bce(REAL, torch.ones_like(REAL)) + bce(FAKE, torch.zeros_like(FAKE)))
    torch.testing.assert_close(adv.d(REAL, FAKE), by_torch)


def test_cyclegan_adversarial_terms_match_the_original_objective() -> None:
    """least_squares, original scale: D = 0.5 * (MSE(D(real), 1) + MSE(D(fake), 0)),
    G = MSE(D(fake), 1)."""
    adv = translation_adversarial("least_squares")
    r, f = REAL.flatten().tolist(), FAKE.flatten().tolist()
    d_hand = 0.5 * (sum((v - 1) ** 2 for v in r) / 4 + sum(v**2 for v in f) / 4)
    g_hand = sum((v - 1) ** 2 for v in f) / 4
    assert adv.d(REAL, FAKE).item() == pytest.approx(d_hand, rel=1e-6)
    assert adv.g(None, FAKE).item() == pytest.approx(g_hand, rel=1e-6)
    lab = translation_adversarial("least_squares", scale="lab")
    assert lab.g(None, FAKE).item() == pytest.approx(0.5 * g_hand, rel=1e-6)


def test_translation_adversarial_other_losses_and_errors() -> None:
    hinge = translation_adversarial("hinge")
    r, f = REAL.flatten().tolist(), FAKE.flatten().tolist()
    hand = 0.5 * (sum(max(0.0, 1 - v) for v in r) / 4 + sum(max(0.0, 1 + v) for v in f) / 4)
    assert hinge.d(REAL, FAKE).item() == pytest.approx(hand, rel=1e-6)
    rel = translation_adversarial("ragan_lsgan")
    assert rel.uses_real
    with pytest.raises(ValueError):
        rel.g(None, FAKE)
    assert torch.isfinite(rel.g(REAL, FAKE))
    for bad in (("nope", "original"), ("least_squares", "paper")):
        with pytest.raises(UserError) as excinfo:
            translation_adversarial(*bad)
        one_line_user_error(excinfo)


def test_pix2pix_generator_and_discriminator_losses() -> None:
    adv = translation_adversarial("non_saturating")
    fake = torch.zeros(2, 1, 4, 4, requires_grad=True)
    target = torch.full((2, 1, 4, 4), 0.5)
    d_fake = torch.zeros(2, 1, 2, 2)  # sigmoid = 1/2: BCE(., 1) = log 2
    total, logs = pix2pix_g_loss(adv, d_fake, fake, target)
    assert logs["g_l1"].item() == pytest.approx(0.5)
    assert logs["g_adv"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert total.item() == pytest.approx(math.log(2) + 100 * 0.5, rel=1e-6)
    total.backward()
    torch.testing.assert_close(fake.grad, torch.full_like(fake, -100 / fake.numel()))  # d(100*mean|f-t|)/df
    cgan_only, _ = pix2pix_g_loss(adv, d_fake, fake, target, lambda_l1=0)
    assert cgan_only.item() == pytest.approx(math.log(2), rel=1e-6)
    l1_only, logs = pix2pix_l1_only_loss(fake, target)
    assert l1_only.item() == pytest.approx(0.5) and set(logs) == {"g_l1"}
    d_loss, logs = translation_d_loss(adv, torch.zeros(2, 1, 2, 2), d_fake)
    assert d_loss.item() == pytest.approx(0.5 * (math.log(2) + math.log(2)), rel=1e-6)
    assert set(logs) == {"d_loss", "d_real", "d_fake"}
    with pytest.raises(UserError) as excinfo:
        pix2pix_g_loss(adv, d_fake, fake, target, lambda_l1=-1)
    one_line_user_error(excinfo)


def test_cycle_and_identity_l1() -> None:
    real = torch.zeros(2, 1, 3, 3)
    rec = torch.full((2, 1, 3, 3), 0.25)
    rec[0] = -0.75
    assert cycle_loss(real, rec).item() == pytest.approx(0.5)
    assert identity_loss(real, rec).item() == pytest.approx(0.5)
    assert l1_loss(rec, real).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        l1_loss(rec, torch.zeros(2, 1, 3, 4))


def test_cyclegan_generator_loss_against_hand_computation() -> None:
    adv = translation_adversarial("least_squares")
    z = torch.zeros(2, 1, 4, 4)
    parts = dict(
        real_a=z, real_b=z,
        rec_a=torch.full_like(z, 0.1), rec_b=torch.full_like(z, -0.2),
        same_a=torch.full_like(z, 0.3), same_b=torch.full_like(z, -0.4),
        d_b_fake=torch.zeros(2, 1, 2, 2),  # MSE(0, 1) = 1
        d_a_fake=torch.full((2, 1, 2, 2), 0.5),  # MSE(0.5, 1) = 0.25
    )
    total, logs = cyclegan_g_loss(adv, **parts)
    # 1 + 0.25 + 10 * (0.1 + 0.2) + 0.5 * 10 * (0.3 + 0.4)
    assert total.item() == pytest.approx(1.25 + 3.0 + 3.5, rel=1e-6)
    assert {k: round(v.item(), 6) for k, v in logs.items()} == {
        "g_adv_ab": 1.0, "g_adv_ba": 0.25, "cycle_a": 0.1, "cycle_b": 0.2, "idt_a": 0.3, "idt_b": 0.4}
    no_identity, logs = cyclegan_g_loss(adv, **parts, lambda_identity=0)
    assert no_identity.item() == pytest.approx(4.25, rel=1e-6) and "idt_a" not in logs
    adversarial_only, _ = cyclegan_g_loss(adv, **{**parts, "same_a": None, "same_b": None}, lambda_cycle=0)
    assert adversarial_only.item() == pytest.approx(1.25, rel=1e-6)
    with pytest.raises(ValueError):
        cyclegan_g_loss(adv, **{**parts, "same_a": None})
    with pytest.raises(UserError) as excinfo:
        cyclegan_g_loss(adv, **parts, lambda_cycle=float("nan"))
    one_line_user_error(excinfo)


# ================================================================================================
# history buffer
# ================================================================================================
def numbered(start: int, count: int) -> torch.Tensor:
    """``count`` 1x2x2 images whose every pixel is their number, from ``start``."""
    return torch.arange(start, start + count, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_image_pool_fills_first() -> None:
    pool = ImagePool(50, seed=0)
    for start in (0, 16, 32):
        assert ids(pool.query(numbered(start, 16))) == list(range(start, start + 16))
    assert len(pool) == 48 and ids(pool.images[:48]) == list(range(48))
    out = ids(pool.query(numbered(48, 16)))
    assert out[:2] == [48, 49]  # the last two free slots fill, then swapping starts
    assert len(pool) == 50
    assert any(i < 48 for i in out[2:])  # 14 coin flips: some stored image came back
    # every image ends up stored or returned; 48 and 49 were both stored and returned
    assert sorted(ids(pool.images) + out) == sorted(list(range(64)) + [48, 49])


def test_image_pool_swaps_half_the_time_and_keeps_the_new_image() -> None:
    pool = ImagePool(50, seed=1)
    pool.query(numbered(0, 50))
    swaps, n = 0, 2000
    for k in range(n // 20):
        before = ids(pool.images)
        new = numbered(1000 + 20 * k, 20)
        out = ids(pool.query(new))
        after = ids(pool.images)
        stored = list(before)
        for new_id, got in zip(ids(new), out):
            if got == new_id:
                continue
            swaps += 1
            assert got in stored  # a stored image came back ...
            slot = stored.index(got)
            stored[slot] = new_id  # ... and the new one took its slot
        assert after == stored
    # 2000 fair coin flips: standard deviation 0.011; 5 sigma
    assert abs(swaps / n - 0.5) < 5 * math.sqrt(0.25 / n)


def test_image_pool_resumes_exactly_through_state_dict() -> None:
    torch.manual_seed(0)
    batches = [torch.randn(8, 3, 4, 4) for _ in range(20)]
    pool = ImagePool(50, generator=torch.Generator().manual_seed(3))
    for b in batches[:10]:
        pool.query(b)
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)  # what a checkpoint does
    expected = [pool.query(b) for b in batches[10:]]

    buffer.seek(0)
    resumed = ImagePool(50, seed=999)
    resumed.load_state_dict(torch.load(buffer))
    got = [resumed.query(b) for b in batches[10:]]
    for e, g in zip(expected, got):
        assert torch.equal(e, g)
    assert torch.equal(resumed.images, pool.images)

    fresh = ImagePool(50, seed=0)
    fresh.load_state_dict(ImagePool(50, seed=0).state_dict())  # an empty pool round-trips too
    assert len(fresh) == 0 and fresh.images is None


def test_image_pool_edge_cases() -> None:
    x = torch.randn(4, 1, 2, 2, requires_grad=True)
    out = ImagePool(0).query(x)
    assert torch.equal(out, x) and not out.requires_grad
    pool = ImagePool(3, seed=0)
    out = pool.query(x)
    assert not out.requires_grad and torch.equal(out[:3], x[:3].detach())
    with pytest.raises(UserError) as excinfo:
        ImagePool(-1)
    one_line_user_error(excinfo)
    with pytest.raises(UserError):
        ImagePool(5).load_state_dict(pool.state_dict())


# ================================================================================================
# jitter
# ================================================================================================
def test_paired_jitter_applies_the_same_crop_and_flip_to_both_sides() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    target = torch.cat([x, -x, x], dim=1)
    jx, jt = paired_jitter(x, target, torch.Generator().manual_seed(0), load_size=32, crop_size=28)
    assert jx.shape == (16, 1, 28, 28) and jt.shape == (16, 3, 28, 28)
    torch.testing.assert_close(jt, torch.cat([jx, -jx, jx], dim=1), rtol=0, atol=0)


def test_jitter_crops_the_drawn_window_and_flips() -> None:
    x = torch.rand(64, 2, 10, 10) * 2 - 1
    g = torch.Generator().manual_seed(7)
    top, left, flips = jitter_params(64, 10, 6, True, torch.Generator().manual_seed(7))
    out = jitter(x, g, load_size=10, crop_size=6)
    for i in range(64):
        window = x[i, :, top[i] : top[i] + 6, left[i] : left[i] + 6]
        assert torch.equal(out[i], window.flip(-1) if flips[i] else window)
    assert set(top.tolist()) == set(range(5)) and set(left.tolist()) == set(range(5))
    assert 0 < int(flips.sum()) < 64
    _, _, none = jitter_params(64, 10, 6, False, torch.Generator())
    assert not none.any()
    same = apply_jitter(x, 10, 10, torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long), none)
    assert torch.equal(same, x)


def test_jitter_is_reproducible_from_the_generator_state() -> None:
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    first = paired_jitter(x, x, g, 20, 16)
    g.set_state(state)
    again = paired_jitter(x, x, g, 20, 16)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_jitter_bad_sizes_are_user_errors() -> None:
    x = torch.zeros(2, 1, 8, 8)
    for load, crop in ((8, 10), (0, 0), (8, 2.5)):
        with pytest.raises(UserError) as excinfo:
            jitter(x, torch.Generator(), load, crop)
        one_line_user_error(excinfo)


# ================================================================================================
# embedded data sets
# ================================================================================================
def test_edge_map_rule_on_a_constructed_step() -> None:
    step = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    step[..., 3:] = 255  # a full 0 -> 1 step between columns 2 and 3
    edges = T.edge_map(step)[0, 0]
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[:, 2:4] = True  # |gx| = 1 on both sides of the step, 0 elsewhere
    assert torch.equal(edges, expected)
    faint = (step.float() * 0.45).round().to(torch.uint8)  # a 0.45 step: magnitude 0.45 < 0.5
    assert not T.edge_map(faint).any()


def test_edges2mnist_5k() -> None:
    source = T.Edges2MNIST5k()
    train, info = source.load()
    test, test_info = source.load("test")
    assert (len(train), len(test)) == (4500, 500)
    assert info.pairing == "paired" and info.shape == info.shape_b == (1, 28, 28) and info.num_classes == 10
    assert info.extras == {"load_size": 28, "crop_size": 28, "flip": False}
    digits, labels = mnist_5k_images(28)
    _, test_index = stratified_split(labels, MNIST5k.TEST_PER_CLASS)
    batch = test.take(torch.arange(500))
    assert torch.equal(batch.target, digits[test_index]) and torch.equal(batch.y, labels[test_index])
    assert torch.equal(torch.bincount(batch.y), torch.full((10,), 50))
    assert set(batch.x.unique().tolist()) == {-1.0, 1.0}
    raw = ((digits[test_index[:5]] + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(batch.x[:5] > 0, T.edge_map(raw))
    assert torch.equal(batch.index, torch.arange(500))
    small, small_info = T.Edges2MNIST5k(image_size=32, load_size=36, flip=True).load("test")
    assert small.take(torch.arange(2)).x.shape == (2, 1, 32, 32)
    assert small_info.extras == {"load_size": 36, "crop_size": 32, "flip": True}


def test_digits_in_mnist_frame() -> None:
    full = torch.full((2, 8, 8), 16.0)
    framed = T.digits_in_mnist_frame(full)
    assert framed.shape == (2, 1, 28, 28)
    box = torch.zeros(28, 28, dtype=torch.bool)
    box[4:24, 4:24] = True
    inside, outside = framed[:, 0][:, box], framed[:, 0][:, ~box]
    torch.testing.assert_close(inside, torch.ones_like(inside), rtol=0, atol=1e-6)  # bilinear round-off
    assert bool((outside == -1).all())


def test_mnist2digits_split_labels_and_resumable_pairing() -> None:
    source = T.MNIST2Digits(seed=3)
    train, info = source.load()
    test, _ = source.load("test")
    assert info.pairing == "unpaired" and info.shape == info.shape_b == (1, 28, 28)
    assert info.extras["size_a"] == 4500 and info.extras["size_b"] == 1297 and len(train) == 4500
    assert len(test) == 500 and torch.equal(torch.bincount(test.domain("b").y), torch.full((10,), 50))
    index = torch.tensor([0, 1, 1296, 1297, 4499])
    batch = train.take(index)
    partner = T.unpaired_partner(index, 1297, seed=3)
    assert torch.equal(partner[[0, 3]], partner[[3, 0]])  # index 1297 wraps to 0
    domain_b = train.domain("b")
    assert torch.equal(batch.x_b, domain_b.x[partner]) and torch.equal(batch.y_b, domain_b.y[partner])
    assert torch.equal(batch.x, train.domain("a").x[index]) and torch.equal(batch.y, train.domain("a").y[index])
    again = T.MNIST2Digits(seed=3).load()[0].take(index)  # a fresh load (a resumed run) pairs the same
    assert torch.equal(again.x_b, batch.x_b)
    other = T.MNIST2Digits(seed=4).load()[0].take(index)
    assert not torch.equal(other.x_b, batch.x_b)
    # domain B: 8x8 digits in MNIST's frame, with the sklearn labels
    raw, y = T._digits_raw()
    train_b, _ = stratified_split(y, T.DIGITS_TEST_PER_CLASS)
    assert torch.equal(domain_b.x, T.digits_in_mnist_frame(raw[train_b]))


def test_embedded_translation_sets_through_the_data_module() -> None:
    dm = GANDataModule(T.MNIST2Digits(), batch_size=8, seed=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == batch.x_b.shape == (8, 1, 28, 28)
    assert batch.y.shape == batch.y_b.shape == (8,) and batch.target is None
    dm = GANDataModule(T.Edges2MNIST5k(), batch_size=8, seed=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == batch.target.shape == (8, 1, 28, 28) and batch.x_b is None
    real = dm.real_batch(4, split="test")
    assert real.target.shape == (4, 1, 28, 28)


def test_embedded_translation_bad_options_are_user_errors() -> None:
    for make in (lambda: T.Edges2MNIST5k(split="val"), lambda: T.Edges2MNIST5k(load_size=20),
                 lambda: T.Edges2MNIST5k(flip="no"), lambda: T.MNIST2Digits(seed="x"),
                 lambda: T.MNIST2Digits(image_size=0), lambda: T.MNIST2Digits().load("val")):
        with pytest.raises(UserError) as excinfo:
            make()
        one_line_user_error(excinfo)


# ================================================================================================
# folder layouts (files written in the real layouts, read by the real loaders)
# ================================================================================================
def gradient_half(h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, h, 3), dtype=np.uint8)


def write_side_by_side(path, left: np.ndarray, right: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([left, right], axis=1)).save(path)


def as_unit(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1


@pytest.fixture()
def pix2pix_root(tmp_path):
    halves = {}
    for split, count in (("train", 3), ("val", 2), ("test", 2)):
        for i in range(count):
            left, right = gradient_half(16, 2 * i), gradient_half(16, 2 * i + 1)
            write_side_by_side(tmp_path / split / f"{i + 1}.png", left, right)
            halves[(split, i)] = (left, right)
    return tmp_path, halves


def test_pix2pix_folder_reads_the_original_layout(pix2pix_root) -> None:
    root, halves = pix2pix_root
    source = T.Pix2PixFolder(root, load_size=16, crop_size=16)
    train, info = source.load()
    assert len(train) == 3 and info.pairing == "paired"
    assert info.shape == info.shape_b == (3, 16, 16)
    assert info.extras == {"load_size": 16, "crop_size": 16, "flip": True, "direction": "AtoB"}
    item = train[1]
    left, right = halves[("train", 1)]
    torch.testing.assert_close(item.x, as_unit(left), rtol=0, atol=1e-6)
    torch.testing.assert_close(item.target, as_unit(right), rtol=0, atol=1e-6)
    flipped = T.Pix2PixFolder(root, direction="BtoA", load_size=16, crop_size=16).load("val")[0][0]
    left, right = halves[("val", 0)]
    torch.testing.assert_close(flipped.x, as_unit(right), rtol=0, atol=1e-6)
    torch.testing.assert_close(flipped.target, as_unit(left), rtol=0, atol=1e-6)


def test_pix2pix_folder_sizes_channels_and_data_module(pix2pix_root) -> None:
    root, _ = pix2pix_root
    source = T.Pix2PixFolder(root, load_size=20, crop_size=12, input_channels=1)
    train, info = source.load()
    assert info.shape == (1, 12, 12) and info.shape_b == (3, 12, 12)
    assert train[0].x.shape == (1, 20, 20) and train[0].target.shape == (3, 20, 20)  # train: load_size
    test, _ = source.load("test")
    assert test[0].x.shape == (1, 12, 12)  # evaluation splits: crop_size
    dm = GANDataModule(source, batch_size=2, seed=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (2, 1, 20, 20) and batch.target.shape == (2, 3, 20, 20) and batch.y is None
    assert batch.index.shape == (2,)
    x, target = paired_jitter(batch.x, batch.target, torch.Generator().manual_seed(0), info.extras["load_size"],
                              info.extras["crop_size"], info.extras["flip"])
    assert x.shape[1:] == info.shape and target.shape[1:] == info.shape_b
    # a constant-colour pair survives the bicubic resize exactly
    const = root / "const"
    write_side_by_side(const / "train" / "a.png", np.full((8, 8, 3), (255, 0, 0), np.uint8),
                       np.full((8, 8, 3), (0, 0, 255), np.uint8))
    item = T.Pix2PixFolder(const, load_size=24, crop_size=24).load()[0][0]
    assert torch.equal(item.x, torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1).expand(3, 24, 24))
    assert torch.equal(item.target, torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1).expand(3, 24, 24))


def test_pix2pix_folder_errors(tmp_path, pix2pix_root) -> None:
    root, _ = pix2pix_root
    maps_like = tmp_path / "maps"  # train/ and an empty val/, no test/
    write_side_by_side(maps_like / "train" / "1.jpg", gradient_half(8, 0), gradient_half(8, 1))
    (maps_like / "val").mkdir()
    bad = tmp_path / "bad"
    write_side_by_side(bad / "train" / "1.png", gradient_half(8, 0), gradient_half(8, 1))
    Image.fromarray(np.zeros((8, 20, 3), np.uint8)).save(bad / "train" / "2.png")
    layout_errors = [  # each names the path and the expected layout
        (lambda: T.Pix2PixFolder(tmp_path / "nowhere").load(), str((tmp_path / "nowhere").resolve())),
        (lambda: T.Pix2PixFolder(None).load(), "set data.source.root"),
        (lambda: T.Pix2PixFolder(maps_like).load("test"), f"no folder {(maps_like / 'test').resolve()}"),
        (lambda: T.Pix2PixFolder(maps_like).load("val"), f"no images in {(maps_like / 'val').resolve()}"),
        (lambda: T.Pix2PixFolder(bad).load(), f"{(bad / 'train' / '2.png').resolve()} is 20x8"),
    ]
    for make, fragment in layout_errors:
        with pytest.raises(UserError) as excinfo:
            make()
        message = one_line_user_error(excinfo)
        assert fragment in message and "root/train/, root/val/, root/test/" in message
    option_errors = [
        (lambda: T.Pix2PixFolder(root, direction="AB"), "direction"),
        (lambda: T.Pix2PixFolder(root, load_size=100, crop_size=128), "load_size"),
        (lambda: T.Pix2PixFolder(root, input_channels=2), "input_channels"),
        (lambda: T.Pix2PixFolder(root, crop_size=0), "crop_size"),
        (lambda: T.Pix2PixFolder(root, flip=1), "flip"),
        (lambda: T.Pix2PixFolder(root).load("all"), "split"),
    ]
    for make, fragment in option_errors:
        with pytest.raises(UserError) as excinfo:
            make()
        assert fragment in one_line_user_error(excinfo)


@pytest.fixture()
def unpaired_root(tmp_path):
    counts = {"trainA": 3, "trainB": 5, "testA": 2, "testB": 1}
    for folder, count in counts.items():
        (tmp_path / folder).mkdir()
        for i in range(count):
            value = 10 * (list(counts).index(folder) + 1) + i  # a distinct grey level per image
            Image.fromarray(np.full((12, 12, 3), value, np.uint8)).save(tmp_path / folder / f"{i}.png")
    (tmp_path / "trainB" / "nested").mkdir()
    Image.fromarray(np.full((12, 12, 3), 99, np.uint8)).save(tmp_path / "trainB" / "nested" / "deep.png")
    return tmp_path


def grey_level(image: torch.Tensor) -> int:
    return int(round((float(image[0, 0, 0]) + 1) * 127.5))


def test_unpaired_folder_reads_the_cyclegan_layout(unpaired_root) -> None:
    source = T.UnpairedFolder(unpaired_root, load_size=12, crop_size=8, seed=5)
    train, info = source.load()
    assert info.pairing == "unpaired" and info.shape == info.shape_b == (3, 8, 8) and info.num_classes == 0
    assert info.extras == {"load_size": 12, "crop_size": 8, "flip": True, "size_a": 3, "size_b": 6}
    assert len(train) == 6  # max(3, 6): the nested B image counts
    a_levels = [grey_level(train[i].x) for i in range(6)]
    assert a_levels == [10, 11, 12, 10, 11, 12]
    b_files = sorted(str(p) for p in train.files_b)
    partner = T.unpaired_partner(torch.arange(6), 6, seed=5).tolist()
    b_levels = [grey_level(train[i].x_b) for i in range(6)]
    expected = [grey_level(T._read_image(train.files_b[j], 3, 12)) for j in partner]
    assert b_levels == expected and sorted(b_levels) == [20, 21, 22, 23, 24, 99]
    assert [str(p) for p in train.files_b] == b_files
    assert train[0].x.shape == (3, 12, 12)
    test, test_info = source.load("test")
    assert len(test) == 2 and test[0].x.shape == (3, 8, 8)
    assert len(test.domain("b")) == 1 and test.domain("a")[1][0].shape == (3, 8, 8)
    dm = GANDataModule(T.UnpairedFolder(unpaired_root, load_size=12, crop_size=12, channels_b=1), batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (4, 3, 12, 12) and batch.x_b.shape == (4, 1, 12, 12) and batch.y is None


def test_unpaired_folder_errors(tmp_path, unpaired_root) -> None:
    missing = tmp_path / "missing_b"
    (missing / "trainA").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(missing / "trainA" / "1.png")
    empty = tmp_path / "empty_a"
    (empty / "trainA").mkdir(parents=True)
    (empty / "trainB").mkdir()
    cases = [
        (lambda: T.UnpairedFolder(missing).load(), str((missing / "trainB").resolve())),
        (lambda: T.UnpairedFolder(empty).load(), "domain A is empty"),
        (lambda: T.UnpairedFolder(missing).load("test"), "testA"),
        (lambda: T.UnpairedFolder(tmp_path / "nowhere").load(), "does not exist"),
        (lambda: T.UnpairedFolder(None).load(), "no folder given"),
    ]
    for make, fragment in cases:
        with pytest.raises(UserError) as excinfo:
            make()
        message = one_line_user_error(excinfo)
        assert fragment in message and "root/trainA/, root/trainB/, root/testA/, root/testB/" in message
    for make in (lambda: T.UnpairedFolder(unpaired_root, channels_a=4),
                 lambda: T.UnpairedFolder(unpaired_root, seed=1.5),
                 lambda: T.UnpairedFolder(unpaired_root, split="val")):
        with pytest.raises(UserError) as excinfo:
            make()
        one_line_user_error(excinfo)


def test_presets_point_under_the_data_root(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GAN_LAB_DATA", str(tmp_path))
    facades = T.facades()
    assert facades.name == "facades" and facades.direction == "BtoA"
    assert facades.root == str(tmp_path / "facades")
    assert (T.maps().root, T.maps().direction) == (str(tmp_path / "maps"), "AtoB")
    assert T.edges2shoes().root == str(tmp_path / "edges2shoes")
    assert T.horse2zebra().root == str(tmp_path / "horse2zebra") and T.horse2zebra().name == "horse2zebra"
    assert set(T.PRESETS) == {"facades", "maps", "edges2shoes", "horse2zebra"}
    with pytest.raises(UserError) as excinfo:
        T.facades().load()
    assert "facades:" in one_line_user_error(excinfo)
    write_side_by_side(tmp_path / "facades" / "train" / "1.jpg", gradient_half(8, 0), gradient_half(8, 1))
    dataset, info = T.facades(load_size=8, crop_size=8).load()
    assert info.name == "facades" and len(dataset) == 1


# ================================================================================================
# metrics
# ================================================================================================
def test_metrics_on_identical_images() -> None:
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert M.l1_distance(x, x) == 0.0
    assert M.psnr(x, x) == M.PSNR_CAP_DB
    assert M.ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert M.cycle_l1(x, x) == 0.0
    assert torch.equal(M.psnr(x, x, reduction="none"), torch.full((3,), 100.0, dtype=torch.float64))


def test_l1_and_psnr_against_their_formulas() -> None:
    target = torch.zeros(2, 1, 12, 12)
    output = torch.full((2, 1, 12, 12), 0.2)
    output[1] = -0.02
    assert M.l1_distance(output, target) == pytest.approx((0.2 + 0.02) / 2, rel=1e-6)
    per_image = M.psnr(output, target, reduction="none")
    # 10 log10(R^2 / MSE) with R = 2: MSE 0.04 -> 20 dB, MSE 4e-4 -> 40 dB
    torch.testing.assert_close(per_image, torch.tensor([20.0, 40.0], dtype=torch.float64), rtol=1e-6, atol=1e-6)
    assert M.psnr(output, target) == pytest.approx(30.0, rel=1e-6)  # the mean of per-image values
    assert M.cycle_l1(target, output, reduction="none").tolist() == pytest.approx([0.2, 0.02], rel=1e-6)


def test_ssim_against_its_formula_on_constant_images() -> None:
    """For constant images a and b the variances vanish and SSIM is the luminance term
    (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 2)^2 for the range [-1, 1]."""
    c1 = (0.01 * 2) ** 2
    for a, b in ((0.5, -0.25), (-1.0, 1.0), (0.1, 0.1)):
        out = torch.full((1, 1, 16, 16), a)
        ref = torch.full((1, 1, 16, 16), b)
        expected = (2 * a * b + c1) / (a * a + b * b + c1)
        assert M.ssim(out, ref) == pytest.approx(expected, abs=1e-9)
    clamped = M.ssim(torch.full((1, 1, 16, 16), 3.0), torch.full((1, 1, 16, 16), 1.0))
    assert clamped == pytest.approx(1.0, abs=1e-12)  # values beyond [-1, 1] are clamped
    with pytest.raises(ValueError):
        M.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_label_kept() -> None:
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 1.5, 0.0], [0.0, 0.0, 5.0]])
    labels = torch.tensor([0, 1, 0, 2])
    assert M.label_kept(logits, labels) == 0.75
    assert M.label_kept(logits, labels, reduction="none").tolist() == [1.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        M.label_kept(logits, labels[:3])


def test_metric_shape_checks() -> None:
    with pytest.raises(ValueError):
        M.l1_distance(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError):
        M.psnr(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError):
        M.l1_distance(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), reduction="sum")
