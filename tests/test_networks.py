"""Network shapes, the size checks that run before training, and the DCGAN/SN structure."""

import pytest
import torch
from torch import nn

from gan_lab.data import DataInfo
from gan_lab.errors import UserError
from gan_lab.networks import dcgan_pair, mlp_pair, resnet_pair

PAIRS = {"mlp": mlp_pair, "dcgan": dcgan_pair, "resnet": resnet_pair}


def info_of(shape, name="x"):
    return DataInfo(name, "points" if len(shape) == 1 else "image", shape)


def build(arch, shape, latent=8, **kw):
    widths = {"mlp": {"width": kw.pop("width", 32)}}.get(arch, {"g_width": kw.pop("g_width", 16),
                                                               "d_width": kw.pop("d_width", 16)})
    return PAIRS[arch](info_of(shape), latent, **widths, **kw)


@pytest.mark.parametrize(
    "arch,shape",
    [("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32)), ("dcgan", (3, 64, 64)), ("resnet", (3, 32, 32)),
     ("mlp", (1, 8, 8)), ("mlp", (2,))],
)
@pytest.mark.parametrize("pack", [1, 2])
def test_shapes(arch, shape, pack):
    norm = "spectral" if arch == "resnet" else "batch"
    g, d = build(arch, shape, 10, d_norm=norm, pack=pack)
    x = g(torch.randn(4, 10))
    assert x.shape == (4, *shape)
    if len(shape) == 3:
        assert x.min() >= -1 and x.max() <= 1  # tanh output matches data in [-1, 1]
    packed = x.reshape(4 // pack, pack * shape[0], *shape[1:])
    assert d(packed).shape == (4 // pack,)


def test_auto_arch_picks_mlp_for_points_and_dcgan_for_images():
    from gan_lab.networks import select_arch

    assert select_arch("auto", info_of((2,)), PAIRS) == "mlp"
    assert select_arch("auto", info_of((1, 28, 28)), PAIRS) == "dcgan"
    with pytest.raises(UserError, match="unknown network arch 'vgg'"):
        select_arch("vgg", info_of((2,)), PAIRS)


@pytest.mark.parametrize("size", [8, 14, 16, 28, 32, 56, 64, 128])
def test_dcgan_takes_base_times_power_of_two_sizes(size):
    g, d = build("dcgan", (1, size, size), g_width=4, d_width=4)
    x = g(torch.randn(2, 8))
    assert x.shape == (2, 1, size, size) and d(x).shape == (2,)


@pytest.mark.parametrize("arch,shape", [("dcgan", (1, 10, 10)), ("dcgan", (3, 48, 48)), ("resnet", (1, 28, 28))])
def test_unsupported_image_size_is_a_clear_error(arch, shape):
    with pytest.raises(UserError, match=r"data.source.image_size"):
        build(arch, shape, d_norm="spectral")


def test_conv_arch_on_point_data_is_a_clear_error():
    with pytest.raises(UserError, match="arch=mlp"):
        dcgan_pair(info_of((2,), "ring8"), 8)


def test_dcgan_structure():
    g, d = build("dcgan", (3, 32, 32), 16, g_width=8, d_width=8)
    # no pooling and no fully connected hidden layers; BN in G except at the output
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Linear)) for m in g.modules())
    assert isinstance(list(g.net)[-1], nn.Tanh) and isinstance(list(g.net)[-2], nn.ConvTranspose2d)
    # D: first conv is followed directly by LeakyReLU (no BN at the input)
    feats = list(d.features)
    assert isinstance(feats[0], nn.Conv2d) and isinstance(feats[1], nn.LeakyReLU)
    assert any(isinstance(m, nn.BatchNorm2d) for m in feats)


@pytest.mark.parametrize("extra", [1, 2])
def test_dcgan_extra_layers_add_same_size_convolutions_at_each_hidden_resolution(extra):
    plain_g, plain_d = build("dcgan", (1, 28, 28), 16, g_width=8, d_width=8, d_norm="spectral")
    g, d = build("dcgan", (1, 28, 28), 16, g_width=8, d_width=8, d_norm="spectral", extra_layers=extra)

    def same_size_convs(net):
        return [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.kernel_size == (3, 3)]

    # 28 px: two hidden resolutions in G (7, 14 px) and in D (14, 7 px)
    assert not same_size_convs(plain_g) and not same_size_convs(plain_d)
    assert len(same_size_convs(g)) == 2 * extra and len(same_size_convs(d)) == 2 * extra
    assert all(isinstance(c, nn.Conv2d) and hasattr(c, "parametrizations") for c in same_size_convs(d))  # SN kept
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 2 + 2 * extra
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 1, 28, 28) and d(x).shape == (3,)
    with pytest.raises(UserError, match="extra_layers must be 0 or more"):
        build("dcgan", (1, 28, 28), extra_layers=-1)
    # D may have its own count (model.net.dcgan.d_extra_layers); G keeps extra_layers
    g2, d2 = build("dcgan", (1, 28, 28), 16, g_width=8, d_width=8, extra_layers=extra, d_extra_layers=extra + 1)
    assert len(same_size_convs(g2)) == 2 * extra and len(same_size_convs(d2)) == 2 * (extra + 1)
    assert d2(g2(torch.randn(3, 16))).shape == (3,)
    with pytest.raises(UserError, match="d_extra_layers must be 0 or more"):
        build("dcgan", (1, 28, 28), d_extra_layers=-1)


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    _, d = build("dcgan", (1, 28, 28), d_width=8, d_norm="spectral")
    d.train()
    for _ in range(30):  # power iterations converge during forward passes
        d(torch.randn(2, 1, 28, 28))
    w = d.head.linear.weight  # the normalised weight
    assert torch.linalg.matrix_norm(w.detach(), ord=2) == pytest.approx(1.0, rel=0.05)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_mlp_d_gain_scales_the_output_and_bounds_the_slope_of_a_spectral_d():
    torch.manual_seed(0)
    _, d1 = build("mlp", (2,), d_norm="spectral")
    torch.manual_seed(0)
    _, d30 = build("mlp", (2,), d_norm="spectral", d_gain=30.0)
    for d in (d1, d30):
        d.train()
        for _ in range(50):  # the same inputs: both power iterations reach the same estimates
            d(torch.linspace(-1, 1, 8).view(4, 2))
        d.eval()
    x = torch.randn(64, 2)
    with torch.no_grad():
        a, b = d1(x).double(), d30(x).double()
    assert torch.allclose(b, 30 * a, rtol=1e-5, atol=1e-6)
    # each spectrally normalised layer is at most 1-Lipschitz (LeakyReLU too): |D(x)-D(y)| <= gain |x-y|
    y = x + 0.01 * torch.randn(64, 2)
    with torch.no_grad():
        slope = (d30(y) - d30(x)).abs().double() / (y - x).norm(dim=1).double()
    assert float(slope.max()) <= 30 * 1.01
    with pytest.raises(UserError, match="d_gain must be positive"):
        build("mlp", (2,), d_gain=0.0)


def test_projection_head_uses_labels():
    _, d = build("mlp", (2,), width=16, num_classes=3)
    x = torch.randn(5, 2)
    a = d(x, torch.zeros(5, dtype=torch.long))
    b = d(x, torch.full((5,), 2, dtype=torch.long))
    assert not torch.allclose(a, b)
