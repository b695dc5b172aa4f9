"""SeqGAN's synthetic experiment on ``data=oracle_lstm``: NLL_oracle of random, MLE and SeqGAN.

The oracle is the paper's recipe (a random LSTM, vocabulary 5,000, hidden 32, length 20, N(0, 1)
parameters; 10,000 training sequences) drawn with our own seed, so the values differ from the
paper's (random 10.310, MLE 9.038, SeqGAN 8.736) and the gaps are what compare. NLL_oracle
(``metrics=[nll_oracle]``: the oracle's mean NLL per token of ``samples`` generated sequences) is
measured with the lab's evaluator at the steps listed below, inside one training run per model:

* random: the untrained generator (step 0);
* MLE (``model=mle_lstm``): after every epoch (156 batches of 64) for ``mle_epochs`` epochs;
* SeqGAN (``model=seqgan``): the same MLE pre-training for ``pretrain_epochs`` epochs (the same
  seed gives the same generator, checked), D pre-training (``pretrain_d`` batches), then
  ``adv_steps`` adversarial G updates (each after ``d_steps_per_g`` D updates), measured every
  ``adv_every`` G updates.

    .venv/bin/python benchmarks/seqgan_oracle.py [mle_epochs=15] [pretrain_epochs=10] [pretrain_d=240]
        [adv_steps=50] [adv_every=10] [d_steps_per_g=5] [samples=2000] [seed=0] [threads=1] [hydra overrides...]

Writes ``results/seqgan_oracle.{json,md,png}`` (``report`` redoes the table and plot from the json),
with the oracle's NLL of its own held-out sequences as the floor a perfect generator reaches.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, compose, machine, machine_line, parse_args, pin_threads, quiet_lightning, write_json, write_table,
)

EPOCH = 156  # batches of 64 in one pass over the 10,000 training sequences
JSON = os.path.join(RESULTS, "seqgan_oracle.json")


def run_with_evals(overrides: list[str], eval_steps: set[int], samples: int, seed: int) -> tuple[list[dict], float]:
    """Train with the lab's loop; evaluate nll_oracle with the lab's evaluator at ``eval_steps``
    (0: before training). Returns ``[{step, phase, nll_oracle, seconds}]`` and the total seconds."""
    import lightning as L

    import gan_lab.train as train_mod
    from gan_lab.metrics.lab import build_lab_evaluator, evaluate_module

    points: list[dict] = []
    t0 = time.perf_counter()

    class OracleEval(L.Callback):
        def __init__(self):
            self.evaluator = None
            self.eval_s = 0.0

        def _eval(self, trainer, module):
            if self.evaluator is None:
                self.evaluator = build_lab_evaluator(["nll_oracle"], None, {"num_samples": samples, "batch_size": 500},
                                                     trainer.datamodule, progress=False)
            t = time.perf_counter()
            out = evaluate_module(self.evaluator, module, trainer.datamodule, True, seed)
            self.eval_s += time.perf_counter() - t
            points.append({"step": module.step, "phase": module.phase.name, "nll_oracle": out["nll_oracle"],
                           "train_s": round(time.perf_counter() - t0 - self.eval_s, 1)})
            print(f"  step {module.step} ({module.phase.name}): nll_oracle {out['nll_oracle']:.4f}", flush=True)

        def on_train_start(self, trainer, module):
            if 0 in eval_steps:
                self._eval(trainer, module)

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if module.at_step_boundary() and module.step in eval_steps and \
                    (not points or points[-1]["step"] != module.step):
                self._eval(trainer, module)

    original = train_mod.build_trainer

    def with_eval(cfg, run_dir, callbacks, loggers):
        return original(cfg, run_dir, callbacks + [OracleEval()], loggers)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides, tmp)
        train_mod.build_trainer = with_eval
        try:
            train_mod.run(cfg)
        finally:
            train_mod.build_trainer = original
    return points, time.perf_counter() - t0


def plot(curves: dict[str, list[dict]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for label, pts in curves.items():
        ax.plot([p["step"] / EPOCH for p in pts], [p["nll_oracle"] for p in pts], marker=".", label=label)
    ax.set_xlabel("training steps / 156 (MLE epochs; SeqGAN's adversarial G updates count one step each)")
    ax.set_ylabel("NLL_oracle (nats per token)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"mle_epochs": "15", "pretrain_epochs": "10", "pretrain_d": "240",
                                    "adv_steps": "50", "adv_every": "10", "d_steps_per_g": "5", "samples": "2000",
                                    "seed": "0", "threads": "1"})
    pin_threads(int(args["threads"]))
    quiet_lightning()
    seed, samples = int(args["seed"]), int(args["samples"])
    mle_steps = int(args["mle_epochs"]) * EPOCH
    pre_g, pre_d, adv = int(args["pretrain_epochs"]) * EPOCH, int(args["pretrain_d"]), int(args["adv_steps"])
    common = ["data=oracle_lstm", f"seed={seed}", *extra]

    print("mle_lstm", flush=True)
    mle, mle_s = run_with_evals(["model=mle_lstm", *common, f"trainer.max_steps={mle_steps}"],
                                set(range(0, mle_steps + 1, EPOCH)), samples, seed)
    print("seqgan", flush=True)
    adv_points = {pre_g + pre_d + k for k in range(0, adv + 1, int(args["adv_every"]))}
    seq, seq_s = run_with_evals(
        ["model=seqgan", *common, f"model.pretrain_g_steps={pre_g}", f"model.pretrain_d_steps={pre_d}",
         f"model.d_steps_per_g={args['d_steps_per_g']}", f"trainer.max_steps={pre_g + pre_d + adv}"],
        {pre_g} | adv_points, samples, seed)
    m = machine()
    result = {
        "what": "SeqGAN's synthetic experiment: NLL_oracle (nats/token) of random, MLE and SeqGAN generators",
        "protocol": {"oracle": "vocab 5000, emb/hidden 32, length 20, N(0,1) params, seed 0; 10,000 train sequences",
                     "samples_per_evaluation": samples, "seed": seed, "mle_steps": mle_steps,
                     "seqgan": {"pretrain_g_steps": pre_g, "pretrain_d_steps": pre_d, "adversarial_g_updates": adv,
                                "d_steps_per_g": int(args["d_steps_per_g"]), "rollouts": 16,
                                "negatives": "pool 1024, 3 epochs", "adv_every": int(args["adv_every"])},
                     "extra_overrides": extra},
        "mle": mle, "seqgan": seq,
        "seconds": {"mle_lstm": round(mle_s), "seqgan": round(seq_s)}, "machine": m,
        "paper": {"random": 10.310, "mle": 9.038, "seqgan": 8.736},
    }
    write_json(JSON, result)
    report()


def oracle_floor(n: int = 2000) -> float:
    """The oracle's NLL of its own held-out sequences: the value a perfect generator would get."""
    from gan_lab.data import GANDataModule
    from gan_lab.data.sources import OracleLSTMData

    data = GANDataModule(OracleLSTMData(split="test", cache_dir=os.path.join(os.environ.get(
        "GAN_LAB_CACHE", ".cache/gan_lab"), "oracle_lstm")))
    from gan_lab.data.sources.text import oracle_from_info

    return oracle_from_info(data.info).nll(data.dataset.all_tokens()[:n])


