"""The registered conditional metrics (cond_acc, intra_fid, cas, test_acc) through the Evaluator: two
CPU processes (gloo) give the numbers of one process, and a perfect conditional sampler (real images
of the requested class) scores like the real data."""

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.metrics.conditional import SamplesWithClassifier, linear_probe
from gan_lab.metrics.evaluator import Evaluator, shard_bounds
from gan_lab.metrics.features import FeatureExtractor, FeatureOutput

K = 5
NUM_SAMPLES = 61  # odd: ranks get 31 and 30
NUM_REAL = 60
METRICS = {"cond_acc": {}, "intra_fid": {}, "cas": {"epochs": 1, "min_updates": 1, "batch_size": 16},
           "test_acc": {"batch_size": 7}}
INFO = DataInfo("toy", "image", (1, 16, 16), num_classes=K, class_names=tuple("abcde"))


class Projection(FeatureExtractor):
    """Per-sample float64 projections (no batch or thread dependence); no class logits of its own,
    so cond_acc fits its linear probe."""

    name = "projection"

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.num_features, self.num_classes = 6, None
        self.register_buffer("w", torch.randn(64, 6, generator=g, dtype=torch.float64))

    def cache_id(self):
        return {"name": "projection"}

    def extract(self, x):
        return FeatureOutput((torch.nn.functional.avg_pool2d(x.double(), 2).flatten(1) @ self.w).float(), None)


def toy_images(n, seed, labels):
    """Images whose mean brightness pattern depends on the class, plus noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(-0.8, 0.8, K)[labels].view(-1, 1, 1, 1)
    ramp = torch.linspace(-1, 1, 16).view(1, 1, 1, 16) * (labels.view(-1, 1, 1, 1) % 2 * 2 - 1) * 0.2
    return (base + ramp + 0.1 * torch.randn(n, 1, 16, 16, generator=g)).clamp(-1, 1)


class ToyData:
    splits = ("train", "test")

    def labelled_tensors(self, split=None):
        y = torch.arange(40 if split == "test" else NUM_REAL) % K
        return toy_images(len(y), 7 if split == "test" else 3, y), y


def classifier(x):
    """A fixed classifier: the class whose base brightness is nearest the image mean."""
    centres = torch.linspace(-0.8, 0.8, K, dtype=torch.float64)
    return -(x.double().mean(dim=(1, 2, 3))[:, None] - centres[None]).abs()


def fake_samples():
    y = (torch.arange(NUM_SAMPLES) * 3) % K
    return toy_images(NUM_SAMPLES, 11, y) * 0.9, y


def evaluate(rank, world):
    x, y = fake_samples()
    lo, _ = shard_bounds(NUM_SAMPLES, world, rank)
    pos = [lo]

    def sample_fn(n):
        out = SamplesWithClassifier(x[pos[0] : pos[0] + n], classifier, y[pos[0] : pos[0] + n])
        pos[0] += n
        return out

    def real_batches():
        rx, ry = ToyData().labelled_tensors("train")
        for i in range(0, NUM_REAL, 16):
            yield Batch(rx[i : i + 16], ry[i : i + 16])

    ev = Evaluator(METRICS, Projection(), num_samples=NUM_SAMPLES, num_real=NUM_REAL, batch_size=10, cache_dir=None,
                   real_key={"name": "toy"}, context={"info": INFO, "data": ToyData()}, class_diagnostics=False)
    return ev.evaluate(sample_fn, real_batches)


def _worker(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        with open(os.path.join(tmp, f"rank{rank}.json"), "w") as fh:
            json.dump(evaluate(rank, world), fh)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    single = evaluate(0, 1)
    assert {"cond_acc", "intra_fid", "intra_fid_classes", "cas", "test_acc", "cond_acc/a", "intra_fid/e", "cas/c",
            "test_acc/d"} <= set(single)
    for rank in range(2):
        res = json.load(open(tmp_path / f"rank{rank}.json"))
        assert set(res) == set(single)
        for key, value in single.items():
            assert res[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (rank, key)
    # the fixed classifier is exact on these images: test_acc is 1, as are the per-class values
    assert single["test_acc"] == 1.0


def test_a_perfect_conditional_sampler_scores_like_the_real_data():
    rx, ry = ToyData().labelled_tensors("train")
    feats = Projection()(rx).features

    def evaluate_sampler(make):
        ev = Evaluator(["cond_acc", "intra_fid"], Projection(), num_samples=NUM_REAL, num_real=NUM_REAL,
                       batch_size=NUM_REAL, cache_dir=None, context={"info": INFO}, class_diagnostics=False)
        return ev.evaluate(lambda n: make(), lambda: iter([Batch(rx, ry)]))

    perfect = evaluate_sampler(lambda: Batch(rx, ry))  # the real images, labelled with their class
    wrong = evaluate_sampler(lambda: Batch(rx, (ry + 1) % K))  # good images of the wrong class
    probe_accuracy = float((linear_probe(feats, ry, K)(feats) == ry).double().mean())
    assert perfect["cond_acc"] == pytest.approx(probe_accuracy, abs=1e-12)
    # the same features on both sides: every class's FID is 0 up to float64 round-off of the square root
    assert abs(perfect["intra_fid"]) < 1e-6 and wrong["intra_fid"] > 1.0
    assert wrong["cond_acc"] < perfect["cond_acc"]
