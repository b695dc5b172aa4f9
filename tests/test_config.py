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


@pytest.mark.parametrize("model", ["gan", "dcgan", "wgan", "wgan_gp", "sngan"])
def test_mixture2d_recipe_keeps_what_defines_the_variant(model):
    plain = compose_config([f"model={model}", "data=grid25"])
    tuned = compose_config([f"model={model}", "data=grid25", "experiment=mixture2d"])
    # what the 2-D recipe changes
    assert tuned.model.latent_dim == 2 and tuned.model.net.mlp.g_batch_norm is False
    assert tuned.model.lr_schedule == "linear" and tuned.model.ema.decay == 0.999
    assert tuned.model.g_optimizer.lr == tuned.model.d_optimizer.lr == 1e-3 and tuned.data.batch_size == 100
    # what it must leave alone: loss, critic schedule and normalisation, penalty, clipping, optimiser
    assert tuned.loss.name == plain.loss.name and tuned.model.n_critic == plain.model.n_critic
    assert tuned.model.net.d_norm == plain.model.net.d_norm and tuned.model.penalty == plain.model.penalty
    assert tuned.model.clip_value == plain.model.clip_value
    assert tuned.model.g_optimizer.name == plain.model.g_optimizer.name
    assert tuned.model.g_optimizer.get("betas") == plain.model.g_optimizer.get("betas")
    assert tuned.data.source._target_ == plain.data.source._target_


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
    assert compose_config([]).trainer.max_steps == 2000
    assert compose_config(["experiment=cifar10_wgan_gp", "trainer.max_steps=7"]).trainer.max_steps == 7
