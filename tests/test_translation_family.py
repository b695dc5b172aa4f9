"""Pix2Pix and CycleGAN as a user runs them: training on the embedded and folder sets, exact
resume, DDP, the metrics, the translate CLI and the mistakes a user can make."""

import csv
import os

import numpy as np
import pytest
import torch

from helpers import (
    assert_continued_run_equals_longer_run,
    assert_ddp_continued_run_equals_longer_run,
    assert_ddp_ranks_identical,
    assert_stopped_run_resumes_exactly,
    compose_config,
    load_ckpt,
    train,
)
from gan_lab.errors import UserError

# tiny networks, small batches, a short embedded set
P2P = ["model=pix2pix", "model.generator.width=4", "model.discriminator.width=4", "data.batch_size=8",
       "print_config=false", "callbacks=minimal", "trainer.log_every_n_steps=1"]
CYC = ["model=cyclegan", "model.generator.width=4", "model.generator.n_blocks=1", "model.discriminator.width=4",
       "model.pool_size=6", "data.batch_size=4", "print_config=false", "callbacks=minimal", "trainer.log_every_n_steps=1"]


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ training


def test_pix2pix_trains_on_edges2mnist_by_default(tmp_path):
    cfg = compose_config(["model=pix2pix"])
    assert cfg.data.source._target_.endswith("Edges2MNIST5k") and cfg.loss.name == "non_saturating"
    metrics = train(P2P + ["trainer.max_steps=2"], tmp_path)
    assert {"d_loss", "g_loss", "g_adv", "g_l1", "lr/g", "lr/d"} <= set(metrics)
    meta = load_ckpt(tmp_path)["gan_lab"]
    assert meta["counters"]["step"] == 2 and meta["counters"]["d"] == 2 and meta["family"] == "translation"


@pytest.mark.parametrize("ablation,updates", [(["model.adversarial=false"], {"g"}),
                                              (["model.lambda_l1=0"], {"g", "d"}),
                                              (["model.conditional_d=false"], {"g", "d"})],
                         ids=["l1_only", "cgan_only", "unconditional_d"])
def test_pix2pix_ablations(ablation, updates, tmp_path):
    train(P2P + ablation + ["trainer.max_steps=1"], tmp_path)
    ckpt = load_ckpt(tmp_path)
    assert {k for k in ckpt["gan_lab"]["counters"] if k in ("g", "d")} == updates
    if "model.conditional_d=false" in ablation:  # D sees the 1-channel output alone
        first = next(v for k, v in ckpt["state_dict"].items() if k.startswith("nets.discriminator.") and v.dim() == 4)
        assert first.shape[1] == 1


def test_cyclegan_trains_on_mnist2digits_by_default(tmp_path):
    cfg = compose_config(["model=cyclegan"])
    assert cfg.data.source._target_.endswith("MNIST2Digits") and cfg.loss.name == "least_squares"
    metrics = train(CYC + ["trainer.max_steps=2"], tmp_path)
    assert {"g_loss", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_loss", "d_a_loss", "d_b_loss"} <= set(metrics)
    state = load_ckpt(tmp_path)["gan_lab"]["family_state"]
    assert state["pool_a"]["count"] == state["pool_b"]["count"] == 6  # 2 steps x 4 fakes, capped at 6


def test_lr_is_held_then_decays(tmp_path):
    train(P2P + ["trainer.max_steps=4"], tmp_path)
    assert [float(r["lr/g"]) for r in rows(tmp_path)] == pytest.approx([2e-4, 2e-4, 1e-4, 0.0])


def test_folder_layouts_train(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / "p2p" / split).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 32, 3), dtype=np.uint8)).save(tmp_path / "p2p" / split / f"{i}.png")
        for side in "AB":
            (tmp_path / "cyc" / f"{split}{side}").mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(
                    tmp_path / "cyc" / f"{split}{side}" / f"{i}.png")
    train(P2P + ["data=pix2pix_folder", f"data.source.root={tmp_path}/p2p", "data.source.load_size=20",
                 "data.source.crop_size=16", "data.batch_size=2", "data.num_workers=0", "trainer.max_steps=2"],
          tmp_path / "run_p2p")
    train(CYC + ["data=unpaired_folder", f"data.source.root={tmp_path}/cyc", "data.source.load_size=18",
                 "data.source.crop_size=16", "data.batch_size=2", "data.num_workers=0", "trainer.max_steps=2"],
          tmp_path / "run_cyc")
    assert load_ckpt(tmp_path / "run_cyc")["gan_lab"]["counters"]["step"] == 2


