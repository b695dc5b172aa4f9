"""The command line as a user meets it: sample CLI, bad input, multirun and DDP on CPU."""

import json
import os

import numpy as np
import pytest
import torch

from helpers import assert_ddp_continued_run_equals_longer_run, assert_ddp_ranks_identical, cli, train

TINY_CLI = [
    "model.net.dcgan.g_width=8", "model.net.dcgan.d_width=8", "model.net.mlp.width=32", "data.batch_size=16",
    "print_config=false", "callbacks=minimal",
]


@pytest.fixture(scope="module")
def image_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("img")
    train(["model=sngan", "data=mnist_5k", "trainer.max_steps=2"], run_dir)
    return str(run_dir / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def vector_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("vec")
    train(["model=gan", "data=ring8", "trainer.max_steps=2"], run_dir)
    return str(run_dir / "checkpoints" / "last.ckpt")


def test_sample_cli_images(image_ckpt, tmp_path):
    out, grid = tmp_path / "s.npz", tmp_path / "g.png"
    r = cli(["gan_lab.sample", f"ckpt={image_ckpt}", "n=10", f"out={out}", f"grid={grid}", "seed=3"])
    assert r.returncode == 0, r.stderr
    samples = np.load(out)["samples"]
    assert samples.dtype == np.uint8 and samples.shape == (10, 1, 28, 28)
    assert grid.exists()


def test_sample_cli_is_seeded_and_needs_no_data(image_ckpt, tmp_path, monkeypatch):
    from gan_lab import sample

    # the training data is not touched: make loading it impossible
    monkeypatch.setattr("gan_lab.data.sources.MNIST5k.load", lambda self: 1 / 0)
    outs = []
    for i, seed in enumerate([5, 5, 6]):
        out = tmp_path / f"{i}.npz"
        assert sample.main([f"ckpt={image_ckpt}", "n=6", f"out={out}", f"seed={seed}", "batch_size=4"]) == 0
        outs.append(np.load(out)["samples"])
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])


def test_truncation_draws_latents_within_psi_for_unconditional_models(image_ckpt, tmp_path, capsys):
    from gan_lab import sample
    from gan_lab.checkpoint import load_module

    module, _, _ = load_module(image_ckpt)
    g = module.sampling_net("generator")
    seen, forward = [], g.forward
    g.forward = lambda z, y=None, **kw: seen.append(z) or forward(z, y, **kw)
    x = module.sample(300, torch.Generator().manual_seed(0), truncation=0.4).x
    assert x.shape == (300, 1, 28, 28) and float(seen[-1].abs().max()) <= 0.4
    module.sample(300, torch.Generator().manual_seed(0))
    assert float(seen[-1].abs().max()) > 2.0  # without it, plain normal latents (P(|z| < 2) ** 38400 ~ 0)
    assert sample.main([f"ckpt={image_ckpt}", "n=4", f"out={tmp_path / 't.npz'}", "truncation=0.7"]) == 0
    assert sample.main([f"ckpt={image_ckpt}", "n=4", f"out={tmp_path / 'u.npz'}", "truncation=0"]) == 2
    assert "truncation must be a positive number" in capsys.readouterr().err


def test_sample_cli_2d(vector_ckpt, tmp_path):
    from gan_lab import sample

    out, grid = tmp_path / "v.npz", tmp_path / "v.png"
    assert sample.main([f"ckpt={vector_ckpt}", "n=300", f"out={out}", f"grid={grid}"]) == 0
    samples = np.load(out)["samples"]
    assert samples.dtype == np.float32 and samples.shape == (300, 2)
    assert grid.exists()


def test_sample_cli_errors(tmp_path, capsys):
    from gan_lab import sample

    assert sample.main(["ckpt=/nope.ckpt", "n=3", f"out={tmp_path}/x.npz"]) == 2
    assert "checkpoint not found: /nope.ckpt" in capsys.readouterr().err
    assert sample.main(["n=3"]) == 2
    assert "missing argument: ckpt" in capsys.readouterr().err
    assert sample.main(["ckpt=a", "n=3", "out=b", "colour=red"]) == 2
    err = capsys.readouterr().err
    assert "gan_lab.sample: error:" in err and "'colour'" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if "error" in ln]) == 1


