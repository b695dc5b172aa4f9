"""Same seed → same run; a run stopped anywhere and resumed ends exactly like an uninterrupted one."""

import os

import numpy as np
import pytest
import torch

from helpers import assert_same_training_state, assert_stopped_run_resumes_exactly, compose_config, load_ckpt, train

# 80 samples in batches of 16: 5 batches per epoch, so runs cross several epoch boundaries
SMALL = ["data=ring8", "data.source.n_samples=80", "trainer.log_every_n_steps=1", "trainer.deterministic=true"]


def ckpt(run_dir, name="last.ckpt"):
    return load_ckpt(run_dir, name)


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
    assert_stopped_run_resumes_exactly(SMALL + model, tmp_path, stop_at, steps=5, counter="d")
    assert 0 < load_ckpt(tmp_path / "stopped", "last.ckpt")["gan_lab"]["counters"]["step"] == 5


LONGER = [
    # n_critic > 1, an EMA generator and a linear LR schedule whose horizon is the final length
    ["model=wgan_gp", "model.n_critic=3", "model.lr_schedule=linear", "model.lr_schedule_steps=8",
     "model.ema={decay: 0.9, start: 0}"],
    # spectral norm's power-iteration buffers and sample grids (which draw samples mid-run); on
    # ring8 the 2-D recipe decays the lr linearly, so its horizon is fixed at the final length
    ["model=sngan", "callbacks=default", "callbacks.samples.every_n_steps=3", "model.lr_schedule_steps=8"],
    # the case: 2-D scatter grids at the end of the first part
    ["model=gan", "callbacks=default", "model.lr_schedule_steps=8"],
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
    base = compose_config(SMALL + ["model=gan"]).model.g_optimizer.lr  # ring8's 2-D setting: 1e-3
    assert lr[5] == pytest.approx(base * (1 - 5 / 8))  # ... the continuation follows the new horizon
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


@pytest.mark.parametrize("model", ["gan", "wgan"])
def test_grid_settings_continue_exactly(model, tmp_path):
    # the grid's settings (conf/data_model/): gan's R1 penalty, wgan's 2-D clipping with free biases
    # (n_critic 5)
    from helpers import assert_continued_run_equals_longer_run

    assert_continued_run_equals_longer_run(
        [f"model={model}", "data=grid25", "data.source.n_samples=80", "trainer.log_every_n_steps=1",
         "trainer.deterministic=true", "model.lr_schedule_steps=4"], tmp_path, first=2, total=4)
