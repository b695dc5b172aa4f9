"""Write samples from a checkpoint, without the training data.

    python -m gan_lab.sample ckpt=<file> n=<N> out=<file.npz> [grid=<file.png>] [seed=<s>]
                             [ema=true] [batch_size=256]

The .npz holds ``samples``: uint8 N x C x H x W in 0..255 for images, float32 N x 2 for 2-D
data; ``labels`` too when the model is conditional.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from gan_lab.errors import UserError

USAGE = "usage: python -m gan_lab.sample ckpt=<file> n=<N> out=<file.npz> [grid=<file.png>] [seed=<s>] [ema=true|false] [batch_size=<B>]"


def parse_args(argv: list[str], required: tuple[str, ...], defaults: dict) -> dict:
    """key=value arguments, Hydra style, with a one-line error for anything unknown."""
    args = dict(defaults)
    for item in argv:
        if "=" not in item:
            raise UserError(f"expected key=value, got '{item}'")
        key, value = item.split("=", 1)
        if key not in defaults and key not in required:
            raise UserError(f"unknown argument '{key}'; known: {', '.join([*required, *defaults])}")
        args[key] = value
    missing = [k for k in required if k not in args]
    if missing:
        raise UserError(f"missing argument(s): {', '.join(missing)}")
    return args


def load_module(path: str):
    """Rebuild the trained module from a checkpoint alone (its config and data info ride along)."""
    from omegaconf import OmegaConf

    from gan_lab.models.base import data_info_from_dict
    from gan_lab.train import build_module, load_checkpoint_file

    ckpt = load_checkpoint_file(path)
    meta = ckpt.get("gan_lab")
    if not meta or "config" not in meta:
        raise UserError(f"{path} is not a gan_lab training checkpoint")
    cfg = OmegaConf.create(meta["config"])
    info = data_info_from_dict(meta["data_info"])
    module = build_module(cfg, info)
    module.load_state_dict(ckpt["state_dict"])
    module.g_step = int(meta.get("g_step", 0))
    module.eval()
    return module, cfg


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def generate(module, n: int, seed: int, batch_size: int, use_ema: bool):
    """n samples (and labels, or None) drawn with a seeded generator: same seed, same samples."""
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        z = torch.randn(b, module.latent_dim, generator=gen)
        y = module.sample_labels(b, generator=gen)
        xs.append(module.sample(z, y, use_ema=use_ema))
        if y is not None:
            ys.append(y)
    return torch.cat(xs), (torch.cat(ys) if ys else None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        args = parse_args(argv, ("ckpt", "n", "out"), {"grid": None, "seed": "0", "ema": "true", "batch_size": "256"})
        n = int(args["n"])
        if n <= 0:
            raise UserError("n must be a positive integer")
        module, _ = load_module(args["ckpt"])
        samples, labels = generate(
            module, n, int(args["seed"]), int(args["batch_size"]), args["ema"].lower() == "true"
        )
        info = module.data_info
        out = {"samples": to_uint8(samples) if info.kind == "image" else samples.float().numpy()}
        if labels is not None:
            out["labels"] = labels.numpy()
        np.savez_compressed(args["out"], **out)
        if args["grid"]:
            from gan_lab.callbacks.samples import save_samples_figure

            shown = samples if info.kind == "vector" else samples[:64]
            save_samples_figure(shown, args["grid"], info.kind, modes=info.modes)
        print(f"wrote {n} samples to {args['out']}" + (f" and a grid to {args['grid']}" if args["grid"] else ""))
        return 0
    except UserError as err:
        print(f"gan_lab.sample: error: {err}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
