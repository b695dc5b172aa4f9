"""The models with codes (aae, aae_supervised, aae_semi, aae_cluster, glo, gon) as a user runs
them: a few steps each, exact resume, the pictures, the encode / sample / evaluate commands, the
metrics and the mistakes a user can make (DDP: tests/test_encoding_ddp.py)."""

import json
import os

import lightning as L
import numpy as np
import pytest
import torch

from helpers import assert_continued_run_equals_longer_run, assert_stopped_run_resumes_exactly, load_ckpt, train
from gan_lab.errors import UserError

TINY = ["model.net.dcgan.width=4", "model.net.mlp.width=16", "data.batch_size=8", "print_config=false",
        "callbacks=minimal", "trainer.log_every_n_steps=1"]
AAE_TINY = ["model.code_d.width=16"]
MODELS = {
    "aae": ["model=aae", *AAE_TINY],
    "aae_supervised": ["model=aae_supervised", *AAE_TINY],
    "aae_semi": ["model=aae_semi", "data.labeled_per_class=2", "model.supervised.batch_size=8", *AAE_TINY],
    "aae_cluster": ["model=aae_cluster", *AAE_TINY],
    "glo": ["model=glo", "model.infer.steps=3"],
    "gon": ["model=gon"],
    "gon_variational": ["model=gon", "model.variational=true"],
}
UPDATES = {"aae": {"recon", "d", "gen"}, "aae_supervised": {"recon", "d", "gen"},
           "aae_semi": {"recon", "d", "gen", "sup"}, "aae_cluster": {"recon", "d", "gen"},
           "glo": {"fit"}, "gon": {"fit"}, "gon_variational": {"fit"}}


def args_of(name):
    return MODELS[name] + TINY


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_trains_a_few_steps(name, tmp_path):
    metrics = train(args_of(name) + ["trainer.max_steps=2"], tmp_path)
    counters = load_ckpt(tmp_path)["gan_lab"]["counters"]
    # one step per batch: every update ran once per step
    assert counters["step"] == counters["tick"] == 2
    assert {k for k in counters if k not in ("step", "tick", "phase", "phase_tick")} == UPDATES[name]
    assert all(counters[u] == 2 for u in UPDATES[name])
    assert all(np.isfinite(v) for v in metrics.values())
    if name.startswith("aae"):
        assert {"recon", "d_loss", "gen_loss", "lr/ae", "lr/d", "lr/gen"} <= set(metrics)
    if name == "glo":  # one update stepped both groups, each with its own optimizer and norm
        assert {"fit_grad_norm", "fit_codes_grad_norm", "lr/g", "lr/codes"} <= set(metrics)
        ckpt = load_ckpt(tmp_path)
        table = ckpt["state_dict"]["nets.codes.weight"]
        assert table.shape == (4500, 32) and torch.allclose(table.norm(dim=1), torch.ones(4500), atol=1e-5)
        assert len(ckpt["optimizer_states"]) == 2 and ckpt["gan_lab"]["config"]["model"]["num_codes"] == 4500
        # plain SGD on the table: the codes of the 2 x 8 images trained on moved, the rest kept
        # their PCA start (up to the re-projection's round-off)
        from gan_lab.data.sources import MNIST5k
        from gan_lab.families.latent import pca_codes

        dataset = MNIST5k().load()[0]
        start = pca_codes(dataset.take(torch.arange(len(dataset))).x, 32)
        change = (table - start).abs().max(dim=1).values
        moved, kept = int((change > 1e-4).sum()), int((change <= 1e-6).sum())
        assert 1 <= moved <= 16 and moved + kept == 4500


@pytest.mark.parametrize("name", list(MODELS))
def test_stopped_run_resumes_exactly(name, tmp_path):
    # GLO's code table (and its optimizer), GON's fitted Gaussian, the prior and label draws:
    # all of it checkpoint state or drawn from the restored streams
    assert_stopped_run_resumes_exactly(args_of(name), tmp_path, stop_at=2, steps=3)


@pytest.mark.parametrize("name", ["aae_semi", "glo"])
def test_finished_run_continued_equals_a_longer_run(name, tmp_path):
    assert_continued_run_equals_longer_run(args_of(name), tmp_path, first=2, total=3)


def test_points_data_train_with_mlps(tmp_path):
    # the 2-D mixtures: MLP encoder and decoder, a 2-D code scatter; GLO with the squared error
    train(args_of("aae") + ["data=ring8", "data.source.n_samples=2000", "trainer.max_steps=2", "callbacks=default"],
          tmp_path / "aae")
    assert {"step_0000002.png", "codes_step_0000002.png"} <= set(os.listdir(tmp_path / "aae" / "samples"))
    train(args_of("glo") + ["data=ring8", "data.source.n_samples=2000", "model.loss=l2", "model.latent_dim=2",
                            "trainer.max_steps=2"],
          tmp_path / "glo")
    assert load_ckpt(tmp_path / "glo")["state_dict"]["nets.codes.weight"].shape == (2000, 2)


