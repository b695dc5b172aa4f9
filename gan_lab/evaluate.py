"""Score a checkpoint: ``python -m gan_lab.evaluate`` (also ``gan-lab-evaluate``).

The same code as the training-time metrics callback (:mod:`gan_lab.metrics.lab`). Settings:
``conf/evaluate.yaml`` plus the ``metrics`` and ``feature`` groups (``metrics=[fid,kid]``,
``feature=inception``, ``feature.<key>=...``). The real data comes from the checkpoint's own data
config; ``data.<key>=...`` changes it (e.g. ``data.source.root=...``).
"""

from __future__ import annotations

import json
import os
import sys

from omegaconf import OmegaConf

from gan_lab.app import cli_main, compose, instantiate, log
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.evaluate ckpt=<file> metrics=[fid,is,kid,pr] n=<N> "
         "[feature=domain|inception|torchscript] [out=<file.json>] [ema=true|false] [seed=<s>] "
         "[batch_size=<B>] [num_real=<M>] [feature.<key>=<v>] [data.<key>=<v>]\n"
         "settings and their meaning: gan_lab/conf/evaluate.yaml; metrics: gan_lab/conf/metrics/")


def split_data_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """``data.<key>=<v>`` items (applied to the checkpoint's data config) and the rest."""
    data = [a for a in argv if a.lstrip("+").startswith("data.")]
    return [a for a in argv if a not in data], [a.lstrip("+")[len("data."):] for a in data]


def data_config(run_cfg, data_overrides: list[str]):
    """The run's data config with ``data.*`` overrides, typed as on Hydra's command line."""
    base = OmegaConf.create(OmegaConf.to_container(run_cfg.data, resolve=True))
    try:
        return OmegaConf.merge(base, OmegaConf.from_dotlist(data_overrides))
    except Exception as err:  # malformed dotlist
        raise UserError(f"bad data override {data_overrides}: {err}") from None


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
    results = evaluate_module(evaluator, module, datamodule, use_ema, eval_cfg["seed"])

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
        "results": results,
        "real_cache_hit": bool(evaluator.last_timing.get("real_cache_hit")),
    }
    feature = "none (2-D points are scored directly)" if extractor is None else extractor.describe()
    real = f" vs {report['num_real']} real ({report['reference']})" if extractor is not None else ""
    log.info(f"{module.name} @ step {module.step} on {report['data']} ({report['generator']} generator), "
             f"{report['num_samples']} samples{real}; feature: {feature}")
    width = max(len(k) for k in results) if results else 0
    for key, value in results.items():
        log.info(f"  {key:<{width}}  {value:.6g}")
    if cfg.out:
        with open(str(cfg.out), "w") as f:
            json.dump(report, f, indent=2, default=str)
        log.info(f"wrote {cfg.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.evaluate", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
