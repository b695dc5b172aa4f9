"""The lab's StyleGAN2 against NVlabs' own code at the lab's CPU settings on mnist_5k at 32 px, and
lab-side settings that leave StyleGAN's early collapse within a CPU budget.

``impl=nvlabs`` trains the networks of the user's own checkout of NVlabs' stylegan2-ada-pytorch
(``nvlabs=<path>``; nothing of it is copied into the lab: its ``training/networks.py`` and
``training/loss.py`` are imported from that path, and on CPU its custom ops run their reference
implementations) with its ``StyleGAN2Loss`` in a loop that follows its ``training/training_loop.py``
(phases Gmain, Greg every 4, Dmain, Dreg every 16, each with ``gain`` = its interval; the lazy lr
and beta correction; the EMA with half-life 10 kimg and ramp-up 0.05; gradients' NaN/Inf zeroed),
at the lab's ``model=stylegan`` default: channel base 1024 and max 128, z = w = 128, 8 mapping
layers, batch 32, Adam lr 0.0025 and betas (0, 0.99), R1 gamma 0.0002 * 32^2 / batch, path-length
weight 2, style mixing 0.9, minibatch-stddev groups of 4, no augmentation. Its real batches are
the lab's (mnist_5k resized to 32 px, in [-1, 1], from the lab's data loader). ``impl=lab`` trains
``model=stylegan`` (plus a variant's overrides) with the lab's loop. Both are scored at each
G-step count in ``steps`` with the lab's evaluator exactly as benchmarks/stylegan.py scores
(``feature=domain``; ``n`` EMA samples at psi 1 with random noise against ``n`` training images):
domain-FID, precision/recall (k=3), classes covered, class KL. Training time is process CPU time
of one thread without the scoring.

    .venv/bin/python benchmarks/stylegan_reference.py nvlabs=<stylegan2-ada-pytorch checkout>
        [impls=nvlabs,lab] [variants=default] [seeds=1] [first_seed=0] [steps=350,700] [n=1000] [threads=1]

``variants`` (``VARIANTS`` below) other than ``default`` run on the lab only. Runs are appended to
``results/stylegan_reference_runs.jsonl`` (one record per scored step; a run whose steps are all
there is skipped); ``results/stylegan_reference.{json,md}`` are rewritten from all records;
``report`` only redoes the tables.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, machine, machine_line, mean_se, parse_args, pin_threads, quiet_lightning, read_jsonl, row_cell,
    write_json, write_table,
)

RUNS = os.path.join(RESULTS, "stylegan_reference_runs.jsonl")
KEYS = ["fid", "precision", "recall", "classes_covered", "class_kl"]
METRICS = {"fid": {}, "pr": {}}
# lab-side settings tried against the early collapse (the lab's overrides)
VARIANTS = {
    "default": [],
    "lr1e-3_map2": ["model.g_optimizer.lr=0.001", "model.d_optimizer.lr=0.001", "model.mapping.layers=2"],
    "map2_lr2e-3_b64_mbstd8": ["model.mapping.layers=2", "model.g_optimizer.lr=0.002", "model.d_optimizer.lr=0.002",
                               "data.batch_size=64", "model.mbstd.group_size=8"],
    "lr1e-3_map2_mbstd8": ["model.g_optimizer.lr=0.001", "model.d_optimizer.lr=0.001", "model.mapping.layers=2",
                           "model.mbstd.group_size=8"],
}
# the lab's model=stylegan default at 32 px, in NVlabs' terms
NV = {"z_dim": 128, "w_dim": 128, "map_layers": 8, "channel_base": 1024, "channel_max": 128, "batch": 32, "lr": 0.0025,
      "mbstd": 4, "pl_weight": 2.0, "style_mixing": 0.9, "g_reg_every": 4, "d_reg_every": 16, "ema_kimg": 10.0,
      "ema_rampup": 0.05}
BASE = ["model=stylegan", "data=mnist_5k", "data.source.image_size=32"]


def load() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


class NVSampler:
    """What the lab's evaluate_module asks of a module, for NVlabs' EMA generator: ``n`` images of
    fresh z from the evaluation's generator, psi 1, random noise."""

    def __init__(self, generator):
        self.G = generator

    def evaluation_sample(self, n, gen, datamodule=None, use_ema=True, **options):
        import torch

        from gan_lab.data.batch import Batch

        with torch.no_grad():
            z = torch.randn(n, self.G.z_dim, generator=gen)
            return Batch(self.G(z, torch.zeros(n, 0), truncation_psi=1, noise_mode="random"))


def lab_config(seed: int, extra: list[str]):
    from common import compose

    return compose([*BASE, f"seed={seed}", *extra], tempfile.mkdtemp(prefix="stylegan_reference"))