# ------------------------------------------------------------------ resume and DDP


def test_pix2pix_resumes_exactly(tmp_path):
    # jitter on (load 32 -> crop 28, mirror): its generator is checkpoint state
    args = P2P + ["data.source.load_size=32", "data.source.flip=true"]
    assert_stopped_run_resumes_exactly(args, tmp_path / "stop", stop_at=2, steps=3)
    # the schedule's horizon is the final length (README: training longer)
    assert_continued_run_equals_longer_run(args + ["model.lr_schedule_steps=3"], tmp_path / "longer", first=2, total=3)


def test_cyclegan_resumes_exactly(tmp_path):
    # the pools (full after 2 steps of 4 fakes each) are checkpoint state
    assert_stopped_run_resumes_exactly(CYC, tmp_path / "stop", stop_at=3, steps=4)
    assert_continued_run_equals_longer_run(CYC + ["model.lr_schedule_steps=3"], tmp_path / "longer", first=2, total=3)


def test_pix2pix_ddp_ranks_stay_identical(tmp_path):
    assert_ddp_ranks_identical(P2P, tmp_path, steps=2)


def test_cyclegan_ddp_ranks_identical_and_continued_run_exact(tmp_path):
    # each process keeps image pools of its own fakes (full after 2 steps): both ranks' pools
    # and random streams are checkpoint state, so the continued run equals the longer one
    ckpt = assert_ddp_continued_run_equals_longer_run(CYC + ["model.lr_schedule_steps=4"], tmp_path, first=2, total=4)
    pools = [r["family_state"]["pool_a"] for r in ckpt["gan_lab"]["per_rank"]]
    assert len(pools) == 2 and pools[0]["count"] == pools[1]["count"] == 6
    assert not torch.equal(pools[0]["images"], pools[1]["images"])  # each rank pools its own fakes


# ------------------------------------------------------------------ metrics and CLIs


