"""The class-conditional family as a user runs it: cgan, acgan, cgan_proj, biggan and ssgan train on
mnist_5k and digits, resume exactly, keep DDP ranks identical, sample by class (labels=, truncation=),
draw one grid row per class, evaluate with the conditional metrics, and refuse bad input in one line."""

import math
import os

import numpy as np
import pytest
import torch

from helpers import (
    TINY,
    assert_continued_run_equals_longer_run,
    assert_ddp_ranks_identical,
    assert_stopped_run_resumes_exactly,
    compose_config,
    load_ckpt,
    train,
)
from gan_lab.errors import UserError

MODELS = ["cgan", "acgan", "cgan_proj", "biggan", "ssgan"]
# TINY covers the mlp/dcgan/resnet widths; BigGAN's and SSGAN's own sizes are kept small here
SMALL = ["model.net.biggan.g_width=4", "model.net.biggan.d_width=4", "model.net.biggan.shared_dim=8",
         "model.ssgan.labeled_batch_size=8", "trainer.log_every_n_steps=1"]
# what each model logs beyond d_loss / g_loss
LOGGED = {
    "cgan": set(),
    "acgan": {"d_class_real", "d_class_fake", "g_class", "d_class_acc"},
    "cgan_proj": {"wasserstein"},
    "biggan": {"ortho", "wasserstein"},
    "ssgan": {"d_sup", "d_unsup", "feature_matching"},
}


