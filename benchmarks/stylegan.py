"""StyleGAN2 against SNGAN and BigGAN on mnist_5k at one CPU budget, each with and without
DiffAugment; StyleGAN's truncation trade-off and its perceptual path length with and without
path-length regularisation.

Every run trains one model with its own config (``model=<name>``; BigGAN at the CPU widths of
benchmarks/conditional.py) on mnist_5k resized to 32 px (StyleGAN takes powers of two; all models
get the same images) for the same budget of CPU seconds of this process (``seconds``, one
thread; the run stops at the first G step after it, so machine load does not change the budget),
then is scored with the lab's evaluator (``feature=domain``: the lab's MNIST CNN; numbers are not
comparable with Inception FIDs of papers) on ``n`` EMA samples against ``n`` real training
images: domain-FID, precision/recall (k=3), classes covered and class KL. StyleGAN runs are also
scored at truncation psi in ``psis`` (same checkpoint) and with ``ppl`` in W and Z (``n`` path
pairs, epsilon 1e-4, the domain CNN's features as the distance); ``stylegan_nopl`` is StyleGAN
with ``model.path_length.weight=0``.

    .venv/bin/python benchmarks/stylegan.py [models=stylegan,sngan,biggan,stylegan_nopl]
        [augments=none,diffaugment] [seeds=3] [first_seed=0] [seconds=150] [n=1000] [threads=1]

Runs are appended to ``results/stylegan_runs.jsonl`` (a run already there is skipped; two
processes may share the file); ``results/stylegan.{json,md}`` are rewritten from all runs;
``report`` only redoes the tables.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, machine, machine_line, mean_se, parse_args, pin_threads, quiet_lightning, read_jsonl, row_cell,
    write_json, write_table,
)

RUNS = os.path.join(RESULTS, "stylegan_runs.jsonl")
MODELS = ["stylegan", "sngan", "biggan", "stylegan_nopl", "stylegan_r1", "stylegan_lr1e-3", "stylegan_cifar"]
OVERRIDES = {
    "biggan": ["model.net.biggan.g_width=8", "model.net.biggan.d_width=8"],
    "stylegan_nopl": ["model.path_length.weight=0"],
    # diagnostics of StyleGAN's early collapse: stronger R1, a lower learning rate, and the settings
    # StyleGAN2-ADA's 'cifar' config changes (2 mapping layers, no mixing, no path length, gamma 0.01)
    "stylegan_r1": ["model.r1.gamma=1"],
    "stylegan_lr1e-3": ["model.g_optimizer.lr=0.001", "model.d_optimizer.lr=0.001"],
    "stylegan_cifar": ["model.mapping.layers=2", "model.style_mixing=0", "model.path_length.weight=0",
                       "model.r1.gamma=0.01"],
}
CONFIG = {name: "stylegan" for name in OVERRIDES if name.startswith("stylegan")}
PSIS = [1.0, 0.9, 0.7, 0.5, 0.3]
KEYS = ["fid", "precision", "recall", "classes_covered", "class_kl"]
PUBLISHED = ("Published GPU-scale references (Inception features, 50k samples; not comparable with the "
             "domain-FID here): StyleGAN2 on FFHQ at 1024 px, FID 2.84 (Karras et al. 2020, config F); "
             "StyleGAN2-ADA on CIFAR-10 (conditional), FID 2.92 (Karras et al. 2020, training with limited data).")


def run_one(model: str, augment: str, seed: int, seconds: float, n: int, psis: list[float]) -> dict:
    from lab_runs import score, train

    overrides = [f"model={CONFIG.get(model, model)}", "data=mnist_5k", "data.source.image_size=32", f"seed={seed}",
                 "trainer.max_steps=1000000", f"augment={augment}", *OVERRIDES.get(model, [])]
    module, datamodule, spent, steps, cfg = train(overrides, seconds, clock=time.process_time)
    metrics = {"fid": {}, "pr": {}}
    t0 = time.process_time()
    rec = {"model": model, "augment": augment, "seed": seed, "budget_cpu_s": seconds, "n": n, "g_steps": steps,
           "train_cpu_s": round(spent, 1), "overrides": OVERRIDES.get(model, []),
           **score(module, datamodule, cfg, metrics, n)}
    if module.family == "stylegan":
        if augment == "none" and model == "stylegan":
            rec["truncation"] = {}
            for psi in psis:
                scores = rec if psi == 1.0 else score(module, datamodule, cfg, metrics, n, truncation=psi)
                rec["truncation"][str(psi)] = {k: scores[k] for k in KEYS}
        for space in ("w", "z"):
            rec[f"ppl_{space}"] = score(module, datamodule, cfg, {"ppl": {"space": space}}, n)[f"ppl_{space}"]
    rec["score_cpu_s"] = round(time.process_time() - t0, 1)
    return rec


def report() -> None:
    runs = read_jsonl(RUNS)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["augment"], r["budget_cpu_s"], r["n"]), []).append(r)
    rows = []
    order = {"none": 0, "diffaugment": 1, "ada": 2}
    for (model, augment, budget, n), rs in sorted(groups.items(), key=lambda kv: (
            MODELS.index(kv[0][0]) if kv[0][0] in MODELS else 99, order.get(kv[0][1], 9))):
        row = {"model": model, "augment": augment, "budget_cpu_s": budget, "n": n,
               "seeds": sorted(r["seed"] for r in rs), "overrides": rs[0]["overrides"],
               "g_steps": [r["g_steps"] for r in rs]}
        for key in KEYS + ["ppl_w", "ppl_z"]:
            values = [r[key] for r in rs if key in r]
            if values:
                row[key] = mean_se(values)
        curves = [r["truncation"] for r in rs if "truncation" in r]
        if curves:
            row["truncation"] = {psi: {k: mean_se([c[psi][k] for c in curves]) for k in KEYS} for psi in curves[0]}
        rows.append(row)
    info = runs[-1]["machine"] if runs else machine()
    write_json(os.path.join(RESULTS, "stylegan.json"), {
        "what": "stylegan vs sngan vs biggan (+/- diffaugment) on mnist_5k at 32 px, one CPU-time budget, "
                "feature=domain; stylegan truncation curve and PPL with/without path-length regularisation",
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "), "rows": rows, "published": PUBLISHED,
        "machine": info,
    })

    n = rows[0]["n"] if rows else "?"
    lines = ["# StyleGAN2, SNGAN and BigGAN on mnist_5k at 32 px (one CPU budget), with and without DiffAugment", "",
             f"Same budget of CPU seconds for every run (one thread, process time); scored with the lab's evaluator, "
             f"feature=domain (the lab's MNIST CNN), {n} EMA samples vs {n} real training images. Mean ± s.e. over "
             "seeds. **A small budget: the rows compare the models at this budget, not converged models.**", "",
             "| model | augment | CPU budget (s) | G steps | seeds | domain-FID ↓ | precision ↑ | recall ↑ "
             "| classes covered | class KL ↓ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r["model"] + (f" ({' '.join(r['overrides'])})" if r["overrides"] else "")
        lines.append(f"| {name} | {r['augment']} | {r['budget_cpu_s']:.0f} | {'/'.join(map(str, r['g_steps']))} | "
                     f"{len(r['seeds'])} | {row_cell(r, 'fid', 2)} | {row_cell(r, 'precision', 3)} | {row_cell(r, 'recall', 3)} | "
                     f"{row_cell(r, 'classes_covered', 1)} | {row_cell(r, 'class_kl', 3)} |")
    curve = next((r for r in rows if "truncation" in r), None)
    if curve:
        lines += ["", "## StyleGAN truncation trade-off (same checkpoints, augment=none)", "",
                  "| ψ | domain-FID ↓ | precision ↑ | recall ↑ | classes covered | class KL ↓ |", "|---|---|---|---|---|---|"]
        for psi, scores in curve["truncation"].items():
            c = {"seeds": curve["seeds"], **scores}
            lines.append(f"| {float(psi):g} | {row_cell(c, 'fid', 2)} | {row_cell(c, 'precision', 3)} | {row_cell(c, 'recall', 3)} | "
                         f"{row_cell(c, 'classes_covered', 1)} | {row_cell(c, 'class_kl', 3)} |")
    ppl_rows = [r for r in rows if "ppl_w" in r]
    if ppl_rows:
        lines += ["", "## StyleGAN perceptual path length (domain-CNN features as the distance)", "",
                  "| model | augment | path-length reg | G steps | seeds | PPL in W ↓ | PPL in Z ↓ | domain-FID ↓ |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in ppl_rows:
            reg = "off (weight 0)" if "model.path_length.weight=0" in r["overrides"] else "on (weight 2, every 4)"
            lines.append(f"| {r['model']} | {r['augment']} | {reg} | {'/'.join(map(str, r['g_steps']))} | "
                         f"{len(r['seeds'])} | {row_cell(r, 'ppl_w', 1)} | {row_cell(r, 'ppl_z', 1)} | {row_cell(r, 'fid', 2)} |")
    lines += ["", PUBLISHED, "", machine_line(info)]
    write_table("stylegan", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"models": ",".join(MODELS), "augments": "none,diffaugment", "seeds": "3",
                                    "first_seed": "0", "seconds": "150", "n": "1000", "threads": "1",
                                    "psis": ",".join(map(str, PSIS))})
    if extra:
        raise SystemExit(f"unknown arguments {extra}")
    pin_threads(int(args["threads"]))
    quiet_lightning()
    seconds, n = float(args["seconds"]), int(args["n"])
    psis = [float(p) for p in args["psis"].split(",")]
    info = machine()
    for seed in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"])):
        for model in args["models"].split(","):
            for augment in args["augments"].split(","):
                if model.startswith("stylegan_") and augment != "none":
                    continue
                done = {(r["model"], r["augment"], r["seed"], r["budget_cpu_s"], r["n"]) for r in read_jsonl(RUNS)}
                if (model, augment, seed, seconds, n) in done:
                    continue
                rec = {**run_one(model, augment, seed, seconds, n, psis), "machine": info}
                append_jsonl(RUNS, rec)
                print(f"{model} augment={augment} seed {seed}: {rec['g_steps']} G steps; " +
                      ", ".join(f"{k}={rec[k]:.3f}" for k in KEYS + ["ppl_w"] if k in rec), flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
