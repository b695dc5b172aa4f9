"""The data module every experiment trains from, and the description of a data set.

A *source* (see :mod:`gan_lab.data.sources`) knows how to produce one training set; it is any
object with a ``load() -> (Dataset, DataInfo)`` method and, optionally, a ``prepare()`` method
that fetches files (run once, on the main process only). :class:`GANDataModule` wraps a source,
loads it lazily and only once, and serves ``(x, y)`` batches:

* ``x`` is ``float32``; images are ``(C, H, W)`` in ``[-1, 1]``, vectors ``(D,)`` raw coordinates;
* ``y`` is an ``int64`` class label (always present, so conditional models need no extra code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightning
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from gan_lab.errors import UserError

__all__ = [
    "BatchedPair",
    "DataInfo",
    "GANDataModule",
    "ResumableSampler",
    "TensorBatchDataset",
    "TensorPairDataset",
    "collate_pairs",
]


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about a data set before it is built."""

    name: str
    """Short name, e.g. ``"ring8"`` or ``"mnist_5k"``."""
    kind: str
    """``"image"`` or ``"vector"``."""
    shape: tuple[int, ...]
    """``(C, H, W)`` for images, ``(D,)`` for vectors."""
    num_classes: int
    """Number of label classes; 0 when the set has no labels (every ``y`` is then 0)."""
    modes: Tensor | None = None
    """``(K, D)`` mixture means for the synthetic Gaussian mixtures, else ``None``."""
    mode_std: float | None = None
    """Standard deviation of every mixture component, else ``None``."""

    def __post_init__(self) -> None:
        if self.kind not in ("image", "vector"):
            raise ValueError(f"DataInfo.kind must be 'image' or 'vector', got {self.kind!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind == "image" and len(self.shape) != 3:
            raise ValueError(f"an image data set needs shape (C, H, W), got {self.shape}")
        if self.kind == "vector" and len(self.shape) != 1:
            raise ValueError(f"a vector data set needs shape (D,), got {self.shape}")

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def dim(self) -> int:
        """Number of scalars in one sample (``prod(shape)``)."""
        return math.prod(self.shape)


class BatchedPair(tuple):
    """An ``(x, y)`` pair that already holds a whole batch; :func:`collate_pairs` passes it on."""

    __slots__ = ()


def collate_pairs(batch: Any) -> tuple[Tensor, Tensor]:
    """Collate function used by :class:`GANDataModule`.

    Data sets derived from :class:`TensorBatchDataset` fetch a whole batch with one indexing
    operation (``__getitems__``) and hand back a :class:`BatchedPair`; everything else is a
    list of ``(x, y)`` items and goes through torch's ``default_collate``.
    """
    if isinstance(batch, BatchedPair):
        return batch[0], batch[1]
    x, y = default_collate(batch)
    return x, torch.as_tensor(y, dtype=torch.int64)


class TensorBatchDataset(Dataset):
    """A map-style data set that can fetch many indices at once with tensor indexing.

    Subclasses implement :meth:`take`; single items and batches (``__getitems__``, which the
    ``DataLoader`` uses when present) are both served by it, so no per-item Python work is done
    for in-memory data.
    """

    def take(self, index: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Return ``(x, y)`` for a 1-D ``int64`` tensor of indices."""
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)} items")
        x, y = self.take(torch.tensor([index], dtype=torch.int64))
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> BatchedPair:
        x, y = self.take(torch.as_tensor(indices, dtype=torch.int64))
        return BatchedPair((x, y))


class TensorPairDataset(TensorBatchDataset):
    """Samples and labels held as two tensors in memory."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} samples but {len(y)} labels")
        self.x = x.float()
        self.y = y.long()

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[index], self.y[index]


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


class _PositionedDataLoader(DataLoader):
    """A DataLoader that tells Lightning it resumes mid-epoch (it does: the position lives in
    :meth:`GANDataModule.state_dict` and the sampler), so no "not resumable" warning is shown."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


class GANDataModule(lightning.LightningDataModule):
    """Serves shuffled ``(x, y)`` training batches from a source.

    Args:
        source: an object with ``load() -> (Dataset, DataInfo)``; it is called once, lazily.
        batch_size: samples per batch; incomplete last batches are dropped.
        num_workers: ``DataLoader`` worker processes (0 loads in the main process).
        seed: seeds the shuffle order, so the same seed gives the same batches.

    The order is resumable: :meth:`state_dict` (saved in every checkpoint by Lightning) holds
    the number of batches the training loop has taken, and a resumed run continues the same
    order from the next batch, mid-epoch included (see :class:`ResumableSampler`).
    """

    def __init__(self, source: Any, batch_size: int = 64, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        if not callable(getattr(source, "load", None)):
            raise UserError(
                f"data.source must be a data source with a load() method, got {type(source).__name__}; "
                "pick one of the conf/data/*.yaml sets"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise UserError(f"data.num_workers must be a non-negative integer, got {num_workers!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserError(f"data.seed must be an integer, got {seed!r}")
        self.source = source
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self._loaded: tuple[Dataset, DataInfo] | None = None
        self._batches_seen = 0  # training batches taken by the loop; restored on resume

    # ------------------------------------------------------------------ loading
    def _load(self) -> tuple[Dataset, DataInfo]:
        if self._loaded is None:
            dataset, info = self.source.load()
            if not isinstance(info, DataInfo):
                raise TypeError(f"{type(self.source).__name__}.load() must return (Dataset, DataInfo)")
            self._loaded = (dataset, info)
        return self._loaded

    @property
    def info(self) -> DataInfo:
        """Description of the data set (loads the source on first use)."""
        return self._load()[1]

    @property
    def dataset(self) -> Dataset:
        """The training set (loads the source on first use)."""
        return self._load()[0]

    def prepare_data(self) -> None:
        """Fetch files if the source can (Lightning runs this on one process only)."""
        prepare = getattr(self.source, "prepare", None)
        if callable(prepare):
            prepare()

    def setup(self, stage: str | None = None) -> None:
        self._load()

    # ------------------------------------------------------------------ batches
    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset
        n = len(dataset)
        if n < self.batch_size:
            raise UserError(
                f"data set {self.info.name} has {n} samples, fewer than data.batch_size={self.batch_size}; "
                "lower data.batch_size"
            )
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        if n // world < self.batch_size:
            raise UserError(
                f"data set {self.info.name} has {n} samples: fewer than data.batch_size={self.batch_size} "
                f"per process for {world} processes; lower data.batch_size"
            )
        sampler = ResumableSampler(n, self.batch_size, seed=self.seed, num_replicas=world, rank=rank)
        sampler.start_at(self._batches_seen)
        generator = torch.Generator()
        generator.manual_seed(self.seed)  # worker seeds only; the order comes from the sampler
        return _PositionedDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            collate_fn=collate_pairs,
            generator=generator,
            persistent_workers=self.num_workers > 0,
        )

    # ------------------------------------------------------------------ resumable position
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Counts training batches as the loop takes them (not as workers prefetch them)."""
        if self.trainer is not None and self.trainer.training:
            self._batches_seen += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The data position saved in checkpoints: training batches taken so far (per process)."""
        return {"batches_seen": self._batches_seen, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the data order where the checkpoint left it (called before the loader is built).

        A checkpoint written with another seed or batch size cannot be continued in the same
        order; the position is still restored (epoch and offset count batches of this run).
        """
        self._batches_seen = int(state_dict.get("batches_seen", 0))

    def real_batch(self, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
        """``n`` real samples ``(x, y)``, the same for the same ``(n, seed)``.

        Samples are drawn without replacement (whole random permutations are chained when ``n``
        exceeds the data set size). The draw does not touch the training shuffle.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"the number of real samples must be a positive integer, got {n!r}")
        dataset = self.dataset
        size = len(dataset)
        generator = torch.Generator()
        generator.manual_seed(seed)
        rounds = -(-n // size)
        index = torch.cat([torch.randperm(size, generator=generator) for _ in range(rounds)])[:n]
        if isinstance(dataset, TensorBatchDataset):
            x, y = dataset.take(index)
            return x, y.long()
        items = [dataset[int(i)] for i in index]
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.tensor([int(item[1]) for item in items], dtype=torch.int64)
        return x, y

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source={type(self.source).__name__}, batch_size={self.batch_size}, "
            f"num_workers={self.num_workers}, seed={self.seed})"
        )
