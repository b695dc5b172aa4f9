"""The data module every experiment trains from: :class:`GANDataModule`.

It wraps a source (:mod:`gan_lab.data.sources`), loads each split lazily and only once, and
serves :class:`~gan_lab.data.batch.Batch` training batches in a resumable shuffled order
(:class:`~gan_lab.data.sampler.ResumableSampler`). Evaluation reads real data through it too:
:meth:`GANDataModule.real_batch` and :meth:`GANDataModule.batches` never touch the training order.
"""

from __future__ import annotations

from typing import Any, Iterator

import lightning
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_lab.data.batch import Batch, WholeBatch, collate
from gan_lab.data.datasets import TensorBatchDataset
from gan_lab.data.info import DataInfo
from gan_lab.data.sampler import ResumableSampler
from gan_lab.errors import UserError


class IndexedItems(Dataset):
    """Adapts a per-item data set (items ``(x, y)``) to whole batches with ``Batch.index`` set,
    as :class:`TensorBatchDataset` gives them."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> WholeBatch:
        batch = collate([self.dataset[int(i)] for i in indices])
        batch.index = torch.as_tensor(indices, dtype=torch.int64)
        return WholeBatch(batch)

    def __getattr__(self, name: str) -> Any:  # classes, files, ... of the wrapped set
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def take(dataset: Dataset, index: Tensor) -> Batch:
    """The samples of ``dataset`` at ``index`` as one :class:`Batch`, for any data set."""
    if isinstance(dataset, TensorBatchDataset):
        return dataset.take(index)
    wrapped = dataset if isinstance(dataset, IndexedItems) else IndexedItems(dataset)
    return wrapped.__getitems__(index.tolist()).batch


class _Finish:
    """Collate, drop ``y`` for data sets without labels (their items carry a dummy 0) and mark
    the labelled subset of a semi-supervised split (``Batch.labeled``)."""

    def __init__(self, has_labels: bool, labeled: Tensor | None = None) -> None:
        self.has_labels = has_labels
        self.labeled = labeled

    def __call__(self, items: Any) -> Batch:
        batch = collate(items)
        if not self.has_labels:
            batch.y = None
        if self.labeled is not None:
            batch.labeled = self.labeled[batch.index]
        return batch


class _PositionedDataLoader(DataLoader):
    """A DataLoader that tells Lightning it resumes mid-epoch (it does: the position lives in
    :meth:`GANDataModule.state_dict` and the sampler), so no "not resumable" warning is shown."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


