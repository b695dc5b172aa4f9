"""The training entry point: ``python -m gan_lab [hydra overrides]``.

Order of work: print and save the config, check every input a user can get wrong (data,
image size, checkpoint), and only then build the trainer and train.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
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
        divergence=cfg.get("divergence", "stop"),
        compile=bool(cfg.get("compile", False)),
        compile_backend=cfg.get("compile_backend", "inductor"),
        channels_last=bool(cfg.get("channels_last", False)),
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
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
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
            **{**acc, **trainer_kwargs},  # trainer.num_nodes=4 overrides the accelerator's 1
        )
    except (MisconfigurationException, ValueError) as err:  # e.g. trainer.precision=12-bits
        raise UserError(" ".join(str(err).split())) from None


class RunStopped(Exception):
    """SIGTERM/SIGINT stopped the run after a checkpoint was written."""

    def __init__(self, signame: str, step: int, run_dir: str):
        super().__init__(f"stopped by {signame} at step {step}; checkpoint written, "
                         f"continue with: resume=auto run_dir={run_dir}")
        self.exit_code = 143 if signame == "SIGTERM" else 130


def check_run_dir(run_dir: str) -> None:
    """Fail with one line when the run directory cannot be created or written."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, ".gan_lab_write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise UserError(f"cannot write to run directory {run_dir}: {err.strerror or err}") from None


def resolve_resume(cfg: DictConfig, run_dir: str) -> tuple[str | None, dict | None]:
    """The checkpoint to resume from: ``ckpt_path=<file>``, or with ``resume=auto`` the newest
    checkpoint of the run directory (none yet: a fresh start). Returns (path, loaded dict)."""
    from gan_lab.callbacks.checkpoint import find_checkpoints

    resume, ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    if resume in (None, False, "none", "null"):
        return (ckpt_path, load_checkpoint_file(ckpt_path)) if ckpt_path else (None, None)
    if resume != "auto":
        raise UserError(f"resume must be auto or null, got {resume!r}; use ckpt_path=<file> for a given checkpoint")
    if ckpt_path:
        raise UserError("set either resume=auto or ckpt_path=<file>, not both")
    for path in find_checkpoints(run_dir):
        try:
            return path, load_checkpoint_file(path)
        except UserError as err:  # an interrupted Lightning hpc save, say: try the next one
            print(f"gan_lab: warning: skipping {err}", file=sys.stderr, flush=True)
    print(f"gan_lab: resume=auto: no checkpoint in {run_dir} yet, starting from step 0", flush=True)
    return None, None


def run(cfg: DictConfig) -> dict:
    """Train once with a composed config. Returns the last logged metrics."""
    import logging

    import lightning as L

    # Lightning prints its messages through its own handler; Hydra's root handler would
    # print every one of them a second time.
    logging.getLogger("lightning.pytorch").propagate = False
    # A deprecation inside Lightning itself (torch's pytree API), not something a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    run_dir = os.path.abspath(cfg.run_dir)
    check_run_dir(run_dir)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if local_rank == 0 and cfg.get("print_config", True):
        print_config(cfg)
    if local_rank == 0:
        with open(os.path.join(run_dir, "config.yaml"), "w") as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))

    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path, ckpt = resolve_resume(cfg, run_dir)

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    info = datamodule.info  # loads (and validates) the data now, before any training
    module = build_module(cfg, info)
    resumed_step = None
    if ckpt is not None:
        check_checkpoint_matches(ckpt, module, ckpt_path)
        resumed_step = int(ckpt["gan_lab"]["g_step"])
        del ckpt

    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if cfg.get("metrics"):
        # built now so that missing weights or a bad metric choice stop the run before training
        from gan_lab.callbacks.metrics import MetricsCallback, build_lab_evaluator

        metrics_cb = MetricsCallback(
            lambda: build_lab_evaluator(cfg.metrics, cfg.get("feature"), cfg.eval, datamodule),
            cfg.eval.every_n_steps, cfg.eval.use_ema, cfg.eval.seed,
        )
        if not isinstance(cfg.accelerator.get("strategy"), DictConfig):  # single process
            metrics_cb.build()  # missing weights, bad metric choices: fail before the trainer
        callbacks.append(metrics_cb)
    loggers = [hydra.utils.instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg]
    trainer = build_trainer(cfg, run_dir, callbacks, loggers)
    if resumed_step is not None:
        for lg in loggers:
            if hasattr(lg, "truncate_after"):
                lg.truncate_after(resumed_step)
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":  # the config of the run, on its W&B page
            lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from gan_lab.callbacks.checkpoint import stopped_by

    try:
        # our own checkpoints carry RNG states and the config, which need full unpickling
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
        signame = stopped_by(trainer)
        if signame:
            raise RunStopped(signame, module.g_step, run_dir)
        log_checkpoint_artifact(cfg, loggers)
    except SIGTERMException:
        raise RunStopped("SIGTERM", module.g_step, run_dir) from None
    finally:
        finish_wandb(loggers)
    return dict(module.last_metrics)


