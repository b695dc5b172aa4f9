"""Translate images with a Pix2Pix or CycleGAN checkpoint: ``python -m gan_lab.translate``
(also ``gan-lab-translate``). Settings: ``conf/translate.yaml``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from gan_lab.app import cli_main, compose, instantiate, log
from gan_lab.data.batch import Batch
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.translate ckpt=<file> split=test|<folder> out=<folder>|<file.npz> "
         "[direction=AtoB|BtoA] [grid=<file.png>] [n=<N>] [batch_size=<B>] [ema=true|false] [seed=<s>]\n"
         "settings and their meaning: gan_lab/conf/translate.yaml")


def folder_batches(folder: Path, module, direction: str, batch_size: int, limit: int | None):
    """Images of a folder, read like the model's inputs (its channels, its crop size)."""
    from gan_lab.data.datasets import IMAGE_EXTENSIONS, scan_image_folder
    from gan_lab.data.sources.translation import _read_image

    files = scan_image_folder(folder, IMAGE_EXTENSIONS)[:limit]
    if not files:
        raise UserError(f"split={folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in that folder")
    info = module.data_info
    channels = (info.shape if direction == "AtoB" else info.shape_b)[0]
    size = module.crop_size
    for lo in range(0, len(files), batch_size):
        chunk = files[lo : lo + batch_size]
        x = torch.stack([_read_image(p, channels, size) for p in chunk])
        yield Batch(x), [p.stem for p in chunk]


def split_batches(run_cfg, split: str, direction: str, batch_size: int, limit: int | None):
    datamodule = instantiate(OmegaConf.create(OmegaConf.to_container(run_cfg.data, resolve=True)), "data",
                             _convert_="all")
    if split not in datamodule.splits:
        raise UserError(f"split={split}: data {datamodule.info.name} has the splits {', '.join(datamodule.splits)}, "
                        "or give a folder of images")
    from gan_lab.data.module import take

    dataset = datamodule.dataset_for(split)
    if datamodule.info.pairing == "unpaired":  # the input domain alone, every image once
        dataset = dataset.domain("a" if direction == "AtoB" else "b")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for lo in range(0, n, batch_size):
        index = torch.arange(lo, min(n, lo + batch_size))
        yield take(dataset, index), [f"{i:05d}" for i in index.tolist()]


def body(argv: list[str]) -> int:
    from gan_lab import checks
    from gan_lab.checkpoint import load_module
    from gan_lab.modalities.image import save_image_grid, to_uint8

    cfg = compose("translate", argv)
    for key in ("ckpt", "out"):
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) is None:
            raise UserError(f"missing argument: {key}=...")
    batch_size = checks.integer(cfg.batch_size, "batch_size", minimum=1)
    limit = None if cfg.n is None else checks.integer(cfg.n, "n", minimum=1)
    direction = checks.choice(cfg.direction, "direction", ("AtoB", "BtoA"))
    out = Path(str(cfg.out))
    to_npz = out.suffix.lower() == ".npz"
    parent = out.parent if to_npz else out.parent
    if not parent.resolve().is_dir():
        raise UserError(f"out={out}: folder {parent.resolve()} does not exist")
    module, run_cfg, meta = load_module(str(cfg.ckpt))
    if getattr(module, "family", None) != "translation":
        raise UserError(f"{cfg.ckpt} was written by model={module.name}, not a translation model (pix2pix, cyclegan)")
    module.check_sample_options({"direction": direction})
    split = str(cfg.split)
    source = (folder_batches(Path(split), module, direction, batch_size, limit) if os.path.isdir(split)
              else split_batches(run_cfg, split, direction, batch_size, limit))
    generator = torch.Generator().manual_seed(checks.integer(cfg.seed, "seed"))
    use_ema = checks.boolean(cfg.ema, "ema")
    parts: dict[str, list] = {"inputs": [], "outputs": [], "targets": [], "labels": [], "extra": []}
    names: list[str] = []
    for batch, batch_names in source:
        result = module.translate_batch(batch, generator, use_ema=use_ema, direction=direction)
        parts["inputs"].append(result.inputs.cpu())
        parts["outputs"].append(result.x.cpu())
        second = result.target if result.target is not None else result.reconstruction
        if second is not None:
            parts["extra"].append(second.cpu())
        if result.target is not None:
            parts["targets"].append(result.target.cpu())
        if result.y is not None:
            parts["labels"].append(result.y.cpu())
        names += batch_names
    joined = {k: torch.cat(v) for k, v in parts.items() if v}
    if to_npz:
        arrays = {k: to_uint8(joined[k]) for k in ("inputs", "outputs", "targets") if k in joined}
        if "labels" in joined:
            arrays["labels"] = joined["labels"].numpy().astype(np.int64)
        np.savez_compressed(out, **arrays)
    else:
        from PIL import Image

        out.mkdir(exist_ok=True)
        for name, image in zip(names, to_uint8(joined["outputs"])):
            array = image.transpose(1, 2, 0)
            Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(out / f"{name}.png")
    said = f"translated {len(names)} images ({direction}) to {out}"
    if cfg.grid:
        from gan_lab.families.translation import _as_rgb_like

        columns = [joined["inputs"][:16], joined["outputs"][:16]] + ([joined["extra"][:16]] if "extra" in joined else [])
        columns = [_as_rgb_like(c, columns[1]) for c in columns]
        images = torch.stack([img for example in zip(*columns) for img in example])
        save_image_grid(images, str(cfg.grid), nrow=len(columns))
        said += f" and a grid of the first {min(16, len(names))} to {cfg.grid}"
    log.info(said)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.translate", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
