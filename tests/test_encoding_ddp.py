"""The models with codes under DDP on CPU (two gloo processes): ranks end with identical weights,
GLO's code table included; and the recon / cluster_acc / accuracy metrics of two processes equal
those of one."""

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from helpers import assert_ddp_continued_run_equals_longer_run, assert_ddp_ranks_identical
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.metrics.encoding import SamplesWithCodes
from gan_lab.metrics.evaluator import Evaluator
from test_encoding_family import MODELS, TINY


@pytest.mark.parametrize("name", [m for m in MODELS if m != "gon_variational"])  # every model (not every option)
def test_ddp_ranks_stay_identical(name, tmp_path):
    ckpt = assert_ddp_ranks_identical(MODELS[name] + TINY, tmp_path, steps=2)
    if name == "glo":  # the table moved where either rank's batches were, the same on both ranks
        table = ckpt["state_dict"]["nets.codes.weight"]
        assert torch.allclose(table.norm(dim=1), torch.ones(len(table)), atol=1e-5)


def test_glo_ddp_run_continued_equals_one_longer_run(tmp_path):
    # the code table, its own optimizer group and every rank's random streams are checkpoint state
    assert_ddp_continued_run_equals_longer_run(MODELS["glo"] + TINY, tmp_path, first=2, total=4)


K, C = 4, 3
INFO = DataInfo("toy", "image", (1, 4, 4), num_classes=C)


class ToyData:
    """Labelled train (31) and test (23) splits: odd sizes, so the ranks' shares differ."""

    splits = ("train", "test")
    info = INFO

    def batches(self, batch_size, split=None, order_seed=None):
        n, seed = (23, 2) if split == "test" else (31, 1)
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n, 1, 4, 4, generator=g, dtype=torch.float64).float() * 2 - 1
        y = torch.arange(n) % C
        for lo in range(0, n, batch_size):
            yield Batch(x[lo:lo + batch_size], y[lo:lo + batch_size])

    def labelled_tensors(self, split=None):
        parts = list(self.batches(1000, split))
        return parts[0].x, parts[0].y


def reconstruct(x, y=None):
    """Per-sample and exact in float64: no dependence on how the split is sharded."""
    return (x.double() * 0.5 + 0.1).clamp(-1, 1).float()


def classify(x):
    """K cluster logits from the image mean (so clusters and labels are related, not equal)."""
    m = x.double().mean(dim=(1, 2, 3))
    centres = torch.linspace(-0.2, 0.2, K, dtype=torch.float64)
    return -(m[:, None] - centres[None]).abs()


def evaluate():
    def sample_fn(n):
        return SamplesWithCodes(torch.zeros(n, 1, 4, 4), classify, torch.zeros(n, dtype=torch.long),
                                reconstruct=reconstruct)

    metrics = {"recon": {"batch_size": 5}, "cluster_acc": {"batch_size": 4}, "accuracy": {"batch_size": 3}}
    ev = Evaluator(metrics, None, num_samples=9, batch_size=4, cache_dir=None, context={"info": INFO, "data": ToyData()},
                   class_diagnostics=False)
    return ev.evaluate(sample_fn, lambda: iter(()))


def _worker(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        with open(os.path.join(tmp, f"rank{rank}.json"), "w") as fh:
            json.dump(evaluate(), fh)
    finally:
        dist.destroy_process_group()


def test_metrics_of_two_processes_equal_one(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    single = evaluate()
    x, y = ToyData().labelled_tensors("test")
    mse = ((reconstruct(x).double() - x.double()) ** 2).flatten(1).mean(1).mean()
    assert single["recon_mse"] == pytest.approx(float(mse), rel=1e-12)
    # accuracy is test_acc: the classifier's K = 4 logits against 3 labels
    assert single["test_acc"] == pytest.approx(float((classify(x).argmax(1) == y).double().mean()), rel=1e-12)
    for rank in range(2):
        res = json.load(open(tmp_path / f"rank{rank}.json"))
        assert set(res) == set(single)
        for key, value in single.items():
            assert res[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (rank, key)