def report() -> None:
    """``results/seqgan_oracle.{md,png}`` from ``results/seqgan_oracle.json``."""
    import json

    with open(JSON) as f:
        result = json.load(f)
    proto, mle, seq = result["protocol"], result["mle"], result["seqgan"]
    samples, seed = proto["samples_per_evaluation"], proto["seed"]
    mle_steps, sq = proto["mle_steps"], proto["seqgan"]
    pre_g, pre_d, adv = sq["pretrain_g_steps"], sq["pretrain_d_steps"], sq["adversarial_g_updates"]
    if "oracle_floor" not in result:
        result["oracle_floor"] = oracle_floor(samples)
    random_nll = mle[0]["nll_oracle"]
    mle_at_pre = next(p["nll_oracle"] for p in mle if p["step"] == pre_g)
    seq_at_pre = next(p["nll_oracle"] for p in seq if p["step"] == pre_g)
    result["same_pretraining"] = abs(mle_at_pre - seq_at_pre) < 1e-9
    mle_final, seq_final = mle[-1]["nll_oracle"], seq[-1]["nll_oracle"]
    floor = result["oracle_floor"]
    write_json(JSON, result)
    plot({"MLE (mle_lstm)": mle, "SeqGAN": seq}, os.path.join(RESULTS, "seqgan_oracle.png"))
    adversarial = " → ".join(f"{p['nll_oracle']:.3f}" for p in seq if p["step"] >= pre_g + pre_d)
    secs = result["seconds"]
    lines = [
        "# SeqGAN's synthetic experiment (oracle_lstm)", "",
        f"NLL_oracle in nats per token of {samples} generated sequences (the paper used 10,000), one seed ({seed}). "
        "Our oracle is a different random LSTM of the paper's recipe, so compare gaps, not values. "
        f"SMALL CPU budget: MLE {mle_steps // EPOCH} epochs; SeqGAN {pre_g // EPOCH} epochs of MLE pre-training, "
        f"{pre_d} D pre-training batches, then {adv} adversarial G updates ({sq['d_steps_per_g']} D updates "
        "each), against the paper's 120 epochs, 23,400 D batches and 200 G updates with 2,340 D batches each.", "",
        "| generator | NLL_oracle | gap to random | paper (its oracle) | paper gap to random |",
        "|---|---|---|---|---|",
        f"| random (untrained G) | {random_nll:.3f} | 0 | 10.310 | 0 |",
        f"| MLE after {pre_g // EPOCH} epochs (SeqGAN's start) | {mle_at_pre:.3f} | {mle_at_pre - random_nll:+.3f} | — | — |",
        f"| MLE after {mle_steps // EPOCH} epochs | {mle_final:.3f} | {mle_final - random_nll:+.3f} | 9.038 | -1.272 |",
        f"| SeqGAN: {pre_g // EPOCH} MLE epochs + {adv} adversarial G updates | {seq_final:.3f} | "
        f"{seq_final - random_nll:+.3f} | 8.736 | -1.574 |",
        f"| the oracle's own test sequences (the floor) | {floor:.3f} | {floor - random_nll:+.3f} | — | — |",
        "",
        f"SeqGAN's pre-trained generator equals mle_lstm's at the same step: {result['same_pretraining']}. "
        f"Adversarial phase: {adversarial} (every {sq.get('adv_every', '?')} G updates). Curves: `seqgan_oracle.png`. "
        f"Wall time: mle_lstm {secs['mle_lstm']} s, seqgan {secs['seqgan']} s (evaluations included). "
        + machine_line(result["machine"]),
    ]
    write_table("seqgan_oracle", lines)


if __name__ == "__main__":
    main(sys.argv[1:])