class GANDataModule(lightning.LightningDataModule):
    """Serves shuffled :class:`Batch` training batches from a source.

    Args:
        source: an object with ``load(split=None) -> (Dataset, DataInfo)``; called once per
            split, lazily.
        batch_size: samples per batch; incomplete last batches are dropped.
        num_workers: ``DataLoader`` worker processes (0 loads in the main process).
        seed: seeds the shuffle order, so the same seed gives the same batches.
        labeled_per_class: for semi-supervised models: keep the labels of this many training
            samples of every class (a fixed draw with ``labeled_seed``, the same on every process)
            and mark them in ``Batch.labeled``; ``None``: every label may be used.

    The order is resumable: :meth:`state_dict` (saved in every checkpoint by Lightning) holds
    the number of batches the training loop has taken, and a resumed run continues the same
    order from the next batch, mid-epoch included (see :class:`ResumableSampler`).
    """

    def __init__(self, source: Any, batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 labeled_per_class: int | None = None, labeled_seed: int = 0) -> None:
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
        if labeled_per_class is not None and (isinstance(labeled_per_class, bool) or not isinstance(labeled_per_class, int)
                                              or labeled_per_class < 1):
            raise UserError(f"data.labeled_per_class must be a positive integer or null, got {labeled_per_class!r}")
        self.labeled_per_class, self.labeled_seed = labeled_per_class, labeled_seed
        self._labeled_mask: Tensor | None = None
        self._loaded: dict[str, tuple[Dataset, DataInfo]] = {}
        self._batches_seen = 0  # training batches taken by the loop; restored on resume

    # ------------------------------------------------------------------ loading
    def _load(self, split: str | None = None) -> tuple[Dataset, DataInfo]:
        key = split or ""
        if key not in self._loaded:
            dataset, info = self.source.load(split) if split else self.source.load()
            if not isinstance(info, DataInfo):
                raise TypeError(f"{type(self.source).__name__}.load() must return (Dataset, DataInfo)")
            if not isinstance(dataset, TensorBatchDataset):
                dataset = IndexedItems(dataset)
            self._loaded[key] = (dataset, info)
        return self._loaded[key]

    @property
    def info(self) -> DataInfo:
        """Description of the data set (loads the training split on first use)."""
        return self._load()[1]

    @property
    def dataset(self) -> Dataset:
        """The training set (loads the source on first use)."""
        return self._load()[0]

    def dataset_for(self, split: str | None) -> Dataset:
        """The data set of ``split`` (``None``: the training split); a split the source does
        not have is a :class:`UserError` naming the ones it has."""
        return self._load(split)[0]

    @property
    def labeled_mask(self) -> Tensor | None:
        """The semi-supervised labelled subset of the training split (``None`` without
        ``labeled_per_class``): a bool mask over the training set, fixed by ``labeled_seed``."""
        if self.labeled_per_class is None:
            return None
        if self._labeled_mask is None:
            from gan_lab.data.labels import labeled_subset

            if self.info.num_classes == 0:
                raise UserError(f"data.labeled_per_class needs labels, but data {self.info.name} has none")
            _, y = self.labelled_tensors()
            self._labeled_mask = labeled_subset(y, self.labeled_per_class, self.labeled_seed, self.info.num_classes)
        return self._labeled_mask

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(getattr(self.source, "splits", ("train",)))

    def prepare_data(self) -> None:
        """Fetch files if the source can (Lightning runs this on one process only)."""
        prepare = getattr(self.source, "prepare", None)
        if callable(prepare):
            prepare()

    def setup(self, stage: str | None = None) -> None:
        self._load()
        self.labeled_mask  # noqa: B018 - a labelled subset that cannot be drawn fails here, before training

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
            collate_fn=_Finish(self.info.num_classes > 0, self.labeled_mask),
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

    def real_batch(self, n: int, seed: int = 0, split: str | None = None) -> Batch:
        """``n`` real samples as a :class:`Batch`, the same for the same ``(n, seed, split)``.

        Samples are drawn without replacement (whole random permutations are chained when ``n``
        exceeds the data set size). The draw does not touch the training shuffle.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"the number of real samples must be a positive integer, got {n!r}")
        dataset = self.dataset_for(split)
        size = len(dataset)
        generator = torch.Generator()
        generator.manual_seed(seed)
        rounds = -(-n // size)
        index = torch.cat([torch.randperm(size, generator=generator) for _ in range(rounds)])[:n]
        batch = take(dataset, index)
        if self._load(split)[1].num_classes == 0:
            batch.y = None
        return batch

    def reference_dataset(self, split: str | None = None) -> Dataset:
        """What generated samples are compared with: the data set itself, or for a translation
        set its output side — the targets of a paired set, domain B alone (each image once) of an
        unpaired one."""
        dataset, info = self._load(split)
        if info.pairing == "unpaired":
            if not hasattr(dataset, "domain"):
                raise UserError(f"data {info.name}: an unpaired set must give its domains alone (domain('b'))")
            return dataset.domain("b")
        return dataset

    def batches(self, batch_size: int, split: str | None = None, order_seed: int | None = 0,
                reference: bool = False) -> Iterator[Batch]:
        """Every sample of ``split`` once, in batches: in a fixed random order drawn with
        ``order_seed`` (so that the first N are a uniform sample even of a set stored sorted by
        class), or in stored order with ``order_seed=None``. ``reference=True`` gives the
        comparison side of translation sets (:meth:`reference_dataset`) in ``x`` (and ``y``)."""
        dataset = self.reference_dataset(split) if reference else self.dataset_for(split)
        paired = reference and self._load(split)[1].pairing == "paired"
        n = len(dataset)
        order = torch.arange(n) if order_seed is None else torch.randperm(
            n, generator=torch.Generator().manual_seed(order_seed))
        has_labels = self._load(split)[1].num_classes > 0
        for lo in range(0, n, batch_size):
            batch = take(dataset, order[lo : lo + batch_size])
            if paired:
                batch = Batch(batch.target, batch.y, index=batch.index)
            if not has_labels:
                batch.y = None
            yield batch

    def labelled_tensors(self, split: str | None = None, reference: bool = False) -> tuple[Tensor, Tensor]:
        """The whole split as ``(x, y)`` tensors in stored order (trains the domain classifier);
        ``reference=True``: the output side of a translation set (:meth:`reference_dataset`)."""
        xs, ys = [], []
        for batch in self.batches(512, split, order_seed=None, reference=reference):
            if batch.y is None:
                raise UserError(f"data {self.info.name} has no labels")
            xs.append(batch.x)
            ys.append(batch.y)
        return torch.cat(xs), torch.cat(ys)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source={type(self.source).__name__}, batch_size={self.batch_size}, "
            f"num_workers={self.num_workers}, seed={self.seed})"
        )