@pytest.fixture(scope="module")
def p2p_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("p2p")
    train(P2P + ["trainer.max_steps=1"], run_dir)
    return str(run_dir / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def cyc_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cyc")
    train(CYC + ["trainer.max_steps=1"], run_dir)
    return str(run_dir / "checkpoints" / "last.ckpt")


def test_paired_metrics_score_test_translations(p2p_ckpt, tmp_path, monkeypatch):
    import json

    from gan_lab import evaluate

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "scores.json"
    assert evaluate.main([f"ckpt={p2p_ckpt}", "metrics=[l1,psnr,ssim,label_kept]", "n=500", "feature=random",
                          f"out={out}"]) == 0
    res = json.loads(out.read_text())["results"]
    assert 0 < res["l1"] <= 2 and 0 < res["psnr"] < 100 and -1 <= res["ssim"] <= 1 and 0 <= res["label_kept"] <= 1
    # the same numbers from the functions, on every test translation once (n = the test split)
    from gan_lab.checkpoint import load_module
    from gan_lab.metrics.translation import l1_distance, psnr

    module, run_cfg, _ = load_module(p2p_ckpt)
    from gan_lab.app import instantiate

    data = instantiate(run_cfg.data, "data", _convert_="all")
    test = data.dataset_for("test")
    translated = module.translate_batch(test.take(torch.arange(len(test))), torch.Generator().manual_seed(0))
    assert res["l1"] == pytest.approx(l1_distance(translated.x, translated.target), rel=0.05)
    assert res["psnr"] == pytest.approx(psnr(translated.x, translated.target), rel=0.05)


def test_unpaired_metrics_and_reference_side(cyc_ckpt, tmp_path, monkeypatch, capsys):
    import json

    from gan_lab import evaluate

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "scores.json"
    assert evaluate.main([f"ckpt={cyc_ckpt}", "metrics=[cycle_l1,label_kept,fid]", "n=64", "feature=random",
                          f"out={out}"]) == 0
    res = json.loads(out.read_text())["results"]
    assert 0 <= res["cycle_l1"] <= 2 and res["fid"] > 0
    # paired-only metrics are refused on unpaired data, in one line
    assert evaluate.main([f"ckpt={cyc_ckpt}", "metrics=[psnr]", "n=64"]) == 2
    assert "needs paired translation data" in capsys.readouterr().err


def test_reference_side_of_translation_sets():
    from gan_lab.data import GANDataModule
    from gan_lab.data.sources import Edges2MNIST5k, MNIST2Digits

    paired = GANDataModule(Edges2MNIST5k())
    batch = next(paired.batches(10, reference=True, order_seed=None))
    assert torch.equal(batch.x, paired.dataset.take(torch.arange(10)).target)  # the digits, not the edges
    unpaired = GANDataModule(MNIST2Digits())
    x, y = unpaired.labelled_tensors(reference=True)
    assert len(x) == 1297 and torch.equal(torch.bincount(y), torch.bincount(unpaired.dataset.domain("b").y))


def test_translate_cli(p2p_ckpt, cyc_ckpt, tmp_path, capsys):
    from gan_lab import translate

    assert translate.main([f"ckpt={p2p_ckpt}", f"out={tmp_path}/t.npz", "n=12", f"grid={tmp_path}/g.png"]) == 0
    d = np.load(tmp_path / "t.npz")
    assert d["inputs"].shape == d["outputs"].shape == d["targets"].shape == (12, 1, 28, 28)
    assert d["outputs"].dtype == np.uint8 and d["labels"].dtype == np.int64 and (tmp_path / "g.png").exists()
    # both directions of a cyclegan, each over its own test domain once; PNGs into a folder
    assert translate.main([f"ckpt={cyc_ckpt}", f"out={tmp_path}/ba.npz", "direction=BtoA"]) == 0
    assert np.bincount(np.load(tmp_path / "ba.npz")["labels"]).tolist() == [50] * 10
    assert translate.main([f"ckpt={cyc_ckpt}", f"out={tmp_path}/pngs", "n=3"]) == 0
    assert sorted(os.listdir(tmp_path / "pngs")) == ["00000.png", "00001.png", "00002.png"]
    # a folder of the user's own pictures (any size, RGB): read as the model's inputs (1 channel, 28 px)
    from PIL import Image

    mine = tmp_path / "mine"
    mine.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(40, 40), (28, 28)]):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(mine / f"p{i}.png")
    assert translate.main([f"ckpt={p2p_ckpt}", f"split={mine}", f"out={tmp_path}/mine.npz"]) == 0
    d = np.load(tmp_path / "mine.npz")
    assert d["inputs"].shape == d["outputs"].shape == (2, 1, 28, 28) and "targets" not in d
    (mine / "p0.png").unlink(), (mine / "p1.png").unlink()
    capsys.readouterr()
    assert translate.main([f"ckpt={p2p_ckpt}", f"split={mine}", f"out={tmp_path}/none.npz"]) == 2
    assert "no images" in capsys.readouterr().err
    # mistakes: one line each
    assert translate.main([f"ckpt={p2p_ckpt}", f"out={tmp_path}/x.npz", "direction=BtoA"]) == 2
    assert "translates in the direction it was trained" in capsys.readouterr().err
    assert translate.main([f"ckpt={p2p_ckpt}", f"out={tmp_path}/x.npz", "split=valid"]) == 2
    assert "has the splits train, test" in capsys.readouterr().err
    assert translate.main([f"ckpt={p2p_ckpt}", "out=/nodir/x.npz"]) == 2
    assert "/nodir" in capsys.readouterr().err


def test_translate_refuses_another_models_checkpoint(tmp_path, capsys):
    from gan_lab import translate

    train(["model=gan", "data=ring8", "trainer.max_steps=1"], tmp_path)
    assert translate.main([f"ckpt={tmp_path}/checkpoints/last.ckpt", f"out={tmp_path}/x.npz"]) == 2
    assert "not a translation model" in capsys.readouterr().err


def test_sample_grid_rows(tmp_path):
    from PIL import Image

    train(CYC + ["trainer.max_steps=1", "callbacks=default"], tmp_path)
    img = Image.open(tmp_path / "samples" / "step_0000001.png")
    assert img.size[0] < img.size[1]  # 8 rows of A | G_AB(A) | G_BA(G_AB(A))


# ------------------------------------------------------------------ bad input, before any work


@pytest.mark.parametrize("args,expected", [
    (["model=pix2pix", "data=mnist2digits"], "model=pix2pix needs paired images"),
    (["model=pix2pix", "data=ring8"], "model=pix2pix needs paired images"),
    (["model=cyclegan", "data=edges2mnist_5k"], "model=cyclegan needs unpaired images"),
    (["model=pix2pix", "model.adversarial=false", "model.lambda_l1=0"], "nothing to learn"),
    (["model=cyclegan", "model.lambda_cycle=-1"], "model.lambda_cycle must be a number >= 0"),
    (["model=pix2pix", "data.source.load_size=20"], "load_size must be an integer >= the crop size 28"),
])
def test_bad_input_is_one_line(args, expected, tmp_path):
    with pytest.raises(UserError, match=expected):
        train(args + ["trainer.max_steps=1", "print_config=false"], tmp_path)
