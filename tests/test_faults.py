"""Faults a long run meets: SIGTERM, NaN/Inf, corrupt images, a full or unwritable disk."""

import csv
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch

from helpers import TINY, compose_config, train

FAST = ["data=ring8", "trainer.log_every_n_steps=1"]


def run_cli_in_process(overrides, run_dir, capsys):
    """gan_lab's command-line error handling, in this process: (exit code, stderr lines)."""
    from gan_lab.train import run_cli

    with pytest.raises(SystemExit) as exc:
        run_cli(compose_config(TINY + list(overrides), run_dir))
    return exc.value.code, [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("gan_lab:")]


# ------------------------------------------------------------------ SIGTERM, a real process


def test_sigterm_writes_checkpoint_and_run_resumes(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "gan_lab", *TINY, *FAST, f"run_dir={tmp_path}", "model=wgan_gp",
            "model.n_critic=3", "callbacks.checkpoint.every_n_steps=1000000"]
    proc = subprocess.Popen(args + ["trainer.max_steps=1000000"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) > 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err and "resume=auto" in err and "Traceback" not in err
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    k = saved["gan_lab"]["counters"]["step"]
    assert k >= 3

    # resumed in this process (a second interpreter start is slow): same overrides, resume=auto
    train(FAST + ["model=wgan_gp", "model.n_critic=3", "callbacks.checkpoint.every_n_steps=1000000",
                  "resume=auto", f"trainer.max_steps={k + 2}"], tmp_path)
    done = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert done["gan_lab"]["counters"]["step"] == k + 2
    with open(metrics) as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == list(range(1, k + 3))


# ------------------------------------------------------------------ NaN / Inf


class PoisonBatch(L.Callback):
    """Test helper: a NaN in the real batch of D update number ``d_step``."""

    def __init__(self, d_step: int):
        self.d_step = d_step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.counters["d"] + 1 == self.d_step:
            batch.x[0, 0] = float("nan")


class PoisonWeights(L.Callback):
    """Test helper: G's weights become Inf after G step ``g_step``."""

    def __init__(self, g_step: int):
        self.g_step = g_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.step == self.g_step and module.at_step_boundary():
            with torch.no_grad():
                next(module.generator.parameters()).fill_(float("inf"))


def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(tmp_path, capsys):
    code, lines = run_cli_in_process(
        FAST + ["model=gan", "trainer.max_steps=10", "callbacks.checkpoint.every_n_steps=2",
                f"+callbacks.poison._target_={__name__}.PoisonBatch", "+callbacks.poison.d_step=5"],
        tmp_path, capsys,
    )
    assert code == 3
    assert len(lines) == 1
    assert "diverged at step 5 (d update 5): d_loss is nan" in lines[0]
    assert "last good checkpoint" in lines[0]
    good = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert good["gan_lab"]["counters"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.dtype.is_floating_point)


def test_inf_weights_stop(tmp_path, capsys):
    code, lines = run_cli_in_process(
        FAST + ["model=gan", "trainer.max_steps=10", f"+callbacks.poison._target_={__name__}.PoisonWeights",
                "+callbacks.poison.g_step=3"],
        tmp_path, capsys,
    )
    assert code == 3 and len(lines) == 1
    assert "diverged at step 4" in lines[0] and "is " in lines[0]


def test_divergence_skip_drops_the_bad_update_and_goes_on(tmp_path):
    with pytest.warns(UserWarning, match="skipped the update at step 3"):
        metrics = train(FAST + ["model=gan", "trainer.max_steps=6", "divergence=skip",
                                f"+callbacks.poison._target_={__name__}.PoisonBatch", "+callbacks.poison.d_step=3"],
                        tmp_path)
    assert metrics["skipped_steps"] == 1
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["gan_lab"]["counters"]["step"] == 6 and saved["gan_lab"]["skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.dtype.is_floating_point)


# ------------------------------------------------------------------ corrupt image folders


def write_folder(root, good, bad):
    from PIL import Image

    root.mkdir(parents=True)
    for i in range(good):
        Image.new("RGB", (10, 10), (i * 20, 100, 50)).save(root / f"ok{i}.png")
    for i in range(bad):
        (root / f"broken{i}.png").write_bytes(b"not a png at all")


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    write_folder(tmp_path / "imgs", good=20, bad=3)
    with pytest.warns(UserWarning, match="skipped 3 unreadable file"):
        metrics = train(["data=image_folder", f"data.source.root={tmp_path / 'imgs'}", "data.source.image_size=28",
                         "data.num_workers=0", "data.batch_size=4", "model=gan", "trainer.max_steps=2"], tmp_path / "run")
    assert "d_loss" in metrics or (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_all_corrupt_folder_is_one_clear_error(tmp_path, capsys):
    write_folder(tmp_path / "imgs", good=0, bad=2)
    code, lines = run_cli_in_process(["data=image_folder", f"data.source.root={tmp_path / 'imgs'}", "model=gan"],
                                     tmp_path / "run", capsys)
    assert code == 2 and len(lines) == 1 and "no readable images" in lines[0]


# ------------------------------------------------------------------ disk full, unwritable run dir


def test_unwritable_run_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, lines = run_cli_in_process(FAST + ["model=gan"], blocker / "run", capsys)
    assert code == 2 and len(lines) == 1
    assert "cannot write to run directory" in lines[0]


def test_disk_full_while_checkpointing(tmp_path, capsys, monkeypatch):
    import errno

    def full_disk(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:  # a partial file, as a full disk leaves one
            f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(L.Trainer, "save_checkpoint", full_disk)
    code, lines = run_cli_in_process(FAST + ["model=gan", "trainer.max_steps=2"], tmp_path, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "cannot write checkpoint" in lines[0] and "No space left on device" in lines[0]
    assert os.listdir(tmp_path / "checkpoints") == []  # neither a partial last.ckpt nor its .tmp