def run_nvlabs(path: str, seed: int, steps: list[int], n: int, emit) -> None:
    """NVlabs' G, D and StyleGAN2Loss in the loop of their training_loop.py (one process, no
    augmentation), scored at each of ``steps``."""
    import torch

    from gan_lab.app import instantiate
    from lab_runs import score

    if not os.path.isfile(os.path.join(path, "training", "loss.py")):
        raise SystemExit(f"nvlabs={path} is not a checkout of NVlabs' stylegan2-ada-pytorch (no training/loss.py)")
    sys.path.insert(0, os.path.abspath(path))
    from training.loss import StyleGAN2Loss  # noqa: E402  (the user's checkout)
    from training.networks import Discriminator, Generator  # noqa: E402

    o = NV
    cfg = lab_config(seed, [])
    datamodule = instantiate(cfg.data, "data", _convert_="all")
    datamodule.info  # noqa: B018 - loads the data
    torch.manual_seed(seed)
    res, batch = 32, o["batch"]
    gamma = 0.0002 * res**2 / batch
    G = Generator(z_dim=o["z_dim"], c_dim=0, w_dim=o["w_dim"], img_resolution=res, img_channels=1,
                  mapping_kwargs={"num_layers": o["map_layers"]},
                  synthesis_kwargs={"channel_base": o["channel_base"], "channel_max": o["channel_max"],
                                    "num_fp16_res": 0, "conv_clamp": None}).train().requires_grad_(False)
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=1, architecture="resnet",
                      channel_base=o["channel_base"], channel_max=o["channel_max"], num_fp16_res=0, conv_clamp=None,
                      epilogue_kwargs={"mbstd_group_size": o["mbstd"]}).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(torch.device("cpu"), G.mapping, G.synthesis, D, style_mixing_prob=o["style_mixing"],
                         r1_gamma=gamma, pl_weight=o["pl_weight"])
    phases = []
    for name, module, every in (("G", G, o["g_reg_every"]), ("D", D, o["d_reg_every"])):
        ratio = every / (every + 1)
        opt = torch.optim.Adam(module.parameters(), lr=o["lr"] * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
        phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, every)]

    def real_batches():
        epoch = 0
        while True:
            loader = datamodule.train_dataloader()
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            for b in loader:
                if len(b.x) == batch:
                    yield b.x.float()
            epoch += 1

    todo, reals, nimg, batch_idx = sorted(steps), real_batches(), 0, 0
    no_c = torch.zeros(batch, 0)
    t0 = time.process_time()
    while todo:
        real = next(reals)
        zs = torch.randn(len(phases) * batch, o["z_dim"]).split(batch)
        for (phase, module, opt, every), z in zip(phases, zs):
            if batch_idx % every != 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase, real_img=real, real_c=no_c, gen_z=z, gen_c=no_c, sync=True,
                                      gain=every)
            module.requires_grad_(False)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
        with torch.no_grad():
            half_life = min(o["ema_kimg"] * 1000, nimg * o["ema_rampup"])
            beta = 0.5 ** (batch / max(half_life, 1e-8))
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.copy_(p.lerp(pe, beta))
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
        nimg += batch
        batch_idx += 1
        if batch_idx == todo[0]:
            todo.pop(0)
            spent = time.process_time() - t0
            state = torch.get_rng_state()
            scores = score(NVSampler(G_ema), datamodule, cfg, METRICS, n)
            torch.set_rng_state(state)
            t0 += time.process_time() - t0 - spent  # scoring is not training time
            emit(batch_idx, nimg, spent, scores)


def run_lab(variant: str, seed: int, steps: list[int], n: int, emit) -> None:
    """``model=stylegan`` with the variant's overrides in the lab's loop, scored at each of ``steps``
    (on a copy of the module; the training RNG stream is restored afterwards)."""
    import lightning as L
    import torch

    import gan_lab.train as train_mod
    from lab_runs import score

    todo = sorted(steps)
    clock: dict = {}
    cfg = lab_config(seed, [f"trainer.max_steps={max(steps)}", *VARIANTS[variant]])

    class Probe(L.Callback):
        def on_train_start(self, trainer, module):
            clock["t0"] = time.process_time()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if todo and module.at_step_boundary() and module.step == todo[0]:
                todo.pop(0)
                spent = time.process_time() - clock["t0"]
                state = torch.get_rng_state()
                scores = score(copy.deepcopy(module).eval(), trainer.datamodule, cfg, METRICS, n)
                torch.set_rng_state(state)
                clock["t0"] += time.process_time() - clock["t0"] - spent
                emit(module.step, module.step * module.images_per_step, spent, scores)

    original = train_mod.build_trainer

    def with_probe(c, run_dir, callbacks, loggers):
        return original(c, run_dir, callbacks + [Probe()], loggers)

    train_mod.build_trainer = with_probe
    try:
        train_mod.run(cfg)
    finally:
        train_mod.build_trainer = original


