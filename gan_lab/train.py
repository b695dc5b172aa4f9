"""The training entry point: ``python -m gan_lab [hydra overrides]`` (also ``gan-lab``).

Order of work: save the config, check every input a user can get wrong (data, image size,
checkpoint, trainer options), and only then build the trainer and train. A run refused by those
checks leaves no run directory behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import warnings
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from gan_lab import checkpoint as ckpt_io
from gan_lab.app import CONFIG_DIR, ensure_console, instantiate, log, one_line
from gan_lab.errors import NonFiniteError, UserError

# The run directory given on the command line existed before this call (then a refused run must
# not remove it); set by main() before Hydra creates directories.
_RUN_DIR_PREEXISTED: bool | None = None


def summary_line(cfg: DictConfig) -> str:
    """The run's choices on one line (the full config goes to config.yaml)."""
    choices = {}
    try:
        from hydra.core.hydra_config import HydraConfig

        choices = dict(HydraConfig.get().runtime.choices)
    except ValueError:  # composed outside a Hydra app (tests)
        pass
    groups = ("model", "loss", "data", "accelerator", "logger", "callbacks", "experiment")
    parts = [f"{g}={choices[g]}" for g in groups if choices.get(g) not in (None, "null")]
    if cfg.get("metrics"):
        parts.append(f"metrics=[{','.join(cfg.metrics)}]")
    parts += [f"seed={cfg.seed}", f"trainer.max_steps={cfg.trainer.max_steps}"]
    return " ".join(parts)


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


def trainer_kwargs(cfg: DictConfig) -> dict:
    """``trainer.*`` minus the lab's own keys, each checked against Lightning's Trainer."""
    import inspect

    import lightning as L

    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    for lab_key in ("max_steps", "log_every_n_steps"):
        kwargs.pop(lab_key, None)
    known = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for key in kwargs:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, sorted(known | {"max_steps", "log_every_n_steps"}), n=1)
            hint = f"; did you mean trainer.{close[0]}?" if close else ""
            raise UserError(f"unknown trainer option trainer.{key}{hint}")
    return kwargs


def build_trainer(cfg: DictConfig, run_dir: str, callbacks: list, loggers: list):
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    kwargs = trainer_kwargs(cfg)
    acc = OmegaConf.to_container(cfg.accelerator, resolve=True)
    strategy = acc.pop("strategy", "auto")
    if isinstance(strategy, dict):
        strategy = instantiate(strategy, "accelerator.strategy")
    try:
        return L.Trainer(
            default_root_dir=run_dir,
            max_steps=-1,  # the module stops itself after cfg.trainer.max_steps steps
            max_epochs=-1,
            logger=loggers or False,
            callbacks=callbacks,
            enable_progress_bar=False,  # StepProgress shows steps instead of batches
            enable_checkpointing=False,  # GANCheckpoint writes atomically, named by step
            enable_model_summary=False,  # one line of parameter counts instead (describe_networks)
            log_every_n_steps=1,  # the lab logs itself (trainer.log_every_n_steps); this only
            # silences Lightning's warning about short epochs
            num_sanity_val_steps=0,
            strategy=strategy,
            **{**acc, **kwargs},  # trainer.num_nodes=4 overrides the accelerator's 1
        )
    except (MisconfigurationException, ValueError, TypeError) as err:  # e.g. trainer.precision=12-bits
        raise UserError(one_line(str(err))) from None


class RunStopped(Exception):
    """SIGTERM/SIGINT stopped the run after a checkpoint was written."""

    def __init__(self, signame: str, step: int, run_dir: str):
        super().__init__(f"stopped by {signame} at step {step}; checkpoint written, "
                         f"continue with: python -m gan_lab resume=auto run_dir={run_dir} "
                         f"(its config.yaml is reused; add overrides to change it)")
        self.exit_code = 143 if signame == "SIGTERM" else 130