def test_sample_cli_outputs_are_checked_and_said(image_ckpt, tmp_path, capsys):
    from gan_lab import sample

    # a picture asked for as out=: said plainly, nothing written under another name
    assert sample.main([f"ckpt={image_ckpt}", "n=3", f"out={tmp_path}/x.png"]) == 2
    assert "grid=" in capsys.readouterr().err and not list(tmp_path.iterdir())
    assert sample.main([f"ckpt={image_ckpt}", "n=3", "out=/nodir/x.npz"]) == 2
    assert "/nodir does not exist" in capsys.readouterr().err
    assert sample.main([f"ckpt={image_ckpt}", "n=3"]) == 2
    assert "nothing to write" in capsys.readouterr().err
    # a grid alone needs no out=, and says how many of the samples it shows
    assert sample.main([f"ckpt={image_ckpt}", "n=100", f"grid={tmp_path}/g.png"]) == 0
    assert "the first 64 of 100" in capsys.readouterr().out and (tmp_path / "g.png").exists()
    assert sample.main([f"ckpt={image_ckpt}", "n=3", "labels=all", f"out={tmp_path}/y.npz"]) == 2
    assert "unconditional" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input, as a user sees it


def one_line_error(r):
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("gan_lab: error:")]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return lines[0]


def test_unknown_group_option_lists_choices(tmp_path):
    r = cli(["gan_lab", "model=nope", f"run_dir={tmp_path}"])
    assert r.returncode != 0
    assert "Could not find 'model/nope'" in r.stderr
    assert "wgan_gp" in r.stderr and "sngan" in r.stderr


def test_missing_data_files(tmp_path):
    r = cli(["gan_lab", "data=cifar10", f"data.source.root={tmp_path}/nowhere", f"run_dir={tmp_path}/run", *TINY_CLI])
    line = one_line_error(r)
    assert f"{tmp_path}/nowhere" in line and "download=true" in line
    assert not os.path.exists(tmp_path / "run" / "checkpoints")  # failed before training


def test_wrong_image_size(tmp_path):
    r = cli(["gan_lab", "model=dcgan", "data=digits", "data.source.image_size=10", f"run_dir={tmp_path}/run", *TINY_CLI])
    line = one_line_error(r)
    assert "10x10" in line and "image_size" in line
    assert not (tmp_path / "run").exists()  # a refused run leaves no directory behind


def test_resnet_needs_32px(tmp_path):
    r = cli(["gan_lab", "model=sngan", "model.net.arch=resnet", "data=mnist_5k", f"run_dir={tmp_path}", *TINY_CLI])
    assert "32 px" in one_line_error(r)


def test_missing_checkpoint(tmp_path):
    r = cli(["gan_lab", "data=ring8", f"ckpt_path={tmp_path}/none.ckpt", f"run_dir={tmp_path}", *TINY_CLI])
    assert "checkpoint not found" in one_line_error(r)


def test_checkpoint_of_another_model_is_refused(vector_ckpt, tmp_path):
    r = cli(["gan_lab", "model=wgan_gp", "data=ring8", f"ckpt_path={vector_ckpt}", f"run_dir={tmp_path}", *TINY_CLI])
    line = one_line_error(r)
    assert "model=gan" in line and "model=wgan_gp" in line


def test_checkpoint_of_other_network_size_is_refused(vector_ckpt, tmp_path):
    r = cli(["gan_lab", "model=gan", "data=ring8", f"ckpt_path={vector_ckpt}", f"run_dir={tmp_path}",
             *TINY_CLI[:-2], "model.net.mlp.width=64", "print_config=false", "callbacks=minimal"])
    assert "does not fit" in one_line_error(r)


def test_failed_run_deletes_nothing(vector_ckpt, tmp_path):
    run_dir = tmp_path / "existing"
    (run_dir / "checkpoints").mkdir(parents=True)
    keep = run_dir / "checkpoints" / "last.ckpt"
    keep.write_bytes(open(vector_ckpt, "rb").read())
    (run_dir / "metrics.csv").write_text("step,d_loss\n1,0.5\n")
    r = cli(["gan_lab", "model=wgan_gp", "data=ring8", f"ckpt_path={keep}", f"run_dir={run_dir}", *TINY_CLI])
    assert r.returncode == 2
    assert keep.read_bytes() == open(vector_ckpt, "rb").read()
    assert (run_dir / "metrics.csv").read_text() == "step,d_loss\n1,0.5\n"


