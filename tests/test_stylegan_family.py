"""StyleGAN2 as a user runs it: training on mnist_5k at 32 px and on a 64 px folder, the lazy
regularisation schedule, style mixing, truncation, R1 and path length inside the model, DDP on CPU,
exact resume (with ADA's p), the sample / style_mix / interpolate / evaluate commands on a tiny
checkpoint, the ppl metric, augmentation in every image family, and bad input as one line."""

import csv
import json
import os

import numpy as np
import pytest
import torch

from helpers import (
    assert_continued_run_equals_longer_run,
    assert_ddp_ranks_identical,
    assert_stopped_run_resumes_exactly,
    cli,
    compose_config,
    load_ckpt,
    train,
)
from gan_lab.errors import UserError

# tiny networks (channels 16 at 4 px down to 2 at 32 px), small batches
STYLE = ["model=stylegan", "model.latent_dim=16", "model.w_dim=16", "model.mapping.layers=2",
         "model.channels.base=64", "model.channels.max=16", "data.batch_size=8", "print_config=false",
         "callbacks=minimal", "trainer.log_every_n_steps=1"]
# every regulariser and ADA's adjustment within a few steps
BUSY = ["model.r1.every=2", "model.path_length.every=2", "augment=ada", "augment.initial_p=0.3",
        "augment.interval=1", "augment.speed_kimg=0.1"]


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def build(overrides):
    from gan_lab.app import instantiate
    from gan_lab.checkpoint import build_module

    cfg = compose_config(STYLE + overrides, run_dir="unused")  # nothing is written
    data = instantiate(cfg.data, "data", _convert_="all")
    return build_module(cfg, data.info), data


def a_batch(data, n=8):
    from gan_lab.data.module import take

    return take(data.dataset, torch.arange(n))


# ------------------------------------------------------------------ training