def resolve_resume(cfg: DictConfig, run_dir: str) -> tuple[str | None, dict | None]:
    """The checkpoint to resume from: ``ckpt_path=<file>``, or with ``resume=auto`` the newest
    checkpoint of the run directory (none yet: a fresh start). Returns (path, loaded dict)."""
    resume, ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    if resume in (None, False, "none", "null"):
        return (ckpt_path, ckpt_io.read(ckpt_path)) if ckpt_path else (None, None)
    if resume != "auto":
        raise UserError(f"resume must be auto or null, got {resume!r}; use ckpt_path=<file> for a given checkpoint")
    if ckpt_path:
        raise UserError("set either resume=auto or ckpt_path=<file>, not both")
    for path in ckpt_io.find_checkpoints(run_dir):
        try:
            return path, ckpt_io.read(path)
        except UserError as err:  # an interrupted Lightning hpc save, say: try the next one
            log.warning(f"gan_lab: warning: skipping {err}")
    log.info(f"resume=auto: no checkpoint in {run_dir} yet, starting from step 0")
    return None, None


def describe_networks(module) -> str:
    counts = [f"{name} {sum(p.numel() for p in net.parameters()) / 1e6:.3g}M" for name, net in module.nets.items()]
    return "networks: " + ", ".join(counts) + " parameters"


def build_metrics_callback(cfg: DictConfig, datamodule):
    from gan_lab.callbacks.metrics import MetricsCallback
    from gan_lab.metrics.lab import build_lab_evaluator

    callback = MetricsCallback(
        lambda: build_lab_evaluator(cfg.metrics, cfg.get("feature"), cfg.eval, datamodule,
                                    keys={"num_samples": "eval.num_samples", "num_real": "eval.num_real"}),
        cfg.eval.every_n_steps, cfg.eval.use_ema, cfg.eval.seed,
    )
    if not isinstance(cfg.accelerator.get("strategy"), DictConfig):  # single process
        callback.build()  # missing weights, bad metric choices: fail before the trainer
    return callback


def run(cfg: DictConfig) -> dict:
    """Train once with a composed config. Returns the last logged metrics."""
    import logging

    import lightning as L

    # Lightning prints device and tips at INFO through its own handler; the lab prints its own lines.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    # A deprecation inside Lightning itself (torch's pytree API), not something a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    run_dir = os.path.abspath(cfg.run_dir)
    check_run_dir(run_dir)
    rank0 = int(os.environ.get("LOCAL_RANK", 0)) == 0
    if rank0:
        with open(os.path.join(run_dir, "config.yaml"), "w") as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))
        if cfg.get("print_config", True):
            log.info(f"gan_lab: {summary_line(cfg)}")
            log.info(f"run directory: {run_dir} (full config: config.yaml; print_config=false hides these lines)")

    if cfg.get("num_threads"):
        from gan_lab import checks

        torch.set_num_threads(checks.integer(cfg.num_threads, "num_threads", minimum=1))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path, ckpt = resolve_resume(cfg, run_dir)

    datamodule = instantiate(cfg.data, "data", _convert_="all")
    info = datamodule.info  # loads (and validates) the data now, before any training
    datamodule.labeled_mask  # noqa: B018 - a semi-supervised subset that cannot be drawn fails now
    module = ckpt_io.build_module(cfg, info)
    resumed_step = None
    if ckpt is not None:
        ckpt_io.check_matches(ckpt, module, ckpt_path)
        resumed_step = ckpt_io.step_of(ckpt["gan_lab"])
        del ckpt
        log.info(f"resuming from {ckpt_path} at step {resumed_step}")
        if resumed_step >= module.max_steps:
            log.info(f"that checkpoint is at step {resumed_step} >= trainer.max_steps={module.max_steps}: "
                     "nothing to train; raise trainer.max_steps to continue")

    callbacks = [instantiate(c, "callbacks") for c in (cfg.get("callbacks") or {}).values() if c]
    if cfg.get("metrics"):
        callbacks.append(build_metrics_callback(cfg, datamodule))
    loggers = [instantiate(lg, "logger") for lg in (cfg.get("logger") or {}).values() if lg]
    trainer = build_trainer(cfg, run_dir, callbacks, loggers)
    if resumed_step is not None:
        for lg in loggers:
            if hasattr(lg, "truncate_after"):
                lg.truncate_after(resumed_step)
    from gan_lab.loggers import is_wandb

    for lg in loggers:
        if is_wandb(lg):  # the config of the run, on its W&B page
            lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if rank0 and cfg.get("print_config", True):
        log.info(f"{describe_networks(module)}; data {info.name}: {len(datamodule.dataset)} training samples "
                 f"({info.modality} {'x'.join(map(str, info.shape))}); {trainer.num_devices} "
                 f"{trainer.accelerator.__class__.__name__.replace('Accelerator', '').lower()} device(s), "
                 f"precision {trainer.precision}")
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from gan_lab.callbacks.checkpoint import stopped_by

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
        signame = stopped_by(trainer)
        if signame:
            raise RunStopped(signame, module.step, run_dir)
        log_checkpoint_artifact(cfg, loggers)
    except SIGTERMException:
        # Lightning also raises this between batches (start of a batch, end of an epoch) when the
        # signal came after the checkpoint callback's last look: save here, so a stop always
        # leaves a checkpoint of the last whole batch
        from gan_lab.callbacks.checkpoint import GANCheckpoint

        for cb in trainer.callbacks:
            if isinstance(cb, GANCheckpoint) and cb.stopped_by is None:
                cb.stopped_by = "SIGTERM"
                cb.save(trainer, module, periodic=False)
        raise RunStopped("SIGTERM", module.step, run_dir) from None
    finally:
        finish_wandb(loggers)
        close_process_group()
    if trainer.is_global_zero:
        log.info(end_message(cfg, module, run_dir))
    return dict(module.last_metrics)


