"""Write samples from a checkpoint, without the training data: ``python -m gan_lab.sample``
(also ``gan-lab-sample``). Settings: ``conf/sample.yaml`` (``key=value`` on the command line)."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from omegaconf import OmegaConf

from gan_lab.app import cli_main, compose, log
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.sample ckpt=<file> n=<N> [out=<file.npz|file.txt>] [grid=<file.png>] [seed=<s>] "
         "[ema=true|false] [batch_size=<B>] [labels=all|<k>|[k1,k2]] [truncation=<psi>]\n"
         "settings and their meaning: gan_lab/conf/sample.yaml")


def generate(module, n: int, seed: int, batch_size: int, use_ema: bool, condition=None, **options):
    """``n`` samples as one Batch, drawn in batches with one seeded generator: same seed, same samples."""
    from gan_lab.data.batch import Batch

    gen = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        cond = None if condition is None else condition[start : start + b]
        parts.append(module.sample(b, gen, cond, use_ema=use_ema, **options))
    x = torch.cat([p.x for p in parts])
    y = torch.cat([p.y for p in parts]) if parts[0].y is not None else None
    return Batch(x.cpu(), None if y is None else y.cpu())


def check_outputs(cfg, modality) -> None:
    if not cfg.out and not cfg.grid:
        raise UserError("nothing to write: give out=<file.npz> (the samples) and/or grid=<file.png> (a picture)")
    if cfg.out:
        ext = os.path.splitext(str(cfg.out))[1].lower()
        allowed = (".npz", ".txt") if modality.name == "tokens" else (".npz",)
        if ext not in allowed:
            raise UserError(f"out={cfg.out}: samples are written as {' or '.join(allowed)}"
                            + ("; for a picture use grid=<file.png>" if ext in (".png", ".jpg") else ""))
    for key in ("out", "grid"):
        path = cfg.get(key)
        if path:
            folder = os.path.dirname(os.path.abspath(str(path)))
            if not os.path.isdir(folder):
                raise UserError(f"{key}={path}: folder {folder} does not exist")


def body(argv: list[str]) -> int:
    from gan_lab import checks
    from gan_lab.checkpoint import load_module
    from gan_lab.modalities import get_modality

    cfg = compose("sample", argv)
    if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:
        raise UserError("missing argument: ckpt=<checkpoint file>")
    n = checks.integer(cfg.n, "n", minimum=1)
    batch_size = checks.integer(cfg.batch_size, "batch_size", minimum=1)
    seed = checks.integer(cfg.seed, "seed")
    module, _, _ = load_module(str(cfg.ckpt))
    info = module.data_info
    modality = get_modality(info)
    check_outputs(cfg, modality)
    options = {"truncation": cfg.truncation}
    condition = module.condition_for(cfg.labels, n) if cfg.labels is not None else None
    module.check_sample_options(options)
    batch = generate(module, n, seed, batch_size, checks.boolean(cfg.ema, "ema"), condition, **options)
    written = []
    if cfg.out:
        out = str(cfg.out)
        if out.lower().endswith(".txt"):
            modality.save_figure(batch.x, out, info)
        else:
            arrays = modality.export(batch.x, info)
            if batch.y is not None:
                arrays["labels"] = batch.y.numpy().astype(np.int64)
            np.savez_compressed(out, **arrays)
        written.append(f"{n} samples to {out}")
    if cfg.grid:
        shown = batch.x if info.modality != "image" else batch.x[:64]
        path = modality.save_figure(shown, str(cfg.grid), info)
        note = f" (the first {len(shown)} of {n})" if len(shown) < n else ""
        written.append(f"a grid to {path}{note}")
    log.info("wrote " + " and ".join(written))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.sample", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
