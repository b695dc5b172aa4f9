"""The Pix2Pix and CycleGAN ablations on the embedded translation sets, at a CPU budget.

* ``pix2pix`` on ``edges2mnist_5k`` (edge map -> digit): L1 alone, cGAN alone, cGAN + L1, and
  cGAN + L1 with an unconditional D (the paper's Table 1 rows), scored on the 500 test pairs:
  L1, PSNR, SSIM, domain-FID of the outputs against the training digits, ``label_kept`` (the
  domain classifier of digits gives the output the input's label).
* ``cyclegan`` on ``mnist2digits`` (MNIST-5k <-> scikit-learn's digits), in both directions:
  adversarial only, + cycle, + cycle + identity (the paper's ablation rows), scored on each test
  domain: ``label_kept`` (classifier of the target domain), domain-FID against the target
  domain's training images, cycle L1. Baseline: the identity mapping (no translation) scored the
  same way.

Each (setting, seed) is one ordinary lab run (``gan_lab.train.run``); results are appended to
``results/translation_runs.jsonl`` and runs already there are skipped, so the protocol can run in
slots; ``report`` rebuilds the tables.

    .venv/bin/python benchmarks/translation.py [which=pix2pix,cyclegan] [seeds=2] [p2p_steps=600] [cyc_steps=400] [width=32]
    .venv/bin/python benchmarks/translation.py report
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, compose, machine, machine_line, mean_se, parse_args, pin_threads, pm, quiet_lightning,
    read_jsonl, write_json, write_table,
)

import torch  # noqa: E402

RUNS = os.path.join(RESULTS, "translation_runs.jsonl")
CACHE = os.path.join(os.path.dirname(RESULTS), "..", ".cache", "gan_lab")

P2P_ROWS = {
    "L1 only": ["model.adversarial=false"],
    "cGAN only": ["model.lambda_l1=0"],
    "cGAN + L1": [],
    "cGAN + L1, unconditional D": ["model.conditional_d=false"],
}
CYC_ROWS = {
    "adversarial only": ["model.lambda_cycle=0"],
    "+ cycle": ["model.lambda_identity=0"],
    "+ cycle + identity": [],
}


def train_module(overrides: list[str]):
    """Train with the lab's loop; return the trained module, its data module and the seconds."""
    import lightning as L

    import gan_lab.train as train_mod

    holder = {}

    class Keep(L.Callback):
        def on_train_end(self, trainer, module):
            holder["module"], holder["data"] = module, trainer.datamodule

    original = train_mod.build_trainer
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides, tmp)
        train_mod.build_trainer = lambda c, r, cb, lg: original(c, r, cb + [Keep()], lg)
        t0 = time.perf_counter()
        try:
            train_mod.run(cfg)
        finally:
            train_mod.build_trainer = original
    return holder["module"].cpu().eval(), holder["data"], time.perf_counter() - t0


def domain_evaluator(name: str, x: torch.Tensor, y: torch.Tensor, metrics: list[str]):
    """FID (and the class diagnostics) with the domain classifier of one image domain."""
    from gan_lab.metrics.evaluator import Evaluator

    return Evaluator(metrics=metrics, feature="domain", num_samples=500, batch_size=250, num_real=len(x),
                     cache_dir=os.path.join(CACHE, "real_stats"), labeled_data=(x, y),
                     real_key={"name": name, "side": "domain", "n": len(x)})


def score(outputs: torch.Tensor, inputs_y: torch.Tensor, evaluator, real: torch.Tensor,
          targets: torch.Tensor | None = None, reconstructions: torch.Tensor | None = None,
          inputs: torch.Tensor | None = None) -> dict:
    from gan_lab.metrics.translation import cycle_l1, l1_distance, label_kept, psnr, ssim

    it = iter(outputs.split(250))
    out = evaluator.evaluate(lambda n: next(it)[:n], lambda: iter(real.split(250)))
    with torch.no_grad():
        logits = evaluator.extractor(outputs.clamp(-1, 1)).logits
    res = {"fid": out["fid"], "label_kept": label_kept(logits, inputs_y), "classes_covered": out["classes_covered"]}
    if targets is not None:
        res.update(l1=l1_distance(outputs, targets), psnr=psnr(outputs, targets), ssim=ssim(outputs, targets))
    if reconstructions is not None:
        res["cycle_l1"] = cycle_l1(inputs, reconstructions)
    return res


def pix2pix_run(label: str, seed: int, steps: int, width: int, extra: list[str]) -> dict:
    from gan_lab.data import GANDataModule
    from gan_lab.data.sources import Edges2MNIST5k

    module, data, seconds = train_module(
        ["model=pix2pix", "data=edges2mnist_5k", f"seed={seed}", f"trainer.max_steps={steps}",
         f"model.generator.width={width}", f"model.discriminator.width={width}", *P2P_ROWS[label], *extra])
    test = data.dataset_for("test")
    batch = test.take(torch.arange(len(test)))
    out = module.translate_batch(batch, torch.Generator().manual_seed(seed)).x
    train_digits = GANDataModule(Edges2MNIST5k()).labelled_tensors(reference=True)
    ev = domain_evaluator("edges2mnist_5k/targets", *train_digits, ["fid"])
    return {"seconds": seconds, **score(out, batch.y, ev, train_digits[0], targets=batch.target)}


