"""Sweeps: multirun with a summary, Optuna, the submitit local launcher, W&B runs per job."""

import csv
import os

import yaml

from helpers import cli

TINY_CLI = [
    "model.net.dcgan.g_width=8", "model.net.dcgan.d_width=8", "model.net.mlp.width=32", "data.batch_size=16",
    "print_config=false", "callbacks=minimal", "data=ring8", "trainer.max_steps=2", "trainer.log_every_n_steps=1",
]


def sweep_args(tmp_path):
    return [f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.num}"]


def read_summary(tmp_path):
    with open(tmp_path / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_multirun_summary_and_one_wandb_run_per_job(tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "HOME": str(tmp_path)}
    r = cli(["gan_lab", "-m", "model=gan,lsgan", "seed=1,2", "logger=wandb", *TINY_CLI, *sweep_args(tmp_path)], env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = read_summary(tmp_path)
    assert [row["job"] for row in rows] == ["0", "1", "2", "3"]
    # the summary shows what differs between jobs
    assert [row["overrides"] for row in rows] == [f"model={m} seed={s}" for m in ("gan", "lsgan") for s in (1, 2)]
    assert all(row["status"] == "ok" and row["step"] == "2" and float(row["d_loss"]) > 0 for row in rows)
    assert "sweep summary (4 jobs" in r.stdout and "model=lsgan seed=2" in r.stdout
    for job in "0123":
        assert (tmp_path / job / "checkpoints" / "last.ckpt").exists()
        runs = [d for d in os.listdir(tmp_path / job / "wandb") if d.startswith("offline-run")]
        assert len(runs) == 1, (job, runs)  # one W&B run per job (grouped by the sweep dir)


def test_optuna_sweep_minimises_the_returned_metric(tmp_path):
    r = cli(["gan_lab", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
             "optimized_metric=d_loss", *TINY_CLI, *sweep_args(tmp_path)])
    assert r.returncode == 0, r.stderr[-3000:]
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    values = [float(row["d_loss"]) for row in read_summary(tmp_path)]
    assert len(values) == 2 and result["best_value"] == min(values)
    assert set(result["best_params"]) == {"model.g_optimizer.lr", "model.d_optimizer.lr", "model.n_critic"}


def test_unknown_optimized_metric_is_one_line(tmp_path, capsys):
    import pytest

    from helpers import TINY, compose_config
    from gan_lab.train import run_cli

    with pytest.raises(SystemExit) as exc:
        run_cli(compose_config(TINY + ["optimized_metric=fid", "data=ring8", "trainer.max_steps=1"], tmp_path))
    assert exc.value.code == 2
    assert "optimized_metric=fid was never logged" in capsys.readouterr().err


def test_submitit_local_launcher(tmp_path):
    r = cli(["gan_lab", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "model=gan",
             *TINY_CLI, *sweep_args(tmp_path)], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "0" / "checkpoints" / "last.ckpt").exists()
    assert read_summary(tmp_path)[0]["status"] == "ok"
    assert any(f.endswith("_result.pkl") for _, _, fs in os.walk(tmp_path / ".submitit") for f in fs)


def test_wandb_group_is_the_sweep(monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from gan_lab.sweep import wandb_group_and_name

    assert wandb_group_and_name() == (None, None)  # no Hydra run: W&B defaults
    hydra_cfg = OmegaConf.create({"hydra": {"mode": "MULTIRUN", "sweep": {"dir": "multirun/2026-01-01/10-00-00"},
                                            "job": {"num": 3, "override_dirname": "model=gan,seed=2"}}})
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra_cfg.hydra))
    from hydra.types import RunMode

    hydra_cfg.hydra.mode = RunMode.MULTIRUN
    assert wandb_group_and_name() == ("multirun/2026-01-01/10-00-00", "3 model=gan,seed=2")
