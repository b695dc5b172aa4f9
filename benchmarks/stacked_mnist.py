"""Mode dropping on Stacked MNIST (1000 modes), built from the embedded MNIST-5k subset.

``data=stacked_mnist_5k`` stacks three random MNIST-5k digits as the R, G, B channels; its label
is ``100*r + 10*g + b``. A trained generator is scored as in VEEGAN / PacGAN: every generated
image's three channels are classified separately by a digit classifier, giving one of 1000
modes per image. Reported: modes captured (modes hit by at least one sample), KL(generated mode
histogram || uniform over 1000) and KL(generated mode histogram || the data's label histogram).

The digit classifier is the lab's domain classifier (``gan_lab.metrics.domain``: small CNN,
default recipe) trained on the 5,000 single-channel MNIST-5k images and cached under
``.cache/gan_lab/domain``; its held-out accuracy is recorded. As a check of the whole scoring
pipeline, the same ``samples`` count of *real* stacked images is scored too (row ``real data``):
what a perfect generator would get with this classifier and sample size.

    .venv/bin/python benchmarks/stacked_mnist.py [variants=dcgan,wgan_gp,sngan,ragan] \
        [seeds=1] [steps=2000] [samples=10000] [threads=1] [hydra overrides...]

Each run is appended to ``results/stacked_mnist_runs.jsonl`` (skipped if asked for again);
``results/stacked_mnist.json`` and ``.md`` are rewritten from all runs. ``report`` only redoes
the tables.

Long runs survive being stopped: each trains in its own directory under
``.cache/gan_lab/benchmarks/stacked_mnist/`` with a checkpoint every ``ckpt_every`` G steps
(default 250) and ``resume=auto``, so the same command started again continues the unfinished
run from its last checkpoint (the lab's resume is exact) instead of step 0. The recorded
``seconds`` sum the training time of every part; the directory is removed once the run is scored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    REPO, RESULTS, append_jsonl, compose, machine, machine_line, mean_se, pm, parse_args, pin_threads, quiet_lightning,
    read_jsonl, write_json, write_table,
)

import torch  # noqa: E402

RUNS = os.path.join(RESULTS, "stacked_mnist_runs.jsonl")
VARIANTS = ["dcgan", "wgan_gp", "sngan", "ragan"]


def digit_classifier():
    from gan_lab.data.sources import mnist_5k_images
    from gan_lab.metrics.domain import load_or_train

    x, y = mnist_5k_images(28)
    model, info = load_or_train("mnist_5k", x, y, os.path.join(REPO, ".cache", "gan_lab", "domain"), num_classes=10)
    return model.eval(), info


@torch.no_grad()
def modes_of(images: torch.Tensor, clf, batch: int = 500) -> torch.Tensor:
    """Mode index 100*r + 10*g + b of each (N, 3, H, W) image in [-1, 1]."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].float().clamp(-1, 1)
        digits = [clf(x[:, c:c + 1]).argmax(1) for c in range(3)]
        out.append(100 * digits[0] + 10 * digits[1] + digits[2])
    return torch.cat(out)


def score(modes: torch.Tensor, data_hist: torch.Tensor) -> dict:
    hist = torch.bincount(modes, minlength=1000).double()
    p = hist / hist.sum()
    q = data_hist.double() / data_hist.sum()
    mask = p > 0
    kl_uniform = float((p[mask] * (p[mask] * 1000).log()).sum())
    q_eps = (1 - 1e-6) * q + 1e-6 / 1000  # finite when G makes a mode the data lacks
    kl_data = float((p[mask] * (p[mask].log() - q_eps[mask].log())).sum())
    return {"modes_captured": int(mask.sum()), "kl_uniform": kl_uniform, "kl_data": kl_data}


def run_dir_of(overrides: list[str]) -> str:
    """The run's own directory: the same overrides (model, seed, steps, extras) give the same one."""
    key = hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:10]
    name = "-".join(o.split("=", 1)[1] for o in overrides[:1] + overrides[2:4])  # model-seed-steps
    return os.path.join(REPO, ".cache", "gan_lab", "benchmarks", "stacked_mnist", f"{name}-{key}")


def train_and_sample(overrides: list[str], samples: int, ckpt_every: int) -> tuple[torch.Tensor, float, int]:
    """Train with the lab's own loop, resuming this run's last checkpoint if an earlier call was
    stopped; return samples of the trained module (EMA G if any) and the seconds of all parts
    (each timed around the whole call, setup included)."""
    from lab_runs import train

    run_dir = run_dir_of(overrides)
    os.makedirs(run_dir, exist_ok=True)
    spent_file = os.path.join(run_dir, "seconds_before.json")
    spent = json.load(open(spent_file))["seconds"] if os.path.exists(spent_file) else 0.0
    t0 = time.perf_counter()
    try:
        module, _, _, steps, _ = train(overrides, run_dir=run_dir, checkpoint_every=ckpt_every)
    finally:
        # a stopped part still counts: the next call resumes from its last checkpoint
        with open(spent_file, "w") as f:
            json.dump({"seconds": spent + time.perf_counter() - t0}, f)
    seconds = spent + time.perf_counter() - t0
    gen = torch.Generator().manual_seed(12345)
    out = [module.sample(min(500, samples - i), gen).x for i in range(0, samples, 500)]
    return torch.cat(out), seconds, steps


