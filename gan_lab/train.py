"""The training entry point: ``python -m gan_lab [hydra overrides]``.

Order of work: print and save the config, check every input a user can get wrong (data,
image size, checkpoint), and only then build the trainer and train.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from gan_lab.errors import UserError

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def print_config(cfg: DictConfig) -> None:
    """The resolved config as a tree, one panel per top-level group."""
    try:
        import rich
        import rich.syntax
        import rich.tree

        tree = rich.tree.Tree("config", guide_style="dim")
        for key, value in cfg.items():
            branch = tree.add(str(key))
            text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
            branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
        rich.print(tree)
    except ImportError:
        print(OmegaConf.to_yaml(cfg))


def build_module(cfg: DictConfig, info) -> Any:
    from gan_lab.models.base import data_info_to_dict

    # data_info goes in after instantiation: Hydra would turn the dataclass into a dict.
    factory = hydra.utils.instantiate(cfg.model, _partial_=True, _convert_="all")
    module = factory(
        data_info=info,
        loss=cfg.loss.name,
        max_steps=int(cfg.trainer.max_steps),
        log_every=int(cfg.trainer.log_every_n_steps),
    )
    module.lab_meta = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "data_info": data_info_to_dict(info),
    }
    return module


def load_checkpoint_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None


def describe(meta: dict) -> str:
    cfg = meta.get("config", {})
    info = meta.get("data_info", {})
    shape = "x".join(map(str, info.get("shape", [])))
    return f"model={meta.get('model')} data={info.get('name')} ({shape})"


def check_checkpoint_matches(ckpt: dict, module, path: str) -> None:
    """Refuse, before training, a checkpoint written by another model or for other data."""
    meta = ckpt.get("gan_lab")
    if meta is None or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a gan_lab training checkpoint")
    ours = {"model": module.name, **module.lab_meta}
    if meta.get("model") != module.name:
        raise UserError(f"checkpoint {path} was written by {describe(meta)}; this run is {describe(ours)}")
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
        raise UserError(
            f"checkpoint {path} ({describe(meta)}) does not fit this run's networks "
            f"({describe(ours)}); first differences: {diff}"
        )


def build_trainer(cfg: DictConfig, run_dir: str, callbacks: list, loggers: list):
    import lightning as L

    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    for lab_key in ("max_steps", "log_every_n_steps"):
        trainer_kwargs.pop(lab_key, None)
    acc = OmegaConf.to_container(cfg.accelerator, resolve=True)
    strategy = acc.pop("strategy", "auto")
    if isinstance(strategy, dict):
        strategy = hydra.utils.instantiate(strategy)
    return L.Trainer(
        default_root_dir=run_dir,
        max_steps=-1,  # the module stops itself after cfg.trainer.max_steps G updates
        max_epochs=-1,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=False,  # StepProgress shows G steps instead of batches
        enable_checkpointing=False,  # GANCheckpoint writes atomically, named by G step
        num_sanity_val_steps=0,
        strategy=strategy,
        **acc,
        **trainer_kwargs,
    )


def run(cfg: DictConfig) -> dict:
    """Train once with a composed config. Returns the last logged metrics."""
    import lightning as L

    run_dir = os.path.abspath(cfg.run_dir)
    os.makedirs(run_dir, exist_ok=True)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if local_rank == 0 and cfg.get("print_config", True):
        print_config(cfg)
    if local_rank == 0:
        with open(os.path.join(run_dir, "config.yaml"), "w") as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt = load_checkpoint_file(cfg.ckpt_path) if cfg.get("ckpt_path") else None

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    info = datamodule.info  # loads (and validates) the data now, before any training
    module = build_module(cfg, info)
    resumed_step = None
    if ckpt is not None:
        check_checkpoint_matches(ckpt, module, cfg.ckpt_path)
        resumed_step = int(ckpt["gan_lab"]["g_step"])
        del ckpt

    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [hydra.utils.instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg]
    trainer = build_trainer(cfg, run_dir, callbacks, loggers)
    if resumed_step is not None:
        for lg in loggers:
            if hasattr(lg, "truncate_after"):
                lg.truncate_after(resumed_step)
    # our own checkpoints carry RNG states and the config, which need full unpickling
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=False)
    return dict(module.last_metrics)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except UserError as err:
        print(f"gan_lab: error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
