"""The default run's candidates (issue 15): train `python -m gan_lab <overrides>` as a user would
(a subprocess, the default callbacks, a checkpoint at the end) and score the last checkpoint with
`gan_lab.evaluate` exactly as README does: 2,000 EMA samples against 2,000 train images,
feature=domain, metrics fid (domain-FID), pr (precision, recall) and the class histogram of the
domain classifier (class KL to uniform, classes covered).

    python benchmarks/default_run.py name=<label> threads=1 [hydra overrides ...]
    python benchmarks/default_run.py real      # what a perfect generator would score

Appends one row to results/default_run_runs.jsonl (overrides, steps, training seconds, the
evaluator's numbers, machine and load) and rewrites results/default_run.md from every row.
``real`` scores real images against real images with the same classifier and sizes (2,000 train
images against 2,000 other train images, three random splits) into results/default_run_real.json.
On demand only; never part of the test suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, REPO, append_jsonl, compose, machine, parse_args, pin_threads, read_jsonl, write_json, write_table,
)

RUNS = os.path.join(RESULTS, "default_run_runs.jsonl")


def _env(threads: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    if threads != "default":
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = threads
    return env


def real_baseline() -> None:
    """Domain-FID, precision/recall and class KL of real train images against other real ones."""
    import hydra
    import torch

    from gan_lab.metrics.functional import class_diagnostics, frechet_distance, mean_cov, precision_recall

    pin_threads(1)
    cfg = compose(["metrics=[pr]"], tempfile.mkdtemp(prefix="default_run_real_"))
    data = hydra.utils.instantiate(cfg.data, _convert_="all")
    x, y = data.labelled_tensors()
    extractor = hydra.utils.instantiate(cfg.feature)(labeled_data=(x, y), data_name=data.info.name)
    k = int(cfg.metrics.pr.k)  # the evaluator's k (conf/metrics/pr.yaml)
    splits = []
    for split_seed in range(3):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
        with torch.no_grad():
            ref, other = extractor(x[order[:2000]]), extractor(x[order[2000:4000]])
        precision, recall = precision_recall(ref.features, other.features, k=k)
        diag = class_diagnostics(other.logits.softmax(1), torch.bincount(y).double())
        splits.append({"split_seed": split_seed, "fid": frechet_distance(*mean_cov(ref.features), *mean_cov(other.features)),
                       "precision": precision, "recall": recall, "class_kl": diag["kl"],
                       "classes_covered": diag["classes_covered"]})
        print(splits[-1], flush=True)
    write_json(os.path.join(RESULTS, "default_run_real.json"), {
        "what": "real vs real with the default run's scoring: 2,000 train images as the reference, 2,000 other "
                "train images in place of samples, domain classifier features, pr k=3",
        "k": k, "splits": splits, "classifier": extractor.info,
        "machine": machine()})
    table()


def main(argv: list[str]) -> None:
    if argv == ["real"]:
        real_baseline()
        return
    args, overrides = parse_args(argv, {"name": "candidate", "threads": "1", "keep": ""})
    run_dir = args["keep"] or tempfile.mkdtemp(prefix="default_run_")
    threads = args["threads"]
    cmd = [sys.executable, "-m", "gan_lab", f"run_dir={run_dir}", *overrides]
    if threads != "default":
        cmd.append(f"num_threads={threads}")
    load_before = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=_env(threads), cwd=REPO)
    wall = time.perf_counter() - t0
    load_after = [round(v, 2) for v in os.getloadavg()]
    out = os.path.join(run_dir, "default_run_eval.json")
    ckpt = os.path.join(run_dir, "checkpoints", "last.ckpt")
    ev = [sys.executable, "-m", "gan_lab.evaluate", f"ckpt={ckpt}", "metrics=[fid,pr]",
          "feature=domain", "n=2000", "num_real=2000", f"out={out}"]
    subprocess.run(ev, check=True, env=_env(threads), cwd=REPO)
    with open(out) as f:
        report = json.load(f)
    with open(os.path.join(run_dir, "config.yaml")) as f:
        config_text = f.read()
    steps = None
    for line in config_text.splitlines():
        if line.strip().startswith("max_steps:"):
            steps = int(line.split(":", 1)[1])
    m = machine()
    m["threads_used"] = threads
    row = {"name": args["name"], "overrides": overrides, "threads": threads, "max_steps": steps,
           "train_wall_s": round(wall, 1), "load_before": load_before, "load_after": load_after,
           "run_dir": run_dir, "report": report, "machine": m}
    append_jsonl(RUNS, row)
    print(json.dumps(report, indent=1))
    table()


def _get(report: dict, *keys: str):
    """A number from the evaluator's report, wherever it keeps it (flat or under 'metrics')."""
    pools = [report] + [v for v in report.values() if isinstance(v, dict)]
    for k in keys:
        for p in pools:
            if k in p and isinstance(p[k], (int, float)):
                return p[k]
    return None


def table() -> None:
    lines = ["# The default run: candidates (issue 15)", "",
             "Each row: `python -m gan_lab <overrides>` trained as a subprocess, then `gan_lab.evaluate` on the "
             "last checkpoint (2,000 EMA samples vs 2,000 train images, feature=domain). Seed 0 unless the overrides set one. "
             "Wall time includes start-up; load = 1-min load average before/after on the 2-core machine "
             "(shared with other jobs).", "",
             "| name | overrides | steps | threads | wall s | load before/after | domain-FID | class KL | classes | precision | recall |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in read_jsonl(RUNS):
        rep = r["report"]
        def f(v, d=3):
            return "—" if v is None else f"{v:.{d}f}"
        lines.append(
            f"| {r['name']} | `{' '.join(r['overrides']) or '(none)'}` | {r['max_steps']} | {r['threads']} | "
            f"{r['train_wall_s']:.0f} | {r['load_before'][0]:.1f}/{r['load_after'][0]:.1f} | "
            f"{f(_get(rep, 'fid'), 1)} | {f(_get(rep, 'class_kl', 'kl'))} | {f(_get(rep, 'classes_covered', 'classes'), 0)} | "
            f"{f(_get(rep, 'precision'), 2)} | {f(_get(rep, 'recall'), 2)} |")
    real_path = os.path.join(RESULTS, "default_run_real.json")
    if os.path.exists(real_path):
        with open(real_path) as f:
            real = json.load(f)
        for sp in real["splits"]:
            lines.append(f"| real data (split {sp['split_seed']}) | 2,000 other train images as samples | — | — | — | — | "
                         f"{sp['fid']:.1f} | {sp['class_kl']:.3f} | {sp['classes_covered']} | {sp['precision']:.2f} | "
                         f"{sp['recall']:.2f} |")
    rows = read_jsonl(RUNS)
    lines += ["", f"Machine: {rows[-1]['machine']['cpu'] if rows else '?'}, 2 cores, shared with other jobs "
              "(load averages per row; threads = torch threads of the run). 'wall s' is the whole "
              "`python -m gan_lab` command, start-up included. Overrides are relative to the default of the day "
              "the row was made (`steps` gives its step count): rows before `extra1_4500_default` ran the "
              "sngan networks without extra layers; README, 'The default run', says what each row changes."]
    write_table("default_run", lines)


if __name__ == "__main__":
    main(sys.argv[1:])