def cyclegan_run(label: str, seed: int, steps: int, width: int, extra: list[str]) -> dict:
    module, data, seconds = train_module(
        ["model=cyclegan", "data=mnist2digits", f"seed={seed}", f"trainer.max_steps={steps}",
         f"model.generator.width={width}", f"model.discriminator.width={width}", *CYC_ROWS[label], *extra])
    return {"seconds": seconds, **score_cyclegan(module, data, seed)}


def score_cyclegan(module, data, seed: int) -> dict:
    """Both directions on each test domain; ``module=None`` scores the identity mapping."""
    train, test = data.dataset_for("train"), data.dataset_for("test")
    res = {}
    for direction, source, target in (("AtoB", "a", "b"), ("BtoA", "b", "a")):
        src = test.domain(source)
        xs, ys = src.x, src.y
        real_x, real_y = train.domain(target).x, train.domain(target).y
        ev = domain_evaluator(f"mnist2digits/{target}", real_x, real_y, ["fid"])
        if module is None:
            outputs, recon = xs, xs
        else:
            from gan_lab.data import Batch

            t = module.translate_batch(Batch(xs, ys), None, direction=direction)
            outputs, recon = t.x, t.reconstruction
        for k, v in score(outputs, ys, ev, real_x, reconstructions=recon, inputs=xs).items():
            res[f"{direction}_{k}"] = v
    return res


def report() -> None:
    runs = read_jsonl(RUNS)
    lines = ["# Translation ablations on the embedded sets", ""]
    for which, rows, cols in (
        ("pix2pix", list(P2P_ROWS), ["l1", "psnr", "ssim", "fid", "label_kept"]),
        ("cyclegan", ["identity mapping (no training)", *CYC_ROWS],
         [f"{d}_{k}" for d in ("AtoB", "BtoA") for k in ("label_kept", "fid", "cycle_l1")]),
    ):
        mine = [r for r in runs if r["which"] == which]
        if not mine:
            continue
        steps = sorted({r["steps"] for r in mine if r["steps"]})
        lines += [f"## {which}", "", f"Budget: {', '.join(map(str, steps))} steps; widths {mine[0]['width']}; "
                  "scores on the test split (500 images per side). Mean ± s.e. over seeds.", "",
                  "| setting | seeds | " + " | ".join(cols) + " | s/run |", "|---" * (len(cols) + 3) + "|"]
        for row in rows:
            rs = [r for r in mine if r["setting"] == row]
            if not rs:
                continue
            cells = []
            for c in cols:
                m, se = mean_se([r["results"][c] for r in rs])
                cells.append(pm(m, se, len(rs), 3))
            secs = sum(r["results"].get("seconds", 0.0) for r in rs) / len(rs)
            lines.append(f"| {row} | {len(rs)} | " + " | ".join(cells) + f" | {secs:.0f} |")
        lines.append("")
    if runs:
        lines.append(machine_line(runs[-1]["machine"]))
    write_table("translation", lines)
    write_json(os.path.join(RESULTS, "translation.json"), {"runs": runs})


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"which": "pix2pix,cyclegan", "seeds": "2", "p2p_steps": "600",
                                    "cyc_steps": "400", "width": "32", "threads": "1"})
    pin_threads(int(args["threads"]))
    quiet_lightning()
    width = int(args["width"])
    done = {(r["which"], r["setting"], r["seed"], r["steps"], r["width"]) for r in read_jsonl(RUNS)}
    for which in args["which"].split(","):
        steps = int(args["p2p_steps"] if which == "pix2pix" else args["cyc_steps"])
        rows = list(P2P_ROWS if which == "pix2pix" else CYC_ROWS)
        if which == "cyclegan" and ("cyclegan", "identity mapping (no training)", 0, 0, width) not in done:
            from gan_lab.app import instantiate

            data = instantiate(compose(["data=mnist2digits"], "/tmp/unused").data, "data", _convert_="all")
            append_jsonl(RUNS, {"which": which, "setting": "identity mapping (no training)", "seed": 0, "steps": 0,
                                "width": width, "results": score_cyclegan(None, data, 0), "machine": machine()})
        for seed in range(int(args["seeds"])):
            for row in rows:
                key = (which, row, seed, steps, width)
                if key in done:
                    continue
                run = pix2pix_run if which == "pix2pix" else cyclegan_run
                results = run(row, seed, steps, width, extra)
                print(f"{which} | {row} | seed {seed}: {results}", flush=True)
                append_jsonl(RUNS, {"which": which, "setting": row, "seed": seed, "steps": steps, "width": width,
                                    "results": results, "machine": machine()})
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
