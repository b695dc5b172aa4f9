"""Codes of real data from a checkpoint: ``python -m gan_lab.encode`` (also ``gan-lab-encode``).
Settings: ``conf/encode.yaml``; ``data.<key>=...`` changes the checkpoint's data config."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from omegaconf import OmegaConf

from gan_lab.app import cli_main, compose, data_config, instantiate, log, split_data_overrides
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.encode ckpt=<file> split=train|test out=<codes.npz> [batch_size=<B>] "
         "[data.<key>=<v>]\n"
         "settings and their meaning: gan_lab/conf/encode.yaml")
MODELS_WITH_CODES = "aae, aae_supervised, aae_semi, aae_cluster, glo, gon (and the classifying GANs ssgan, acgan)"


def encoder_of(module):
    """``batch, split -> (codes, predicted)`` for a model with codes or a classifying GAN (its
    class logits and their argmax); a one-line error for any other model."""
    if callable(getattr(module, "encode", None)):
        return module.encode
    if getattr(module, "has_classifier", False) and callable(getattr(module, "classify", None)):
        def classify(batch, split):
            logits = module.classify(batch.x)
            return logits.float(), logits.argmax(dim=1)

        return classify
    raise UserError(f"model={module.name} has no codes to write: encode applies to {MODELS_WITH_CODES}")


def body(argv: list[str]) -> int:
    from gan_lab import checks
    from gan_lab.checkpoint import load_module

    rest, data_overrides = split_data_overrides(argv)
    cfg = compose("encode", rest)
    for key in ("ckpt", "out"):
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) is None:
            raise UserError(f"missing argument: {key}=...")
    out = str(cfg.out)
    if not out.lower().endswith(".npz"):
        raise UserError(f"out={out}: codes are written as a .npz file")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UserError(f"out={out}: folder {folder} does not exist")
    batch_size = checks.integer(cfg.batch_size, "batch_size", minimum=1)
    module, run_cfg, _ = load_module(str(cfg.ckpt))
    encode = encoder_of(module)  # before any data is read
    data = instantiate(data_config(run_cfg, data_overrides), "data", _convert_="all")
    split = str(cfg.split)
    if split != "train" and split not in data.splits:
        raise UserError(f"split={split}: data {data.info.name} has the splits {', '.join(data.splits)}")
    # train: the run's own training set (its configured split), whose order GLO's code table follows
    dataset_split = None if split == "train" else split
    parts: dict[str, list] = {"codes": [], "labels": [], "predicted": []}
    for batch in data.batches(batch_size, dataset_split, order_seed=None):
        codes, predicted = encode(batch, split)
        parts["codes"].append(codes.cpu())
        if batch.y is not None:
            parts["labels"].append(batch.y.cpu())
        if predicted is not None:
            parts["predicted"].append(predicted.cpu())
    arrays = {"codes": torch.cat(parts["codes"]).numpy().astype(np.float32)}
    for key in ("labels", "predicted"):
        if parts[key]:
            arrays[key] = torch.cat(parts[key]).numpy().astype(np.int64)
    np.savez_compressed(out, **arrays)
    n, dim = arrays["codes"].shape
    extra = " and ".join(k for k in ("labels", "predicted") if k in arrays)
    log.info(f"wrote {n} codes ({dim}-d) of split {split} to {out}" + (f", with {extra}" if extra else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.encode", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