# ------------------------------------------------------------------ pictures


def test_pictures_in_the_run_directory(tmp_path):
    from PIL import Image

    train(args_of("aae") + ["model.prior.name=mixture", "trainer.max_steps=2", "callbacks=default",
                            "callbacks.samples.every_n_steps=1", "logger=tensorboard"], tmp_path / "aae")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "aae" / "tensorboard"))
    events.Reload()  # every picture went to TensorBoard too, under its own tag
    assert {"samples", "reconstructions", "interpolations", "codes"} <= set(events.Tags()["images"])
    names = sorted(os.listdir(tmp_path / "aae" / "samples"))
    for kind in ("step", "reconstructions_step", "interpolations_step", "codes_step"):
        assert f"{kind}_0000001.png" in names and f"{kind}_0000002.png" in names
    recon = Image.open(tmp_path / "aae" / "samples" / "reconstructions_step_0000002.png")
    assert recon.size[0] > 6 * recon.size[1]  # two rows of 16: inputs above, outputs below
    interp = Image.open(tmp_path / "aae" / "samples" / "interpolations_step_0000002.png")
    assert interp.size[0] / interp.size[1] == pytest.approx(10 / 5, rel=0.05)  # 5 rows: a | 8 steps | b
    # codes of 10 dimensions: no scatter; the style x label grid of the supervised AAE
    train(args_of("aae_supervised") + ["trainer.max_steps=1", "callbacks=default"], tmp_path / "sup")
    names = os.listdir(tmp_path / "sup" / "samples")
    assert "reconstructions_step_0000001.png" in names and not any(n.startswith("codes") for n in names)
    grid = Image.open(tmp_path / "sup" / "samples" / "step_0000001.png")
    assert grid.size[0] == grid.size[1]  # 10 styles x 10 labels


# ------------------------------------------------------------------ using a trained model


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    out = {}
    for name in ("aae_supervised", "aae_semi", "aae_cluster", "glo", "gon"):
        run_dir = tmp_path_factory.mktemp(name)
        train(args_of(name) + ["trainer.max_steps=2"], run_dir)
        out[name] = str(run_dir / "checkpoints" / "last.ckpt")
    return out


def test_encode_cli(ckpts, tmp_path, capsys):
    from gan_lab import encode
    from gan_lab.checkpoint import load_module

    out = tmp_path / "semi.npz"
    assert encode.main([f"ckpt={ckpts['aae_semi']}", "split=test", f"out={out}"]) == 0
    d = np.load(out)
    assert d["codes"].shape == (500, 10) and d["codes"].dtype == np.float32
    assert d["labels"].dtype == np.int64 and np.bincount(d["labels"]).tolist() == [50] * 10
    assert d["predicted"].dtype == np.int64 and d["predicted"].min() >= 0 and d["predicted"].max() < 10
    module, _, _ = load_module(ckpts["aae_semi"])
    from gan_lab.data.sources import MNIST5k

    test_x = MNIST5k(split="test").load()[0].take(torch.arange(500)).x
    assert np.array_equal(d["predicted"], module.classify(test_x).argmax(1).numpy())
    assert "wrote 500 codes (10-d) of split test" in capsys.readouterr().out
    # clusters as predictions
    assert encode.main([f"ckpt={ckpts['aae_cluster']}", f"out={tmp_path}/cl.npz"]) == 0
    assert np.load(tmp_path / "cl.npz")["predicted"].max() < 16
    # GLO on its training split: the learned table itself, in the training set's order
    assert encode.main([f"ckpt={ckpts['glo']}", "split=train", f"out={tmp_path}/glo.npz"]) == 0
    glo = load_module(ckpts["glo"])[0]
    codes = np.load(tmp_path / "glo.npz")["codes"]
    assert np.array_equal(codes, glo.nets["codes"].weight.detach().numpy()) and "predicted" not in np.load(
        tmp_path / "glo.npz")
    # GON: the gradient-origin latents; a classifying GAN: its class logits and predictions
    assert encode.main([f"ckpt={ckpts['gon']}", f"out={tmp_path}/gon.npz"]) == 0
    assert np.load(tmp_path / "gon.npz")["codes"].shape == (500, 32)


