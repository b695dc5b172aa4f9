"""Score a checkpoint: ``python -m gan_lab.evaluate ckpt=<file> metrics=[fid,kid] n=2000``.

    python -m gan_lab.evaluate ckpt=<file> metrics=[fid,is,kid,pr] n=<N> [feature=domain|inception|torchscript]
                               [out=<file.json>] [ema=true] [seed=0] [batch_size=200] [num_real=<M>]
                               [feature.<key>=<value> ...] [data.<key>=<value> ...]

Prints a table and writes JSON. It runs the same code as the training-time metrics callback
(:mod:`gan_lab.callbacks.metrics`). The real data comes from the checkpoint's own data config
(override with ``data.<key>=...``, e.g. ``data.source.root=...``); real statistics are cached.
"""

from __future__ import annotations

import json
import sys

import yaml

from gan_lab.errors import UserError

USAGE = (
    "usage: python -m gan_lab.evaluate ckpt=<file> metrics=[fid,is,kid,pr] n=<N> "
    "[feature=domain|inception|torchscript] [out=<file.json>] [ema=true|false] [seed=<s>] "
    "[batch_size=<B>] [num_real=<M>] [feature.<key>=<v>] [data.<key>=<v>]"
)
OWN_KEYS = {"ckpt", "n", "out", "metrics", "feature", "ema", "seed", "batch_size", "num_real", "cache_dir"}


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    args: dict[str, str] = {"metrics": "[fid]", "feature": "domain", "ema": "true", "seed": "0",
                            "batch_size": "200"}
    passthrough = []
    for item in argv:
        if "=" not in item:
            raise UserError(f"expected key=value, got '{item}'")
        key, value = item.split("=", 1)
        if key in OWN_KEYS:
            args[key] = value
        elif key.split(".")[0] in ("feature", "data", "metrics"):
            passthrough.append(item)
        else:
            raise UserError(f"unknown argument '{key}'; known: {', '.join(sorted(OWN_KEYS))}, feature.*, data.*, metrics.*")
    for key in ("ckpt", "n"):
        if key not in args:
            raise UserError(f"missing argument: {key}")
    return args, passthrough


def evaluation_configs(args: dict, passthrough: list[str], run_cfg):
    """metrics/feature configs composed from conf/ (so `metrics=[fid,kid]` means the same
    here as in training) and the run's data config with any data.* overrides applied."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gan_lab.train import CONFIG_DIR

    data_overrides = [p for p in passthrough if p.startswith("data.")]
    others = [p for p in passthrough if not p.startswith("data.")]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        try:
            cfg = compose("config", overrides=[f"metrics={args['metrics']}", f"feature={args['feature']}", *others])
        except Exception as err:  # Hydra's composition errors name the bad option and the choices
            raise UserError(str(err).replace("\n", " ")) from None
    data_cfg = OmegaConf.create(OmegaConf.to_container(run_cfg.data, resolve=True))
    for item in data_overrides:
        key, value = item.split("=", 1)
        # YAML typing, as on Hydra's command line: true -> bool, 32 -> int
        OmegaConf.update(data_cfg, key[len("data."):], yaml.safe_load(value) if value else value)
    return cfg.metrics, cfg.feature, data_cfg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        import hydra

        from gan_lab.callbacks.metrics import build_lab_evaluator, evaluate_module
        from gan_lab.sample import load_module

        args, passthrough = parse(argv)
        module, run_cfg = load_module(args["ckpt"])
        metrics_cfg, feature_cfg, data_cfg = evaluation_configs(args, passthrough, run_cfg)
        datamodule = hydra.utils.instantiate(data_cfg, _convert_="all")
        eval_cfg = {
            "num_samples": int(args["n"]),
            "num_real": int(args["num_real"]) if args.get("num_real") else None,
            "batch_size": int(args["batch_size"]),
            "cache_dir": args.get("cache_dir") or run_cfg.get("eval", {}).get("cache_dir", ".cache/gan_lab/real_stats"),
            "seed": int(args["seed"]),
        }
        evaluator = build_lab_evaluator(metrics_cfg, feature_cfg, eval_cfg, datamodule)
        results = evaluate_module(evaluator, module, datamodule, args["ema"].lower() == "true", int(args["seed"]))
    except UserError as err:
        print(f"gan_lab.evaluate: error: {err}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2

    extractor = evaluator.extractor
    report = {
        "checkpoint": args["ckpt"],
        "model": module.name,
        "g_step": module.g_step,
        "generator": "ema" if (args["ema"].lower() == "true" and module.generator_ema is not None) else "raw",
        "data": module.data_info.name,
        "reference": "train split",
        "num_samples": evaluator.num_samples,
        "num_real": evaluator.num_real,
        "feature": None if extractor is None else extractor.cache_id(),
        "results": results,
        "real_cache_hit": bool(evaluator.last_timing.get("real_cache_hit")),
    }
    print(f"{module.name} @ step {module.g_step} on {report['data']} ({report['generator']} generator), "
          f"{report['num_samples']} samples vs {report['num_real']} real ({report['reference']}), "
          f"feature: {args['feature']}")
    width = max(len(k) for k in results) if results else 0
    for key, value in results.items():
        print(f"  {key:<{width}}  {value:.6g}")
    if args.get("out"):
        with open(args["out"], "w") as f:
            json.dump(report, f, indent=2, default=str)
        print(f"wrote {args['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
