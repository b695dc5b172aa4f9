"""Every option of every config group composes, and the model/loss defaults behave."""

import os

import pytest

from helpers import CONFIG_DIR, compose_config


def options(group: str) -> list[str]:
    return sorted(f[:-5] for f in os.listdir(os.path.join(CONFIG_DIR, group)) if f.endswith(".yaml"))


GROUPS = ["model", "loss", "data", "accelerator", "logger", "callbacks", "experiment"]


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_option_composes(group, option):
    cfg = compose_config([f"{group}={option}"], run_dir="/tmp/unused")
    # resolving everything catches broken interpolations too
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["model"]["name"]
    assert resolved["loss"]["name"]


def test_variants_share_one_base_config():
    # a variant file states only what it changes; the rest comes from conf/base/adversarial.yaml
    import yaml

    for name in options("model"):
        with open(os.path.join(CONFIG_DIR, "model", f"{name}.yaml")) as f:
            text = yaml.safe_load(f)
        if "/base/adversarial@model" in text["defaults"]:
            assert len(text["model"]) <= 8, name
    gan, lsgan = compose_config(["model=gan"]).model, compose_config(["model=lsgan"]).model
    assert gan._target_ == lsgan._target_ == "gan_lab.families.AdversarialGAN"


def test_groups_are_not_empty():
    assert len(options("model")) >= 9
    for g in GROUPS:
        assert options(g), g


@pytest.mark.parametrize(
    "model,loss",
    [("gan", "non_saturating"), ("dcgan", "non_saturating"), ("lsgan", "least_squares"),
     ("wgan", "wasserstein"), ("wgan_gp", "wasserstein"), ("wgan_div", "wasserstein"),
     ("wgan_lp", "wasserstein"), ("ragan", "ragan_sgan"), ("sngan", "hinge")],
)
def test_model_sets_its_default_loss(model, loss):
    assert compose_config([f"model={model}"]).loss.name == loss


def test_command_line_loss_overrides_model_default():
    assert compose_config(["model=wgan_gp", "loss=hinge"]).loss.name == "hinge"
    assert compose_config(["loss=minimax", "model=gan"]).loss.name == "minimax"
    assert compose_config(["model=ragan", "loss=ragan_hinge"]).loss.name == "ragan_hinge"


def test_variant_settings():
    wgan = compose_config(["model=wgan"]).model
    assert wgan.clip_value == 0.01 and wgan.n_critic == 5 and wgan.g_optimizer.name == "rmsprop"
    gp = compose_config(["model=wgan_gp"]).model
    assert gp.penalty.name == "gp" and gp.penalty.weight == 10 and gp.net.d_norm != "batch"
    div = compose_config(["model=wgan_div"]).model
    assert (div.penalty.name, div.penalty.weight, div.penalty.p) == ("div", 2.0, 6.0)
    assert compose_config(["model=sngan"]).model.net.d_norm == "spectral"
    assert compose_config(["model=wgan_lp"]).model.penalty.name == "lp"


VARIANTS_2D = ["gan", "dcgan", "lsgan", "wgan", "wgan_gp", "wgan_div", "wgan_lp", "ragan", "sngan"]


@pytest.mark.parametrize("data", ["ring8", "grid25"])
@pytest.mark.parametrize("model", VARIANTS_2D)
def test_2d_data_gives_every_variant_its_2d_recipe(model, data):
    # model=<m> data=ring8|grid25 with no other override starts from the 2-D recipe
    # (conf/data_model/): 2-D latent, an MLP G without BN (5 layers for most), a decaying lr,
    # an EMA G, batch 100
    cfg = compose_config([f"model={model}", f"data={data}"])
    images = compose_config([f"model={model}", "data=mnist_5k"])
    assert cfg.model.latent_dim == 2 and cfg.model.net.mlp.g_batch_norm is False
    # G: 5 layers, but 3 (the image default) for the variants with the sigmoid loss (gan on the
    # grid has 5 with its R1 penalty: conf/data_model/mixture2d_grid25/gan.yaml)
    gan_on_grid = (model, data) == ("gan", "grid25")
    assert cfg.model.net.mlp.g_depth == (3 if model in ("gan", "dcgan", "ragan") and not gan_on_grid else 5)
    assert images.model.net.mlp.g_depth == 3
    assert cfg.model.lr_schedule == "linear" and cfg.model.ema.decay == 0.999
    assert cfg.data.batch_size == 100
    # the variant stays the variant: its loss, its critic normalisation, penalty kind, clipping
    assert cfg.model.name == model and cfg.loss.name == images.loss.name
    if model == "sngan":
        assert cfg.model.net.d_norm == "spectral"
    assert (cfg.model.penalty or {}).get("name") == ("r1" if gan_on_grid else (images.model.penalty or {}).get("name"))
    assert (cfg.model.clip_value is None) == (images.model.clip_value is None)
    assert cfg.model.g_optimizer.name == images.model.g_optimizer.name
    # experiment=mixture2d is an alias of the default now
    assert compose_config([f"model={model}", f"data={data}", "experiment=mixture2d"]) == cfg