def report() -> None:
    runs = read_jsonl(RUNS)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["impl"], r["variant"], r["g_steps"], r["n"]), []).append(r)
    for rs in groups.values():
        rs.sort(key=lambda r: r["seed"])
    order = list(VARIANTS)
    rows = []
    for (impl, variant, steps, n), rs in sorted(groups.items(), key=lambda kv: (
            order.index(kv[0][1]) if kv[0][1] in order else 99, kv[0][2], kv[0][0] != "nvlabs")):
        row = {"impl": impl, "variant": variant, "g_steps": steps, "n": n, "seeds": sorted(r["seed"] for r in rs),
               "images": rs[0]["images"], "overrides": rs[0]["overrides"],
               "train_cpu_s": [r["train_cpu_s"] for r in rs], "load": [r["load"] for r in rs]}
        for key in KEYS:
            row[key] = mean_se([r[key] for r in rs])
        rows.append(row)
    info = runs[-1]["machine"] if runs else machine()
    write_json(os.path.join(RESULTS, "stylegan_reference.json"), {
        "what": "the lab's StyleGAN2 vs NVlabs' stylegan2-ada-pytorch code at the lab's CPU settings on mnist_5k "
                "at 32 px, scored by the lab's evaluator (feature=domain) at equal G steps; lab-side variants",
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "), "nvlabs_settings": NV, "variants": VARIANTS,
        "rows": rows, "machine": info,
    })

    n = rows[0]["n"] if rows else "?"
    lines = ["# StyleGAN2: the lab's code against NVlabs' stylegan2-ada-pytorch, mnist_5k at 32 px, CPU", "",
             f"Same settings (the lab's `model=stylegan` default: channel base 1024 / max 128, z = w = 128, 8 mapping "
             f"layers, batch 32, lr 0.0025, R1 γ 0.0064 every 16, path length 2 every 4, mixing 0.9, mbstd 4, EMA "
             f"10 kimg ramp-up 0.05), same data, scored by the lab's evaluator at equal G steps (feature=domain, "
             f"{n} EMA samples vs {n} training images). Mean ± s.e. over seeds. CPU s: process time of one thread, "
             "training only.", "",
             "| code | settings | G steps | images | seeds | train CPU s | domain-FID ↓ | precision ↑ | recall ↑ "
             "| classes covered | class KL ↓ |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        settings = r["variant"] + (f" ({' '.join(r['overrides'])})" if r["overrides"] else "")
        code = "NVlabs stylegan2-ada-pytorch" if r["impl"] == "nvlabs" else "gan_lab"
        cpu = "/".join(f"{t:.0f}" for t in r["train_cpu_s"])
        lines.append(f"| {code} | {settings} | {r['g_steps']} | {r['images']} | {len(r['seeds'])} | {cpu} | "
                     f"{row_cell(r, 'fid', 2)} | {row_cell(r, 'precision', 3)} | {row_cell(r, 'recall', 3)} | "
                     f"{row_cell(r, 'classes_covered', 1)} | {row_cell(r, 'class_kl', 3)} |")
    loads = sorted({float(entry[0]) for r in rows for entry in r["load"]})
    lines += ["", machine_line(info) + (f" Load average (1 min) at the scored steps: {loads[0]:.2f}–{loads[-1]:.2f}."
                                        if loads else "")]
    write_table("stylegan_reference", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"nvlabs": "", "impls": "nvlabs,lab", "variants": "default", "seeds": "1",
                                    "first_seed": "0", "steps": "350,700", "n": "1000", "threads": "1"})
    if extra:
        raise SystemExit(f"unknown arguments {extra}")
    impls = args["impls"].split(",")
    if "nvlabs" in impls and not args["nvlabs"]:
        raise SystemExit("impl nvlabs needs nvlabs=<path of your checkout of NVlabs/stylegan2-ada-pytorch>")
    variants = args["variants"].split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]}; variants: {', '.join(VARIANTS)}")
    pin_threads(int(args["threads"]))
    quiet_lightning()
    steps, n = sorted(int(s) for s in args["steps"].split(",")), int(args["n"])
    info = machine()
    for seed in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"])):
        for variant in variants:
            for impl in impls:
                if impl == "nvlabs" and variant != "default":
                    continue
                done = {(r["impl"], r["variant"], r["seed"], r["g_steps"], r["n"]) for r in read_jsonl(RUNS)}
                if all((impl, variant, seed, s, n) in done for s in steps):
                    continue

                def emit(g_steps, images, spent, scores, impl=impl, variant=variant, seed=seed):
                    rec = {"impl": impl, "variant": variant, "seed": seed, "g_steps": g_steps, "images": images,
                           "n": n, "train_cpu_s": round(spent, 1), "overrides": VARIANTS[variant],
                           **{k: scores[k] for k in KEYS}, "load": load(), "machine": info}
                    append_jsonl(RUNS, rec)
                    print(f"{impl} {variant} seed {seed} step {g_steps}: " +
                          ", ".join(f"{k}={rec[k]:.3f}" for k in KEYS), flush=True)

                if impl == "nvlabs":
                    run_nvlabs(args["nvlabs"], seed, steps, n, emit)
                else:
                    run_lab(variant, seed, steps, n, emit)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
