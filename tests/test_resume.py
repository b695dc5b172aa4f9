"""Same seed → same run; a run stopped anywhere and resumed ends exactly like an uninterrupted one."""

import os

import lightning as L
import numpy as np
import pytest
import torch

from helpers import train
from gan_lab.train import RunStopped

# 80 samples in batches of 16: 5 batches per epoch, so runs cross several epoch boundaries
SMALL = ["data=ring8", "data.source.n_samples=80", "trainer.log_every_n_steps=1", "trainer.deterministic=true"]


class StopAt(L.Callback):
    """Test helper: behave as if Ctrl+C came during D update number ``d_step``."""

    def __init__(self, d_step: int):
        self.d_step = d_step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.counters["d"] + 1 == self.d_step:
            from gan_lab.callbacks import GANCheckpoint

            next(cb for cb in trainer.callbacks if isinstance(cb, GANCheckpoint))._sigint = True


def ckpt(run_dir, name="last.ckpt"):
    return torch.load(os.path.join(run_dir, "checkpoints", name), map_location="cpu", weights_only=False)


def assert_same_tree(a, b, where="checkpoint"):
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


def assert_same_training_state(a, b):
    assert_same_tree(a["state_dict"], b["state_dict"], "state_dict")
    assert_same_tree(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    assert_same_tree(a["lr_schedulers"], b["lr_schedulers"], "lr_schedulers")
    assert a["gan_lab"]["counters"] == b["gan_lab"]["counters"]
    assert_same_tree(a["gan_lab"]["rng"], b["gan_lab"]["rng"], "rng")
    assert_same_tree(a["gan_lab"]["family_state"], b["gan_lab"]["family_state"], "family_state")
    assert a["GANDataModule"] == b["GANDataModule"]


def test_same_seed_same_run(tmp_path):
    args = SMALL + ["model=wgan_gp", "model.n_critic=2", "trainer.max_steps=4"]
    train(args, tmp_path / "a")
    train(args, tmp_path / "b")
    assert_same_training_state(ckpt(tmp_path / "a"), ckpt(tmp_path / "b"))
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    train(args + ["seed=1"], tmp_path / "c")
    a_sd, c_sd = ckpt(tmp_path / "a")["state_dict"], ckpt(tmp_path / "c")["state_dict"]
    assert any(not torch.equal(a_sd[k], c_sd[k]) for k in a_sd)


@pytest.mark.parametrize(
    "model,stop_at",
    [
        # n_critic=3 with 5 batches per epoch: stopped mid n_critic phase (d_step 7 = 2 G steps
        # + 1 D update) and mid-epoch; linear LR decay checks the schedulers too
        (["model=wgan_gp", "model.n_critic=3", "model.lr_schedule=linear"], 7),
        # EMA generator and spectral norm power-iteration buffers
        (["model=sngan", "model.ema.decay=0.9"], 4),
    ],
    ids=["wgan_gp_ncritic3", "sngan_ema"],
)
def test_stopped_and_resumed_run_equals_uninterrupted_run(model, stop_at, tmp_path):
    args = SMALL + model + ["trainer.max_steps=5"]
    train(args, tmp_path / "whole")

    stopped = tmp_path / "stopped"
    with pytest.raises(RunStopped):
        train(args + [f"+callbacks.stop._target_={__name__}.StopAt", f"+callbacks.stop.d_step={stop_at}"], stopped)
    partial = ckpt(stopped)
    assert partial["gan_lab"]["counters"]["d"] == stop_at
    assert 0 < partial["gan_lab"]["counters"]["step"] < 5
    train(args + ["resume=auto"], stopped)

    assert_same_training_state(ckpt(tmp_path / "whole"), ckpt(stopped))
    # the resumed metrics.csv reads as one uninterrupted run, to the last digit
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (stopped / "metrics.csv").read_text()


LONGER = [
    # n_critic > 1, an EMA generator and a linear LR schedule whose horizon is the final length
    ["model=wgan_gp", "model.n_critic=3", "model.lr_schedule=linear", "model.lr_schedule_steps=8",
     "model.ema={decay: 0.9, start: 0}"],
    # spectral norm's power-iteration buffers and sample grids (which draw samples mid-run)
    ["model=sngan", "callbacks=default", "callbacks.samples.every_n_steps=3"],
    # the case: 2-D scatter grids at the end of the first part
    ["model=gan", "callbacks=default"],
]


@pytest.mark.parametrize("model", LONGER, ids=["wgan_gp_ncritic3_ema_linear", "sngan_grids", "gan_scatter"])
def test_finished_run_continued_further_equals_one_longer_run(model, tmp_path):
    """Train to 4 steps, look, continue to 8: the same as training to 8 in one go."""
    args = SMALL + model
    train(args + ["trainer.max_steps=8"], tmp_path / "whole")
    train(args + ["trainer.max_steps=4"], tmp_path / "first")
    first = ckpt(tmp_path / "first")
    assert first["gan_lab"]["counters"]["step"] == 4
    # continued in a new directory from the finished run's last.ckpt ...
    train(args + ["trainer.max_steps=8", f"ckpt_path={tmp_path}/first/checkpoints/last.ckpt"], tmp_path / "more")
    assert_same_training_state(ckpt(tmp_path / "whole"), ckpt(tmp_path / "more"))
    whole_rows = (tmp_path / "whole" / "metrics.csv").read_text().splitlines()
    more_rows = (tmp_path / "more" / "metrics.csv").read_text().splitlines()
    assert more_rows[0] == whole_rows[0] and more_rows[1:] == whole_rows[-4:]  # steps 5..8, to the digit
    # ... and with resume=auto in its own directory
    train(args + ["trainer.max_steps=8", "resume=auto"], tmp_path / "first")
    assert_same_training_state(ckpt(tmp_path / "whole"), ckpt(tmp_path / "first"))
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (tmp_path / "first" / "metrics.csv").read_text()


def test_linear_schedule_horizon_defaults_to_max_steps(tmp_path):
    # without lr_schedule_steps, a linear schedule reaches 0 at this call's max_steps: continuing a
    # finished run to a larger max_steps stretches the rest of the schedule (README says so)
    import csv

    train(SMALL + ["model=gan", "model.lr_schedule=linear", "trainer.max_steps=4"], tmp_path)
    train(SMALL + ["model=gan", "model.lr_schedule=linear", "trainer.max_steps=8", "resume=auto"], tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        lr = {int(r["step"]): float(r["lr/g"]) for r in csv.DictReader(f)}
    assert lr[4] == 0.0  # the first call's schedule ended at its max_steps ...
    assert lr[5] == pytest.approx(2e-4 * (1 - 5 / 8))  # ... the continuation follows the new horizon
    assert lr[8] == 0.0


def test_resume_from_periodic_checkpoint_in_new_dir(tmp_path):
    args = SMALL + ["model=gan", "model.n_critic=2", "trainer.max_steps=6", "callbacks.checkpoint.every_n_steps=2"]
    train(args, tmp_path / "whole")
    train(args + [f"ckpt_path={tmp_path}/whole/checkpoints/step_0000004.ckpt"], tmp_path / "later")
    assert_same_training_state(ckpt(tmp_path / "whole"), ckpt(tmp_path / "later"))


def test_resume_auto(tmp_path):
    from gan_lab.checkpoint import find_checkpoints

    args = SMALL + ["model=gan", "callbacks.checkpoint.every_n_steps=2"]
    train(args + ["resume=auto", "trainer.max_steps=2"], tmp_path)  # nothing to resume: fresh start
    assert ckpt(tmp_path)["gan_lab"]["counters"]["step"] == 2
    train(args + ["resume=auto", "trainer.max_steps=3"], tmp_path)
    assert ckpt(tmp_path)["gan_lab"]["counters"]["step"] == 3
    assert os.path.basename(find_checkpoints(str(tmp_path))[0]) == "last.ckpt"
    from gan_lab.errors import UserError

    with pytest.raises(UserError, match="either resume=auto or ckpt_path"):
        train(args + ["resume=auto", f"ckpt_path={tmp_path}/checkpoints/last.ckpt"], tmp_path)


def test_sampler_resumes_mid_epoch_and_shards():
    from gan_lab.data import ResumableSampler

    whole = ResumableSampler(50, 4, seed=3)  # 12 batches an epoch
    stream = [i for _ in range(3) for i in whole]
    resumed = ResumableSampler(50, 4, seed=3)
    resumed.start_at(17)  # epoch 1, batch 5
    assert [i for _ in range(2) for i in resumed] == stream[17 * 4 :]
    ranks = [list(ResumableSampler(50, 4, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 24 and not set(ranks[0]) & set(ranks[1])