# ------------------------------------------------------------------ multirun and data parallel


def test_multirun(tmp_path):
    r = cli(["gan_lab", "-m", "model=gan,lsgan", "data=ring8", "trainer.max_steps=2", *TINY_CLI,
             f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.num}", "run_dir=${hydra:runtime.output_dir}"])
    assert r.returncode == 0, r.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").exists()


def test_ddp_on_cpu_keeps_ranks_identical(tmp_path):
    r = cli(["gan_lab", "accelerator=ddp_cpu", "model=wgan_gp", "data=ring8", "trainer.max_steps=6", *TINY_CLI,
             f"run_dir={tmp_path}"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    sync = json.loads((tmp_path / "ddp_sync.json").read_text())
    assert sync == {"world_size": 2, "max_abs_weight_diff": 0.0, "step": 6}
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # wgan_gp's 2-D setting: 3 critic updates per G step
    assert ckpt["gan_lab"]["counters"]["step"] == 6 and ckpt["gan_lab"]["counters"]["d"] == 18


@pytest.mark.parametrize("model", ["gan", "wgan"])
def test_ddp_keeps_ranks_identical_with_the_grid_settings(model, tmp_path):
    # the grid's settings (conf/data_model/): gan's R1 penalty (a double backward through the
    # DDP-wrapped D) and wgan's 2-D clipping that leaves the critic's biases free
    ckpt = assert_ddp_ranks_identical([f"model={model}", "data=grid25"], tmp_path, steps=2)
    d = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("nets.discriminator.")}
    if model == "wgan":
        assert max(float(v.abs().max()) for k, v in d.items() if k.endswith("weight")) <= 0.01 + 1e-9
        assert max(float(v.abs().max()) for k, v in d.items() if k.endswith("bias")) > 0.01


@pytest.mark.parametrize("raised, status", [(None, 0), (SystemExit(3), 3), (SystemExit(None), 0),
                                           (SystemExit("bad"), 1)])
def test_a_process_of_a_ddp_run_leaves_with_the_runs_status(raised, status, monkeypatch):
    # after a DDP run the process skips the interpreter's teardown (gloo threads could abort it):
    # a finished run still exits 0 and a failed one keeps the status the lab gave it
    from gan_lab import train as train_mod

    def fake_hydra_main():
        if raised is not None:
            raise raised

    class Left(Exception):  # os._exit never returns
        pass

    exits = []

    def fake_exit(code):
        exits.append(code)
        raise Left

    monkeypatch.setattr(train_mod, "hydra_main", fake_hydra_main)
    monkeypatch.setattr(train_mod, "_RAN_DISTRIBUTED", True)
    monkeypatch.setattr(train_mod, "exit_after_distributed_run", fake_exit)
    monkeypatch.setattr(train_mod.sys, "argv", ["gan_lab"])
    with pytest.raises(Left):
        train_mod.main()
    assert exits == [status]
    monkeypatch.setattr(train_mod, "_RAN_DISTRIBUTED", False)  # a run without DDP exits as Python does
    if raised is None:
        train_mod.main()
    else:
        with pytest.raises(SystemExit):
            train_mod.main()
    assert len(exits) == 1


def test_ddp_ranks_draw_their_own_noise_and_resume_exactly(tmp_path):
    # ring8's 2-D setting decays the lr linearly: the horizon is fixed at the final length
    ckpt = assert_ddp_continued_run_equals_longer_run(["model=wgan_gp", "data=ring8", "model.lr_schedule_steps=4"],
                                                      tmp_path, first=2, total=4)
    ranks = ckpt["gan_lab"]["per_rank"]
    assert len(ranks) == 2
    # rank 0 keeps the streams a single-process run has; rank 1 draws latents of its own
    assert torch.equal(ranks[0]["rng"]["torch"], ckpt["gan_lab"]["rng"]["torch"])
    assert not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    assert ranks[0]["rng"]["python"] != ranks[1]["rng"]["python"]