_RAN_DISTRIBUTED = False  # this process took part in a process group (see exit_after_distributed_run)


def close_process_group() -> None:
    """Destroy the DDP process group (gloo/NCCL) while the interpreter is fully alive."""
    global _RAN_DISTRIBUTED
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        _RAN_DISTRIBUTED = True
        torch.distributed.destroy_process_group()


def exit_after_distributed_run(code: int) -> None:
    """End a process that took part in data-parallel training without the interpreter's teardown.

    A finished DDP run aborted at exit twice in CI under load, on the glo DDP test ("terminate
    called without an active exception"), once after the process group had been destroyed; 26
    runs of the same command here (14 of them at load 3) all exited cleanly, so the cause is inferred, not
    seen: the DDP wrappers (and their reducers) still hold the C++ process group after
    ``destroy_process_group``, and a C++ thread that needs the GIL while the interpreter is
    finalizing is ended inside a noexcept frame, which aborts the process (on a child rank,
    Lightning's observer can then kill rank 0 too). Skipping the teardown removes that window.
    The same abort then hit a worker of the metrics DDP test in a fresh clone's suite (gloo
    collectives, no DDP wrapper), so the wrappers are not the whole cause; that worker now leaves
    through this function too.
    Everything the run wrote is closed by then (checkpoints are renamed into place, Lightning
    finalized the loggers, W&B is finished), so flush the log handlers and streams and leave
    with the run's status."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def end_message(cfg: DictConfig, module, run_dir: str) -> str:
    parts = [f"done: {module.name} at step {module.step}"]
    ckpt_cb = (cfg.get("callbacks") or {}).get("checkpoint")
    if ckpt_cb:
        parts.append(f"checkpoint {os.path.join(os.path.abspath(ckpt_cb.dirpath), 'last.ckpt')}")
    samples = (cfg.get("callbacks") or {}).get("samples")
    if samples:
        parts.append(f"samples {os.path.abspath(samples.dirpath)}")
    metrics = os.path.join(run_dir, "metrics.csv")
    if os.path.isfile(metrics):
        parts.append(f"metrics {metrics}")
    return "; ".join(parts)


def finish_wandb(loggers: list) -> None:
    """Close this job's W&B run, so the next job of a multirun gets a run of its own."""
    from gan_lab.loggers import is_wandb

    if any(is_wandb(lg) for lg in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def log_checkpoint_artifact(cfg: DictConfig, loggers: list) -> None:
    """``logger.wandb.log_model=true``: the final ``last.ckpt`` as a W&B model artifact."""
    from gan_lab.loggers import is_wandb

    ckpt_cb = (cfg.get("callbacks") or {}).get("checkpoint")
    for lg in loggers:
        if not is_wandb(lg) or not getattr(lg, "_log_model", False) or not ckpt_cb:
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


def remove_refused_run_dir(run_dir: str) -> None:
    """A run refused before training leaves nothing behind: its run directory goes if this call
    created it and it holds only what the refused start wrote (config, Hydra's files, the log)."""
    if _RUN_DIR_PREEXISTED is not False:  # unknown (in-process call) or the user's own directory
        return
    if not os.path.isdir(run_dir):
        return
    if set(os.listdir(run_dir)) - {".hydra", "config.yaml", "train.log"}:
        return
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):  # release train.log before removing it
        if isinstance(handler, logging.FileHandler) and handler.baseFilename.startswith(run_dir):
            handler.close()
            root.removeHandler(handler)
    shutil.rmtree(run_dir, ignore_errors=True)
    parent = os.path.dirname(run_dir)
    outputs = os.path.dirname(parent)
    try:  # outputs/<date>/ (and outputs/) when this was their only run
        if os.path.basename(outputs) == "outputs" and not os.listdir(parent):
            os.rmdir(parent)
            if not os.listdir(outputs):
                os.rmdir(outputs)
    except OSError:
        pass