def test_encode_a_classifying_gan_and_refuse_others(tmp_path, capsys):
    from gan_lab import encode

    train(["model=ssgan", "data.labeled_per_class=2", "model.ssgan.labeled_batch_size=8", "trainer.max_steps=1",
           "model.net.mlp.width=16", "data.batch_size=8", "print_config=false", "callbacks=minimal"], tmp_path / "ss")
    assert encode.main([f"ckpt={tmp_path}/ss/checkpoints/last.ckpt", f"out={tmp_path}/ss.npz"]) == 0
    d = np.load(tmp_path / "ss.npz")
    assert d["codes"].shape == (500, 10) and np.array_equal(d["predicted"], d["codes"].argmax(1))
    train(["model=gan", "data=ring8", "trainer.max_steps=1", "print_config=false", "callbacks=minimal"],
          tmp_path / "gan")
    capsys.readouterr()
    assert encode.main([f"ckpt={tmp_path}/gan/checkpoints/last.ckpt", f"out={tmp_path}/x.npz"]) == 2
    err = capsys.readouterr().err
    assert "model=gan has no codes to write" in err and len(err.strip().splitlines()) == 2  # the error and usage


def test_encode_bad_arguments(ckpts, tmp_path, capsys):
    from gan_lab import encode

    assert encode.main([f"ckpt={ckpts['gon']}", f"out={tmp_path}/x.npz", "split=valid"]) == 2
    assert "has the splits train, test" in capsys.readouterr().err
    assert encode.main([f"ckpt={ckpts['gon']}", f"out={tmp_path}/x.csv"]) == 2
    assert "written as a .npz file" in capsys.readouterr().err
    assert encode.main([f"ckpt={ckpts['gon']}", "out=/nodir/x.npz"]) == 2
    assert "/nodir" in capsys.readouterr().err
    assert encode.main([f"out={tmp_path}/x.npz"]) == 2
    assert "missing argument: ckpt" in capsys.readouterr().err


