"""Network shapes, the size checks that run before training, and the DCGAN/SN structure."""

import pytest
import torch
from torch import nn

from gan_lab.errors import UserError
from gan_lab.networks import NetConfig, build_networks


@pytest.mark.parametrize(
    "arch,shape",
    [("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32)), ("dcgan", (3, 64, 64)), ("resnet", (3, 32, 32)),
     ("mlp", (1, 8, 8)), ("mlp", (2,))],
)
@pytest.mark.parametrize("pack", [1, 2])
def test_shapes(arch, shape, pack):
    kind = "vector" if len(shape) == 1 else "image"
    norm = "spectral" if arch == "resnet" else "batch"
    net = NetConfig(arch=arch, g_width=16, d_width=16, mlp_width=32, d_norm=norm)
    g, d = build_networks(net, 10, shape, kind, pack=pack)
    x = g(torch.randn(4, 10))
    assert x.shape == (4, *shape)
    if kind == "image":
        assert x.min() >= -1 and x.max() <= 1  # tanh output matches data in [-1, 1]
    packed = x.reshape(4 // pack, pack * shape[0], *shape[1:])
    assert d(packed).shape == (4 // pack,)


def test_auto_arch_picks_mlp_for_vectors_and_dcgan_for_images():
    g, _ = build_networks(NetConfig(), 8, (2,), "vector")
    assert type(g).__name__ == "MLPGenerator"
    g, _ = build_networks(NetConfig(g_width=8, d_width=8), 8, (1, 28, 28), "image")
    assert type(g).__name__ == "DCGANGenerator"


@pytest.mark.parametrize("arch,shape", [("dcgan", (1, 8, 8)), ("dcgan", (3, 48, 48)), ("resnet", (1, 28, 28))])
def test_unsupported_image_size_is_a_clear_error(arch, shape):
    net = NetConfig(arch=arch, d_norm="spectral")
    with pytest.raises(UserError, match=r"data.source.image_size"):
        build_networks(net, 8, shape, "image", data_name="x")


def test_conv_arch_on_vector_data_is_a_clear_error():
    with pytest.raises(UserError, match="arch=mlp"):
        build_networks(NetConfig(arch="dcgan"), 8, (2,), "vector", data_name="ring8")


def test_dcgan_structure():
    g, d = build_networks(NetConfig(arch="dcgan", g_width=8, d_width=8), 16, (3, 32, 32), "image")
    # no pooling and no fully connected hidden layers; BN in G except at the output
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Linear)) for m in g.modules())
    assert isinstance(list(g.net)[-1], nn.Tanh) and isinstance(list(g.net)[-2], nn.ConvTranspose2d)
    # D: first conv is followed directly by LeakyReLU (no BN at the input)
    feats = list(d.features)
    assert isinstance(feats[0], nn.Conv2d) and isinstance(feats[1], nn.LeakyReLU)
    assert any(isinstance(m, nn.BatchNorm2d) for m in feats)


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    _, d = build_networks(NetConfig(arch="dcgan", d_width=8, d_norm="spectral"), 8, (1, 28, 28), "image")
    d.train()
    for _ in range(30):  # power iterations converge during forward passes
        d(torch.randn(2, 1, 28, 28))
    w = d.head.linear.weight  # the normalised weight
    assert torch.linalg.matrix_norm(w.detach(), ord=2) == pytest.approx(1.0, rel=0.05)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_projection_head_uses_labels():
    _, d = build_networks(NetConfig(arch="mlp", mlp_width=16), 8, (2,), "vector", num_classes=3)
    x = torch.randn(5, 2)
    a = d(x, torch.zeros(5, dtype=torch.long))
    b = d(x, torch.full((5,), 2, dtype=torch.long))
    assert not torch.allclose(a, b)
