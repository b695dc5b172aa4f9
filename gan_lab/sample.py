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
         "[ema=true|false] [batch_size=<B>] [labels=all|<k>|[k1,k2]] [truncation=<psi>] [noise=fixed|random|zero] "
         "[unique=true [max_draws=<M>]]\n"
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


def generate_unique(module, n: int, seed: int, batch_size: int, use_ema: bool, max_draws: int, **options):
    """Sample until ``n`` distinct decoded sequences (a guess list: the first occurrence of each,
    in the order drawn) or ``max_draws`` samples. With the same seed the draws are those of
    :func:`generate`. Returns ``(Batch of at most n rows, samples examined)``: the samples up to
    the last one kept (a whole last batch is drawn, its rest unused)."""
    from gan_lab.data.batch import Batch
    from gan_lab.modalities.tokens import decode_info
    from gan_lab.progress import bar

    gen = torch.Generator().manual_seed(seed)
    seen: set[str] = set()
    kept, found, drawn, examined = [], 0, 0, 0
    with bar(n, "distinct samples", unit="seq") as progress:
        while found < n and drawn < max_draws:
            b = min(batch_size, max_draws - drawn)
            x = module.sample(b, gen, None, use_ema=use_ema, **options).x.cpu()
            new = torch.zeros(b, dtype=torch.bool)
            for i, text in enumerate(decode_info(x, module.data_info)):
                examined = drawn + i + 1
                if text not in seen:
                    seen.add(text)
                    new[i] = True
                    found += 1
                    if found == n:
                        break
            drawn += b
            kept.append(x[new])
            progress.update(int(new.sum()))
    return Batch(torch.cat(kept)), examined


def distinct_sequences(info) -> int:
    """How many distinct decoded sequences token data of ``info`` can hold: strings of 0..L
    symbols (padding decodes to nothing)."""
    symbols, length = len(info.vocab) - 1, int(info.shape[0])
    return sum(symbols**k for k in range(length + 1))


def check_unique(cfg, n: int, info) -> int | None:
    """``max_draws`` for ``unique=true`` (``None`` without it); a request the cap cannot meet is
    refused before any sampling."""
    from gan_lab import checks

    if not checks.boolean(cfg.unique, "unique"):
        if cfg.max_draws is not None:
            raise UserError("max_draws applies with unique=true only")
        return None
    if info.modality != "tokens":
        raise UserError(f"unique=true applies to text models (token data); this checkpoint samples {info.modality} data")
    max_draws = 100 * n if cfg.max_draws is None else checks.integer(cfg.max_draws, "max_draws", minimum=1)
    if n > max_draws:
        raise UserError(f"unique=true: n={n} distinct sequences cannot come from max_draws={max_draws} samples; "
                        f"raise max_draws to at least {n}")
    possible = distinct_sequences(info)
    if n > possible:
        raise UserError(f"unique=true: n={n} is more than the {possible} distinct sequences data {info.name} can hold "
                        f"({len(info.vocab) - 1} symbols, length {info.shape[0]})")
    return max_draws


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
    options = {"truncation": cfg.truncation, "noise": cfg.get("noise")}
    condition = module.condition_for(cfg.labels, n) if cfg.labels is not None else None
    module.check_sample_options(options)
    max_draws = check_unique(cfg, n, info)
    use_ema = checks.boolean(cfg.ema, "ema")
    if max_draws is None:
        batch = generate(module, n, seed, batch_size, use_ema, condition, **options)
    else:
        batch, examined = generate_unique(module, n, seed, batch_size, use_ema, max_draws, **options)
        if len(batch) < n:
            log.warning(f"gan_lab.sample: warning: only {len(batch)} distinct sequences in max_draws={max_draws} "
                        f"samples (n={n} asked); writing those (raise max_draws for more)")
        else:
            log.info(f"{n} distinct sequences in the first {examined} samples")
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
        written.append(f"{len(batch)}{' distinct' if max_draws else ''} samples to {out}")
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
