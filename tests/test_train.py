"""Every model trains on 2-D and image data; steps, n_critic, resume and outputs behave."""

import csv
import os

import pytest
import torch

from helpers import train

MODELS = ["gan", "dcgan", "lsgan", "wgan", "wgan_gp", "wgan_div", "wgan_lp", "ragan", "sngan"]


def load_ckpt(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=False)


def read_csv(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("data", ["ring8", "mnist_5k"])
def test_every_model_trains(model, data, tmp_path):
    metrics = train([f"model={model}", f"data={data}", "trainer.max_steps=3", "trainer.log_every_n_steps=1"], tmp_path)
    for key in ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm"):
        assert key in metrics and torch.isfinite(torch.tensor(metrics[key])), key
    if model.startswith("wgan") or model == "sngan":
        assert "wasserstein" in metrics
    if model in ("wgan_gp", "wgan_div", "wgan_lp"):
        assert metrics["penalty"] >= 0
    ckpt = load_ckpt(tmp_path)
    meta = ckpt["gan_lab"]
    n_critic = meta["config"]["model"]["n_critic"]
    # a step is one G update, whatever n_critic is
    assert meta["counters"]["step"] == 3 and meta["counters"]["d"] == 3 * n_critic
    assert [int(r["step"]) for r in read_csv(tmp_path)] == [1, 2, 3]


def test_weight_clipping_keeps_critic_in_box(tmp_path):
    # the variant's clipping (biases too); wgan's 2-D recipe leaves the biases free (test below)
    train(["model=wgan", "data=ring8", "trainer.max_steps=2", "model.clip_value=0.005", "model.clip_biases=true"],
          tmp_path)
    sd = load_ckpt(tmp_path)["state_dict"]
    d_weights = [v for k, v in sd.items() if k.startswith("nets.discriminator.") and "running_" not in k and v.dtype.is_floating_point]
    assert max(float(w.abs().max()) for w in d_weights) <= 0.005 + 1e-9


def test_weight_clipping_can_leave_biases_free(tmp_path):
    """model.clip_biases=false: every weight in [-c, c], biases (initialised up to 1/sqrt(2) in the
    first layer) left where the optimizer puts them."""
    train(["model=wgan", "data=ring8", "trainer.max_steps=2", "model.clip_value=0.005", "model.clip_biases=false"],
          tmp_path)
    sd = load_ckpt(tmp_path)["state_dict"]
    d_params = {k: v for k, v in sd.items()
                if k.startswith("nets.discriminator.") and "running_" not in k and v.dtype.is_floating_point}
    weights = [v for k, v in d_params.items() if not k.endswith("bias")]
    biases = [v for k, v in d_params.items() if k.endswith("bias")]
    assert weights and biases
    assert max(float(w.abs().max()) for w in weights) <= 0.005 + 1e-9
    assert max(float(b.abs().max()) for b in biases) > 0.1


def test_optimizer_switches_and_schedules(tmp_path):
    train(
        ["model=dcgan", "data=ring8", "trainer.max_steps=4", "model.g_optimizer.name=sgd",
         "+model.g_optimizer.momentum=0.9", "model.d_optimizer.name=rmsprop", "model.lr_schedule=linear"],
        tmp_path,
    )
    ckpt = load_ckpt(tmp_path)
    opt_g, opt_d = ckpt["optimizer_states"]
    assert "momentum_buffer" in next(iter(opt_g["state"].values()))
    assert "square_avg" in next(iter(opt_d["state"].values()))
    # linear decay: lr factor after 4 of 4 steps is 0
    assert ckpt["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(0.0)


def test_ema_generator_tracks_generator(tmp_path):
    train(["model=sngan", "data=ring8", "trainer.max_steps=5", "model.ema.decay=0.5"], tmp_path)
    sd = load_ckpt(tmp_path)["state_dict"]
    g = {k[len("nets.generator."):]: v for k, v in sd.items() if k.startswith("nets.generator.")}
    e = {k[len("ema.generator."):]: v for k, v in sd.items() if k.startswith("ema.generator.")}
    assert g.keys() == e.keys()
    diffs = [float((g[k] - e[k]).abs().max()) for k in g if g[k].dtype.is_floating_point]
    assert max(diffs) > 0  # EMA lags behind G ...
    assert max(diffs) < 0.1  # ... but follows it


def test_ema_rampup_none_uses_the_decay_from_the_first_step(tmp_path):
    """model.ema.rampup=none: after one step EMA = decay * G_0 + (1 - decay) * G_1 exactly (the
    default TF ramp-up would weigh G_0 by (1 + 1) / (10 + 1) instead); a bad value is refused."""
    from gan_lab.app import instantiate
    from gan_lab.checkpoint import build_module
    from gan_lab.errors import UserError
    from helpers import compose_config, tiny_for

    overrides = ["model=sngan", "data=ring8", "model.ema.decay=0.75", "+model.ema.rampup=none"]
    cfg = compose_config(tiny_for(overrides) + overrides, tmp_path / "init")
    torch.manual_seed(cfg.seed)  # the init a training run with this seed builds
    g0 = {k: v.clone() for k, v in build_module(cfg, instantiate(cfg.data, "data", _convert_="all").info)
          .nets["generator"].state_dict().items()}
    train([*overrides, "trainer.max_steps=1"], tmp_path / "run")
    sd = load_ckpt(tmp_path / "run")["state_dict"]
    checked = 0
    for k, v in g0.items():
        if v.dtype.is_floating_point and "running" not in k:
            g1, ema = sd[f"nets.generator.{k}"], sd[f"ema.generator.{k}"]
            if not torch.equal(g1, v):
                torch.testing.assert_close(ema, 0.75 * v + 0.25 * g1, rtol=0, atol=1e-6)
                checked += 1
    assert checked > 0
    with pytest.raises(UserError, match="model.ema.rampup"):
        build_module(compose_config(["model=sngan", "data=ring8", "+model.ema.rampup=linear"], tmp_path / "bad"),
                     instantiate(cfg.data, "data", _convert_="all").info)


def test_pack_builds_a_pacgan_discriminator(tmp_path):
    train(["model=gan", "data=ring8", "trainer.max_steps=2", "model.pack=4"], tmp_path)
    sd = load_ckpt(tmp_path)["state_dict"]
    first = next(v for k, v in sd.items() if k.startswith("nets.discriminator.") and k.endswith("weight"))
    assert first.shape[1] == 2 * 4  # 4 two-dimensional samples per D input


# a constant lr: on ring8 the 2-D recipe's linear schedule ends at each call's max_steps, so a run
# continued to 7 steps would follow a different schedule than one trained to 7 in one go
SNGAN_RING = ["model=sngan", "data=ring8", "model.lr_schedule=constant"]


def test_resume_continues_step_count_optimizer_and_ema(tmp_path):
    first, resumed = tmp_path / "a", tmp_path / "b"
    train([*SNGAN_RING, "trainer.max_steps=4", "trainer.log_every_n_steps=1"], first)
    ckpt_a = load_ckpt(first)
    train(
        [*SNGAN_RING, "trainer.max_steps=7", "trainer.log_every_n_steps=1",
         f"ckpt_path={first}/checkpoints/last.ckpt"],
        resumed,
    )
    ckpt_b = load_ckpt(resumed)
    assert ckpt_b["gan_lab"]["counters"]["step"] == 7
    # Adam's step counter continued from 4 rather than restarting at 0
    step_b = next(iter(ckpt_b["optimizer_states"][0]["state"].values()))["step"]
    assert int(step_b) == 7
    assert [int(r["step"]) for r in read_csv(resumed)] == [5, 6, 7]
    # the resumed run started from the saved EMA (not a fresh copy of G): it ends where an
    # uninterrupted 7-step run ends, EMA included
    train([*SNGAN_RING, "trainer.max_steps=7", "trainer.log_every_n_steps=1"], tmp_path / "c")
    whole = load_ckpt(tmp_path / "c")["state_dict"]
    assert ckpt_a["state_dict"].keys() == whole.keys()
    assert all(torch.equal(whole[k], ckpt_b["state_dict"][k]) for k in whole if k.startswith("ema."))


def test_resume_into_same_run_dir_keeps_history(tmp_path):
    train(["model=dcgan", "data=ring8", "trainer.max_steps=3", "trainer.log_every_n_steps=1"], tmp_path)
    train(
        ["model=dcgan", "data=ring8", "trainer.max_steps=5", "trainer.log_every_n_steps=1",
         f"ckpt_path={tmp_path}/checkpoints/last.ckpt"],
        tmp_path,
    )
    assert [int(r["step"]) for r in read_csv(tmp_path)] == [1, 2, 3, 4, 5]


def test_periodic_checkpoints_and_sample_grids(tmp_path):
    train(
        ["model=dcgan", "data=mnist_5k", "trainer.max_steps=4", "callbacks=default",
         "callbacks.samples.every_n_steps=2", "callbacks.checkpoint.every_n_steps=2"],
        tmp_path,
    )
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["last.ckpt", "step_0000002.ckpt", "step_0000004.ckpt"]
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_0000002.png", "step_0000004.png"]
    from PIL import Image

    img = Image.open(tmp_path / "samples" / "step_0000004.png")
    assert img.size[0] > 28 * 7  # an 8 x 8 grid of 28 px digits
    assert os.path.exists(tmp_path / "config.yaml")


def test_scatter_plot_for_2d_data(tmp_path):
    train(["model=gan", "data=ring8", "trainer.max_steps=2", "callbacks=default"], tmp_path)
    assert os.listdir(tmp_path / "samples") == ["step_0000002.png"]


def test_tensorboard_logger(tmp_path):
    train(["model=gan", "data=ring8", "trainer.max_steps=2", "trainer.log_every_n_steps=1",
           "logger=tensorboard", "callbacks=default"], tmp_path)
    events = [f for _, _, fs in os.walk(tmp_path / "tensorboard") for f in fs if f.startswith("events")]
    assert events and os.path.exists(tmp_path / "metrics.csv")


def test_wandb_logger_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: must fall back to offline mode
    train(["model=gan", "data=ring8", "trainer.max_steps=2", "trainer.log_every_n_steps=1",
           "logger=wandb", "callbacks=default"], tmp_path)
    offline = [d for d in os.listdir(tmp_path / "wandb") if d.startswith("offline-run")]
    assert offline, os.listdir(tmp_path / "wandb")


def test_logger_none_writes_no_metrics(tmp_path):
    train(["model=gan", "data=ring8", "trainer.max_steps=2", "logger=none"], tmp_path)
    assert not os.path.exists(tmp_path / "metrics.csv")
    assert os.path.exists(tmp_path / "checkpoints" / "last.ckpt")
