"""The semi-supervised GAN with 10 labels per class (100 labels) on mnist_5k: test accuracy of its
discriminator against classifiers trained on the same 100 labelled images only.

Rows (each over ``seeds`` training seeds; the labelled subset is the same fixed draw,
``data.labeled_per_class=10`` with ``data.labeled_seed=0``):

* ``ssgan``: ``model=ssgan`` (MLP D with Gaussian noise layers, feature matching for G) for ``steps``
  G steps; ``test_acc`` is D's K-way accuracy on the 500-image mnist_5k test split;
* ``ssgan D, labels only``: the same model with ``model.ssgan.unsupervised_weight=0``: D sees only
  the 100 labelled images (its architecture and schedule unchanged);
* ``supervised CNN``: the lab's small MNIST CNN (the domain classifier's recipe, at least 500
  updates) trained on the 100 labelled images only;
* ``supervised CNN, all 4,500 labels``: the same CNN on every training label (the ceiling here).

Salimans et al. (2016) report 0.93 % test error (99.07 % accuracy) with 100 labels on full MNIST:
60,000 training images (59,900 unlabelled), the 10,000-image test set, a 5-layer MLP D with weight
norm trained for hundreds of epochs. mnist_5k has 4,500 training images (4,400 unlabelled) and a
500-image test split, and the budget here is small.

    .venv/bin/python benchmarks/ssgan.py [seeds=3] [steps=2000] [threads=1]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, machine, machine_line, mean_se, parse_args, pin_threads, pm, quiet_lightning, read_jsonl,
    write_json, write_table,
)

RUNS = os.path.join(RESULTS, "ssgan_runs.jsonl")
PER_CLASS = 10
ROWS = ["ssgan", "ssgan D, labels only", "supervised CNN", "supervised CNN, all 4,500 labels"]


def gan_row(row: str, seed: int, steps: int) -> dict:
    from lab_runs import score, train

    overrides = ["model=ssgan", "data=mnist_5k", f"data.labeled_per_class={PER_CLASS}", f"seed={seed}",
                 f"trainer.max_steps={steps}"]
    if row == "ssgan D, labels only":
        overrides.append("model.ssgan.unsupervised_weight=0")
    module, datamodule, spent, g_steps, cfg = train(overrides)
    scores = score(module, datamodule, cfg, {"test_acc": {"per_class": False}, "fid": {}}, 1000, seed)
    return {"test_acc": scores["test_acc"], "fid": scores["fid"], "g_steps": g_steps, "train_s": round(spent, 1)}


def cnn_row(row: str, seed: int, per_class: int = PER_CLASS) -> dict:
    import time

    import hydra
    import torch

    from common import compose
    from gan_lab.metrics.domain import train_domain_classifier

    cfg = compose(["model=ssgan", "data=mnist_5k", f"data.labeled_per_class={per_class}"], "/tmp/unused")
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    x, y = dm.labelled_tensors()
    if row == "supervised CNN":
        keep = dm.labeled_mask
        x, y = x[keep], y[keep]
    epochs = max(5, -(-500 // -(-len(x) // 64)))  # at least 500 updates of batch 64
    t0 = time.perf_counter()
    model, _ = train_domain_classifier(x, y, num_classes=10, test_fraction=0.0, epochs=epochs, seed=seed,
                                       progress=False)
    xt, yt = dm.labelled_tensors("test")
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).double().mean())
    return {"test_acc": acc, "n_train": len(x), "epochs": epochs, "train_s": round(time.perf_counter() - t0, 1)}


def report() -> None:
    runs = read_jsonl(RUNS)
    rows = []
    for name in ROWS:
        rs = [r for r in runs if r["row"] == name]
        if not rs:
            continue
        row = {"row": name, "seeds": sorted(r["seed"] for r in rs), "test_acc": mean_se([r["test_acc"] for r in rs])}
        if "fid" in rs[0]:
            row["fid"] = mean_se([r["fid"] for r in rs])
            row["g_steps"] = rs[0]["g_steps"]
        row["train_s"] = sum(r["train_s"] for r in rs) / len(rs)
        rows.append(row)
    info = runs[-1]["machine"] if runs else machine()
    write_json(os.path.join(RESULTS, "ssgan.json"), {
        "what": "semi-supervised GAN, 10 labels per class on mnist_5k: test accuracy vs supervised baselines",
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "), "rows": rows, "machine": info,
        "paper": "Salimans et al. 2016: 0.93% error (99.07% accuracy) with 100 labels on full MNIST (60k images)",
    })
    lines = ["# Semi-supervised GAN, 100 labels (10 per class) on mnist_5k (small CPU budget)", "",
             "Test accuracy on the 500-image mnist_5k test split; mean ± s.e. over training seeds (the labelled "
             "subset is one fixed draw). **Small budget; the paper's 99.07 % is for full MNIST (60k images, "
             "10k test) and long training.**", "",
             "| model | trained on | G steps | seeds | test accuracy ↑ | domain-FID of samples ↓ | s/run |",
             "|---|---|---|---|---|---|---|"]
    trained_on = {"ssgan": "100 labels + 4,400 unlabelled", "ssgan D, labels only": "100 labels",
                  "supervised CNN": "100 labels", "supervised CNN, all 4,500 labels": "4,500 labels"}
    for r in rows:
        n = len(r["seeds"])
        fid = pm(*r["fid"], n, 2) if "fid" in r else "—"
        lines.append(f"| {r['row']} | {trained_on[r['row']]} | {r.get('g_steps', '—')} | {n} | "
                     f"{pm(*r['test_acc'], n, 3)} | {fid} | {r['train_s']:.0f} |")
    lines += ["", "Salimans et al. (2016): 0.93 % error with 100 labels on full MNIST. " + machine_line(info)]
    write_table("ssgan", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"seeds": "3", "first_seed": "0", "steps": "2000", "threads": "1"})
    if extra:
        raise SystemExit(f"unknown arguments {extra}")
    pin_threads(int(args["threads"]))
    quiet_lightning()
    steps = int(args["steps"])
    done = {(r["row"], r["seed"], r.get("steps")) for r in read_jsonl(RUNS)}
    info = machine()
    for seed in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"])):
        for row in ROWS:
            key_steps = steps if row.startswith("ssgan") else None
            if (row, seed, key_steps) in done:
                continue
            rec = gan_row(row, seed, steps) if row.startswith("ssgan") else cnn_row(row, seed)
            rec = {"row": row, "seed": seed, "steps": key_steps, **rec, "machine": info}
            append_jsonl(RUNS, rec)
            print(f"{row} seed {seed}: test accuracy {rec['test_acc']:.4f}", flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
