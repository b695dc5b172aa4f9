"""Class-conditional networks (CGAN, ACGAN, SSGAN D, projection cGAN, BigGAN) and the
Improved-Techniques layers: shapes, label routing, structure and hand computations."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from gan_lab.errors import UserError
from gan_lab.networks.biggan import BigGANDiscriminator, BigGANGenerator
from gan_lab.networks.cond_layers import SelfAttention2d, image_size_plan
from gan_lab.networks.conditional import (
    ACGANDiscriminator,
    CGANDiscriminator,
    CGANGenerator,
    CondBNResNetGenerator,
    ProjectionDiscriminator,
    SSGANDiscriminator,
    one_hot_planes,
)
from gan_lab.networks.improved import (
    MinibatchDiscrimination,
    VirtualBatchNorm,
    VirtualBatchNormGenerator,
    convert_to_virtual_batch_norm,
)

K = 10
Y = torch.tensor([0, 1, 2, 3])
Y2 = torch.tensor([5, 6, 7, 8])

# (data shape, arch): points, flattened images, conv images at base 7 and base 4 sizes
CGAN_CASES = [((2,), "mlp"), ((1, 8, 8), "mlp"), ((1, 28, 28), "conv"), ((1, 8, 8), "conv"), ((3, 32, 32), "conv")]


def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# CGAN / ACGAN / SSGAN
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,arch", CGAN_CASES)
def test_cgan_shapes_and_label_routing(shape, arch):
    _seed()
    g = CGANGenerator(8, shape, K, arch=arch, width=8, depth=2).eval()
    d = CGANDiscriminator(shape, K, arch=arch, width=8, depth=2).eval()
    z = torch.randn(4, 8)
    x = g(z, Y)
    assert x.shape == (4, *shape)
    if len(shape) == 3:
        assert x.min() >= -1 and x.max() <= 1
    # the label reaches G and D
    assert not torch.allclose(g(z, Y2), x)
    out = d(x, Y)
    assert out.shape == (4,)
    assert not torch.allclose(d(x, Y2), out)


def test_cgan_needs_labels():
    g = CGANGenerator(8, (2,), K, width=8, depth=1)
    with pytest.raises(ValueError, match="needs labels"):
        g(torch.randn(2, 8))


def test_cgan_conv_discriminator_sees_label_planes():
    d = CGANDiscriminator((1, 8, 8), K, arch="conv", width=4)
    first_conv = d.trunk.stages[0][0]
    assert first_conv.in_channels == 1 + K  # image channels + one plane per class
    planes = one_hot_planes(torch.tensor([2, 0]), K, 3, 3, torch.float32)
    assert planes.shape == (2, K, 3, 3)
    assert torch.equal(planes[0, 2], torch.ones(3, 3)) and planes[0].sum() == 9
    assert torch.equal(planes[1, 0], torch.ones(3, 3)) and planes[1].sum() == 9
    d_mlp = CGANDiscriminator((2,), K, arch="mlp", width=4, depth=1)
    assert d_mlp.trunk.stages[0][0].in_features == 2 + K  # one-hot concatenated


def test_cgan_generator_structure_is_dcgan_like():
    g = CGANGenerator(8, (1, 28, 28), K, arch="conv", width=4)
    layers = list(g.net)
    assert isinstance(layers[-1], nn.Tanh) and isinstance(layers[-2], nn.ConvTranspose2d)
    assert not any(isinstance(m, (nn.Linear, nn.MaxPool2d)) for m in g.modules())
    assert g.embed.embedding_dim == K  # embed_dim=None: as wide as a one-hot code
    assert layers[0].in_channels == 8 + K


@pytest.mark.parametrize("shape,arch", CGAN_CASES)
def test_acgan_discriminator_heads(shape, arch):
    _seed()
    d = ACGANDiscriminator(shape, K, arch=arch, width=8, depth=2).eval()
    x = torch.randn(4, *shape)
    adv, cls = d(x, Y)
    assert adv.shape == (4,) and cls.shape == (4, K)
    adv2, cls2 = d(x, Y2)  # the label is not an input of ACGAN's D
    assert torch.equal(adv, adv2) and torch.equal(cls, cls2)


@pytest.mark.parametrize("shape,arch", [((1, 28, 28), "mlp"), ((1, 8, 8), "conv")])
def test_ssgan_discriminator_is_a_k_way_classifier_with_training_noise(shape, arch):
    _seed()
    d = SSGANDiscriminator(shape, K, arch=arch, width=8, depth=2, input_noise=0.3, hidden_noise=0.5)
    x = torch.randn(4, *shape)
    d.eval()
    assert d(x).shape == (4, K)
    assert torch.equal(d(x), d(x))  # no noise in eval mode
    d.train()
    assert not torch.equal(d(x), d(x))  # Gaussian noise layers in training mode


@pytest.mark.parametrize("cls", [CGANDiscriminator, ACGANDiscriminator, SSGANDiscriminator])
@pytest.mark.parametrize("shape,arch", [((2,), "mlp"), ((1, 8, 8), "conv"), ((1, 28, 28), "conv")])
def test_discriminator_features_for_feature_matching(cls, shape, arch):
    _seed()
    d = cls(shape, K, arch=arch, width=4, depth=2).eval()
    x = torch.randn(3, *shape)
    y = Y[:3]
    f = d.features(x, y)
    out = d(x, y, return_features=True)
    assert torch.equal(out[-1], f)
    assert f.shape == (3, d.trunk.out_features)  # default: last hidden layer, flattened
    first = cls(shape, K, arch=arch, width=4, depth=2, feature_layer=0).eval()
    first.load_state_dict(d.state_dict())
    assert first.features(x, y).shape[1] >= f.shape[1] if arch == "conv" else True
    n = len(d.trunk.stages)
    with pytest.raises(UserError, match="feature layer"):
        cls(shape, K, arch=arch, width=4, depth=2, feature_layer=n)


@pytest.mark.parametrize("cls", [CGANDiscriminator, ACGANDiscriminator, SSGANDiscriminator])
def test_minibatch_discrimination_goes_before_the_head(cls):
    _seed()
    d = cls((1, 8, 8), K, arch="conv", width=4, minibatch_kernels=6, minibatch_kernel_dim=3).eval()
    assert isinstance(d.minibatch, MinibatchDiscrimination)
    assert d.head_in == d.trunk.out_features + 6
    out = d(torch.randn(5, 1, 8, 8), torch.arange(5))
    assert (out[0] if isinstance(out, tuple) else out).shape[0] == 5


def test_conv_nets_reject_bad_sizes_and_vector_data():
    with pytest.raises(UserError, match="image_size"):
        CGANGenerator(8, (1, 48, 48), K, arch="conv")
    with pytest.raises(UserError, match="image_size"):
        CGANDiscriminator((1, 28, 32), K, arch="conv")
    with pytest.raises(UserError, match="arch=mlp"):
        CGANDiscriminator((2,), K, arch="conv")
    with pytest.raises(UserError, match="labelled data"):
        CGANGenerator(8, (2,), 0)
    assert image_size_plan((1, 28, 28), "x") == (1, 7, 2)
    assert image_size_plan((3, 64, 64), "x") == (3, 4, 4)


# ---------------------------------------------------------------------------------------------
# Projection cGAN and BigGAN
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_projection_cgan_shapes_and_label_routing(shape):
    _seed()
    g = CondBNResNetGenerator(8, shape, K, width=8).eval()
    d = ProjectionDiscriminator(shape, K, width=8).eval()
    z = torch.randn(4, 8)
    x = g(z, Y)
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    # conditional BN starts as plain BN (gains 1, biases 0): set per-class values, as after training
    for m in g.modules():
        if hasattr(m, "gain") and isinstance(m.gain, nn.Embedding):
            nn.init.normal_(m.gain.weight, 1.0, 0.5)
            nn.init.normal_(m.bias.weight, 0.0, 0.5)
    x = g(z, Y)
    assert not torch.allclose(g(z, Y2), x)
    out = d(x, Y)
    assert out.shape == (4,)
    assert not torch.allclose(d(x, Y2), out)
    # spectral norm on every conv/linear/embedding of D, none in G by default
    for m in d.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            assert parametrize.is_parametrized(m, "weight")
    assert not any(parametrize.is_parametrized(m) for m in g.modules())


def _biggan(shape, latent, attn_g=None, attn_d=None):
    g = BigGANGenerator(latent, shape, K, width=2, shared_dim=6, attention_resolution=attn_g)
    d = BigGANDiscriminator(shape, K, width=2, attention_resolution=attn_d)
    return g, d


@pytest.mark.parametrize("shape,latent,attn", [((3, 32, 32), 8, 16), ((3, 64, 64), 10, 32), ((1, 28, 28), 6, 14)])
def test_biggan_shapes_label_routing_and_hierarchical_latent(shape, latent, attn):
    _seed()
    g, d = _biggan(shape, latent, attn, attn)
    g.eval(), d.eval()
    z = torch.randn(4, latent)
    x = g(z, Y)
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    assert not torch.allclose(g(z, Y2), x)
    assert torch.allclose(g(z, class_embedding=g.shared(Y)), x)
    # every latent chunk is used: the first by the input layer, the others by the blocks' CBNs
    for i in range(g.num_chunks):
        z2 = z.clone()
        z2[:, i * g.chunk:(i + 1) * g.chunk] += 1.0
        assert not torch.allclose(g(z2, Y), x), f"chunk {i} has no effect"
    out = d(x, Y)
    assert out.shape == (4,)
    assert not torch.allclose(d(x, Y2), out)


def test_biggan_channel_plans_match_the_reference_architectures():
    ch = 3
    g32 = BigGANGenerator(8, (3, 32, 32), K, width=ch)
    g64 = BigGANGenerator(10, (3, 64, 64), K, width=ch)
    assert g32.channels == [4 * ch] * 4
    assert g64.channels == [16 * ch, 16 * ch, 8 * ch, 4 * ch, 2 * ch]
    d32 = BigGANDiscriminator((3, 32, 32), K, width=ch)
    d64 = BigGANDiscriminator((3, 64, 64), K, width=ch)
    assert d32.channels == [4 * ch] * 4 and d32.downsample == [True, True, False, False]
    assert d64.channels == [ch, 2 * ch, 4 * ch, 8 * ch, 16 * ch] and d64.downsample == [True] * 4 + [False]
    # hierarchical latent: one chunk for the input layer plus one per up-block
    assert g32.num_chunks == 4 and g64.num_chunks == 5
    assert g32.blocks[0].bn1.gain.in_features == g32.shared_dim + g32.chunk


def test_biggan_attention_sits_at_the_configured_resolution():
    g, d = _biggan((3, 32, 32), 8, 16, 8)
    seen = {}
    g.attention.register_forward_hook(lambda m, i, o: seen.update(g=i[0].shape))
    d.attention.register_forward_hook(lambda m, i, o: seen.update(d=i[0].shape))
    x = g(torch.randn(2, 8), Y[:2])
    d(x, Y[:2])
    assert seen["g"][-1] == 16 and seen["d"][-1] == 8
    assert sum(isinstance(m, SelfAttention2d) for m in g.modules()) == 1
    g0, d0 = _biggan((3, 32, 32), 8)
    assert g0.attention is None and d0.attention is None


def test_self_attention_starts_as_identity_and_mixes_positions():
    _seed()
    from gan_lab.networks.cond_layers import conv_factory
    att = SelfAttention2d(16, conv_factory(True, "ortho"))
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(att(x), x)  # gamma = 0
    with torch.no_grad():
        att.gamma.fill_(1.0)
    out = att(x)
    x2 = x.clone()
    x2[:, :, 0, 0] += 5.0  # a change at one position moves the output elsewhere too
    assert not torch.allclose(att(x2)[:, :, 7, 7], out[:, :, 7, 7])


def test_biggan_spectral_norm_and_errors():
    g, d = _biggan((3, 32, 32), 8)
    assert parametrize.is_parametrized(g.blocks[0].conv1, "weight")
    assert parametrize.is_parametrized(g.blocks[0].bn1.gain, "weight")
    assert not parametrize.is_parametrized(g.shared)
    assert parametrize.is_parametrized(d.head.embed, "weight") and parametrize.is_parametrized(d.head.linear, "weight")
    with pytest.raises(UserError, match="multiple of 4"):
        BigGANGenerator(10, (3, 32, 32), K)
    with pytest.raises(UserError, match="attention resolution"):
        BigGANGenerator(8, (3, 32, 32), K, attention_resolution=12)
    with pytest.raises(UserError, match="attention resolution"):
        BigGANDiscriminator((1, 28, 28), K, attention_resolution=7)  # odd: no 2x2 pooling
    with pytest.raises(UserError, match="image_size"):
        BigGANDiscriminator((3, 48, 48), K)
    with pytest.raises(UserError, match="init"):
        BigGANGenerator(8, (3, 32, 32), K, init="he")


def test_biggan_orthogonal_reg_parameters_exclude_the_shared_embedding():
    g, _ = _biggan((3, 32, 32), 8, 16)
    params = g.orthogonal_reg_parameters()
    ids = {id(p) for p in params}
    assert id(g.shared.weight) not in ids
    assert id(g.blocks[0].conv1.parametrizations.weight.original) in ids  # raw weight under SN
    assert id(g.blocks[0].bn1.gain.parametrizations.weight.original) in ids
    assert id(g.linear.parametrizations.weight.original) in ids
    assert all(p.dim() >= 2 for p in params)
    assert id(g.attention.gamma) not in ids


# ---------------------------------------------------------------------------------------------
# Minibatch discrimination and virtual batch norm against hand computations
# ---------------------------------------------------------------------------------------------


def test_minibatch_discrimination_hand_computation():
    layer = MinibatchDiscrimination(2, num_kernels=2, kernel_dim=1)
    with torch.no_grad():
        layer.T.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # M_i,b = f_i,b
    f = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]])
    out = layer(f)
    assert out.shape == (3, 4)
    assert torch.equal(out[:, :2], f)
    # kernel 0 sees [0, 1, 3], kernel 1 sees [0, 2, 2]; o_i,b = sum_{j != i} exp(-|M_ib - M_jb|)
    e = torch.exp
    expected = torch.tensor([
        [e(torch.tensor(-1.0)) + e(torch.tensor(-3.0)), e(torch.tensor(-2.0)) * 2],
        [e(torch.tensor(-1.0)) + e(torch.tensor(-2.0)), e(torch.tensor(-2.0)) + 1.0],
        [e(torch.tensor(-3.0)) + e(torch.tensor(-2.0)), e(torch.tensor(-2.0)) + 1.0],
    ])
    torch.testing.assert_close(out[:, 2:], expected)
    with_self = MinibatchDiscrimination(2, 2, 1, include_self=True)
    with_self.load_state_dict(layer.state_dict())
    torch.testing.assert_close(with_self(f)[:, 2:], expected + 1.0)
    # L1 over the kernel dimension
    l1 = MinibatchDiscrimination(2, num_kernels=1, kernel_dim=2)
    with torch.no_grad():
        l1.T.copy_(torch.eye(2))
    torch.testing.assert_close(l1(f)[0, 2], torch.exp(torch.tensor(-3.0)) + torch.exp(torch.tensor(-5.0)))
    with pytest.raises(UserError, match="num_kernels"):
        MinibatchDiscrimination(4, num_kernels=0)


@pytest.mark.parametrize("shape", [(6, 3), (6, 3, 4, 4)])
def test_virtual_batch_norm_uses_reference_statistics(shape):
    _seed()
    vbn = VirtualBatchNorm(3)
    with torch.no_grad():
        vbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        vbn.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
    ref = torch.randn(*shape) * 2 + 1
    live = torch.randn(4, *shape[1:])
    vbn.collecting = True
    ref_out = vbn(ref)
    vbn.collecting = False
    out = vbn(live)
    # reference pass: plain batch norm with the reference batch's own statistics
    expected_ref = F.batch_norm(ref, None, None, vbn.weight, vbn.bias, training=True, eps=vbn.eps)
    torch.testing.assert_close(ref_out, expected_ref)
    # live pass: example i normalised with the statistics of {reference batch} + {example i}
    for i in range(4):
        both = torch.cat([ref, live[i:i + 1]])
        expected = F.batch_norm(both, None, None, vbn.weight, vbn.bias, training=True, eps=vbn.eps)[-1]
        torch.testing.assert_close(out[i], expected)
    # an example's output does not depend on the rest of its batch
    other = live.clone()
    other[1:] = torch.randn_like(other[1:]) * 10
    torch.testing.assert_close(vbn(other)[0], out[0])
    vbn.clear()
    with pytest.raises(RuntimeError, match="reference"):
        vbn(live)


@pytest.mark.parametrize("shape,arch", [((2,), "mlp"), ((1, 8, 8), "conv")])
def test_virtual_batch_norm_generator(shape, arch):
    _seed()
    g = CGANGenerator(4, shape, K, arch=arch, width=4, depth=2)
    ref_z, ref_y = torch.randn(8, 4), torch.arange(8) % K
    vg = VirtualBatchNormGenerator(g, ref_z, ref_y)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in vg.modules())
    assert any(isinstance(m, VirtualBatchNorm) for m in vg.modules())
    z = torch.randn(3, 4)
    x = vg(z, Y[:3])
    assert x.shape == (3, *shape)
    # batch independence and train/eval agreement
    torch.testing.assert_close(vg(z[:1], Y[:1]), x[:1])
    vg.eval()
    torch.testing.assert_close(vg(z, Y[:3]), x)
    vg.train()
    # gradients reach G's weights (also through the reference statistics)
    vg(z, Y[:3]).sum().backward()
    assert all(p.grad is not None for p in vg.parameters())
    # the reference batch is part of the state (exact resume keeps it)
    state = vg.state_dict()
    assert torch.equal(state["ref_z"], ref_z) and torch.equal(state["ref_y"], ref_y)
    assert all(m._ref is None for m in vg.modules() if isinstance(m, VirtualBatchNorm))


def test_virtual_batch_norm_conversion_copies_affine_and_needs_batch_norm():
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.fill_(2.0)
    net = convert_to_virtual_batch_norm(nn.Sequential(nn.Linear(2, 3), bn))
    assert isinstance(net[1], VirtualBatchNorm) and torch.equal(net[1].weight, torch.full((3,), 2.0))
    with pytest.raises(UserError, match="no"):
        convert_to_virtual_batch_norm(nn.Sequential(nn.Linear(2, 3)))
    with pytest.raises(UserError, match="no"):
        VirtualBatchNormGenerator(CGANGenerator(4, (2,), K, width=4, depth=1, batch_norm=False), torch.randn(4, 4))


# ---------------------------------------------------------------------------------------------
# One training step per model: the parts fit together and every parameter gets a gradient
# ---------------------------------------------------------------------------------------------


def _pairs():
    shape = (1, 8, 8)
    return {
        "cgan": (CGANGenerator(4, shape, K, width=4), CGANDiscriminator(shape, K, width=4)),
        "acgan": (CGANGenerator(4, shape, K, width=4), ACGANDiscriminator(shape, K, width=4)),
        "ssgan": (CGANGenerator(4, (1, 28, 28), K, arch="mlp", width=8, depth=2),
                  SSGANDiscriminator((1, 28, 28), K, arch="mlp", width=8, depth=2, input_noise=0.3, hidden_noise=0.5)),
        "cgan_proj": (CondBNResNetGenerator(4, shape, K, width=4), ProjectionDiscriminator(shape, K, width=4)),
        "biggan": (BigGANGenerator(8, (3, 32, 32), K, width=1, shared_dim=4, attention_resolution=16),
                   BigGANDiscriminator((3, 32, 32), K, width=1, attention_resolution=16)),
    }


@pytest.mark.parametrize("name", ["cgan", "acgan", "ssgan", "cgan_proj", "biggan"])
def test_one_step_reaches_every_parameter(name):
    from gan_lab.losses.adversarial import hinge_d_loss, hinge_g_loss, minimax_d_loss, non_saturating_g_loss
    from gan_lab.losses.conditional import (
        acgan_d_loss, acgan_g_loss, feature_matching_loss, orthogonal_regularization, ssgan_d_loss,
    )

    _seed()
    g, d = _pairs()[name]
    latent = g.latent_dim
    shape = (3, 32, 32) if name == "biggan" else ((1, 28, 28) if name == "ssgan" else (1, 8, 8))
    x = torch.rand(6, *shape) * 2 - 1
    y = torch.arange(6) % K
    z = torch.randn(6, latent)
    fake = g(z, y)
    # D step
    if name == "acgan":
        (ar, cr), (af, cf) = d(x, y), d(fake.detach(), y)
        d_loss, _ = acgan_d_loss(ar, af, cr, cf, y, y)
    elif name == "ssgan":
        d_loss, _ = ssgan_d_loss(d(x), d(fake.detach()), y, torch.arange(6) < 2)
    elif name in ("cgan_proj", "biggan"):
        d_loss = hinge_d_loss(d(x, y), d(fake.detach(), y))
    else:
        d_loss = minimax_d_loss(d(x, y), d(fake.detach(), y))
    d_loss.backward()
    missing = [n for n, p in d.named_parameters() if p.grad is None]
    assert torch.isfinite(d_loss) and not missing, missing
    # G step
    if name == "acgan":
        af, cf = d(fake, y)
        g_loss, _ = acgan_g_loss(None, af, cf, y)
    elif name == "ssgan":
        g_loss = feature_matching_loss(d.features(x), d.features(fake))
    elif name in ("cgan_proj", "biggan"):
        g_loss = hinge_g_loss(None, d(fake, y))
    else:
        g_loss = non_saturating_g_loss(None, d(fake, y))
    if name == "biggan":
        g_loss = g_loss + orthogonal_regularization(g.orthogonal_reg_parameters())
    g_loss.backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None]
    assert torch.isfinite(g_loss) and not missing, missing