def rows(run_dir):
    import csv

    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def build(overrides, run_dir):
    """A model built from a composed config, as train/sample/evaluate build it."""
    from gan_lab.app import instantiate
    from gan_lab.checkpoint import build_module

    cfg = compose_config(TINY + SMALL + list(overrides), run_dir)
    datamodule = instantiate(cfg.data, "data", _convert_="all")
    return build_module(cfg, datamodule.info), datamodule


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_digits(model, tmp_path):
    metrics = train([f"model={model}", "data=digits", "trainer.max_steps=2", *SMALL], tmp_path)
    for key in {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"} | LOGGED[model]:
        assert key in metrics and math.isfinite(metrics[key]), key
    meta = load_ckpt(tmp_path)["gan_lab"]
    assert meta["family"] == "conditional" and meta["counters"]["step"] == 2
    assert meta["counters"]["d"] == 2 * meta["config"]["model"]["n_critic"]


# Every model a few steps on mnist_5k, stopped mid-run (for n_critic > 1 between two G steps) and
# resumed: the same weights, optimizers, RNG streams, data position and metrics.csv as one run.
# Tricks ride along where their state must resume too (historical averages, VBN's reference batch).
RESUME = {
    "cgan": (["model.tricks.historical_averaging=true", "model.tricks.virtual_batch_norm=true"], 2),
    "acgan": (["model.tricks.minibatch_discrimination=true", "model.fake_labels=uniform"], 2),
    "cgan_proj": ([], 7),
    "biggan": (["model.n_critic=2"], 3),
    "ssgan": (["data.labeled_per_class=3"], 2),
}


@pytest.mark.parametrize("model", MODELS)
def test_stopped_run_resumes_exactly_on_mnist_5k(model, tmp_path):
    extra, stop_at = RESUME[model]
    args = [f"model={model}", "data=mnist_5k", *SMALL, *extra]
    assert_stopped_run_resumes_exactly(args, tmp_path, stop_at=stop_at, steps=3)
    last = rows(tmp_path / "whole")[-1]
    for key in {"d_loss", "g_loss"} | LOGGED[model]:
        assert math.isfinite(float(last[key])), key


@pytest.mark.parametrize("model", ["biggan", "ssgan"])
def test_finished_run_continued_equals_longer_run(model, tmp_path):
    # BigGAN: EMA generator, orthogonal regularisation; SSGAN: the labelled pool is drawn again
    extra = ["model.n_critic=1"] if model == "biggan" else ["data.labeled_per_class=3"]
    assert_continued_run_equals_longer_run([f"model={model}", "data=digits", *SMALL, *extra], tmp_path)


DDP = {
    "cgan": ["model.tricks.feature_matching=true"],
    "acgan": ["model.tricks.historical_averaging=true"],
    "cgan_proj": ["model.n_critic=2"],
    "biggan": ["model.n_critic=2"],
    "ssgan": ["data.labeled_per_class=5"],
}


@pytest.mark.parametrize("model", MODELS)
def test_ddp_ranks_stay_identical(model, tmp_path):
    ckpt = assert_ddp_ranks_identical([f"model={model}", "data=digits", *SMALL, *DDP[model]], tmp_path, steps=2)
    assert ckpt["gan_lab"]["model"] == model


# ------------------------------------------------------------------ sampling, grids, evaluation


@pytest.fixture(scope="module")
def biggan_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("biggan")
    train(["model=biggan", "data=digits", "trainer.max_steps=1", "model.n_critic=1", *SMALL], run_dir)
    return str(run_dir / "checkpoints" / "last.ckpt")


def test_sample_by_class_and_truncation(biggan_ckpt, tmp_path, capsys):
    from gan_lab import sample

    out = tmp_path / "s.npz"
    assert sample.main([f"ckpt={biggan_ckpt}", "n=7", f"out={out}", "labels=[3,5]", "truncation=0.5"]) == 0
    saved = np.load(out)
    assert saved["samples"].shape == (7, 1, 8, 8) and saved["labels"].dtype == np.int64
    assert saved["labels"].tolist() == [3, 5, 3, 5, 3, 5, 3]
    assert sample.main([f"ckpt={biggan_ckpt}", "n=12", f"out={out}", "labels=all", "batch_size=5"]) == 0
    assert np.load(out)["labels"].tolist() == list(range(10)) + [0, 1]
    assert sample.main([f"ckpt={biggan_ckpt}", "n=4", f"out={out}", "labels=7"]) == 0
    assert np.load(out)["labels"].tolist() == [7] * 4
    capsys.readouterr()
    # one line each, exit 2
    for args, message in [
        (["labels=10"], "labels=10 is not a class of this model; it has 10 classes (0..9)"),
        (["truncation=0"], "truncation must be a positive number"),
        (["truncation=-0.5"], "truncation must be a positive number"),
    ]:
        assert sample.main([f"ckpt={biggan_ckpt}", "n=4", f"out={out}", *args]) == 2
        errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
        assert len(errors) == 1 and message in errors[0], errors


def test_truncation_draws_latents_within_psi_and_labels_follow_the_condition(biggan_ckpt):
    from gan_lab.checkpoint import load_module

    module, _, _ = load_module(biggan_ckpt)
    seen = {}
    orig = module.sampling_net("generator")
    forward = orig.forward

    def spy(z, y=None, **kw):
        seen["z"], seen["y"] = z, y
        return forward(z, y, **kw)

    orig.forward = spy
    gen = torch.Generator().manual_seed(0)
    batch = module.sample(200, gen, torch.arange(200) % 10, truncation=0.3)
    assert float(seen["z"].abs().max()) <= 0.3 and seen["z"].shape == (200, module.latent_dim)
    assert torch.equal(batch.y, torch.arange(200) % 10) and torch.equal(seen["y"], batch.y)
    # without a condition, labels cycle through the classes from a seeded start: balanced
    counts = torch.bincount(module.sample(30, torch.Generator().manual_seed(1)).y, minlength=10)
    assert counts.tolist() == [3] * 10


def test_grid_has_one_row_per_class_with_the_class_names(biggan_ckpt):
    from gan_lab.checkpoint import load_module

    module, _, _ = load_module(biggan_ckpt)
    batch, per_row, names = module.grid(torch.Generator().manual_seed(0))
    assert per_row == 10 and names == [str(c) for c in range(10)]
    assert torch.equal(batch.y, torch.arange(10).repeat_interleave(10)) and batch.x.shape == (100, 1, 8, 8)


def test_evaluate_truncation_sweep_writes_the_tradeoff_curve(biggan_ckpt, tmp_path, monkeypatch):
    import json

    from gan_lab import evaluate

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "eval.json"
    args = [f"ckpt={biggan_ckpt}", "metrics=[fid,cond_acc]", "feature=random", "feature.num_features=16",
            "n=40", "batch_size=20", f"out={out}", f"cache_dir={tmp_path}/cache", "truncation=[1.0,0.5]"]
    assert evaluate.main(args) == 0
    report = json.loads(out.read_text())
    assert report["truncation"] == [1.0, 0.5] and set(report["results"]) == {"truncation=1", "truncation=0.5"}
    assert {"fid", "cond_acc", "cond_acc/0"} <= set(report["results"]["truncation=0.5"])
    assert os.path.getsize(report["curve"]) > 0 and report["curve"].endswith("eval_truncation.png")


def test_conditional_metrics_through_training_and_evaluate(tmp_path, monkeypatch, capsys):
    """metrics=[cond_acc,intra_fid,cas] log like the other metrics in training, and evaluate prints them."""
    from gan_lab import evaluate

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    metrics = train(["model=cgan", "data=mnist_5k", "trainer.max_steps=2", "metrics=[fid,cond_acc,intra_fid,cas]",
                     "feature=random", "eval.num_samples=40", "eval.batch_size=20", "eval.every_n_steps=2",
                     "metrics.cas.epochs=1", "metrics.cas.min_updates=1", *SMALL], tmp_path / "run")
    for key in ("fid", "cond_acc", "intra_fid", "cas", "cond_acc/0", "intra_fid/9", "cas/5"):
        assert key in metrics and (math.isfinite(metrics[key]) or key.startswith("intra_fid/")), key
    assert 0 <= metrics["cond_acc"] <= 1 and 0 <= metrics["cas"] <= 1
    assert "cas" in rows(tmp_path / "run")[-1]
    assert evaluate.main([f"ckpt={tmp_path}/run/checkpoints/last.ckpt", "metrics=[cond_acc]", "feature=random",
                          "n=40", "batch_size=20", f"cache_dir={tmp_path}/cache"]) == 0
    assert "cond_acc/9" in capsys.readouterr().out


def test_ssgan_reports_test_accuracy_and_uses_the_labelled_subset(tmp_path):
    metrics = train(["model=ssgan", "data=mnist_5k", "data.labeled_per_class=2", "trainer.max_steps=2",
                     "metrics=[test_acc]", "eval.num_samples=16", "eval.batch_size=16", *SMALL], tmp_path)
    assert 0 <= metrics["test_acc"] <= 1 and "test_acc/3" in metrics
    assert metrics["labeled_rows"] == 8.0  # labeled_batch_size=8 drawn from the 20 labelled images
    module, datamodule = build(["model=ssgan", "data=mnist_5k", "data.labeled_per_class=2"], tmp_path)
    datamodule.setup()
    module.load_labelled_pool(datamodule)
    x, y = module.labelled_pool
    assert x.shape[0] == 20 and torch.bincount(y, minlength=10).tolist() == [2] * 10
    assert module.classify(x).shape == (20, 10)


# ------------------------------------------------------------------ bad input: one line, exit 2, before training


def run_refused(overrides, run_dir, capsys):
    from gan_lab.train import run_cli

    conditional = any(o.split("=")[-1] in MODELS for o in overrides if o.startswith("model="))
    with pytest.raises(SystemExit) as exc:
        run_cli(compose_config(TINY + (SMALL if conditional else []) + list(overrides), run_dir))
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("gan_lab:")]
    assert exc.value.code == 2 and len(lines) == 1, lines
    assert not (run_dir / "checkpoints").exists()
    return lines[0]


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["model=cgan", "data=mnist_5k", "data.labeled_per_class=451"],
         "data.labeled_per_class=451 exceeds the smallest class: class 0 has 450 examples"),
        (["model=cgan", "data=mnist_5k", "loss=wasserstein", "model.tricks.one_sided_label_smoothing=true"],
         "model.tricks.one_sided_label_smoothing applies to the cross-entropy losses (non_saturating, minimax), "
         "not to loss=wasserstein"),
        (["model=wgan_gp", "data=ring8", "model.tricks.one_sided_label_smoothing=true"], "not to loss=wasserstein"),
        (["model=wgan_gp", "data=ring8", "model.tricks.minibatch_discrimination=true"],
         "per-sample gradient penalty model.penalty.name=gp"),
        (["model=biggan", "data=mnist_5k", "model.tricks.one_sided_label_smoothing=true"], "not to loss=hinge"),
        (["model=ssgan", "data=mnist_5k", "model.tricks.one_sided_label_smoothing=true"],
         "model.tricks.one_sided_label_smoothing does not apply to model=ssgan"),
        (["model=gan", "data=ring8", "model.net.mlp.g_batch_norm=false", "model.tricks.virtual_batch_norm=true"],
         "virtual_batch_norm does not apply to model=gan"),
        (["model=cgan", "data=mnist_5k", "model.tricks.feature_matching.enabled=true",
          "model.tricks.feature_matching.layer=5"], "model.tricks.feature_matching.layer must be in [-2, 1]"),
        (["model=sngan", "data=mnist_5k", "metrics=[cond_acc]"],
         "metric 'cond_acc' scores samples by the class they were generated for; model=sngan is unconditional"),
        (["model=cgan", "data=mnist_5k", "metrics=[test_acc]"], "metric 'test_acc' scores a model's own classifier"),
        (["model=cgan", "data=digits", "metrics=[cas]"], "metric 'cas' needs the held-out 'test' split"),
        (["model=biggan", "data=ring8"], "model.net.arch=biggan needs images"),
        (["model=biggan", "data=mnist_5k", "model.latent_dim=100"], "latent_dim must be a multiple of 3"),
    ],
)
def test_bad_input_is_one_line_before_training(overrides, expected, tmp_path, capsys):
    line = run_refused(overrides, tmp_path / "run", capsys)
    assert expected in line, line


def test_conditional_model_on_unlabelled_data_is_refused(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((8, 8, 3), i * 10, dtype=np.uint8)).save(folder / f"{i}.png")
    line = run_refused(["model=acgan", "data=image_folder", f"data.source.root={folder}", "data.source.image_size=8",
                        "data.num_workers=0"], tmp_path / "run", capsys)
    assert "model=acgan is class-conditional and needs labelled data, but data image_folder has no labels" in line


def test_sizes_agree_with_the_dcgan_size_plan():
    from gan_lab.networks.cond_layers import image_size_plan
    from gan_lab.networks.dcgan import SUPPORTED_SIZES, size_plan

    for size in range(4, 300):
        plan = size_plan(size)
        if plan is None:
            with pytest.raises(UserError, match="takes square images of"):
                image_size_plan((1, size, size), "x")
        else:
            assert image_size_plan((1, size, size), "x") == (1, *plan) and size in SUPPORTED_SIZES
