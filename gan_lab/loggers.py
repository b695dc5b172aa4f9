"""Loggers: the lab's own metrics CSV (one row per logged step, columns added as they appear) and
an offline-capable Weights & Biases logger."""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only


class MetricsCSVLogger(Logger):
    """Writes ``metrics.csv`` in the run directory, indexed by the lab's step.

    Values logged for the same step (the losses and, at an evaluation step, the metrics) share
    one row. On resume it keeps the rows up to the resumed step and drops any logged after it,
    so the file reads as one uninterrupted run.
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = ["step"]
        self._loaded = False

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return os.path.dirname(self.path)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass  # the resolved config is saved beside the CSV as config.yaml

    def _load_existing(self) -> None:
        self._loaded = True
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self._columns = list(reader.fieldnames or ["step"])
                self._rows = [dict(r) for r in reader]

    def truncate_after(self, step: int) -> None:
        """Forget rows logged after ``step`` (used when resuming from a checkpoint)."""
        if not self._loaded:
            self._load_existing()
        self._rows = [r for r in self._rows if int(float(r["step"])) <= step]
        self._rewrite()

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if not self._loaded:
            self._load_existing()
        row = {"step": step, **metrics}
        new_cols = [k for k in row if k not in self._columns]
        self._columns += new_cols
        if self._rows and str(self._rows[-1].get("step")) == str(step):  # same step: one row
            self._rows[-1].update(row)
            self._rewrite()
            return
        self._rows.append(row)
        if new_cols or not os.path.exists(self.path):
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self._columns).writerow(row)

    def _rewrite(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self._columns)
            writer.writeheader()
            writer.writerows(self._rows)
        os.replace(tmp, self.path)


def make_wandb_logger(save_dir: str, project: str = "gan_lab", name: str | None = None,
                      group: str | None = None, tags: list | None = None, log_model: bool = False,
                      offline: bool | None = None, **kwargs):
    """A W&B logger that works without network: offline unless an API key is available.

    Offline runs are stored under ``<save_dir>/wandb`` and can be uploaded later with
    ``wandb sync <that dir>``.
    """
    from lightning.pytorch.loggers import WandbLogger

    from gan_lab.sweep import wandb_group_and_name

    # in a Hydra multirun: one W&B run per job, grouped by the sweep (its directory)
    sweep_group, job_name = wandb_group_and_name()
    group = group or sweep_group
    name = name or job_name
    if offline is None:
        has_key = bool(os.environ.get("WANDB_API_KEY")) or os.path.exists(
            os.path.expanduser("~/.netrc")
        ) and "api.wandb.ai" in open(os.path.expanduser("~/.netrc")).read()
        offline = os.environ.get("WANDB_MODE") in ("offline", "disabled") or not has_key
    return WandbLogger(
        save_dir=save_dir, project=project, name=name, group=group, tags=list(tags or []),
        log_model=log_model, offline=offline, **kwargs,
    )


def is_wandb(logger) -> bool:
    """Whether ``logger`` is Lightning's W&B logger (without importing wandb when it is not)."""
    try:
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:  # pragma: no cover
        return False
    return isinstance(logger, WandbLogger)
