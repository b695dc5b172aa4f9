"""Sweeps: the final metrics of a run, and a summary table across the jobs of a multirun.

``conf/config.yaml`` registers :class:`SweepSummary` as a Hydra callback, so every
``python -m gan_lab -m ...`` ends with a table of each job's final metrics on stdout and the
same table as ``summary.csv`` in the sweep directory. It reads what the jobs left on disk
(``metrics.csv`` and ``.hydra/overrides.yaml``), so it works the same with the basic, the
submitit-local and the submitit-SLURM launchers.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def read_final_metrics(path: str) -> dict[str, float]:
    """The last value of every column of a ``metrics.csv`` (columns logged at different steps,
    such as FID every few thousand steps, each keep their own last non-empty value)."""
    if not os.path.isfile(path):
        return {}
    out: dict[str, float] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key and value not in (None, ""):
                    try:
                        out[key] = float(value)
                    except ValueError:
                        pass
    return out


def final_metrics(run_dir: str, last_logged: dict | None = None) -> dict[str, float]:
    """A run's final metrics: ``metrics.csv`` overlaid with what the module logged last."""
    metrics = read_final_metrics(os.path.join(run_dir, "metrics.csv"))
    metrics.update({k: float(v) for k, v in (last_logged or {}).items()})
    return metrics


def _job_overrides(job_dir: str) -> list[str]:
    path = os.path.join(job_dir, ".hydra", "overrides.yaml")
    if not os.path.isfile(path):
        return []
    return [str(o) for o in OmegaConf.load(path)]


def summarize_sweep(sweep_dir: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row per job directory of a sweep (job number order)."""
    jobs = [d for d in os.listdir(sweep_dir) if os.path.isdir(os.path.join(sweep_dir, d))] if os.path.isdir(sweep_dir) else []
    jobs.sort(key=lambda d: (not d.isdigit(), int(d) if d.isdigit() else 0, d))
    rows, metric_cols, overrides = [], [], []
    for job in jobs:
        job_dir = os.path.join(sweep_dir, job)
        if not os.path.isdir(os.path.join(job_dir, ".hydra")):
            continue
        metrics = read_final_metrics(os.path.join(job_dir, "metrics.csv"))
        metric_cols += [k for k in metrics if k not in metric_cols]
        overrides.append(_job_overrides(job_dir))
        rows.append({"job": job, "status": "ok" if metrics else "no metrics", **metrics})
    # show what differs between jobs; overrides shared by all of them are the sweep's setting
    shared = set.intersection(*map(set, overrides)) if len(overrides) > 1 else set()
    for row, ovr in zip(rows, overrides):
        row["overrides"] = " ".join(o for o in ovr if o not in shared)
    return ["job", "overrides", "status", *metric_cols], rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.4g}"
    return "" if value is None else str(value)


def format_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


class SweepSummary(Callback):
    """At the end of a multirun: print the final metrics of every job and write ``summary.csv``."""

    def __init__(self, filename: str = "summary.csv") -> None:
        self.filename = filename

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        columns, rows = summarize_sweep(sweep_dir)
        if not rows:
            return
        path = os.path.join(sweep_dir, self.filename)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(
                {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in row.items()} for row in rows
            )
        print(f"\nsweep summary ({len(rows)} jobs, final logged values):\n{format_table(columns, rows)}\n"
              f"summary: {os.path.abspath(path)}", flush=True)


def wandb_group_and_name() -> tuple[str | None, str | None]:
    """Inside a Hydra multirun: (sweep directory as the W&B group, job name); else (None, None)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None
    if hc.mode != RunMode.MULTIRUN:
        return None, None
    group = os.path.normpath(str(hc.sweep.dir)).replace(os.sep, "/")
    name = f"{hc.job.num}" + (f" {hc.job.override_dirname}" if hc.job.override_dirname else "")
    return group, name