def run_cli(cfg: DictConfig) -> float | None:
    """:func:`run` with every expected failure turned into one line on stderr (and train.log) and
    an exit code: 2 bad input or unwritable run directory, 3 NaN/Inf (divergence=stop),
    130/143 SIGINT/SIGTERM."""
    run_dir = os.path.abspath(cfg.run_dir)
    ensure_console()

    def fail(message: str, code: int, refused: bool = False):
        log.error(f"gan_lab: error: {message}")
        if refused:
            remove_refused_run_dir(run_dir)
        sys.exit(code)

    try:
        return optimized_value(cfg, run(cfg))
    except UserError as err:
        fail(str(err), 2, refused=True)
    except NonFiniteError as err:
        ckpts = ckpt_io.find_checkpoints(run_dir)
        kept = f"; last good checkpoint: {ckpts[0]}" if ckpts else "; no checkpoint was written yet"
        fail(f"{err}{kept}", 3)
    except RunStopped as err:
        log.warning(f"gan_lab: {err}")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        fail("interrupted before training started; nothing to resume", 130)
    except OSError as err:
        if err.errno not in _DISK_ERRNOS:
            raise
        fail(f"cannot write {err.filename or 'to the run directory'}: {err.strerror} (run directory {run_dir})", 2)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    return run_cli(cfg)


# ---------------------------------------------------------------------------------------------
# The command line before Hydra sees it
# ---------------------------------------------------------------------------------------------


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def prepare_argv(argv: list[str]) -> list[str]:
    """Two conveniences Hydra cannot express in config:

    * ``run_dir=X`` also makes X Hydra's output directory, so no ``outputs/<date>/<time>/`` is
      created beside it (and ``.hydra/`` and ``train.log`` land in X);
    * ``resume=auto run_dir=X`` where X holds a previous run reuses that run's overrides
      (``X/.hydra/overrides.yaml``), with this command line's overrides on top, so the printed
      resume hint works as pasted.
    """
    global _RUN_DIR_PREEXISTED
    if "-m" in argv or "--multirun" in argv:
        return argv
    flags = [a for a in argv if a.startswith("-")]
    overrides = [a for a in argv if not a.startswith("-")]
    keys = {_key(o): o for o in overrides if "=" in o}
    run_dir = keys.get("run_dir", "").split("=", 1)[1] if "run_dir" in keys else None
    if run_dir is None:
        _RUN_DIR_PREEXISTED = False
        return argv
    _RUN_DIR_PREEXISTED = os.path.exists(run_dir)
    if keys.get("resume", "").split("=", 1)[-1] == "auto":
        saved = os.path.join(run_dir, ".hydra", "overrides.yaml")
        if os.path.isfile(saved):
            previous = [str(o) for o in OmegaConf.load(saved)]
            ours = {_key(o) for o in overrides}
            kept = [o for o in previous if _key(o) not in ours and not _key(o).startswith("hydra.")
                    and _key(o) not in ("ckpt_path",)]
            overrides = kept + overrides
    if "hydra.run.dir" not in {_key(o) for o in overrides}:
        overrides.append(f"hydra.run.dir={run_dir}")
    return flags + overrides


def main() -> None:
    sys.argv = [sys.argv[0], *prepare_argv(sys.argv[1:])]
    try:
        hydra_main()
    except SystemExit as stop:  # Hydra's exit after an error, or fail(): the status it carries
        if not _RAN_DISTRIBUTED:
            raise
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)
        exit_after_distributed_run(stop.code if isinstance(stop.code, int) else int(stop.code is not None))
    if _RAN_DISTRIBUTED:
        exit_after_distributed_run(0)


if __name__ == "__main__":
    main()
