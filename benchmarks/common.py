"""Shared helpers of the benchmark scripts (run on demand, never by the test suite).

Every script pins PyTorch to ``threads`` CPU threads (1 by default: the benchmark machines are
shared), records the machine and library versions beside its numbers, and writes its results
under ``benchmarks/results/``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from typing import Any, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def pin_threads(threads: int) -> None:
    """One knob for every thread pool a benchmark can touch."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def parse_args(argv: Iterable[str], defaults: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``key=value`` arguments: known keys fill ``defaults``; the rest are Hydra overrides."""
    args, extra = dict(defaults), []
    for a in argv:
        if "=" not in a:
            raise SystemExit(f"arguments are key=value, got {a!r}")
        k, v = a.split("=", 1)
        if k in args:
            args[k] = v
        else:
            extra.append(a)
    return args, extra


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores_on_machine": os.cpu_count(),
        "threads_used": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        # 1/5/15-minute load averages when the result was written: above the core count, other
        # processes were competing for the CPU
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "note": "CPU shared with other jobs while measured",
    }


def compose(overrides: list[str], run_dir: str):
    """A lab config for a benchmark run: no logger, no sample grids, no checkpoints."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import open_dict

    from gan_lab.app import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose("config", overrides=["logger=none", "print_config=false", *overrides])
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
        cfg.callbacks = {}
    return cfg


def quiet_lightning() -> None:
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def machine_line(m: dict[str, Any]) -> str:
    """The one-line machine note under every table."""
    return (f"Machine: {m['cpu']}, {m['threads_used']} thread(s) of {m['cores_on_machine']} cores "
            f"(shared with other jobs), torch {m['torch']}, {m['date']}.")


def pm(mean: float, se: float, n: int, digits: int) -> str:
    """``mean ± se``, or the bare value for a single seed (no spread to report)."""
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def row_cell(row: dict[str, Any], key: str, digits: int) -> str:
    """A table cell of an aggregated row: its ``(mean, se)`` over ``row["seeds"]``, "—" when absent."""
    if key not in row:
        return "—"
    mean, se = row[key]
    return pm(mean, se, len(row["seeds"]), digits)


def write_table(name: str, lines: list[str]) -> None:
    """Write ``results/<name>.md`` and print it."""
    text = "\n".join(lines) + "\n"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write(text)
    print(text, end="")


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n); 0 for one value)."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def write_json(path: str, obj: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def read_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_jsonl(path: str, obj: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
