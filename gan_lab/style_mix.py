"""The style-mixing grid of a StyleGAN checkpoint: ``python -m gan_lab.style_mix`` (also
``gan-lab-style-mix``). Settings: ``conf/style_mix.yaml``."""

from __future__ import annotations

import sys

from gan_lab.app import cli_main, compose, log, output_file, parse_seeds, require
from gan_lab.errors import UserError

USAGE = ("usage: python -m gan_lab.style_mix ckpt=<file> rows=<seeds> cols=<seeds> "
         "layers=coarse|middle|fine|<i-j> out=<file.png> [truncation=<psi>] [noise=fixed|random|zero] [ema=true|false]\n"
         "settings and their meaning: gan_lab/conf/style_mix.yaml")


def body(argv: list[str]) -> int:
    from gan_lab import checks
    from gan_lab.checkpoint import load_module
    from gan_lab.modalities.image import save_image_grid

    cfg = compose("style_mix", argv)
    require(cfg, "ckpt", "out")
    out = output_file(cfg.out, "out", (".png",), "the grid is written as a .png")
    rows, cols = parse_seeds(cfg.rows, "rows"), parse_seeds(cfg.cols, "cols")
    use_ema = checks.boolean(cfg.ema, "ema")
    module, _, _ = load_module(str(cfg.ckpt))
    if not hasattr(module, "style_mix_grid"):
        raise UserError(f"{cfg.ckpt} was written by model={module.name}; style mixing needs a style-based "
                        "generator (model=stylegan)")
    module.check_sample_options({"truncation": cfg.truncation, "noise": cfg.noise})
    layers = module.layer_indices(cfg.layers)
    images = module.style_mix_grid(rows, cols, layers, cfg.truncation, cfg.noise or "fixed", use_ema)
    save_image_grid(images, out, nrow=len(cols) + 1)
    log.info(f"wrote {out}: {len(rows)} row sources x {len(cols)} column sources, layers {layers[0]}-{layers[-1]} "
             f"of 0-{module.num_ws - 1} from the columns")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main("gan_lab.style_mix", USAGE, body, argv)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
