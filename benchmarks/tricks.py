"""Each Improved-Techniques trick on and off with ``model=gan`` on ring8 and mnist_5k.

``model=gan`` at its defaults (MLPs, non-saturating loss, Adam 2e-4) with no trick, then with each
``model.tricks.<name>=true`` alone (its default settings), for ``steps`` G steps per data set and
``seeds`` seeds. Scores, with the lab's evaluator on the EMA-free generator:

* ring8 (8 Gaussians, PacGAN protocol), batches of 64 (the data config's 256 makes minibatch
  discrimination, O(batch^2), too slow for a CPU budget): modes captured (of 8), share of
  high-quality samples (within 3 std of a mode), KL of the mode histogram from uniform, on 2,500
  samples;
* mnist_5k: domain-FID, the domain classifier's confidence (quality), classes covered (of 10) and
  KL of the predicted class histogram from the data's, on 1,000 samples vs 1,000 real images.

    .venv/bin/python benchmarks/tricks.py [seeds=2] [ring8_steps=1000] [mnist_steps=800] [threads=1]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, machine, machine_line, mean_se, parse_args, pin_threads, pm, quiet_lightning, read_jsonl,
    write_json, write_table,
)

RUNS = os.path.join(RESULTS, "tricks_runs.jsonl")
TRICKS = ["none", "feature_matching", "minibatch_discrimination", "historical_averaging",
          "one_sided_label_smoothing", "virtual_batch_norm"]
DATA = {
    # ~data_model: the protocol of the recorded results (gan's own settings: 100-D z, batch norm in
    # the MLP G, which virtual_batch_norm needs), not the 2-D defaults added later
    "ring8": {"metrics": {"modes": {}}, "n": 2500, "overrides": ["~data_model", "data.batch_size=64"],
              "keys": [("modes_captured", 1, "modes (of 8) ↑"), ("high_quality_frac", 3, "high quality ↑"),
                       ("mode_kl", 3, "mode KL ↓")]},
    "mnist_5k": {"metrics": {"fid": {}}, "n": 1000, "overrides": [],
                 "keys": [("fid", 1, "domain-FID ↓"), ("quality", 3, "quality ↑"),
                          ("classes_covered", 1, "classes (of 10) ↑"), ("class_kl", 3, "class KL ↓")]},
}


def run_one(data: str, trick: str, seed: int, steps: int) -> dict:
    from lab_runs import score, train

    overrides = ["model=gan", f"data={data}", f"seed={seed}", f"trainer.max_steps={steps}", *DATA[data]["overrides"]]
    if trick != "none":
        overrides.append(f"model.tricks.{trick}=true")
    module, datamodule, spent, g_steps, cfg = train(overrides)
    spec = DATA[data]
    scores = score(module, datamodule, cfg, spec["metrics"], spec["n"], seed)
    return {**{k: scores[k] for k, _, _ in spec["keys"]}, "g_steps": g_steps, "train_s": round(spent, 1)}


def report() -> None:
    runs = read_jsonl(RUNS)
    info = runs[-1]["machine"] if runs else machine()
    tables, out = [], {}
    for data, spec in DATA.items():
        rows = []
        for trick in TRICKS:
            rs = [r for r in runs if r["data"] == data and r["trick"] == trick]
            if not rs:
                continue
            row = {"trick": trick, "seeds": sorted(r["seed"] for r in rs), "g_steps": rs[0]["g_steps"],
                   "train_s": sum(r["train_s"] for r in rs) / len(rs)}
            for key, _, _ in spec["keys"]:
                row[key] = mean_se([r[key] for r in rs])
            rows.append(row)
        out[data] = rows
        if not rows:
            continue
        head = " | ".join(label for _, _, label in spec["keys"])
        batch = " ".join(spec["overrides"]) or "data.batch_size=64"
        tables += [f"## {data} (model=gan, {batch}, {rows[0]['g_steps']} G steps, {spec['n']} samples)", "",
                   f"| trick | seeds | {head} | s/run |", "|---|---|" + "---|" * len(spec["keys"]) + "---|"]
        for r in rows:
            n = len(r["seeds"])
            cells = " | ".join(pm(*r[key], n, d) for key, d, _ in spec["keys"])
            tables.append(f"| {r['trick']} | {n} | {cells} | {r['train_s']:.0f} |")
        tables.append("")
    write_json(os.path.join(RESULTS, "tricks.json"), {
        "what": "Improved-Techniques tricks alone, on/off, with model=gan on ring8 and mnist_5k",
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "), "rows": out, "machine": info,
    })
    lines = ["# Improved-Techniques tricks with model=gan (small CPU budget)", "",
             "Each trick alone at its default settings (`model.tricks.<name>=true`), against no trick; mean ± s.e. "
             "over seeds. **A small budget: which tricks help this early in training, not at convergence.**", "",
             *tables, machine_line(info)]
    write_table("tricks", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"seeds": "2", "first_seed": "0", "ring8_steps": "1000", "mnist_steps": "800",
                                    "tricks": ",".join(TRICKS), "data": "ring8,mnist_5k", "threads": "1"})
    if extra:
        raise SystemExit(f"unknown arguments {extra}")
    pin_threads(int(args["threads"]))
    quiet_lightning()
    steps = {"ring8": int(args["ring8_steps"]), "mnist_5k": int(args["mnist_steps"])}
    done = {(r["data"], r["trick"], r["seed"], r["g_steps"]) for r in read_jsonl(RUNS)}
    info = machine()
    for seed in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"])):
        for data in args["data"].split(","):
            for trick in args["tricks"].split(","):
                if (data, trick, seed, steps[data]) in done:
                    continue
                rec = {"data": data, "trick": trick, "seed": seed, **run_one(data, trick, seed, steps[data]),
                       "machine": info}
                append_jsonl(RUNS, rec)
                print(f"{data} {trick} seed {seed}: " + ", ".join(
                    f"{k}={rec[k]:.3f}" for k, _, _ in DATA[data]["keys"]), flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
