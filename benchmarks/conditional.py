"""Class-conditional models on mnist_5k at one CPU budget: cond_acc, intra-FID, CAS, domain-FID and
classes covered, against the unconditional sngan for domain-FID.

Every model trains with its own config (``model=<name>``) for the same wall-clock budget
(``seconds`` of training, one thread; a run stops at the first G step after it) and is scored
with the lab's evaluator (``feature=domain``: the lab's small MNIST CNN, the numbers are not
comparable with Inception FIDs of papers) on ``n`` samples drawn for labels cycling through the
classes, against ``n`` real training images; CAS trains its classifier on those samples and
tests on the 500-image mnist_5k test split. The row "real data" is a perfect conditional
sampler (other training images of the requested class): the best each number can be here.
BigGAN is also scored with truncation psi=0.5 (same checkpoint).

    .venv/bin/python benchmarks/conditional.py [models=cgan,acgan,cgan_proj,biggan,sngan] [seeds=2]
        [seconds=45] [n=1000] [threads=1]

Runs are appended to ``results/conditional_runs.jsonl`` (a run already there is skipped);
``results/conditional.{json,md}`` are rewritten from all runs; ``report`` only redoes the tables.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, machine, machine_line, mean_se, parse_args, pin_threads, quiet_lightning, read_jsonl, row_cell,
    write_json, write_table,
)

RUNS = os.path.join(RESULTS, "conditional_runs.jsonl")
MODELS = ["cgan", "acgan", "cgan_proj", "biggan", "sngan"]
# CPU sizes for the residual models (their configs' defaults take seconds per step on one thread)
OVERRIDES = {
    "cgan_proj": ["model.net.resnet.g_width=16", "model.net.resnet.d_width=16"],
    "biggan": ["model.net.biggan.g_width=8", "model.net.biggan.d_width=8"],
}
CONDITIONAL_METRICS = {"fid": {}, "cond_acc": {"per_class": False}, "intra_fid": {"per_class": False},
                       "cas": {"per_class": False}}
KEYS = ["fid", "cond_acc", "intra_fid", "cas", "classes_covered", "class_kl"]
STUDIOGAN = ("StudioGAN's CIFAR-10 table (Kang et al., PyTorch-StudioGAN; GPU-scale training, Inception "
             "features, 50k samples): ACGAN FID 33.39, BigGAN FID 4.16. Not comparable with the domain-FID here.")


class PerfectSampler:
    """Training images of the requested class (the ones the evaluator's real reference does not
    start with), as a model's ``evaluation_sample`` would give them: the reference row."""

    name = "real data"

    def __init__(self, datamodule, seed: int = 99):
        import torch

        x, y = datamodule.labelled_tensors()
        self.x, self.y, self.k = x, y, datamodule.info.num_classes
        self.gen = torch.Generator().manual_seed(seed)

    def evaluation_sample(self, n, generator, data=None, *, use_ema=True, **options):
        import torch

        from gan_lab.data.batch import Batch

        labels = (torch.randint(self.k, (1,), generator=generator) + torch.arange(n)) % self.k
        picks = torch.empty(n, dtype=torch.long)
        for c in range(self.k):
            members = torch.nonzero(self.y == c).flatten()
            rows = torch.nonzero(labels == c).flatten()
            picks[rows] = members[torch.randint(len(members), (len(rows),), generator=self.gen)]
        return Batch(self.x[picks], labels)


def run_one(model: str, seed: int, seconds: float, n: int) -> dict:
    from lab_runs import score, train

    overrides = [f"model={model}", "data=mnist_5k", f"seed={seed}", "trainer.max_steps=1000000",
                 *OVERRIDES.get(model, [])]
    module, datamodule, spent, steps, cfg = train(overrides, seconds)
    metrics = CONDITIONAL_METRICS if module.conditional else {"fid": {}}
    rec = {"model": model, "seed": seed, "budget_s": seconds, "n": n, "g_steps": steps, "train_s": round(spent, 1),
           "overrides": OVERRIDES.get(model, []), **score(module, datamodule, cfg, metrics, n)}
    if getattr(module, "truncation_trick", False):
        truncated = score(module, datamodule, cfg, metrics, n, truncation=0.5)
        rec["psi_0.5"] = {k: truncated[k] for k in KEYS if k in truncated}
    return rec


def reference(n: int) -> dict:
    import hydra
    from common import compose
    from lab_runs import score

    cfg = compose(["model=cgan", "data=mnist_5k"], "/tmp/unused")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    return score(PerfectSampler(datamodule), datamodule, cfg, CONDITIONAL_METRICS, n)


