"""What every command-line entry point shares: messages, one-line errors and config composition.

Messages go through the ``gan_lab`` logger: under ``python -m gan_lab`` Hydra's job logging
(``conf/hydra/job_logging/gan_lab.yaml``) prints them plainly (warnings and errors on stderr) and
keeps a timed copy in ``<run_dir>/train.log``; the sample and evaluate commands print only.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable, Sequence

from gan_lab.errors import UserError

log = logging.getLogger("gan_lab")
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


class BelowWarning(logging.Filter):
    """Lets through records below WARNING (for the stdout handler; stderr takes the rest)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` / ``sys.stderr`` is when a record is emitted (so a
    redirected or captured stream is honoured)."""

    def __init__(self, which: str) -> None:
        super().__init__()
        self.which = which

    @property
    def stream(self):
        return getattr(sys, self.which)

    @stream.setter
    def stream(self, value) -> None:
        pass


def ensure_console() -> None:
    """Plain console handlers for the ``gan_lab`` logger outside a Hydra app (the sample and
    evaluate commands, in-process calls); under ``python -m gan_lab`` Hydra's job logging
    (console and train.log) is used instead."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return
    except ImportError:  # pragma: no cover
        pass
    if any(isinstance(h, ConsoleHandler) for h in log.handlers):
        return
    out = ConsoleHandler("stdout")
    out.addFilter(BelowWarning())
    err = ConsoleHandler("stderr")
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def compose(config_name: str, overrides: Sequence[str]):
    """Compose ``conf/<config_name>.yaml`` with command-line style overrides; Hydra's errors
    (an unknown option or key, a bad value) become one line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return hydra_compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(explain_missing_option(one_line(str(err)))) from None


def explain_missing_option(message: str) -> str:
    """Hydra's "Could not load 'metrics/fdi'" names no alternatives for list options: add the
    group's options (and leave Hydra's config search path out)."""
    import re

    match = re.search(r"Could not (?:load|find) '([\w/]+)/([^']+)'", message)
    if not match:
        return message
    group, option = match.groups()
    folder = os.path.join(CONFIG_DIR, group)
    if not os.path.isdir(folder):
        return message
    options = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))
    return f"unknown {group} option '{option}'; choose from: {', '.join(options)}"


def instantiate(cfg: Any, what: str, **kwargs) -> Any:
    """``hydra.utils.instantiate`` with the user's mistakes as one line: a UserError raised by
    the target comes through as is, Hydra's wrapping is dropped."""
    import hydra
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(f"{what}: {one_line(str(cause or err))}") from None


def split_data_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """``data.<key>=<v>`` items (applied to the checkpoint's data config) and the rest."""
    data = [a for a in argv if a.lstrip("+").startswith("data.")]
    return [a for a in argv if a not in data], [a.lstrip("+")[len("data."):] for a in data]


def data_config(run_cfg, data_overrides: list[str]):
    """The run's data config with ``data.*`` overrides, typed as on Hydra's command line."""
    from omegaconf import OmegaConf

    base = OmegaConf.create(OmegaConf.to_container(run_cfg.data, resolve=True))
    try:
        return OmegaConf.merge(base, OmegaConf.from_dotlist(data_overrides))
    except Exception as err:  # malformed dotlist
        raise UserError(f"bad data override {data_overrides}: {err}") from None


def require(cfg: Any, *keys: str) -> None:
    """A one-line error for the first of ``keys`` the command line left unset (``???`` or null)."""
    from omegaconf import OmegaConf

    for key in keys:
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) is None:
            raise UserError(f"missing argument: {key}=...")


def output_file(path: Any, key: str, extensions: tuple[str, ...], what: str) -> str:
    """``path`` as a string once it ends in one of ``extensions`` and its folder exists (one line
    otherwise; ``what`` says what each extension holds)."""
    path = str(path)
    if os.path.splitext(path)[1].lower() not in extensions:
        raise UserError(f"{key}={path}: {what}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{key}={path}: folder {folder} does not exist")
    return path


def parse_seeds(value: Any, key: str, minimum: int = 1) -> list[int]:
    """Seeds from the command line: ``[1,2,3]``, ``1,2,3``, ``0-7`` (inclusive) or one number;
    at least ``minimum`` of them."""
    from omegaconf import ListConfig

    items: list[Any]
    if isinstance(value, (list, tuple, ListConfig)):
        items = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        text = str(value).strip()
        if "-" in text.lstrip("-") and "," not in text:
            lo, hi = text.split("-", 1)
            if not (lo.strip().isdigit() and hi.strip().isdigit()) or int(lo) > int(hi):
                raise UserError(f"{key}={value}: give seeds as a list [1,2,3], 1,2,3 or a range like 0-7")
            items = list(range(int(lo), int(hi) + 1))
        else:
            items = [t.strip() for t in text.split(",") if t.strip()]
    seeds = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise ValueError
            seeds.append(int(item))
        except (TypeError, ValueError):
            raise UserError(f"{key}={value}: seeds are integers, got {item!r}") from None
    if len(seeds) < minimum:
        raise UserError(f"{key}={value}: give at least {minimum} seed{'s' if minimum > 1 else ''}")
    return seeds


def one_line(text: str) -> str:
    """A multi-line library message as one line."""
    return " ".join(text.replace("\t", " ").split())


def cli_main(prog: str, usage: str, body: Callable[[list[str]], int], argv: list[str] | None) -> int:
    """Run a command's ``body(argv)``; ``-h`` prints ``usage``; a :class:`UserError` is one line
    on stderr and status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        return 0
    ensure_console()
    try:
        return body(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        print(usage.splitlines()[0], file=sys.stderr, flush=True)
        return 2
