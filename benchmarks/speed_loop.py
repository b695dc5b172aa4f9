"""Speed of the lab's training loop against a plain PyTorch loop doing the same work.

Both loops train the same networks (built by the model's own ``net`` config, PacGAN packing
included), with the same losses, penalty, clipping, optimizers, EMA, batch size and data
loader, from the same seed. The plain loop is what one would write by hand: no Lightning, no
callbacks, no logging, no NaN/Inf guards. Only generator steps after the first ``warmup`` are
timed, so start-up (data loading, Lightning's set-up) is excluded. The two loops run
alternately ``repeats`` times in one process, so load from other jobs on the machine hits both
alike; the reported ratio is median(lab) / median(plain) steps per second.

    .venv/bin/python benchmarks/speed_loop.py [model=dcgan] [data=mnist_5k] [steps=200] \
        [warmup=10] [repeats=3] [threads=1] [hydra overrides...]

Writes ``results/speed_loop_<model>_<data>.json``; ``speed_loop.py report`` rewrites
``results/speed_loop.md`` from every such file.
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, compose, machine, machine_line, parse_args, pin_threads, quiet_lightning, write_json, write_table,
)

import torch  # noqa: E402

# CPU time of this process: both loops run single-threaded in it, so their ratio does not move
# with whatever else a shared machine is doing (wall time did, by up to +-5 % per repeat)
CLOCK = time.process_time


def lab_steps_per_second(overrides: list[str], steps: int, warmup: int) -> float:
    """G steps/s of ``gan_lab.train.run`` with sample grids, checkpoints and loggers off."""
    import lightning as L

    import gan_lab.train as train_mod

    marks: dict[str, float] = {}

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            if module.step == warmup and "start" not in marks:
                marks["start"] = CLOCK()
            if module.step == warmup + steps and "end" not in marks:
                marks["end"] = CLOCK()

    original = train_mod.build_trainer

    def with_timer(cfg, run_dir, callbacks, loggers):
        return original(cfg, run_dir, callbacks + [Timer()], loggers)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides + [f"trainer.max_steps={warmup + steps}"], tmp)
        train_mod.build_trainer = with_timer  # the timer rides along as one more callback
        try:
            train_mod.run(cfg)
        finally:
            train_mod.build_trainer = original
    return steps / (marks["end"] - marks["start"])


def plain_steps_per_second(overrides: list[str], steps: int, warmup: int) -> float:
    """G steps/s of a hand-written loop over the same networks, losses and loader."""
    import copy

    import hydra

    from gan_lab.engine.optim import build_optimizer
    from gan_lab.families.adversarial import build_pair
    from gan_lab.losses import get_loss, get_penalty

    cfg = compose(overrides, "/tmp/unused")
    torch.manual_seed(cfg.seed)
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    info = dm.info
    m = cfg.model
    pack = int(m.get("pack", 1))
    net = hydra.utils.instantiate(m.net, _convert_="all")
    g, d = build_pair(net, info, m.latent_dim, pack=pack)
    g.train()
    d.train()
    opt_g = build_optimizer(g.parameters(), dict(m.g_optimizer))
    opt_d = build_optimizer(d.parameters(), dict(m.d_optimizer))
    loss = get_loss(cfg.loss.name)
    pen_cfg = dict(m.penalty or {})
    penalty = get_penalty(pen_cfg.pop("name", None))
    pen_w = float(pen_cfg.pop("weight", 10.0))
    clip = m.clip_value
    ema = copy.deepcopy(g).requires_grad_(False) if m.get("ema") and m.ema.get("decay") else None

    def disc(x):
        if pack > 1:
            x = x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])
        return d(x)

    loader = dm.train_dataloader()
    it = iter(loader)
    d_steps = g_steps = 0
    start = None
    while g_steps < warmup + steps:
        try:
            real = next(it).x
        except StopIteration:
            it = iter(loader)
            real = next(it).x
        with torch.no_grad():
            fake = g(torch.randn(real.shape[0], m.latent_dim))
        d_loss = loss.d_loss(disc(real), disc(fake))
        if penalty is not None:
            d_loss = d_loss + pen_w * penalty(disc, real, fake, **pen_cfg)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if clip is not None:
            with torch.no_grad():
                for p in d.parameters():
                    p.clamp_(-clip, clip)
        d_steps += 1
        if d_steps % m.n_critic:
            continue
        d.requires_grad_(False)
        fake = g(torch.randn(real.shape[0], m.latent_dim))
        d_real = None
        if loss.g_uses_real:
            with torch.no_grad():
                d_real = disc(real)
        g_loss = loss.g_loss(d_real, disc(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        d.requires_grad_(True)
        opt_g.step()
        g_steps += 1
        if ema is not None:
            with torch.no_grad():
                decay = min(float(m.ema.decay), (1.0 + g_steps) / (10.0 + g_steps))
                for e, p in zip(ema.parameters(), g.parameters()):
                    e.lerp_(p, 1.0 - decay)
                for e, b in zip(ema.buffers(), g.buffers()):
                    e.copy_(b)
        if g_steps == warmup:
            start = CLOCK()
    return steps / (CLOCK() - start)


def report() -> None:
    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "speed_loop_*.json"))):
        with open(path) as f:
            rows.append(json.load(f))
    lines = ["# Training-loop speed: gan_lab vs a plain PyTorch loop", "",
             "Generator steps per CPU second of the process (median over the repeats; the two loops "
             "alternate in one process, single-threaded). Same networks, losses, optimizers, batch size and data loader; the plain loop "
             "has no Lightning, callbacks, logging or NaN/Inf guards. Start-up and the first `warmup` "
             "G steps are not timed.", "",
             "| model | data | batch | G steps timed × repeats | threads | lab steps/s | plain steps/s | ratio lab/plain |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['data']} | {r['batch_size']} | {r['steps_timed']} × {r['repeats']} | "
                     f"{r['machine']['threads_used']} | {statistics.median(r['lab_steps_per_s']):.2f} | "
                     f"{statistics.median(r['plain_steps_per_s']):.2f} | {r['ratio_of_medians']:.3f} |")
    if rows:
        lines += ["", machine_line(rows[-1]["machine"])]
    write_table("speed_loop", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"model": "dcgan", "data": "mnist_5k", "steps": "200", "repeats": "3",
                                    "threads": "1", "warmup": "10"})
    pin_threads(int(args["threads"]))
    quiet_lightning()
    overrides = [f"model={args['model']}", f"data={args['data']}", *extra]
    steps, warmup = int(args["steps"]), int(args["warmup"])
    lab, plain = [], []
    for i in range(int(args["repeats"])):
        plain.append(plain_steps_per_second(overrides, steps, warmup))
        lab.append(lab_steps_per_second(overrides, steps, warmup))
        print(f"repeat {i}: plain {plain[-1]:.2f} steps/s, lab {lab[-1]:.2f} steps/s", flush=True)
    cfg = compose(overrides, "/tmp/unused")
    result = {
        "what": "generator steps per second, lab loop vs plain PyTorch loop, same networks/losses/batch",
        "model": args["model"],
        "data": args["data"],
        "overrides": overrides,
        "batch_size": int(cfg.data.batch_size),
        "n_critic": int(cfg.model.n_critic),
        "steps_timed": steps,
        "warmup_steps": warmup,
        "repeats": int(args["repeats"]),
        "lab_steps_per_s": lab,
        "plain_steps_per_s": plain,
        "ratio_of_medians": statistics.median(lab) / statistics.median(plain),
        "machine": machine(),
    }
    out = os.path.join(RESULTS, f"speed_loop_{args['model']}_{args['data']}.json")
    write_json(out, result)
    print(f"{args['model']} on {args['data']}: lab {statistics.median(lab):.2f} steps/s, "
          f"plain {statistics.median(plain):.2f} steps/s, ratio {result['ratio_of_medians']:.3f} -> {out}")
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