def report() -> None:
    runs = read_jsonl(RUNS)
    groups: dict[tuple, list[dict]] = {}
    ref = None
    for r in runs:
        if r["model"] == "real data":
            ref = r
            continue
        groups.setdefault((r["model"], r["budget_s"], r["n"]), []).append(r)
    rows = []
    for (model, budget, n), rs in groups.items():
        row = {"model": model, "budget_s": budget, "n": n, "seeds": sorted(r["seed"] for r in rs),
               "overrides": rs[0]["overrides"], "g_steps": [r["g_steps"] for r in rs]}
        for key in KEYS:
            values = [r[key] for r in rs if key in r]
            if values:
                row[key] = mean_se(values)
        psi = [r["psi_0.5"] for r in rs if "psi_0.5" in r]
        if psi:
            row["psi_0.5"] = {k: mean_se([p[k] for p in psi]) for k in psi[0]}
        rows.append(row)
    info = runs[-1]["machine"] if runs else machine()
    write_json(os.path.join(RESULTS, "conditional.json"), {
        "what": "class-conditional models on mnist_5k at one wall-clock CPU budget, scored with feature=domain",
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "), "reference": ref, "rows": rows,
        "published": STUDIOGAN, "machine": info,
    })

    lines = ["# Class-conditional models on mnist_5k (small CPU budget)", "",
             "Same wall-clock training budget for every model (one thread); scored with the lab's evaluator, "
             "feature=domain (the lab's MNIST CNN), n samples for labels cycling through the classes vs n real "
             "training images; CAS tested on the 500-image test split. Mean ± s.e. over seeds. "
             "**A small budget: these rows show the models and metrics working, not converged models.**", "",
             "| model | overrides | budget (s) | G steps | seeds | domain-FID ↓ | cond_acc ↑ | intra-FID ↓ | CAS ↑ "
             "| classes covered | class KL ↓ |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    if ref:
        lines.append(f"| real data (perfect sampler) | — | — | — | — | {ref['fid']:.2f} | {ref['cond_acc']:.3f} | "
                     f"{ref['intra_fid']:.2f} | {ref['cas']:.3f} | {ref['classes_covered']:.0f} | "
                     f"{ref['class_kl']:.3f} |")
    for r in rows:
        lines.append(
            f"| {r['model']} | {' '.join(r['overrides']) or '—'} | {r['budget_s']:.0f} | "
            f"{'/'.join(map(str, r['g_steps']))} | {len(r['seeds'])} | {row_cell(r, 'fid', 2)} | {row_cell(r, 'cond_acc', 3)} | "
            f"{row_cell(r, 'intra_fid', 2)} | {row_cell(r, 'cas', 3)} | {row_cell(r, 'classes_covered', 1)} | "
            f"{row_cell(r, 'class_kl', 3)} |")
        if "psi_0.5" in r:
            p = {"seeds": r["seeds"], **r["psi_0.5"]}
            lines.append(f"| {r['model']}, truncation ψ=0.5 | same checkpoints | | | {len(r['seeds'])} | "
                         f"{row_cell(p, 'fid', 2)} | {row_cell(p, 'cond_acc', 3)} | {row_cell(p, 'intra_fid', 2)} | "
                         f"{row_cell(p, 'cas', 3)} | {row_cell(p, 'classes_covered', 1)} | {row_cell(p, 'class_kl', 3)} |")
    n = rows[0]["n"] if rows else "?"
    lines += ["", f"n = {n} generated and {n} real images per score. Published reference points: {STUDIOGAN}",
              "", machine_line(info)]
    write_table("conditional", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"models": ",".join(MODELS), "seeds": "2", "first_seed": "0", "seconds": "45",
                                    "n": "1000", "threads": "1"})
    if extra:
        raise SystemExit(f"unknown arguments {extra}")
    pin_threads(int(args["threads"]))
    quiet_lightning()
    seconds, n = float(args["seconds"]), int(args["n"])
    runs = read_jsonl(RUNS)
    info = machine()
    if not any(r["model"] == "real data" and r["n"] == n for r in runs):
        append_jsonl(RUNS, {"model": "real data", "n": n, **reference(n), "machine": info})
    done = {(r["model"], r.get("seed"), r.get("budget_s"), r["n"]) for r in runs}
    for seed in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"])):
        for model in args["models"].split(","):
            if (model, seed, seconds, n) in done:
                continue
            rec = {**run_one(model, seed, seconds, n), "machine": info}
            append_jsonl(RUNS, rec)
            print(f"{model} seed {seed}: {rec['g_steps']} G steps; " +
                  ", ".join(f"{k}={rec[k]:.3f}" for k in KEYS if k in rec), flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
