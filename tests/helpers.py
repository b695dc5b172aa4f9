"""Test helpers: compose configs with Hydra's compose API and run tiny trainings."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

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


def train(overrides: list[str], run_dir) -> dict:
    from gan_lab.train import run

    return run(compose_config(TINY + list(overrides), run_dir))


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


