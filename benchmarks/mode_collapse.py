"""Mode collapse on the 2-D mixtures of the PacGAN paper, for every unconditional variant.

Each (variant, data set, seed) is one ordinary lab training run (``gan_lab.train.run``) with a
budget (by default the variant's own 2-D default ``trainer.max_steps``, or given generator steps or
training batches), scored once at the end with the lab's ``modes`` metric on
``samples`` generated points (PacGAN: 2500): modes captured (>= 1 sample within 3 std of the
mode), the share of high-quality samples, and KL(nearest-mode histogram || uniform).

    # the protocol as reported: 9 variants x 2 data sets x 10 seeds, each variant exactly as
    # `python -m gan_lab model=<m> data=<d>` runs it (its 2-D defaults, conf/data_model/,
    # budget included: at most about 3 CPU minutes per run)
    .venv/bin/python benchmarks/mode_collapse.py
    .venv/bin/python benchmarks/mode_collapse.py variants=gan data=ring8 tag=pack2 model.pack=2
    .venv/bin/python benchmarks/mode_collapse.py seeds=3 batches=800 tag=old ~data_model  # without the recipe
    .venv/bin/python benchmarks/mode_collapse.py report                  # tables only

Arguments: ``variants`` (comma list; default all nine), ``data`` (``ring8,grid25``), ``seeds``
(how many, from ``first_seed``; default 10), ``batches`` (D updates per run, i.e. training
batches: G steps = batches // n_critic, so that variants with n_critic=5 get the same data) or
``steps`` (G steps per run); both 0 (the default): the config's ``trainer.max_steps``, ``samples``,
``threads`` (default 1), ``tag`` (names a row set, e.g. a tuned setting) and any Hydra override,
applied to every run of this call. Seeds are the outer loop, so a run stopped early leaves
every variant with the same number of seeds.

Every finished run is appended to ``results/mode_collapse_runs.jsonl`` and skipped when the
same run is asked for again; each call ends by rewriting ``results/mode_collapse.json`` and
``results/mode_collapse.md`` from all recorded runs.

``explore=<name>`` instead records each run under that name in
``results/mode_collapse_explore.jsonl`` (settings being tried, e.g. the exploration rows README
quotes; never part of the tables), one line per run with its overrides and the load average:

    .venv/bin/python benchmarks/mode_collapse.py explore=sn-g30 variants=sngan data=ring8 seeds=1 \
        model.net.mlp.d_gain=30
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    RESULTS, append_jsonl, compose, machine, machine_line, mean_se, pm, parse_args, pin_threads, quiet_lightning,
    read_jsonl, write_json, write_table,
)

VARIANTS = ["gan", "dcgan", "lsgan", "wgan", "wgan_gp", "wgan_div", "wgan_lp", "ragan", "sngan"]
RUNS = os.path.join(RESULTS, "mode_collapse_runs.jsonl")
EXPLORE = os.path.join(RESULTS, "mode_collapse_explore.jsonl")

# Lin, Khetan, Fanti, Oh, "PacGAN: the power of two samples in generative adversarial networks"
# (NeurIPS 2018), Table 1: mean over 10 trials, 2500 samples, their own architecture and budget.
# Only the rows quoted in gan_lab issues 3 and 15 are reproduced; None = not quoted there.
PACGAN_TABLE1 = {
    "ring8": [("GAN (PacGAN Table 1)", 6.3, 98.2, None), ("PacGAN2 (PacGAN Table 1)", 7.9, 95.6, None)],
    "grid25": [("GAN (PacGAN Table 1)", 17.3, 94.8, None), ("ALI (PacGAN Table 1)", 24.1, 95.7, None),
               ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6, 0.04)],
}
NUM_MODES = {"ring8": 8, "grid25": 25}


def run_one(model: str, data: str, seed: int, steps: int, batches: int, samples: int, extra: list[str]) -> dict:
    from gan_lab.train import run

    overrides = [f"model={model}", f"data={data}", f"seed={seed}", "metrics=[modes]",
                 f"eval.num_samples={samples}", "eval.every_n_steps=0", *extra]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides, tmp)
        if batches:  # a budget in D updates: as many G steps as n_critic allows
            steps = batches // int(cfg.model.n_critic)
        elif not steps:  # the variant's own default budget
            steps = int(cfg.trainer.max_steps)
        cfg.trainer.max_steps = steps
        t0 = time.perf_counter()
        last = run(cfg)
        seconds = time.perf_counter() - t0
    return {
        "steps": steps,
        "batches": steps * int(cfg.model.n_critic),
        "n_critic": int(cfg.model.n_critic),
        "modes_captured": int(last["modes_captured"]),
        "high_quality_frac": float(last["high_quality_frac"]),
        "mode_kl": float(last["mode_kl"]),
        "seconds": round(seconds, 2),
    }


def key_of(rec: dict) -> tuple:
    return (rec["tag"], rec["model"], rec["data"], rec["seed"], rec["budget"], rec["samples"], tuple(rec["extra"]))


def report() -> None:
    """Aggregate every recorded run into mode_collapse.json and mode_collapse.md."""
    runs = read_jsonl(RUNS)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["data"], r["tag"], r["model"], r["budget"], r["samples"], tuple(r["extra"])), []).append(r)
    rows = []
    for (data, tag, model, budget, samples, extra), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        modes = mean_se([r["modes_captured"] for r in rs])
        hq = mean_se([100 * r["high_quality_frac"] for r in rs])
        kl = mean_se([r["mode_kl"] for r in rs])
        rows.append({
            "data": data, "tag": tag, "model": model, "budget": budget, "g_steps": rs[0]["steps"],
            "d_updates": rs[0]["batches"], "samples": samples,
            "extra_overrides": list(extra), "seeds": [r["seed"] for r in rs],
            "modes_mean": modes[0], "modes_se": modes[1], "hq_pct_mean": hq[0], "hq_pct_se": hq[1],
            "kl_mean": kl[0], "kl_se": kl[1],
            "seconds_per_run": sum(r["seconds"] for r in rs) / len(rs),
            "machine": rs[-1]["machine"],
        })
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (r["data"], r["tag"] != "default", r["tag"], order.get(r["model"], 99), r["budget"]))
    write_json(os.path.join(RESULTS, "mode_collapse.json"), {
        "what": "PacGAN 2-D protocol: modes captured, high-quality %, KL(mode histogram || uniform); mean ± s.e. over seeds",
        "pacgan_table1_quoted": PACGAN_TABLE1,
        "rows": rows,
    })
    lines = ["# Mode collapse on the 2-D mixtures (PacGAN protocol)", "",
             "Mean ± standard error over the listed seeds. Each run: the lab's defaults for the model "
             "plus the listed overrides, trained for the listed G steps / D updates, then `samples` points from the EMA "
             "generator where the model has one. A sample is high quality within 3 std of its nearest "
             "mode; a mode is captured with at least one high-quality sample; KL is KL(nearest-mode "
             "histogram ‖ uniform) in nats. PacGAN's rows are copied from the paper (their networks "
             "and budget, 10 trials), not re-run.", ""]
    for data in ("ring8", "grid25"):
        k = NUM_MODES[data]
        lines += [f"## {data} ({k} modes)", "",
                  "| model | setting | G steps / D updates | seeds | samples | modes (of %d) | high quality %% | KL | s/run |" % k,
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, m, hq, kl in PACGAN_TABLE1[data]:
            lines.append(f"| {name} | published | — | 10 trials | 2500 | {m} | {hq} | {kl if kl is not None else '—'} | — |")
        for r in (r for r in rows if r["data"] == data):
            n = len(r["seeds"])
            setting = r["tag"] if not r["extra_overrides"] else f"{r['tag']}: `{' '.join(r['extra_overrides'])}`"
            lines.append(
                f"| {r['model']} | {setting} | {r['g_steps']} / {r['d_updates']} | {len(r['seeds'])} | {r['samples']} | "
                f"{pm(r['modes_mean'], r['modes_se'], n, 1)} | {pm(r['hq_pct_mean'], r['hq_pct_se'], n, 1)} | "
                f"{pm(r['kl_mean'], r['kl_se'], n, 3)} | {r['seconds_per_run']:.0f} |")
        lines.append("")
    # the machine and its load for each setting (runs were made at different times and loads)
    for tag in dict.fromkeys(r["tag"] for r in rows):
        rs = [r for r in runs if r["tag"] == tag]
        loads = [r["machine"]["load_average"][0] for r in rs if r["machine"].get("load_average")]
        load = (f" 1-minute load average {min(loads):.1f}–{max(loads):.1f} when the benchmark calls started (README gives the load during the runs)." if loads else "")
        lines.append(f"`{tag}`: " + machine_line(rs[-1]["machine"]) + load)
    write_table("mode_collapse", lines)


def main(argv: list[str]) -> None:
    if argv == ["report"]:
        report()
        return
    args, extra = parse_args(argv, {"variants": ",".join(VARIANTS), "data": "ring8,grid25", "seeds": "10",
                                    "first_seed": "0", "steps": "0", "batches": "0", "samples": "2500", "threads": "1",
                                    "tag": "default", "explore": ""})
    pin_threads(int(args["threads"]))
    quiet_lightning()
    variants = args["variants"].split(",")
    datasets = args["data"].split(",")
    steps, batches, samples = int(args["steps"]), int(args["batches"]), int(args["samples"])
    budget = f"{batches} batches" if batches else f"{steps} G steps" if steps else "defaults"
    seeds = range(int(args["first_seed"]), int(args["first_seed"]) + int(args["seeds"]))
    done = {key_of(r) for r in read_jsonl(RUNS)}
    info = machine()
    if args["explore"]:
        for seed in seeds:
            for data in datasets:
                for model in variants:
                    rec = {"name": args["explore"], "model": model, "data": data, "ovs": extra, "seed": seed,
                           **run_one(model, data, seed, steps, batches, samples, extra),
                           "load": os.getloadavg()[0]}
                    append_jsonl(EXPLORE, rec)
                    print(rec, flush=True)
        return
    for seed in seeds:
        for data in datasets:
            for model in variants:
                rec = {"tag": args["tag"], "model": model, "data": data, "seed": seed, "budget": budget,
                       "samples": samples, "extra": extra}
                if key_of(rec) in done:
                    continue
                rec.update(run_one(model, data, seed, steps, batches, samples, extra), machine=info)
                append_jsonl(RUNS, rec)
                print(f"[{args['tag']}] {model:9s} {data:7s} seed {seed}: modes {rec['modes_captured']}, "
                      f"HQ {100 * rec['high_quality_frac']:.1f} %, KL {rec['mode_kl']:.3f} ({rec['seconds']:.0f} s)",
                      flush=True)
    report()


if __name__ == "__main__":
    main(sys.argv[1:])