def finish_wandb(loggers: list) -> None:
    """Close this job's W&B run, so the next job of a multirun gets a run of its own."""
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def log_checkpoint_artifact(cfg: DictConfig, loggers: list) -> None:
    """``logger.wandb.log_model=true``: the final ``last.ckpt`` as a W&B model artifact."""
    ckpt_cb = (cfg.get("callbacks") or {}).get("checkpoint")
    for lg in loggers:
        if type(lg).__name__ != "WandbLogger" or not getattr(lg, "_log_model", False) or not ckpt_cb:
            continue
        path = os.path.join(ckpt_cb.dirpath, "last.ckpt")
        if os.path.isfile(path):
            import wandb

            artifact = wandb.Artifact(name=f"model-{lg.experiment.id}", type="model")
            artifact.add_file(path)
            lg.experiment.log_artifact(artifact, aliases=["latest"])


# errno values that mean "this directory cannot take the run's files": one line, no traceback
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}


def optimized_value(cfg: DictConfig, last_logged: dict) -> float | None:
    """The value of ``optimized_metric`` at the end of the run (what sweepers minimise)."""
    from gan_lab.sweep import final_metrics

    name = cfg.get("optimized_metric")
    if not name:
        return None
    metrics = final_metrics(os.path.abspath(cfg.run_dir), last_logged)
    if name not in metrics:
        raise UserError(f"optimized_metric={name} was never logged by this run; logged: {', '.join(sorted(metrics)) or 'nothing'}")
    return metrics[name]


def run_cli(cfg: DictConfig) -> float | None:
    """:func:`run` with every expected failure turned into one line on stderr and an exit code:
    2 bad input or unwritable run directory, 3 NaN/Inf (divergence=stop), 130/143 SIGINT/SIGTERM."""
    from gan_lab.callbacks.checkpoint import find_checkpoints
    from gan_lab.models.base import NonFiniteError

    def fail(message: str, code: int):
        print(f"gan_lab: error: {message}", file=sys.stderr, flush=True)
        sys.exit(code)

    try:
        return optimized_value(cfg, run(cfg))
    except UserError as err:
        fail(str(err), 2)
    except NonFiniteError as err:
        ckpts = find_checkpoints(os.path.abspath(cfg.run_dir))
        kept = f"; last good checkpoint: {ckpts[0]}" if ckpts else "; no checkpoint was written yet"
        fail(f"{err}{kept}", 3)
    except RunStopped as err:
        print(f"gan_lab: {err}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        fail("interrupted before training started; nothing to resume", 130)
    except OSError as err:
        if err.errno not in _DISK_ERRNOS:
            raise
        fail(f"cannot write {err.filename or 'to the run directory'}: {err.strerror} (run directory {os.path.abspath(cfg.run_dir)})", 2)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run_cli(cfg)


if __name__ == "__main__":
    main()