def test_trains_on_mnist_5k_at_32px_with_the_lazy_schedule(tmp_path):
    cfg = compose_config(["model=stylegan"])
    assert cfg.data.source.image_size == 32 and cfg.data.batch_size == 32 and cfg.loss.name == "non_saturating"
    assert compose_config(["model=sngan"]).data.source.image_size == 28  # other models keep 28 px
    metrics = train(STYLE + ["trainer.max_steps=16"], tmp_path)
    meta = load_ckpt(tmp_path)["gan_lab"]
    assert meta["family"] == "stylegan" and meta["data_info"]["shape"] == [1, 32, 32]
    # G every batch (the step), path length every 4 G steps, D every batch, R1 every 16 D steps
    assert {k: meta["counters"][k] for k in ("g", "g_reg", "d", "d_reg")} == {"g": 16, "g_reg": 4, "d": 16, "d_reg": 1}
    assert {"g_loss", "d_loss", "pl_penalty", "r1_penalty", "lr/g", "lr/d"} <= set(metrics)
    # the paper's correction of a lazily regularised network's learning rate
    assert metrics["lr/g"] == pytest.approx(0.0025 * 4 / 5) and metrics["lr/d"] == pytest.approx(0.0025 * 16 / 17)
    ckpt = load_ckpt(tmp_path)
    assert ckpt["optimizer_states"][0]["param_groups"][0]["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    # and the EMA copies exist for both generator networks
    assert any(k.startswith("ema.mapping.") for k in ckpt["state_dict"])
    assert any(k.startswith("ema.synthesis.") for k in ckpt["state_dict"])


def test_path_length_switch(tmp_path):
    metrics = train(STYLE + ["trainer.max_steps=4", "model.path_length.weight=0", "model.r1.gamma=0"], tmp_path)
    counters = load_ckpt(tmp_path)["gan_lab"]["counters"]
    assert "g_reg" not in counters and "d_reg" not in counters
    assert metrics["lr/g"] == pytest.approx(0.0025) and metrics["lr/d"] == pytest.approx(0.0025)


def test_trains_on_a_64px_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (70, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    train(STYLE + ["data=image_folder", f"data.source.root={folder}", "data.num_workers=0", "data.batch_size=4",
                   "trainer.max_steps=2", "augment=diffaugment"], tmp_path / "run")
    ckpt = load_ckpt(tmp_path / "run")
    assert ckpt["gan_lab"]["data_info"]["shape"] == [3, 64, 64]
    assert ckpt["state_dict"]["nets.synthesis.blocks.4.torgb.weight"].shape[0] == 3  # 4, 8, 16, 32, 64 px


# ------------------------------------------------------------------ inside the model


def test_style_mixing_uses_two_ws_at_the_crossover():
    module, _ = build(["model.style_mixing=1.0"])
    torch.manual_seed(0)
    crossovers = set()
    for _ in range(20):
        _, ws = module.generate(4, track=False)
        switch = [i for i in range(1, module.num_ws) if not torch.equal(ws[:, i], ws[:, i - 1])]
        assert len(switch) == 1  # one crossover, the same for the whole minibatch
        c = switch[0]
        assert all(torch.equal(ws[:, i], ws[:, 0]) for i in range(c))
        assert all(torch.equal(ws[:, i], ws[:, c]) for i in range(c, module.num_ws))
        crossovers.add(c)
    assert len(crossovers) > 1
    module, _ = build(["model.style_mixing=0"])
    _, ws = module.generate(4, track=False)
    assert all(torch.equal(ws[:, i], ws[:, 0]) for i in range(module.num_ws))


def test_w_avg_tracks_the_mean_w_and_truncation_at_zero_gives_it():
    module, _ = build(["model.style_mixing=0"])
    mapping = module.nets["mapping"]
    torch.manual_seed(0)
    z = torch.randn(8, 16)
    torch.manual_seed(0)
    module.generate(8)  # the same z: w_avg moves from 0 by (1 - beta) x the batch's mean w
    with torch.no_grad():
        expected = (1 - 0.995) * mapping(z).mean(dim=0)
    assert torch.allclose(mapping.w_avg, expected, rtol=1e-5, atol=1e-7)
    mapping.w_avg.fill_(0.25)
    w = module.to_w(torch.randn(5, 16), truncation=0.0, use_ema=False)
    assert torch.equal(w, torch.full_like(w, 0.25))
    images = module.sample(3, torch.Generator().manual_seed(1), use_ema=False, truncation=0.0, noise="fixed").x
    assert torch.equal(images[0], images[1]) and torch.equal(images[1], images[2])


def test_r1_and_path_length_losses_against_autograd():
    module, data = build(["model.r1.gamma=0.5", "model.r1.every=16"])
    batch = a_batch(data)
    loss, logs = module.r1_loss(batch)
    x = batch.x.clone().requires_grad_(True)
    torch.manual_seed(0)  # (no augmentation: D is deterministic)
    (grad,) = torch.autograd.grad(module.nets["discriminator"](x).sum(), x)
    expected = 0.5 / 2 * grad.square().sum(dim=(1, 2, 3)).mean() * 16
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    # auto gamma: 0.0002 * 32^2 / batch
    auto, _ = build([])
    assert auto.r1_gamma_for(8) == pytest.approx(0.0002 * 1024 / 8)
    # the path-length update moves the running mean by decay x the batch's mean length
    module.pl_mean.zero_()
    torch.manual_seed(3)
    loss, logs = module.path_length_loss(batch)
    assert float(module.pl_mean) > 0 and float(logs["pl_mean"]) == float(module.pl_mean)
    assert float(loss.detach()) == pytest.approx(float(logs["pl_penalty"]) * 2.0 * 4, rel=1e-6)


def test_bf16_mixed_with_float32_regularisers(tmp_path):
    metrics = train(STYLE + ["trainer.max_steps=4", "model.r1.every=2", "model.path_length.every=2",
                             "trainer.precision=bf16-mixed"], tmp_path)
    assert all(np.isfinite(v) for v in metrics.values()) and metrics["r1_penalty"] >= 0
    module, data = build([])
    dtypes = {"d": [], "g": []}
    module.nets["discriminator"].register_forward_hook(lambda m, i, o: dtypes["d"].append(o.dtype))
    # a convolution inside G (the image itself is accumulated in float32 always, as the original)
    module.nets["synthesis"].blocks[-1].conv1.register_forward_hook(lambda m, i, o: dtypes["g"].append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module.discriminator_loss(a_batch(data))
        module.r1_loss(a_batch(data))
        module.path_length_loss(a_batch(data))
    # D(real), D(fake) in bf16 (the fake from a bf16 G); R1's D and the path-length G in float32
    assert dtypes["d"] == [torch.bfloat16, torch.bfloat16, torch.float32]
    assert dtypes["g"] == [torch.bfloat16, torch.float32]


# ------------------------------------------------------------------ DDP and resume


def test_ddp_ranks_stay_identical(tmp_path):
    ckpt = assert_ddp_ranks_identical(STYLE + BUSY, tmp_path, steps=3)
    counters = ckpt["gan_lab"]["counters"]
    assert counters["d_reg"] >= 1 and counters["g_reg"] >= 1


def test_resumes_exactly_with_ada(tmp_path):
    # ADA's p, the path-length mean and w_avg are buffers: compared with the weights
    assert_stopped_run_resumes_exactly(STYLE + BUSY, tmp_path / "stop", stop_at=3, steps=4)
    assert_continued_run_equals_longer_run(STYLE + BUSY, tmp_path / "longer", first=2, total=4)
    last = rows(tmp_path / "stop" / "whole")[-1]
    assert 0 <= float(last["augment/p"]) <= 1 and float(last["augment/p"]) != 0.3


# ------------------------------------------------------------------ the commands on a tiny checkpoint


@pytest.fixture(scope="module")
def style_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("style")
    train(STYLE + ["trainer.max_steps=2"], run_dir)
    return str(run_dir / "checkpoints" / "last.ckpt")


def test_sample_with_truncation_and_noise(style_ckpt, tmp_path):
    from gan_lab import sample

    outs = {}
    for name, args in {"a": ["noise=random"], "b": ["noise=random"], "zero": ["noise=zero"],
                       "fixed": ["noise=fixed"], "psi0": ["truncation=0", "noise=fixed"]}.items():
        assert sample.main([f"ckpt={style_ckpt}", "n=6", f"out={tmp_path}/{name}.npz", "seed=3", *args]) == 0
        outs[name] = np.load(tmp_path / f"{name}.npz")["samples"]
    assert outs["a"].shape == (6, 1, 32, 32) and outs["a"].dtype == np.uint8
    assert np.array_equal(outs["a"], outs["b"])  # same seed, same samples
    assert (outs["psi0"] == outs["psi0"][0]).all()  # psi = 0: every sample is the average w's image
    assert sample.main([f"ckpt={style_ckpt}", "n=4", f"grid={tmp_path}/g.png", "truncation=0.5"]) == 0


def test_style_mix_and_interpolate(style_ckpt, tmp_path):
    from PIL import Image

    from gan_lab import interpolate, style_mix

    assert style_mix.main([f"ckpt={style_ckpt}", "rows=[1,2,3]", "cols=4-5", "layers=coarse",
                           f"out={tmp_path}/mix.png"]) == 0
    assert Image.open(tmp_path / "mix.png").size == (3 * 34 + 2, 4 * 34 + 2)  # (1 + 2) x (1 + 3) cells of 32 + 2
    assert style_mix.main([f"ckpt={style_ckpt}", "layers=6-7", f"out={tmp_path}/fine.png"]) == 0
    assert interpolate.main([f"ckpt={style_ckpt}", "seeds=[0,1,2]", "steps=4", "space=z", f"out={tmp_path}/s.png"]) == 0
    assert Image.open(tmp_path / "s.png").size == (7 * 34 + 2, 34 + 2)  # 4 + 3 frames
    assert interpolate.main([f"ckpt={style_ckpt}", "steps=5", f"out={tmp_path}/w.gif"]) == 0
    gif = Image.open(tmp_path / "w.gif")
    assert gif.n_frames == 5


def test_mixing_grid_and_interpolation_contents(style_ckpt):
    from gan_lab.checkpoint import load_module

    module, _, _ = load_module(style_ckpt)
    grid = module.style_mix_grid([1, 2], [3], [0, 1, 2, 3])
    assert grid.shape == (6, 1, 32, 32)  # blank, col 3 | row 1, mix | row 2, mix
    ws_row = module.to_w(module.seed_latents([1]))
    ws_col = module.to_w(module.seed_latents([3]))
    ws = torch.cat([ws_col.expand(4, -1), ws_row.expand(module.num_ws - 4, -1)])[None]
    assert torch.allclose(grid[3], module.synthesize(ws, "fixed")[0], atol=1e-6)
    frames = module.interpolation([1, 3], 3, "w")
    assert torch.allclose(frames[0], module.synthesize(ws_row, "fixed")[0], atol=1e-6)
    assert torch.allclose(frames[-1], module.synthesize(ws_col, "fixed")[0], atol=1e-6)


def test_evaluate_with_truncation_and_ppl(style_ckpt, tmp_path, monkeypatch, capsys):
    from gan_lab import evaluate

    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "scores.json"
    assert evaluate.main([f"ckpt={style_ckpt}", "metrics=[fid,pr,ppl]", "n=40", "feature=random",
                          "truncation=[1.0,0.5]", f"out={out}"]) == 0
    report = json.loads(out.read_text())
    for psi in ("truncation=1", "truncation=0.5"):
        res = report["results"][psi]
        assert res["fid"] >= 0 and 0 <= res["precision"] <= 1 and res["ppl_w"] > 0
    assert os.path.isfile(report["curve"])
    assert evaluate.main([f"ckpt={style_ckpt}", "metrics=[ppl]", "metrics.ppl.space=z", "n=20",
                          "feature=random", f"out={out}"]) == 0
    assert json.loads(out.read_text())["results"]["ppl_z"] > 0
    # the paper's LPIPS distance needs StyleGAN2-ADA's vgg16.pt: offline without it, one line at start
    capsys.readouterr()
    assert evaluate.main([f"ckpt={style_ckpt}", "metrics=[ppl]", "n=20", "feature=torchscript",
                          f"feature.path={tmp_path}/vgg16.pt", "feature.input_range=[0,255]", "feature.size=null",
                          "feature.call_kwargs={resize_images:false,return_lpips:true}"]) == 2
    assert "vgg16.pt" in capsys.readouterr().err.splitlines()[0]


def test_ppl_against_a_hand_computation():
    from gan_lab.metrics.features.base import FeatureExtractor, FeatureOutput
    from gan_lab.metrics.ppl import PerceptualPathLength, SamplesWithPaths, filtered_mean
    from gan_lab.metrics.registry import EvalContext, FakeBatch

    # 1000 values: the 1st percentile (rounded down) is the 10th smallest, the 99th (rounded up) the
    # 10th largest, so 9 values on each side are dropped
    values = np.random.default_rng(0).permutation(np.arange(1000.0))
    assert filtered_mean(values) == pytest.approx(np.arange(9.0, 991.0).mean(), rel=1e-12)
    spiky = np.concatenate([np.ones(990), np.full(5, 1e6), np.full(5, -1e6)])
    assert filtered_mean(spiky) == 1.0  # outliers dropped

    class Flatten(FeatureExtractor):
        max_batch, num_features = 7, 16

        def extract(self, x):
            return FeatureOutput(x.flatten(1), None)

    g = torch.Generator().manual_seed(0)
    a = torch.rand(20, 1, 4, 4, generator=g) * 0.5
    b = a + torch.randn(20, 1, 4, 4, generator=g) * 1e-3
    metric = PerceptualPathLength(EvalContext(extractor=Flatten(), device=torch.device("cpu")), epsilon=1e-2)
    metric.update(FakeBatch(a, batch=SamplesWithPaths(a, lambda n, **kw: (a[:n], b[:n]))))
    d = ((a.double() - b.double()).flatten(1).square().sum(1) / 1e-4).numpy()
    assert metric.compute()["ppl_w"] == pytest.approx(filtered_mean(d), rel=1e-6)


# ------------------------------------------------------------------ augmentation in every image family


class Counting(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, *images):
        self.calls.append(tuple(x.shape for x in images))
        return self.inner(*images)

    def observe(self, logits):
        self.inner.observe(logits)


@pytest.mark.parametrize("model,extra,d_calls", [
    ("dcgan", ["model.net.dcgan.g_width=8", "model.net.dcgan.d_width=8"], 2),
    ("acgan", ["model.net.dcgan.g_width=8", "model.net.dcgan.d_width=8"], 2),
    ("pix2pix", ["model.generator.width=4", "model.discriminator.width=4"], 2),
    ("stylegan", STYLE[1:7], 2),
], ids=["dcgan", "acgan", "pix2pix", "stylegan"])
def test_real_and_fake_go_through_the_same_augmentation(model, extra, d_calls):
    from gan_lab.app import instantiate
    from gan_lab.checkpoint import build_module

    cfg = compose_config([f"model={model}", "augment=diffaugment", "data.batch_size=8", *extra], run_dir="unused")
    data = instantiate(cfg.data, "data", _convert_="all")
    module = build_module(cfg, data.info)
    module.augmenter = Counting(module.augmenter)
    batch = a_batch(data)
    module.discriminator_loss(batch)
    assert len(module.augmenter.calls) == d_calls  # the real batch and the fake batch
    shapes = set(module.augmenter.calls)
    assert len(shapes) == 1  # the same call for both (pix2pix: image and condition together)
    module.augmenter.calls.clear()
    module.generator_loss(batch)
    assert module.augmenter.calls  # G's gradient goes through the augmentation too


def test_augment_trains_with_cyclegan_and_logs_ada_p(tmp_path):
    train(["model=cyclegan", "model.generator.width=4", "model.generator.n_blocks=1", "model.discriminator.width=4",
           "data.batch_size=2", "augment=diffaugment", "trainer.max_steps=1", "print_config=false",
           "callbacks=minimal"], tmp_path / "cyc")
    train(["model=sngan", "augment=ada", "augment.initial_p=0.5", "augment.interval=1", "augment.speed_kimg=1",
           "trainer.max_steps=3",
           "trainer.log_every_n_steps=1"], tmp_path / "sngan")
    p = [float(r["augment/p"]) for r in rows(tmp_path / "sngan")]
    assert len(p) == 3 and all(0 <= v <= 1 for v in p) and len(set(p)) > 1


# ------------------------------------------------------------------ bad input, before any work


@pytest.mark.parametrize("args,expected", [
    (STYLE + ["data.source.image_size=28"], "builds square images of 16, 32, 64, 128, 256 px"),
    (STYLE + ["data=ring8"], "model=stylegan generates images"),
    (STYLE + ["model.style_mixing=1.5"], "model.style_mixing is a probability"),
    (STYLE + ["+model.r1.gama=1"], "unknown setting model.r1.gama"),
    (["model=gan", "data=ring8", "augment=diffaugment"], "augment=diffaugment transforms images"),
    (["model=passgan", "augment=diffaugment"], "augment=diffaugment transforms images"),
    (["model=wgan_gp", "augment=ada"], "augment=ada adjusts p from the sign"),
    (["model=cyclegan", "augment=ada"], "model=cyclegan takes augment=diffaugment"),
    (["model=sngan", "augment=ada", "augment.target=1.5"], "augment.target must be below 1"),
    (["model=sngan", "metrics=[ppl]"], "metric 'ppl' walks the latent space"),
])
def test_bad_input_is_one_line(args, expected, tmp_path):
    with pytest.raises(UserError, match=expected) as err:
        train(args + ["trainer.max_steps=1", "print_config=false"], tmp_path)
    assert "\n" not in str(err.value)


def test_command_line_mistakes_are_one_line(style_ckpt, tmp_path, capsys):
    from gan_lab import interpolate, sample, style_mix

    r = cli(["gan_lab", *STYLE, "data.source.image_size=28", f"run_dir={tmp_path}/r"])
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert r.returncode == 2 and len(errors) == 1 and "powers of two" in errors[0], r.stderr[-2000:]
    cases = [
        (style_mix, ["layers=5-12", f"out={tmp_path}/m.png"], "layers=5-12 is out of range"),
        (style_mix, ["layers=fine", f"out={tmp_path}/m.png"], "no fine layers"),
        (style_mix, ["layers=top", f"out={tmp_path}/m.png"], "layers must be coarse, middle, fine"),
        (sample, ["truncation=-0.5", f"out={tmp_path}/s.npz"], "psi >= 0"),
        (sample, ["noise=loud", f"out={tmp_path}/s.npz"], "noise must be one of"),
        (interpolate, ["seeds=[3]", f"out={tmp_path}/i.png"], "at least 2 seeds"),
        (interpolate, ["space=x", f"out={tmp_path}/i.png"], "space must be one of w, z"),
    ]
    for command, args, expected in cases:
        capsys.readouterr()
        assert command.main([f"ckpt={style_ckpt}", *args]) == 2, args
        err = capsys.readouterr().err
        assert expected in err.splitlines()[0] and "error" in err.splitlines()[0], err
    # a checkpoint of a model without a mapping network
    capsys.readouterr()
    train(["model=gan", "data=ring8", "trainer.max_steps=1"], tmp_path / "gan")
    assert style_mix.main([f"ckpt={tmp_path}/gan/checkpoints/last.ckpt", f"out={tmp_path}/m.png"]) == 2
    assert "needs a style-based generator" in capsys.readouterr().err
