"""Metrics wired into training and the evaluate CLI (the same code path)."""

import csv
import json
import os

import pytest

from helpers import train

# A random-weights conv net as extractor keeps these tests fast; the metric math and the real
# extractors are tested in tests/test_metrics_*.py.
FAST_EVAL = ["feature=random", "eval.num_samples=64", "eval.batch_size=32", "eval.every_n_steps=2"]


def read_rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def test_metrics_logged_during_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    train(["model=dcgan", "data=mnist_5k", "trainer.max_steps=4", "metrics=[fid,kid,pr]", *FAST_EVAL], tmp_path / "run")
    rows = [r for r in read_rows(tmp_path / "run") if r.get("fid")]
    assert [int(r["step"]) for r in rows] == [2, 4]
    for r in rows:
        assert float(r["fid"]) > 0 and 0 <= float(r["precision"]) <= 1 and 0 <= float(r["recall"]) <= 1
    # real statistics were cached once, keyed by data set / extractor / size
    assert len([f for f in os.listdir(tmp_path / "cache" / "real_stats") if f.endswith(".pt")]) == 1


def test_mode_metrics_on_ring(tmp_path):
    train(["model=gan", "data=ring8", "trainer.max_steps=2", "metrics=[modes]", "eval.num_samples=500",
           "eval.every_n_steps=0"], tmp_path)
    last = read_rows(tmp_path)[-1]
    assert 0 <= float(last["modes_captured"]) <= 8
    assert 0 <= float(last["high_quality_frac"]) <= 1


def test_image_metrics_on_points_is_a_user_error(tmp_path):
    from gan_lab.errors import UserError

    with pytest.raises(UserError, match="modes"):
        train(["model=gan", "data=ring8", "trainer.max_steps=2", "metrics=[fid]"], tmp_path)


def test_evaluate_cli_matches_training_callback(tmp_path, monkeypatch):
    from gan_lab import evaluate

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    train(["model=sngan", "data=mnist_5k", "trainer.max_steps=2", "metrics=[fid,kid]", *FAST_EVAL], tmp_path / "run")
    logged = read_rows(tmp_path / "run")[-1]
    out = tmp_path / "eval.json"
    code = evaluate.main([f"ckpt={tmp_path}/run/checkpoints/last.ckpt", "metrics=[fid,kid]", "n=64",
                          "feature=random", "batch_size=32", f"out={out}",
                          f"cache_dir={tmp_path}/cache/real_stats"])
    assert code == 0
    report = json.loads(out.read_text())
    # same samples (same seed and generator), same extractor, same real set: same numbers
    assert report["results"]["fid"] == pytest.approx(float(logged["fid"]), rel=1e-6)
    assert report["results"]["kid_mean"] == pytest.approx(float(logged["kid_mean"]), rel=1e-6)
    assert report["num_samples"] == 64 and report["reference"] == "train split"
    assert report["real_cache_hit"] is True


def test_evaluate_cli_errors(tmp_path, capsys):
    from gan_lab import evaluate

    assert evaluate.main(["n=5"]) == 2
    assert "missing argument: ckpt" in capsys.readouterr().err
    assert evaluate.main(["ckpt=/none.ckpt", "n=5"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_metrics_under_ddp_on_cpu(tmp_path):
    from helpers import cli

    r = cli(["gan_lab", "accelerator=ddp_cpu", "model=dcgan", "data=mnist_5k", "trainer.max_steps=2",
             "model.net.dcgan.g_width=8", "model.net.dcgan.d_width=8", "data.batch_size=16", "print_config=false",
             "callbacks=minimal", "metrics=[fid,kid]", *FAST_EVAL, f"eval.cache_dir={tmp_path}/cache",
             f"run_dir={tmp_path}/run"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [row for row in read_rows(tmp_path / "run") if row.get("fid")]
    assert [int(row["step"]) for row in rows] == [2] and float(rows[0]["fid"]) > 0


def test_evaluate_cli_data_overrides_are_typed():
    from omegaconf import OmegaConf

    from gan_lab.evaluate import data_config, split_data_overrides

    run_cfg = OmegaConf.create({"data": {"source": {"download": False, "image_size": 28, "root": "a"}}})
    rest, data_overrides = split_data_overrides(
        ["n=5", "data.source.download=true", "data.source.image_size=32", "data.source.root=/x/y"])
    assert rest == ["n=5"]
    data = data_config(run_cfg, data_overrides)
    assert data.source.download is True and data.source.image_size == 32 and data.source.root == "/x/y"
