"""Test helpers: compose configs with Hydra's compose API and run tiny trainings."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import lightning as L
from hydra import compose, initialize_config_dir

from gan_lab.app import CONFIG_DIR

REPO = os.path.dirname(os.path.dirname(CONFIG_DIR))

# Small networks and batches so that every model trains a few steps in about a second.
TINY = [
    "model.net.dcgan.g_width=8",
    "model.net.dcgan.d_width=8",
    "model.net.resnet.g_width=8",
    "model.net.resnet.d_width=8",
    "model.net.mlp.width=32",
    "data.batch_size=16",
    "print_config=false",
    "callbacks=minimal",
    "logger=csv",
]


def compose_config(overrides: list[str], run_dir=None):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    if run_dir is not None:
        cfg.run_dir = str(run_dir)
    return cfg


def tiny_for(overrides: list[str]) -> list[str]:
    """The TINY settings that exist in the config these overrides select: the network widths of
    the adversarial family apply to its models only; other families pass their own sizes."""
    from omegaconf import OmegaConf

    cfg = compose_config([o for o in overrides if not o.startswith("+callbacks.")])
    return [t for t in TINY if OmegaConf.select(cfg, t.split("=", 1)[0], default="__missing__") != "__missing__"]


def train(overrides: list[str], run_dir) -> dict:
    from gan_lab.train import run

    return run(compose_config(tiny_for(list(overrides)) + list(overrides), run_dir))


def cli(args: list[str], cwd=None, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` as a user would, capturing output.

    By default it runs in a fresh temporary directory: Hydra writes its own log folder under
    ``outputs/`` of the working directory, which must not pile up in the user's checkout.
    """
    # one thread per subprocess for speed (DDP tests start two); no assertion depends on it
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run(
            [sys.executable, "-m", *args], cwd=cwd or scratch, capture_output=True, text=True,
            timeout=timeout, env=full_env,
        )




class StopAt(L.Callback):
    """A callback (``+callbacks.stop._target_=helpers.StopAt +callbacks.stop.at=N``): behave as if
    Ctrl+C came during the batch that makes counter ``counter`` reach ``at`` (``d``: the D update
    number, ``tick``: the batch number)."""

    def __init__(self, at: int, counter: str = "d"):
        self.at, self.counter = at, counter

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.counters[self.counter] + 1 == self.at:
            from gan_lab.callbacks import GANCheckpoint

            next(cb for cb in trainer.callbacks if isinstance(cb, GANCheckpoint))._sigint = True


# ------------------------------------------------------------------ workflows every family is held to


def load_ckpt(run_dir, name: str = "last.ckpt") -> dict:
    import torch

    return torch.load(os.path.join(run_dir, "checkpoints", name), map_location="cpu", weights_only=False)


def assert_same_tree(a, b, where="checkpoint"):
    import numpy as np
    import torch

    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


def assert_same_training_state(a: dict, b: dict) -> None:
    """Two checkpoints hold the same training state: weights, EMA copies, optimizers, schedules,
    counters, family state, RNG streams and data position."""
    assert_same_tree(a["state_dict"], b["state_dict"], "state_dict")
    assert_same_tree(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    assert_same_tree(a["lr_schedulers"], b["lr_schedulers"], "lr_schedulers")
    assert a["gan_lab"]["counters"] == b["gan_lab"]["counters"]
    assert_same_tree(a["gan_lab"]["rng"], b["gan_lab"]["rng"], "rng")
    assert_same_tree(a["gan_lab"]["family_state"], b["gan_lab"]["family_state"], "family_state")
    assert a["GANDataModule"] == b["GANDataModule"]


def assert_stopped_run_resumes_exactly(overrides: list[str], tmp_path, stop_at: int, steps: int,
                                       counter: str = "tick") -> None:
    """A run stopped (as by Ctrl+C) during batch ``stop_at`` and resumed with ``resume=auto`` ends
    exactly like an uninterrupted run of ``steps`` steps, metrics.csv included."""
    from gan_lab.train import RunStopped

    args = list(overrides) + [f"trainer.max_steps={steps}", "trainer.log_every_n_steps=1"]
    train(args, tmp_path / "whole")
    stopped = tmp_path / "stopped"
    try:
        train(args + ["+callbacks.stop._target_=helpers.StopAt", f"+callbacks.stop.at={stop_at}",
                      f"+callbacks.stop.counter={counter}"], stopped)
        raise AssertionError(f"the run was not stopped at {counter} {stop_at}")
    except RunStopped:
        pass
    assert load_ckpt(stopped)["gan_lab"]["counters"][counter] == stop_at
    train(args + ["resume=auto"], stopped)
    assert_same_training_state(load_ckpt(tmp_path / "whole"), load_ckpt(stopped))
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (stopped / "metrics.csv").read_text()


def assert_continued_run_equals_longer_run(overrides: list[str], tmp_path, first: int = 2, total: int = 4) -> None:
    """Train to ``first`` steps, then continue the finished run to ``total``: the same as one run
    of ``total`` steps."""
    args = list(overrides) + ["trainer.log_every_n_steps=1"]
    train(args + [f"trainer.max_steps={total}"], tmp_path / "whole")
    train(args + [f"trainer.max_steps={first}"], tmp_path / "part")
    train(args + [f"trainer.max_steps={total}", "resume=auto"], tmp_path / "part")
    assert_same_training_state(load_ckpt(tmp_path / "whole"), load_ckpt(tmp_path / "part"))
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (tmp_path / "part" / "metrics.csv").read_text()


def assert_ddp_ranks_identical(overrides: list[str], tmp_path, steps: int = 3, timeout: int = 600) -> dict:
    """Two CPU processes (gloo) train ``steps`` steps and end with identical weights on both
    ranks (``ddp_sync.json``, written by the engine, compares every parameter). Returns the
    last checkpoint."""
    import json

    r = cli(["gan_lab", "accelerator=ddp_cpu", *tiny_for(list(overrides)), *overrides, f"trainer.max_steps={steps}",
             f"run_dir={tmp_path}"],
            timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    sync = json.loads((tmp_path / "ddp_sync.json").read_text())
    assert sync == {"world_size": 2, "max_abs_weight_diff": 0.0, "step": steps}
    return load_ckpt(tmp_path)


def assert_ddp_continued_run_equals_longer_run(overrides: list[str], tmp_path, first: int = 2, total: int = 4) -> dict:
    """Two CPU processes: a run trained to ``first`` steps and continued to ``total`` ends exactly
    like one ``total``-step run, on both ranks (each rank's random streams and family state are
    checkpoint state, and each process draws its own). Returns the continued run's checkpoint."""
    base = ["accelerator=ddp_cpu", *tiny_for(list(overrides)), *overrides, "trainer.log_every_n_steps=1"]

    def launch(run_dir, steps, *extra):
        r = cli(["gan_lab", *base, f"trainer.max_steps={steps}", f"run_dir={run_dir}", *extra], timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]

    launch(tmp_path / "whole", total)
    launch(tmp_path / "part", first)
    launch(tmp_path / "part", total, "resume=auto")
    import json

    for run in ("whole", "part"):
        sync = json.loads((tmp_path / run / "ddp_sync.json").read_text())
        assert sync == {"world_size": 2, "max_abs_weight_diff": 0.0, "step": total}
    whole, part = load_ckpt(tmp_path / "whole"), load_ckpt(tmp_path / "part")
    assert_same_training_state(whole, part)
    assert_same_tree(whole["gan_lab"]["per_rank"], part["gan_lab"]["per_rank"], "per_rank")
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (tmp_path / "part" / "metrics.csv").read_text()
    return part
