"""Latent interpolation strips or animations of a StyleGAN checkpoint: ``python -m gan_lab.interpolate``
(also ``gan-lab-interpolate``). Settings: ``conf/interpolate.yaml``."""

from __future__ import annotations

import os
import sys

from gan_lab.app import cli_main, compose, log, output_file, parse_seeds, require
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.interpolate ckpt=<file> seeds=<a,b[,...]> steps=<n> space=z|w "
         "out=<file.png|file.gif> [truncation=<psi>] [noise=fixed|random|zero] [ema=true|false] [frame_ms=<ms>]\n"
         "settings and their meaning: gan_lab/conf/interpolate.yaml")


def save_gif(frames, path: str, frame_ms: int) -> None:
    from PIL import Image

    from gan_lab.modalities.image import to_uint8

    pictures = []
    for array in to_uint8(frames):
        array = array.transpose(1, 2, 0)
        pictures.append(Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array))
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)


def body(argv: list[str]) -> int:
    from gan_lab import checks
    from gan_lab.checkpoint import load_module
    from gan_lab.modalities.image import save_image_grid

    cfg = compose("interpolate", argv)
    require(cfg, "ckpt", "out")
    out = output_file(cfg.out, "out", (".png", ".gif"), "write a .png (a strip) or a .gif (an animation)")
    ext = os.path.splitext(out)[1].lower()
    seeds = parse_seeds(cfg.seeds, "seeds", minimum=2)
    steps = checks.integer(cfg.steps, "steps", minimum=2)
    space = checks.choice(cfg.space, "space", ("w", "z"))
    frame_ms = checks.integer(cfg.frame_ms, "frame_ms", minimum=1)
    use_ema = checks.boolean(cfg.ema, "ema")
    module, _, _ = load_module(str(cfg.ckpt))
    if not hasattr(module, "interpolation"):
        raise UserError(f"{cfg.ckpt} was written by model={module.name}; interpolation in W or Z needs a style-based "
                        "generator (model=stylegan)")
    module.check_sample_options({"truncation": cfg.truncation, "noise": cfg.noise})
    frames = module.interpolation(seeds, steps, space, cfg.truncation, cfg.noise or "fixed", use_ema)
    if ext == ".gif":
        save_gif(frames, out, frame_ms)
    else:
        save_image_grid(frames, out, nrow=len(frames))
    log.info(f"wrote {out}: {len(frames)} frames through seeds {', '.join(map(str, seeds))} in {space.upper()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.interpolate", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
