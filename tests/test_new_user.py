"""What a new user meets first: short runs log their last step, a run directory holds the whole
run and nothing lands elsewhere, resuming says what it does and refuses other data, README's data
sets run at the defaults, and every mistake is one line before any work."""

import csv
import math
import os

import pytest
import torch

from helpers import TINY, cli, compose_config, train
from gan_lab.errors import UserError


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def run_cli_in_process(overrides, run_dir, capsys):
    """(exit code, the lab's error lines on stderr) of a run refused in this process."""
    from gan_lab.train import run_cli

    with pytest.raises(SystemExit) as exc:
        run_cli(compose_config(TINY + list(overrides), run_dir))
    return exc.value.code, [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("gan_lab:")]


# ------------------------------------------------------------------ logging


def test_the_final_step_is_always_logged(tmp_path):
    train(["model=wgan", "data=grid25", "trainer.max_steps=7", "trainer.log_every_n_steps=5"], tmp_path / "a")
    assert [int(r["step"]) for r in rows(tmp_path / "a")] == [5, 7]
    # a run shorter than the logging interval still leaves its final losses
    train(["model=gan", "data=ring8", "trainer.max_steps=3", "trainer.log_every_n_steps=50"], tmp_path / "b")
    (last,) = rows(tmp_path / "b")
    assert last["step"] == "3" and math.isfinite(float(last["d_loss"])) and "lr/g" in last


def test_losses_and_evaluation_of_one_step_share_one_row(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    train(["model=dcgan", "data=mnist_5k", "trainer.max_steps=2", "trainer.log_every_n_steps=1", "metrics=[fid]",
           "feature=random", "eval.num_samples=32", "eval.batch_size=32", "eval.every_n_steps=2"], tmp_path / "run")
    steps = [r["step"] for r in rows(tmp_path / "run")]
    assert steps == ["1", "2"]  # one row per step
    last = rows(tmp_path / "run")[-1]
    assert last["fid"] and last["d_loss"]


# ------------------------------------------------------------------ resuming


def test_checkpoint_for_other_data_is_refused(tmp_path):
    train(["model=wgan_gp", "data=ring8", "trainer.max_steps=2"], tmp_path / "ring")
    with pytest.raises(UserError, match="written for other data: model=wgan_gp data=ring8"):
        train(["model=wgan_gp", "data=grid25", "trainer.max_steps=4",
               f"ckpt_path={tmp_path}/ring/checkpoints/last.ckpt"], tmp_path / "grid")
    with pytest.raises(UserError, match="other data"):
        train(["model=wgan_gp", "data=grid25", "trainer.max_steps=4", "resume=auto"], tmp_path / "ring")


def test_resume_auto_reuses_the_run_directory_and_says_what_it_resumed(tmp_path):
    run_dir = tmp_path / "x"
    args = [*TINY, "data.source.n_samples=512"]
    first = cli(["gan_lab", "model=wgan_gp", "data=ring8", *args, "trainer.max_steps=2", f"run_dir={run_dir}"])
    assert first.returncode == 0, first.stderr[-2000:]
    # what the stop message prints: no model= or data=, the run directory's own overrides are reused
    again = cli(["gan_lab", "resume=auto", f"run_dir={run_dir}", "trainer.max_steps=3"])
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming from {run_dir}/checkpoints/last.ckpt at step 2" in again.stdout
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["gan_lab"]["model"] == "wgan_gp" and saved["gan_lab"]["counters"]["step"] == 3
    assert [r["step"] for r in rows(run_dir)] == ["2", "3"]  # the final step of each call
    # everything of the run is in its directory: Hydra's files, the log with the lab's lines
    assert (run_dir / ".hydra" / "overrides.yaml").exists()
    log = (run_dir / "train.log").read_text()
    assert "resuming from" in log and "done: wgan_gp at step 3" in log


def test_run_dir_gets_everything_and_nothing_lands_in_outputs(tmp_path):
    r = cli(["gan_lab", "model=gan", "data=ring8", *TINY, "trainer.max_steps=1", "run_dir=here"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["here"]  # no outputs/<date>/<time>/ beside it
    assert "done: gan at step 1; checkpoint" in r.stdout and "last.ckpt" in r.stdout


# ------------------------------------------------------------------ data sets at the defaults


@pytest.mark.parametrize("model", ["sngan", "dcgan", "wgan_gp"])
def test_digits_run_at_the_defaults(model, tmp_path):
    metrics = train([f"model={model}", "data=digits", "trainer.max_steps=2", "trainer.log_every_n_steps=1"], tmp_path)
    assert math.isfinite(metrics["d_loss"]) and math.isfinite(metrics["g_loss"])


# ------------------------------------------------------------------ one-line errors


@pytest.mark.parametrize(
    "override,expected",
    [
        ("trainer.max_steps=-5", "trainer.max_steps must be an integer >= 1, got -5"),
        ("model.n_critic=two", "model.n_critic must be an integer >= 1, got 'two'"),
        ("data.batch_size=0", "data.batch_size must be a positive integer, got 0"),
        ("+trainer.maxsteps=5", "unknown trainer option trainer.maxsteps; did you mean trainer.max_steps?"),
        ("model.lr_schedule=sawtooth", "unknown lr schedule 'sawtooth'"),
        # the metrics that do apply are listed (modes among them; the list grows with the families)
        ("metrics=[fid]", "metric 'fid' does not apply to points data (ring8); metrics for it: "),
    ],
)
def test_bad_values_are_one_line_before_training(override, expected, tmp_path, capsys):
    code, lines = run_cli_in_process(["model=gan", "data=ring8", override], tmp_path / "run", capsys)
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_eval_sizes_name_their_key(tmp_path, capsys):
    code, lines = run_cli_in_process(["model=dcgan", "data=mnist_5k", "metrics=[fid]", "feature=random",
                                      "eval.num_samples=1"], tmp_path, capsys)
    assert code == 2 and "eval.num_samples must be an integer of at least 2, got 1" in lines[0]


def test_refused_cli_run_leaves_no_directory(tmp_path):
    r = cli(["gan_lab", "model=gan", "data=ring8", *TINY, "model.n_critic=two"], cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("gan_lab: error:")] == [
        "gan_lab: error: model.n_critic must be an integer >= 1, got 'two'"]
    assert os.listdir(tmp_path) == []  # neither outputs/<date>/<time>/ nor a run directory


def test_evaluate_lists_the_valid_metrics(tmp_path, capsys):
    from gan_lab import evaluate

    assert evaluate.main(["ckpt=x.ckpt", "metrics=[fdi]"]) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if "error" in ln]
    assert "unknown metrics option 'fdi'" in line and "fid" in line and "kid" in line and "modes" in line


def test_evaluate_names_no_extractor_for_points(tmp_path, capsys):
    from gan_lab import evaluate

    train(["model=gan", "data=ring8", "trainer.max_steps=1"], tmp_path)
    assert evaluate.main([f"ckpt={tmp_path}/checkpoints/last.ckpt", "metrics=[modes]", "n=200"]) == 0
    out = capsys.readouterr().out
    assert "feature: none" in out and "modes_captured" in out and "domain" not in out
