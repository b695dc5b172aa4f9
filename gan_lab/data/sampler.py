"""The training order: a shuffle that can be resumed at any batch, on one process or several."""

from __future__ import annotations

from torch import Tensor
import torch
from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    """A shuffled order that can be resumed at any batch, on one process or several.

    Epoch ``e`` visits ``randperm(n)`` drawn from a generator seeded with ``(seed, e)``; process
    ``rank`` of ``num_replicas`` takes every ``num_replicas``-th index of it, and only whole
    batches are kept (``drop_last``). So the order is a pure function of ``(seed, epoch, rank)``
    and :meth:`start_at` can put the sampler at any batch without replaying the data.

    Each ``iter()`` starts the next epoch (the first one where :meth:`start_at` put it), so a
    plain loop over the loader sees a new shuffle every epoch. It subclasses
    ``DistributedSampler`` only so that Lightning keeps it under DDP instead of substituting
    its own (it shards by itself); Lightning's ``set_epoch`` calls are ignored because the
    sampler keeps its own epoch count, which also survives mid-epoch resumes.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        # DistributedSampler.__init__ needs a process group unless told the world; do not call it
        self.dataset_size, self.batch_size, self.seed = size, batch_size, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.batches_per_epoch = (size // num_replicas) // batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"{size} samples over {num_replicas} processes make no batch of {batch_size}")
        self.epoch, self._skip = 0, 0

    def start_at(self, batches_seen: int) -> None:
        """Continue after ``batches_seen`` batches (counted from the start of training)."""
        self.epoch, self._skip = divmod(int(batches_seen), self.batches_per_epoch)

    def set_epoch(self, epoch: int) -> None:  # noqa: D102 - see the class docstring
        pass

    def epoch_indices(self, epoch: int) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.dataset_size, generator=generator)
        return order[self.rank :: self.num_replicas][: self.batches_per_epoch * self.batch_size]

    def __iter__(self):
        indices = self.epoch_indices(self.epoch)[self._skip * self.batch_size :]
        self.epoch, self._skip = self.epoch + 1, 0
        return iter(indices.tolist())

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size