def test_per_variant_2d_settings():
    # the WGAN-GP paper's toy critic: weak penalty, no normalisation; 3 critic updates per G step
    gp = compose_config(["model=wgan_gp", "data=ring8"])
    assert gp.model.penalty.weight == 0.1 and gp.model.net.d_norm == "none" and gp.model.n_critic == 3
    assert list(gp.model.d_optimizer.betas) == [0.5, 0.9] and gp.trainer.max_steps == 5000
    images = compose_config(["model=wgan_gp", "data=mnist_5k"]).model
    assert images.penalty.weight == 10 and images.n_critic == 5
    lp = compose_config(["model=wgan_lp", "data=grid25"])
    assert lp.model.n_critic == 3 and lp.model.net.d_norm == "none" and lp.trainer.max_steps == 5000
    div = compose_config(["model=wgan_div", "data=ring8"]).model
    assert div.n_critic == 3 and div.net.d_norm == "none" and list(div.g_optimizer.betas) == [0.5, 0.9]
    assert compose_config(["model=wgan_div", "data=mnist_5k"]).model.net.d_norm == "layer"
    # 3 critic updates per G step with D's slope allowed up to 30 (spectral norm alone caps it at 1)
    sn = compose_config(["model=sngan", "data=grid25"])
    assert sn.model.n_critic == 3 and sn.trainer.max_steps == 5000 and sn.model.net.mlp.d_gain == 30
    assert compose_config(["model=sngan", "data=mnist_5k"]).model.net.mlp.d_gain == 1.0
    # grid25 only: the critic at 3e-4 (G and the ring keep 1e-3)
    assert sn.model.d_optimizer.lr == 3e-4 and sn.model.g_optimizer.lr == 1e-3
    assert compose_config(["model=sngan", "data=ring8"]).model.d_optimizer.lr == 1e-3
    # wgan on both mixtures: the critic's biases stay unclipped (its weights keep the 0.01 box),
    # G steps at 5e-4 and the critic at 2.5e-5; on images the variant's own 5e-5 and clipped biases
    for data in ("ring8", "grid25"):
        wgan_2d = compose_config(["model=wgan", f"data={data}"])
        assert wgan_2d.trainer.max_steps == 5000 and wgan_2d.model.clip_value == 0.01
        assert wgan_2d.model.clip_biases is False
        assert wgan_2d.model.g_optimizer.lr == 5e-4 and wgan_2d.model.d_optimizer.lr == 2.5e-5
    # and on the grid a 4-layer critic (conf/data_model/mixture2d_grid25/wgan.yaml)
    assert compose_config(["model=wgan", "data=grid25"]).model.net.mlp.d_depth == 4
    assert compose_config(["model=wgan", "data=ring8"]).model.net.mlp.d_depth == 3
    wgan_images = compose_config(["model=wgan", "data=mnist_5k"]).model
    assert wgan_images.clip_biases is True and wgan_images.d_optimizer.lr == 5e-5
    # one D update per G step: 12,000 G steps
    assert compose_config(["model=gan", "data=ring8"]).trainer.max_steps == 12000
    assert compose_config(["model=gan", "data=mnist_5k"]).trainer.max_steps == 2000
    # grid25-only settings (conf/data_model/mixture2d_grid25/): lsgan trains longer on the grid
    assert compose_config(["model=lsgan", "data=grid25"]).trainer.max_steps == 14000
    assert compose_config(["model=lsgan", "data=ring8"]).trainer.max_steps == 12000
    gan_grid = compose_config(["model=gan", "data=grid25"])
    assert gan_grid.trainer.max_steps == 12000 and gan_grid.model.penalty.name == "r1"
    assert gan_grid.model.penalty.weight == 1.0 and gan_grid.model.net.mlp.g_depth == 5
    assert compose_config(["model=gan", "data=ring8"]).model.penalty is None
    assert compose_config(["model=lsgan", "data=grid25", "trainer.max_steps=500"]).trainer.max_steps == 500


