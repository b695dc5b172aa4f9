"""The benchmarks' training helper (benchmarks/lab_runs.py): a long benchmark run that was stopped
part way (Stacked MNIST runs for an hour or more) continues from its own checkpoints when the same
call is made again, and ends exactly where an unbroken run ends."""

from __future__ import annotations

import os
import sys

import torch
from helpers import REPO

sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from lab_runs import train  # noqa: E402

BASE = ["model=gan", "data=ring8", "data.source.n_samples=80", "data.batch_size=16", "model.net.mlp.width=32", "seed=3",
        "trainer.deterministic=true", "model.lr_schedule_steps=4"]


def test_a_stopped_benchmark_run_continues_from_its_checkpoint(tmp_path):
    whole, _, _, steps, _ = train(BASE + ["trainer.max_steps=4"])
    assert steps == 4
    # the first part stops at step 2 (as a SIGTERM would, leaving its checkpoints) ...
    _, _, _, steps, _ = train(BASE + ["trainer.max_steps=2"], run_dir=str(tmp_path), checkpoint_every=1)
    assert steps == 2
    # ... and the same directory continues from there, not from step 0: a run started over would
    # write step 1's checkpoint again
    (tmp_path / "checkpoints" / "step_0000001.ckpt").unlink()
    part, _, _, steps, _ = train(BASE + ["trainer.max_steps=4"], run_dir=str(tmp_path), checkpoint_every=1)
    assert steps == 4 and part.counters["d"] == 4
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "last.ckpt", "step_0000002.ckpt", "step_0000003.ckpt", "step_0000004.ckpt"]
    whole_state, part_state = whole.state_dict(), part.state_dict()
    assert whole_state.keys() == part_state.keys()
    assert all(torch.equal(whole_state[k], part_state[k]) for k in whole_state)