def report() -> None:
    runs = read_jsonl(RUNS)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["steps"], r["samples"], tuple(r["extra"])), []).append(r)
    rows = []
    for (model, steps, samples, extra), rs in groups.items():
        rows.append({
            "model": model, "g_steps": steps, "samples": samples, "extra_overrides": list(extra),
            "seeds": sorted(r["seed"] for r in rs),
            **{f"{k}_{s}": v for k in ("modes_captured", "kl_uniform", "kl_data")
               for s, v in zip(("mean", "se"), mean_se([r[k] for r in rs]))},
            "real_data": rs[-1]["real_data"], "classifier": rs[-1]["classifier"],
            "seconds_per_run": sum(r["seconds"] for r in rs) / len(rs), "machine": rs[-1]["machine"],
        })
    write_json(os.path.join(RESULTS, "stacked_mnist.json"), {
        "what": "Stacked MNIST (from MNIST-5k): modes captured of 1000, KL(mode histogram || uniform / data)",
        "rows": rows,
    })
    lines = ["# Stacked MNIST (1000 modes, from MNIST-5k)", "",
             "Each channel of a sample is classified by the lab's domain CNN trained on MNIST-5k "
             "(single channel); the three digits give one of 1000 modes. Modes captured = modes with "
             "at least one sample; KL in nats. Mean ± s.e. over the listed seeds (a bare value: one seed). "
             "300 G steps is a smoke-scale budget (the protocol working, not converged models); 5,000 G "
             "steps (batch 64: 320,000 images, 6.4 passes over the 50,000 stacked images), 10,000 G steps "
             "(12.8 passes) and 15,000 G steps (19.2 passes) are the longer budgets run on this CPU. Overrides name every setting that differs "
             "from the model's defaults of today (the 5,000-step sngan row ran before its extra layers became "
             "the default, hence its override). The real-data row uses the classifier of the latest run: it "
             "was retrained when its cache was lost (real-data KL 0.049 both times).", "",
             "| model | overrides | G steps | seeds | samples | modes (of 1000) | KL(‖uniform) | KL(‖data) | s/run |",
             "|---|---|---|---|---|---|---|---|---|"]
    if rows:
        real = rows[-1]["real_data"]
        lines.append(f"| real data (scoring check) | — | — | — | {real['samples']} | {real['modes_captured']} | "
                     f"{real['kl_uniform']:.3f} | {real['kl_data']:.3f} | — |")
    for r in rows:
        n = len(r["seeds"])
        lines.append(
            f"| {r['model']} | {' '.join(r['extra_overrides']) or '—'} | {r['g_steps']} | {len(r['seeds'])} | "
            f"{r['samples']} | {pm(r['modes_captured_mean'], r['modes_captured_se'], n, 1)} | "
            f"{pm(r['kl_uniform_mean'], r['kl_uniform_se'], n, 3)} | {pm(r['kl_data_mean'], r['kl_data_se'], n, 3)} | "
            f"{r['seconds_per_run']:.0f} |")
    if rows:
        c = rows[-1]["classifier"]
        lines += ["", f"Digit classifier: held-out accuracy {c['test_accuracy']:.4f} on {c['n_test']} MNIST-5k images. "
                      + machine_line(rows[-1]["machine"])]
    write_table("stacked_mnist", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"variants": ",".join(VARIANTS), "seeds": "1", "first_seed": "0",
                                    "steps": "2000", "samples": "10000", "threads": "1", "ckpt_every": "250"})
    pin_threads(int(args["threads"]))
    quiet_lightning()
    steps, samples = int(args["steps"]), int(args["samples"])
    clf, clf_info = digit_classifier()
    classifier = {k: clf_info[k] for k in ("test_accuracy", "n_test", "n_train")}

    import hydra

    dm = hydra.utils.instantiate(compose(["data=stacked_mnist_5k"], "/tmp/unused").data, _convert_="all")
    ds = dm.dataset
    labels = ds.labels  # gan_lab.data.datasets.StackedDataset: 100*r + 10*g + b per sample
    data_hist = torch.bincount(labels, minlength=1000)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:samples]
    real = ds.take(idx).x
    real_data = {"samples": len(real), **score(modes_of(real, clf), data_hist),
                 "label_agreement": float((modes_of(real, clf) == labels[idx]).double().mean())}
    print(f"real data: {real_data}", flush=True)

    done = {(r["model"], r["seed"], r["steps"], r["samples"], tuple(r["extra"])) for r in read_jsonl(RUNS)}
    info = machine()
    for seed in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"])):
        for model in args["variants"].split(","):
            if (model, seed, steps, samples, tuple(extra)) in done:
                continue
            overrides = [f"model={model}", "data=stacked_mnist_5k", f"seed={seed}", f"trainer.max_steps={steps}", *extra]
            fake, seconds, g_steps = train_and_sample(overrides, samples, int(args["ckpt_every"]))
            rec = {"model": model, "seed": seed, "steps": steps, "samples": samples, "extra": extra,
                   **score(modes_of(fake, clf), data_hist), "seconds": round(seconds, 1),
                   "real_data": real_data, "classifier": classifier, "machine": info}
            append_jsonl(RUNS, rec)
            shutil.rmtree(run_dir_of(overrides), ignore_errors=True)
            print(f"{model} seed {seed}: {rec['modes_captured']} modes, KL(u) {rec['kl_uniform']:.3f}, "
                  f"KL(data) {rec['kl_data']:.3f} ({seconds:.0f} s)", flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
