"""Checkpoints: reading them, checking they fit a run, and rebuilding a model from one alone.

``train`` (resume), ``sample`` and ``evaluate`` all come through here, so a checkpoint is refused
the same way everywhere: one line naming what it was written by and what the run is.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from gan_lab.data.info import DataInfo
from gan_lab.engine.spec import RunOptions
from gan_lab.errors import UserError


def read(path: str) -> dict:
    """The checkpoint at ``path`` (a one-line error when missing or unreadable)."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        # our checkpoints carry RNG states and the config, which need full unpickling
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None


def lab_meta(ckpt: dict, path: str) -> dict:
    """The gan_lab part of a checkpoint; a one-line error for anything else."""
    meta = ckpt.get("gan_lab")
    if not isinstance(meta, dict) or "state_dict" not in ckpt or "config" not in meta:
        raise UserError(f"{path} is not a gan_lab training checkpoint")
    if meta.get("format") != 2:
        raise UserError(f"{path} was written by an older gan_lab (checkpoint format {meta.get('format', 1)}); "
                        "retrain with this version")
    return meta


def describe(meta: dict) -> str:
    info = meta.get("data_info", {})
    shape = "x".join(map(str, info.get("shape", [])))
    return f"model={meta.get('model')} data={info.get('name')} ({shape})"


def step_of(meta: dict) -> int:
    return int((meta.get("counters") or {}).get("step", 0))


def check_matches(ckpt: dict, module, path: str) -> None:
    """Refuse, before training, a checkpoint written by another model, for other data, or
    for networks of other sizes."""
    meta = lab_meta(ckpt, path)
    ours = {"model": module.name, **module.lab_meta}
    if meta.get("model") != module.name:
        raise UserError(f"checkpoint {path} was written by {describe(meta)}; this run is {describe(ours)}")
    theirs, mine = meta.get("data_info", {}), module.data_info.to_dict()
    for key in ("name", "modality", "shape", "num_classes", "pairing", "shape_b"):
        if theirs.get(key) != mine.get(key):
            raise UserError(
                f"checkpoint {path} was written for other data: {describe(meta)}, this run is {describe(ours)} "
                f"({key}: {theirs.get(key)} vs {mine.get(key)}); continue it with the data it was trained on"
            )
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
        raise UserError(
            f"checkpoint {path} ({describe(meta)}) does not fit this run's networks "
            f"({describe(ours)}); first differences: {diff}"
        )


def find_checkpoints(run_dir: str) -> list[str]:
    """Checkpoints of a run directory, newest first: ``checkpoints/*.ckpt`` and the
    ``hpc_ckpt_*.ckpt`` that Lightning writes on SLURM's requeue signal. Ties (a periodic
    checkpoint and ``last.ckpt`` written in the same second) go to ``last.ckpt``."""
    paths = glob.glob(os.path.join(run_dir, "checkpoints", "*.ckpt"))
    paths += glob.glob(os.path.join(run_dir, "hpc_ckpt_*.ckpt"))
    return sorted(paths, key=lambda p: (os.path.getmtime(p), os.path.basename(p) == "last.ckpt"), reverse=True)


def run_options(cfg: DictConfig, info: DataInfo) -> RunOptions:
    """The run-level settings a model gets from a run config."""
    from gan_lab import checks

    trainer = cfg.trainer
    return RunOptions(
        max_steps=checks.integer(trainer.max_steps, "trainer.max_steps", minimum=1),
        log_every=checks.integer(trainer.log_every_n_steps, "trainer.log_every_n_steps", minimum=1),
        divergence=cfg.get("divergence", "stop"),
        compile=checks.boolean(cfg.get("compile", False), "compile"),
        compile_backend=cfg.get("compile_backend", "inductor"),
        channels_last=checks.boolean(cfg.get("channels_last", False), "channels_last"),
        augment=OmegaConf.to_container(cfg.augment, resolve=True) if cfg.get("augment") is not None else None,
        meta={"config": OmegaConf.to_container(cfg, resolve=True), "data_info": info.to_dict()},
    )


def build_module(cfg: DictConfig, info: DataInfo) -> Any:
    """The model of a run config for data ``info``: ``model._target_`` instantiated with the
    data info and the run options (data info goes in after instantiation: Hydra would turn the
    dataclass into a dict)."""
    from hydra.errors import InstantiationException

    try:
        factory = hydra.utils.instantiate(cfg.model, _partial_=True, _convert_="all")
        return factory(data_info=info, run=run_options(cfg, info))
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(" ".join(str(err).split())) from None
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        # a key the model does not take, e.g. +model.widht=3
        raise UserError(f"model={cfg.model.get('name')}: {err}") from None


def load_module(path: str):
    """Rebuild the trained module from a checkpoint alone (its config and data info ride along).
    Returns ``(module, run config, checkpoint meta)``; the module is in eval mode."""
    ckpt = read(path)
    meta = lab_meta(ckpt, path)
    cfg = OmegaConf.create(meta["config"])
    info = DataInfo.from_dict(meta["data_info"])
    module = build_module(cfg, info)
    module.load_state_dict(ckpt["state_dict"])
    module.load_counters(meta)
    module.load_family_state(meta.get("family_state") or {})
    module.eval()
    return module, cfg, meta