def test_sample_cli(ckpts, tmp_path, capsys):
    from gan_lab import sample

    assert sample.main([f"ckpt={ckpts['aae_supervised']}", "n=12", "labels=3", f"out={tmp_path}/s.npz"]) == 0
    d = np.load(tmp_path / "s.npz")
    assert d["samples"].shape == (12, 1, 28, 28) and (d["labels"] == 3).all()
    # the semi-supervised AAE's categories are the classes: labels= picks them too
    assert sample.main([f"ckpt={ckpts['aae_semi']}", "n=4", "labels=[1,2]", f"out={tmp_path}/semi.npz"]) == 0
    assert np.load(tmp_path / "semi.npz")["labels"].tolist() == [1, 2, 1, 2]
    for name in ("glo", "gon", "aae_cluster"):
        assert sample.main([f"ckpt={ckpts[name]}", "n=5", f"out={tmp_path}/{name}.npz", "seed=1"]) == 0
        again = tmp_path / f"{name}_again.npz"
        assert sample.main([f"ckpt={ckpts[name]}", "n=5", f"out={again}", "seed=1"]) == 0
        assert np.array_equal(np.load(tmp_path / f"{name}.npz")["samples"], np.load(again)["samples"])
    capsys.readouterr()
    assert sample.main([f"ckpt={ckpts['glo']}", "n=5", "labels=3", f"out={tmp_path}/x.npz"]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert sample.main([f"ckpt={ckpts['aae_cluster']}", "n=5", "labels=3", f"out={tmp_path}/x.npz"]) == 2
    assert "takes no labels=" in capsys.readouterr().err


def test_evaluate_recon_accuracy_cluster_acc(ckpts, tmp_path, monkeypatch, capsys):
    from gan_lab import evaluate
    from gan_lab.checkpoint import load_module
    from gan_lab.data.sources import MNIST5k
    from gan_lab.metrics.translation import psnr

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "semi.json"
    assert evaluate.main([f"ckpt={ckpts['aae_semi']}", "metrics=[recon,accuracy]", "n=20", f"out={out}"]) == 0
    res = json.loads(out.read_text())["results"]
    module, _, _ = load_module(ckpts["aae_semi"])
    test = MNIST5k(split="test").load()[0].take(torch.arange(500))
    rec = module.reconstruct(test.x)
    mse = ((rec.double() - test.x.double()) ** 2).flatten(1).mean(1).mean()
    assert res["recon_mse"] == pytest.approx(float(mse), rel=1e-6)
    assert res["recon_psnr"] == pytest.approx(psnr(rec, test.x), rel=1e-6)
    assert res["test_acc"] == pytest.approx(float((module.classify(test.x).argmax(1) == test.y).double().mean()))
    out = tmp_path / "cluster.json"
    assert evaluate.main([f"ckpt={ckpts['aae_cluster']}", "metrics=[cluster_acc]", "n=20", f"out={out}"]) == 0
    res = json.loads(out.read_text())["results"]
    assert 0.1 <= res["cluster_acc"] <= 1 and 1 <= res["clusters_used"] <= 16
    assert evaluate.main([f"ckpt={ckpts['glo']}", "metrics=[recon]", "n=20", f"out={tmp_path}/glo.json"]) == 0
    assert 0 < json.loads((tmp_path / "glo.json").read_text())["results"]["recon_mse"] < 4
    # mistakes, before any work
    capsys.readouterr()
    assert evaluate.main([f"ckpt={ckpts['aae_cluster']}", "metrics=[accuracy]", "n=20"]) == 2
    assert "scores a model's own classifier; model=aae_cluster has none" in capsys.readouterr().err
    assert evaluate.main([f"ckpt={ckpts['glo']}", "metrics=[cluster_acc]", "n=20"]) == 2
    assert "model=glo has no clusters" in capsys.readouterr().err


def test_metrics_during_training(tmp_path, monkeypatch):
    import csv

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    train(args_of("aae_cluster") + ["trainer.max_steps=2", "metrics=[recon,cluster_acc]", "eval.every_n_steps=2",
                                    "eval.num_samples=20"], tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["recon_mse"]) > 0 and 0 < float(last["cluster_acc"]) <= 1


# ------------------------------------------------------------------ bad input, before any work


@pytest.mark.parametrize("args,expected", [
    (["model=aae", "model.prior.name=mixture", "model.latent_dim=8"],
     "mixture is a 2-D prior; it needs model.latent_dim=2, got 8"),
    (["model=aae", "model.prior.name=swiss_roll", "model.latent_dim=3"], "swiss_roll is a 2-D prior"),
    (["model=aae_cluster", "model.categories=5000"], "5000 clusters is more than the 4500 training samples"),
    (["model=aae_semi"], "set data.labeled_per_class=<labels per class>"),
    (["model=aae_semi", "data.labeled_per_class=2", "model.categories=5"],
     "categories are the 10 classes of data mnist_5k"),
    (["model=aae", "model.prior_labels=true"], "prior_labels=true applies to model=aae with a prior made of"),
    (["model=aae", "metrics=[recon,cluster_acc]"], "model=aae has no clusters"),
    (["model=sngan", "metrics=[recon]"], "model=sngan has no codes to reconstruct from"),
    (["model=glo", "model.loss=lap1", "data=ring8"], r"lap1 \(the Laplacian pyramid\) needs images"),
    (["model=gon", "model.net.dcgan.batch_norm=true"], "must not use batch norm"),
])
def test_bad_input_is_one_line(args, expected, tmp_path):
    ours = not any(a.startswith("model=sngan") for a in args)  # sngan gets the helpers' own tiny sizes
    with pytest.raises(UserError, match=expected):
        train(args + (TINY if ours else ["print_config=false"]) + ["trainer.max_steps=1"], tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_bad_input_on_the_command_line_exits_2(tmp_path):
    from helpers import cli

    r = cli(["gan_lab", "model=aae", "model.prior.name=mixture", "model.latent_dim=8", f"run_dir={tmp_path}/run"])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("gan_lab: error: model.prior.name=mixture is a 2-D prior")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ the divergence guard, precision


class PoisonTick(L.Callback):
    """A NaN in the training batch of batch number ``tick``."""

    def __init__(self, tick: int):
        self.tick = tick

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.counters["tick"] + 1 == self.tick:
            batch.x[0].fill_(float("nan"))


def test_nan_stops_or_is_skipped(tmp_path, monkeypatch):
    from gan_lab import train as train_mod
    from gan_lab.errors import NonFiniteError

    original = train_mod.build_trainer

    def poisoned(cfg, run_dir, callbacks, loggers):
        return original(cfg, run_dir, callbacks + [PoisonTick(2)], loggers)

    monkeypatch.setattr(train_mod, "build_trainer", poisoned)
    with pytest.raises(NonFiniteError, match=r"diverged at step 2 \(recon update 2\)"):
        train(args_of("aae") + ["trainer.max_steps=3"], tmp_path / "stop")
    # skip: GLO's one update over two groups is skipped once; table and generator stay finite
    metrics = train(args_of("glo") + ["trainer.max_steps=3", "divergence=skip"], tmp_path / "skip")
    assert metrics["skipped_steps"] == 1.0
    state = load_ckpt(tmp_path / "skip")["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("name", ["aae_semi", "glo", "gon"])
def test_bf16_mixed_precision_trains(name, tmp_path):
    metrics = train(args_of(name) + ["trainer.max_steps=2", "trainer.precision=bf16-mixed"], tmp_path)
    assert all(np.isfinite(v) for v in metrics.values())
