"""Score a checkpoint: ``python -m gan_lab.evaluate`` (also ``gan-lab-evaluate``).

The same code as the training-time metrics callback (:mod:`gan_lab.metrics.lab`). Settings:
``conf/evaluate.yaml`` plus the ``metrics`` and ``feature`` groups (``metrics=[fid,kid]``,
``feature=inception``, ``feature.<key>=...``). The real data comes from the checkpoint's own data
config; ``data.<key>=...`` changes it (e.g. ``data.source.root=...``).

``truncation=<psi>`` scores a model with the truncation trick (BigGAN) at that psi;
``truncation=[1.0,0.75,0.5,0.25]`` scores each psi and, with ``out=<file.json>``, draws the
fidelity/variety trade-off (FID against IS or class accuracy, one point per psi) as
``<file>_truncation.png`` beside the report.
"""

from __future__ import annotations

import json
import os
import sys

from omegaconf import OmegaConf

from gan_lab.app import cli_main, compose, data_config, instantiate, log, split_data_overrides
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.evaluate ckpt=<file> metrics=[fid,is,kid,pr] n=<N> "
         "[feature=domain|inception|torchscript] [out=<file.json>] [ema=true|false] [seed=<s>] "
         "[batch_size=<B>] [num_real=<M>] [truncation=<psi>|[psi1,psi2,...]] [feature.<key>=<v>] [data.<key>=<v>]\n"
         "settings and their meaning: gan_lab/conf/evaluate.yaml; metrics: gan_lab/conf/metrics/")


def truncations(value) -> list | None:
    """``truncation=`` as a list of psi values (None: not given)."""
    from omegaconf import ListConfig

    if value is None:
        return None
    if isinstance(value, (list, tuple, ListConfig)):
        values = list(value)
        if not values:
            raise UserError("truncation=[] names no psi; e.g. truncation=[1.0,0.75,0.5,0.25]")
        return values
    return [value]


# the quality axis of the trade-off curve, in order of preference, and the variety axis
CURVE_X = ("is_mean", "cond_acc", "quality", "precision")
CURVE_Y = ("fid", "intra_fid", "kid_mean")


def save_tradeoff_curve(by_psi: dict[float, dict[str, float]], path: str, model: str) -> str:
    """The truncation trade-off as a PNG: FID (or intra-FID, KID) against IS (or cond_acc, the
    classifier's confidence, precision), one point per psi, labelled; without such a pair, every
    metric against psi."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(by_psi.values()))
    x_key = next((k for k in CURVE_X if k in first), None)
    y_key = next((k for k in CURVE_Y if k in first), None)
    psis = list(by_psi)
    if x_key and y_key:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
        xs, ys = [by_psi[p][x_key] for p in psis], [by_psi[p][y_key] for p in psis]
        ax.plot(xs, ys, "o-")
        for p, x, y in zip(psis, xs, ys):
            ax.annotate(f"ψ={p:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(f"{x_key} (higher is better)")
        ax.set_ylabel(f"{y_key} (lower is better)")
    else:
        keys = [k for k in first if "/" not in k]
        fig, axes = plt.subplots(len(keys), 1, figsize=(5, 2.2 * len(keys)), dpi=100, squeeze=False)
        for ax, key in zip(axes[:, 0], keys):
            ax.plot(psis, [by_psi[p][key] for p in psis], "o-")
            ax.set_ylabel(key)
        axes[-1, 0].set_xlabel("truncation psi")
    fig.suptitle(f"{model}: truncation trade-off", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def body(argv: list[str]) -> int:
    from gan_lab import checks
    from gan_lab.checkpoint import load_module
    from gan_lab.metrics.lab import build_lab_evaluator, evaluate_module

    rest, data_overrides = split_data_overrides(argv)
    cfg = compose("evaluate", rest)
    if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:
        raise UserError("missing argument: ckpt=<checkpoint file>")
    n = checks.integer(cfg.n, "n", minimum=2)
    module, run_cfg, meta = load_module(str(cfg.ckpt))
    psis = truncations(cfg.get("truncation"))
    for psi in psis or [None]:
        module.check_sample_options({"truncation": psi})  # before any work: a model without it, psi <= 0
    from gan_lab.metrics.conditional import check_model_metrics

    check_model_metrics(module, cfg.metrics)
    datamodule = instantiate(data_config(run_cfg, data_overrides), "data", _convert_="all")
    eval_cfg = {
        "num_samples": n,
        "num_real": cfg.num_real,
        "batch_size": checks.integer(cfg.batch_size, "batch_size", minimum=1),
        "cache_dir": cfg.cache_dir or run_cfg.get("eval", {}).get("cache_dir", ".cache/gan_lab/real_stats"),
        "seed": checks.integer(cfg.seed, "seed"),
    }
    if cfg.out and not os.path.isdir(os.path.dirname(os.path.abspath(str(cfg.out)))):
        raise UserError(f"out={cfg.out}: folder {os.path.dirname(os.path.abspath(str(cfg.out)))} does not exist")
    evaluator = build_lab_evaluator(cfg.metrics, cfg.feature, eval_cfg, datamodule,
                                    keys={"num_samples": "n", "num_real": "num_real"})
    use_ema = checks.boolean(cfg.ema, "ema")
    by_psi: dict = {}
    for psi in psis or [None]:
        options = {} if psi is None else {"truncation": psi}
        by_psi[psi] = evaluate_module(evaluator, module, datamodule, use_ema, eval_cfg["seed"], sample_options=options)
    if psis is None or len(psis) == 1:
        results = next(iter(by_psi.values()))
    else:
        results = {f"truncation={p:g}": r for p, r in by_psi.items()}

    extractor = evaluator.extractor
    report = {
        "checkpoint": str(cfg.ckpt),
        "model": module.name,
        "step": module.step,
        "generator": "ema" if (use_ema and len(module.ema)) else "raw",
        "data": module.data_info.name,
        "reference": "train split",
        "num_samples": evaluator.num_samples,
        "num_real": evaluator.num_real if extractor is not None else None,
        "feature": None if extractor is None else extractor.cache_id(),
        "truncation": None if psis is None else (psis[0] if len(psis) == 1 else psis),
        "results": results,
        "real_cache_hit": bool(evaluator.last_timing.get("real_cache_hit")),
    }
    if extractor is not None:
        feature = extractor.describe()
    elif module.data_info.modality == "points":
        feature = "none (2-D points are scored directly)"
    else:
        feature = "none (the chosen metrics need no feature extractor)"
    real = f" vs {report['num_real']} real ({report['reference']})" if extractor is not None else ""
    log.info(f"{module.name} @ step {module.step} on {report['data']} ({report['generator']} generator), "
             f"{report['num_samples']} samples{real}; feature: {feature}")
    for psi, scores in by_psi.items():
        if psis is not None:
            log.info(f" truncation psi={psi:g}:")
        width = max(len(k) for k in scores) if scores else 0
        for key, value in scores.items():
            log.info(f"  {key:<{width}}  {value:.6g}")
    if cfg.out:
        if psis is not None and len(psis) > 1:
            curve = os.path.splitext(str(cfg.out))[0] + "_truncation.png"
            report["curve"] = save_tradeoff_curve(by_psi, curve, module.name)
        with open(str(cfg.out), "w") as f:
            json.dump(report, f, indent=2, default=str)
        log.info(f"wrote {cfg.out}" + (f" and the trade-off curve {report['curve']}" if "curve" in report else ""))
    elif psis is not None and len(psis) > 1:
        log.info("give out=<file.json> to also write the report and the trade-off curve (PNG)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.evaluate", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
