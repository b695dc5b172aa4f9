"""Progress bars for long work outside the training loop (feature extraction, real-statistics
caching, classifier training): a tqdm bar on stderr on the main process, nothing elsewhere."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


def _main_process() -> bool:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("RANK", 0)) == 0


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


@contextmanager
def bar(total: int | None, desc: str, unit: str = "img", enabled: bool = True):
    """``with bar(n, "real features") as b: ... b.update(k)``: shows items/s as it goes."""
    if not enabled or not _main_process() or os.environ.get("GAN_LAB_NO_PROGRESS"):
        yield _Silent()
        return
    from tqdm.auto import tqdm

    progress = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                    mininterval=1.0)
    try:
        yield progress
    finally:
        progress.close()