def test_default_run_learning_rates_stay_with_mnist_5k():
    # conf/data_model/mnist_5k/sngan.yaml: 8x the model's rates, for the default run only
    default = compose_config([]).model
    assert default.name == "sngan" and default.g_optimizer.lr == 1.6e-3 and default.d_optimizer.lr == 3.2e-3
    assert list(default.d_optimizer.betas) == [0.0, 0.9]
    for other in (["data=stacked_mnist_5k"], ["data=mnist"], ["~data_model"]):
        cfg = compose_config(other).model
        assert cfg.g_optimizer.lr == 2.0e-4 and cfg.d_optimizer.lr == 4.0e-4, other
    assert compose_config(["model=dcgan"]).model.g_optimizer.lr == 2.0e-4
    assert compose_config(["model.d_optimizer.lr=1e-4"]).model.d_optimizer.lr == 1e-4


@pytest.mark.parametrize("model", ["gan", "wgan_gp", "sngan"])
def test_command_line_wins_over_the_2d_recipe(model):
    cfg = compose_config([f"model={model}", "data=ring8", "model.latent_dim=100", "data.batch_size=256",
                          "model.lr_schedule=constant", "model.net.mlp.g_depth=3"])
    assert cfg.model.latent_dim == 100 and cfg.data.batch_size == 256 and cfg.model.lr_schedule == "constant"
    assert cfg.model.net.mlp.g_depth == 3
    # ~data_model drops the recipe: the variant's plain defaults, as on image data
    plain = compose_config([f"model={model}", "data=ring8", "~data_model"])
    assert plain.model == compose_config([f"model={model}", "data=mnist_5k", "~data_model"]).model


@pytest.mark.parametrize("model", VARIANTS_2D + ["aae", "glo", "cgan"])
def test_the_2d_recipe_leaves_image_data_and_other_families_alone(model):
    images = compose_config([f"model={model}", "data=mnist_5k", "~data_model"])
    # model settings do not depend on the data except through conf/data_model/
    assert images.model == compose_config([f"model={model}", "data=mnist_5k", "data=ring8", "~data_model"]).model
    if model != "sngan":  # the default run's model has settings of its own on mnist_5k
        assert compose_config([f"model={model}", "data=mnist_5k"]).model == images.model
    if model in ("aae", "glo", "cgan"):  # no 2-D recipe for other families: their defaults on ring8 too
        assert compose_config([f"model={model}", "data=ring8"]).model == images.model
    if model == "gan":
        assert images.model.latent_dim == 100 and images.model.ema is None and images.data.batch_size != 100


def test_ring8_pacgan_keeps_the_paper_setting():
    cfg = compose_config(["experiment=ring8_pacgan"]).model
    assert cfg.pack == 2 and cfg.latent_dim == 2 and cfg.net.mlp.g_batch_norm is True
    assert cfg.lr_schedule == "constant" and cfg.ema is None and cfg.g_optimizer.lr == 1e-4


def test_mlp_generator_without_batch_norm():
    import torch

    from gan_lab.data import DataInfo
    from gan_lab.networks import mlp_pair

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        g, _ = mlp_pair(DataInfo("ring8", "points", (2,)), 2, g_batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in g.modules())
    g.eval().double()
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # without batch statistics a sample does not depend on the rest of its batch. Checked in float64:
    # BLAS may round a 1-row and a 5-row product differently (float32 outputs of ~0.06 differed by 3e-8),
    # ~1e-17 in float64, far inside assert_close's 1e-7; a batch-dependent layer would move them O(1)
    torch.testing.assert_close(g(z)[:1], g(z[:1]))


def test_configs_ship_inside_the_wheel(tmp_path):
    # a non-editable install must find its configs: they live in the package and the wheel has them
    import subprocess
    import sys
    import zipfile

    from helpers import REPO

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", REPO,
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("gan_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("config.yaml", "sample.yaml", "evaluate.yaml", "model/gan.yaml", "base/adversarial.yaml",
                 "data/mnist_5k.yaml", "hydra/job_logging/gan_lab.yaml"):
        assert f"gan_lab/conf/{name}" in names, name


def test_groups_override_the_main_config():
    # an experiment (or a model) may set trainer values: the main config's own values come first
    assert compose_config(["experiment=cifar10_wgan_gp"]).trainer.max_steps == 100000
    default = compose_config([])  # the default run: sngan on mnist_5k (conf/model/sngan.yaml)
    assert default.trainer.max_steps == 3750  # conf/data_model/mnist_5k/sngan.yaml
    assert compose_config(["data=cifar10"]).trainer.max_steps == 3000  # the model's own elsewhere
    assert compose_config(["trainer.max_steps=11"]).trainer.max_steps == 11
    assert default.model.net.dcgan.extra_layers == 1
    assert compose_config(["model=dcgan"]).model.net.dcgan.extra_layers == 0  # other variants keep plain DCGAN nets
    assert compose_config(["experiment=cifar10_wgan_gp", "trainer.max_steps=7"]).trainer.max_steps == 7
