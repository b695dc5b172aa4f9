"""The models with codes on mnist_5k at small CPU budgets: three studies, each over seeds.

* ``semi``: semi-supervised classification with 10 and 100 labels per class (100 and 1,000
  labels; the fixed draw ``data.labeled_per_class=<n>`` with ``data.labeled_seed=0``): ``aae_semi``
  and ``ssgan`` each trained for ``semi_seconds`` CPU seconds, and the supervised CNN of
  ``benchmarks/ssgan.py`` (the domain classifier's recipe, at least 500 updates) on the labelled
  images alone. Test error on the 500-image test split (``accuracy``, i.e. ``test_acc``).
* ``cluster``: ``aae_cluster`` (16 clusters) for ``cluster_seconds`` CPU seconds; ``cluster_acc``
  maps each cluster to the majority label of its training images and scores the test split.
* ``generation``: ``glo``, ``gon``, ``aae`` (latent 8, Gaussian prior) and the default ``sngan``,
  each for ``gen_seconds`` CPU seconds: domain-FID, precision / recall and classes covered of
  2,000 samples against 2,000 training images (``feature=domain``), and for the three that
  reconstruct, ``recon`` on the test split.

Budgets are CPU seconds of the training process (``time.process_time``, one thread), so other
jobs on a shared machine do not shrink them; every run then stops at its next step boundary.
Runs are appended to ``results/encoding_runs.jsonl`` (a study can be run in slots or in parallel
processes); ``report`` rebuilds ``results/encoding.{md,json}`` from it.

    .venv/bin/python benchmarks/encoding.py which=semi,cluster,generation [seeds=3] [first_seed=0] \\
        [semi_seconds=60] [cluster_seconds=120] [gen_seconds=60] [models=aae_semi,...] [labels=10,100] [threads=1]
    .venv/bin/python benchmarks/encoding.py report
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, machine, machine_line, mean_se, parse_args, pin_threads, pm, quiet_lightning, read_jsonl,
    write_json, write_table,
)

RUNS = os.path.join(RESULTS, "encoding_runs.jsonl")
LABELS_PER_CLASS = (10, 100)
BIG = ["trainer.max_steps=1000000"]  # the CPU budget stops every run
GEN_MODELS = {
    "glo": ["model=glo"],
    "gon": ["model=gon"],
    "aae": ["model=aae", "model.latent_dim=8"],
    "sngan": ["model=sngan"],
}
PUBLISHED = {
    ("aae_semi", 10): "1.90 (AAE, full MNIST)", ("aae_semi", 100): "1.60 (AAE, full MNIST)",
    ("ssgan", 10): "0.93 (Improved-GAN, full MNIST)",
}


def semi_row(model: str, per_class: int, seed: int, seconds: float) -> dict:
    from lab_runs import score, train

    overrides = [f"model={model}", "data=mnist_5k", f"data.labeled_per_class={per_class}", f"seed={seed}", *BIG]
    module, datamodule, spent, steps, cfg = train(overrides, seconds, clock=time.process_time)
    scores = score(module, datamodule, cfg, {"accuracy": {"per_class": False}}, 20, seed)
    return {"test_error": 1 - scores["test_acc"], "steps": steps, "train_cpu_s": round(spent, 1)}


def cnn_semi_row(per_class: int, seed: int) -> dict:
    from ssgan import cnn_row

    rec = cnn_row("supervised CNN", seed, per_class)
    return {"test_error": 1 - rec["test_acc"], "n_train": rec["n_train"], "train_s": rec["train_s"]}


def cluster_row(seed: int, seconds: float) -> dict:
    from lab_runs import score, train

    module, datamodule, spent, steps, cfg = train(["model=aae_cluster", f"seed={seed}", *BIG], seconds,
                                                  clock=time.process_time)
    scores = score(module, datamodule, cfg, {"cluster_acc": {}}, 20, seed)
    return {"cluster_acc": scores["cluster_acc"], "clusters_used": scores["clusters_used"], "steps": steps,
            "train_cpu_s": round(spent, 1)}


def generation_row(model: str, seed: int, seconds: float) -> dict:
    from lab_runs import score, train

    module, datamodule, spent, steps, cfg = train(GEN_MODELS[model] + [f"seed={seed}", *BIG], seconds,
                                                  clock=time.process_time)
    metrics = {"fid": {}, "pr": {}}
    if model != "sngan":
        metrics["recon"] = {}
    t0 = time.process_time()
    scores = score(module, datamodule, cfg, metrics, 2000, seed)
    keep = ("fid", "precision", "recall", "classes_covered", "class_kl", "recon_mse", "recon_psnr")
    return {**{k: scores[k] for k in keep if k in scores}, "steps": steps, "train_cpu_s": round(spent, 1),
            "eval_cpu_s": round(time.process_time() - t0, 1)}


def _rows(runs: list[dict], study: str) -> list[dict]:
    return [r for r in runs if r["study"] == study]


def _by_budget(rs: list[dict]) -> list[list[dict]]:
    """Runs grouped by their CPU budget (runs without one form one group), smallest first."""
    budgets = sorted({r.get("budget_cpu_s", 0.0) for r in rs})
    return [[r for r in rs if r.get("budget_cpu_s", 0.0) == b] for b in budgets]


def _semi_line(lines: list[str], summary: dict, model: str, per_class: int, rs: list[dict]) -> None:
    err = mean_se([100 * r["test_error"] for r in rs])
    steps = mean_se([r["steps"] for r in rs])[0] if "steps" in rs[0] else None
    budget = f"{rs[0]['budget_cpu_s']:.0f} CPU s" if "budget_cpu_s" in rs[0] else "≥ 500 updates"
    lines.append(f"| {model} | {10 * per_class} ({per_class}) | {budget} | "
                 f"{'—' if steps is None else f'{steps:.0f}'} | {len(rs)} | {pm(*err, len(rs), 2)} | "
                 f"{PUBLISHED.get((model, per_class), '—')} |")
    summary["semi"].append({"model": model, "per_class": per_class, "seeds": len(rs), "test_error_pct": err,
                            "steps": steps, "budget_cpu_s": rs[0].get("budget_cpu_s")})


def report() -> None:
    runs = read_jsonl(RUNS)
    info = runs[-1]["machine"] if runs else machine()
    lines = ["# Models with codes on mnist_5k (small CPU budgets)", ""]
    summary: dict = {"protocol": __doc__.split("\n\n")[1].replace("\n", " "), "machine": info}

    semi = _rows(runs, "semi")
    if semi:
        lines += ["## Semi-supervised classification (test error on the 500 test images, %)", "",
                  "| model | labels (per class) | budget | steps | seeds | test error % ↓ | published (60k MNIST) |",
                  "|---|---|---|---|---|---|---|"]
        summary["semi"] = []
        for per_class in LABELS_PER_CLASS:
            for model in ("aae_semi", "ssgan", "supervised CNN"):
                for rs in _by_budget([r for r in semi if r["model"] == model and r["per_class"] == per_class]):
                    _semi_line(lines, summary, model, per_class, rs)
        lines.append("")

    cluster = _rows(runs, "cluster")
    if cluster:
        lines += ["## Unsupervised clustering (aae_cluster, 16 clusters)", "",
                  "| budget | steps | seeds | cluster accuracy % ↑ | error % ↓ | clusters used | published error |",
                  "|---|---|---|---|---|---|---|"]
        summary["cluster"] = []
        for rs in _by_budget(cluster):
            acc = mean_se([100 * r["cluster_acc"] for r in rs])
            err = mean_se([100 * (1 - r["cluster_acc"]) for r in rs])
            used = mean_se([r["clusters_used"] for r in rs])
            steps = mean_se([r["steps"] for r in rs])[0]
            n = len(rs)
            lines.append(f"| {rs[0]['budget_cpu_s']:.0f} CPU s | {steps:.0f} | {n} | {pm(*acc, n, 1)} | {pm(*err, n, 1)} | "
                         f"{pm(*used, n, 1)} | 9.55 % (AAE, 16 clusters, full MNIST) |")
            summary["cluster"].append({"seeds": n, "cluster_acc_pct": acc, "error_pct": err, "clusters_used": used,
                                       "steps": steps, "budget_cpu_s": rs[0]["budget_cpu_s"]})
        lines.append("")

    gen = _rows(runs, "generation")
    if gen:
        lines += ["## Generation without a discriminator (2,000 samples, feature=domain)", "",
                  "| model | budget | steps | seeds | domain-FID ↓ | precision ↑ | recall ↑ | classes covered | "
                  "test recon MSE ↓ | test recon PSNR ↑ |", "|---|---|---|---|---|---|---|---|---|---|"]
        summary["generation"] = []
        for model, rs in [(m, g) for m in GEN_MODELS for g in _by_budget([r for r in gen if r["model"] == m])]:
            n = len(rs)
            row = {k: mean_se([r[k] for r in rs]) for k in ("fid", "precision", "recall", "classes_covered")}
            cells = [pm(*row["fid"], n, 1), pm(*row["precision"], n, 3), pm(*row["recall"], n, 3),
                     pm(*row["classes_covered"], n, 1)]
            for key, digits in (("recon_mse", 4), ("recon_psnr", 2)):
                if key in rs[0]:
                    row[key] = mean_se([r[key] for r in rs])
                    cells.append(pm(*row[key], n, digits))
                else:
                    cells.append("—")
            steps = mean_se([r["steps"] for r in rs])[0]
            lines.append(f"| {model} | {rs[0]['budget_cpu_s']:.0f} CPU s | {steps:.0f} | {n} | " + " | ".join(cells) + " |")
            summary["generation"].append({"model": model, "seeds": n, "steps": steps,
                                          "budget_cpu_s": rs[0]["budget_cpu_s"], **row})
        lines.append("")
    lines.append("Mean ± s.e. over seeds. " + machine_line(info))
    write_json(os.path.join(RESULTS, "encoding.json"), summary)
    write_table("encoding", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"which": "semi,cluster,generation", "seeds": "3", "first_seed": "0",
                                    "semi_seconds": "60", "cluster_seconds": "120", "gen_seconds": "60",
                                    "models": "", "labels": "10,100", "threads": "1"})
    if extra:
        raise SystemExit(f"unknown arguments {extra}")
    pin_threads(int(args["threads"]))
    quiet_lightning()
    which = args["which"].split(",")
    seeds = range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"]))
    info = machine()
    done = {(r["study"], r["model"], r.get("per_class"), r["seed"], r.get("budget_cpu_s")) for r in read_jsonl(RUNS)}
    models = set(args["models"].split(",")) if args["models"] else None
    labels = [int(v) for v in args["labels"].split(",")]

    def run(study, model, seed, make, per_class=None, budget=None):
        if (study, model, per_class, seed, budget) in done or (models is not None and model not in models):
            return
        rec = {"study": study, "model": model, "per_class": per_class, "seed": seed, **make()}
        if budget is not None:
            rec["budget_cpu_s"] = budget
        append_jsonl(RUNS, {**rec, "machine": info})
        print({k: v for k, v in rec.items()}, flush=True)

    for seed in seeds:
        if "semi" in which:
            budget = float(args["semi_seconds"])
            for per_class in labels:
                for model in ("aae_semi", "ssgan"):
                    run("semi", model, seed, lambda: semi_row(model, per_class, seed, budget), per_class, budget)
                run("semi", "supervised CNN", seed, lambda: cnn_semi_row(per_class, seed), per_class)
        if "cluster" in which:
            budget = float(args["cluster_seconds"])
            run("cluster", "aae_cluster", seed, lambda: cluster_row(seed, budget), budget=budget)
        if "generation" in which:
            budget = float(args["gen_seconds"])
            for model in GEN_MODELS:
                run("generation", model, seed, lambda: generation_row(model, seed, budget), budget=budget)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
