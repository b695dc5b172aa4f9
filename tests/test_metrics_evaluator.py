"""Evaluator, torchmetrics wrappers, the real-statistics cache and the Hydra config snippets."""

import math
import shutil
from pathlib import Path

import pytest
import torch

from gan_lab.errors import UserError
from gan_lab.metrics import functional as Fn
from gan_lab.metrics.evaluator import Evaluator, shard_bounds
from gan_lab.metrics.features import DomainFeatureExtractor, RandomFeatureExtractor
from gan_lab.metrics.states import FID, KID, InceptionScoreMetric, PrecisionRecall
from gan_lab.metrics.cache import RealStatsCache
from numerics import fid_self_distance_bound

CONF = Path(__file__).resolve().parents[1] / "gan_lab" / "conf"


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
    return x, torch.tensor(d.target)


@pytest.fixture(scope="module")
def domain(digits, tmp_path_factory):
    return DomainFeatureExtractor("digits", digits, cache_dir=str(tmp_path_factory.mktemp("domain")), epochs=5)


def batches_of(x, size):
    def gen():
        for i in range(0, len(x), size):
            yield x[i : i + size]

    return gen


def sampler_over(x):
    """sample_fn that hands out the rows of x in order."""
    pos = [0]

    def sample(n):
        out = x[pos[0] : pos[0] + n]
        pos[0] += n
        return out

    return sample


# ------------------------------------------------------------------------------------ end to end


def test_real_against_itself_is_zero_and_noise_is_far(domain, digits, tmp_path):
    # The classifier is trained in this session, so its weights differ between machines (float32
    # round-off in training changes the trajectory): every threshold below on its numbers holds
    # with a wide margin over 40 training seeds, a wider spread than round-off alone produces.
    x, _ = digits
    real = x[:600]
    kw = dict(feature=domain, num_samples=600, batch_size=200, cache_dir=str(tmp_path),
              real_key={"name": "digits", "split": "train", "image_size": 8}, metrics={"fid": {}, "is": {"splits": 5},
              "kid": {"subsets": 20, "subset_size": 300}, "pr": {"k": 3}})
    ev = Evaluator(**kw)
    # real batches of batch_size: real and generated images pass through the extractor in the same
    # batches, so their features are identical (batched float32 kernels may round differently for
    # another batch composition, and that noise would swamp the float64 round-off bounded below)
    same = ev.evaluate(sampler_over(real), batches_of(real, 200))
    assert set(same) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall",
                         "quality", "diversity", "classes_covered", "class_kl"}
    feats, _ = ev.extract(real)
    cached = RealStatsCache(tmp_path).load(ev.cache_key())["features"]
    assert torch.equal(cached, feats), "same images in the same batches must give the same features"
    # exactly 0 in exact arithmetic; float64 round-off of frechet_distance, derived in tests/numerics.py
    assert abs(same["fid"]) <= fid_self_distance_bound(feats)
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    # equal class histograms: only ClassDiagnostics' 1e-6 uniform mixing remains, O(1e-12)
    assert same["class_kl"] == pytest.approx(0.0, abs=1e-9) and same["classes_covered"] == 10
    # 40 seeds: IS 7.65-8.53 (sd 0.22, at most 10 = the number of classes), quality >= 0.92
    assert 7 < same["is_mean"] <= 10 and same["quality"] > 0.8

    held_out = ev.evaluate(sampler_over(x[600:1200]))  # other real digits: small
    g = torch.Generator().manual_seed(0)
    noise = ev.evaluate(lambda n: torch.rand(n, 1, 8, 8, generator=g) * 2 - 1)
    # 40 seeds: noise/held-out is >= 16.6 for FID (median 31) and >= 15 for KID (median 80)
    assert 0 < held_out["fid"] < noise["fid"] / 5
    assert noise["kid_mean"] > 5 * max(held_out["kid_mean"], 1e-6)
    # noise covers little of the real data (recall: noise <= 0.25, held-out >= 0.77 over 40 seeds).
    # Its precision is not reliably below held-out's (0.04-0.73 against 0.76-0.87: a classifier may
    # map noise into the k-NN balls of outlying digits), but it is well below the exact 1 of `same`.
    assert noise["recall"] < held_out["recall"]
    assert noise["precision"] < same["precision"]
    # mode collapse: one digit over and over (top-2 logit gap >= 5.6 over 40 seeds: the class is stable)
    collapsed = ev.evaluate(lambda n: x[:1].expand(n, -1, -1, -1))
    assert collapsed["classes_covered"] == 1 and collapsed["is_mean"] == pytest.approx(1.0, abs=1e-3)
    assert collapsed["diversity"] == pytest.approx(0.0, abs=1e-12) and collapsed["recall"] < 0.1


def test_metric_wrappers_equal_the_functions():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(80, 6, generator=g), torch.randn(70, 6, generator=g) + 0.3
    logits = torch.randn(70, 4, generator=g)
    fid = FID(6)
    fid.update(real[:50], real=True)
    fid.update(real[50:], real=True)
    fid.update(fake, real=False)
    ref = Fn.frechet_distance(*Fn.mean_cov(real), *Fn.mean_cov(fake))
    assert float(fid.compute()) == pytest.approx(ref, rel=1e-9)
    with pytest.raises(TypeError, match="update"):
        fid(fake)  # torchmetrics' forward() would reset the accumulated state
    fid.reset()  # keeps the real statistics
    fid.update(fake[:35], real=False)
    assert float(fid.compute()) == pytest.approx(Fn.frechet_distance(*Fn.mean_cov(real), *Fn.mean_cov(fake[:35])), rel=1e-9)

    kid = KID(6, subsets=5, subset_size=40, seed=3)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    assert tuple(float(v) for v in kid.compute()) == pytest.approx(
        Fn.kernel_inception_distance(real, fake, 5, 40, seed=3), rel=1e-9)

    isc = InceptionScoreMetric(4, splits=7)
    isc.update(logits[:30])
    isc.update(logits[30:])
    assert tuple(float(v) for v in isc.compute()) == pytest.approx(Fn.inception_score(logits, 7), rel=1e-12)

    pr = PrecisionRecall(k=2)
    pr.update(real, real=True)
    pr.update(fake, real=False)
    assert tuple(float(v) for v in pr.compute()) == Fn.precision_recall(real, fake, k=2)


# ------------------------------------------------------------------------------------ cache


class CountingExtractor(RandomFeatureExtractor):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.images_seen = 0

    def extract(self, x):
        self.images_seen += x.shape[0]
        return super().extract(x)


def test_real_statistics_cache_keys(tmp_path):
    g = torch.Generator().manual_seed(1)
    real = torch.rand(96, 1, 12, 12, generator=g) * 2 - 1
    fake = torch.rand(96, 1, 12, 12, generator=g) * 2 - 1
    key = {"name": "toy", "split": "train", "image_size": 12}
    real_calls = []

    def real_batches():
        real_calls.append(1)
        return batches_of(real, 32)()

    def make(n=64, seed=0, real_key=key, **kw):
        ex = CountingExtractor(seed=seed, num_features=16, num_classes=5, size=12)
        return Evaluator(["fid", "kid"], ex, num_samples=n, batch_size=32, cache_dir=str(tmp_path),
                         real_key=real_key, **kw), ex

    ev, ex = make()
    first = ev.evaluate(sampler_over(fake), real_batches)
    assert len(real_calls) == 1 and ex.images_seen == 64 + 64
    assert len(list(tmp_path.glob("real_*.pt"))) == 1

    # the same evaluator never extracts the real images twice
    second = ev.evaluate(sampler_over(fake), real_batches)
    assert len(real_calls) == 1 and ex.images_seen == 64 + 64 + 64
    assert second == first

    # a new evaluator with the same key reads the cache: only the fakes go through the network
    ev2, ex2 = make()
    assert ev2.evaluate(sampler_over(fake), real_batches) == first
    assert len(real_calls) == 1 and ex2.images_seen == 64 and ev2.last_timing["real_cache_hit"] == 1.0

    # any change of the key misses: number of images, extractor settings, data identity
    for variant in (dict(n=48), dict(n=64, num_real=80), dict(seed=1), dict(real_key={**key, "split": "test"})):
        before = len(real_calls)
        ev3, ex3 = make(**variant)
        ev3.evaluate(sampler_over(fake), real_batches)
        assert len(real_calls) == before + 1, variant
        assert ex3.images_seen > variant.get("n", 64)
    assert len(list(tmp_path.glob("real_*.pt"))) == 5


def test_stale_cache_file_is_never_used(tmp_path):
    cache = RealStatsCache(tmp_path)
    key_a, key_b = {"data": "a", "n": 10}, {"data": "b", "n": 10}
    cache.save(key_a, torch.zeros(10, 3), None)
    assert cache.load(key_a) is not None and cache.load(key_b) is None
    shutil.copy(cache.path(key_a), cache.path(key_b))  # a file at B's name holding A's statistics
    assert cache.load(key_b) is None
    assert RealStatsCache(None).load(key_a) is None


# ------------------------------------------------------------------------------------ options and errors


def test_metric_selection_and_user_errors(tmp_path):
    ex = RandomFeatureExtractor(num_classes=None, size=8)
    with pytest.raises(UserError, match="needs class logits"):
        Evaluator(["is"], ex, num_samples=10)
    with pytest.raises(UserError, match="unknown metric"):
        Evaluator(["fidd"], ex, num_samples=10)
    with pytest.raises(UserError, match="labeled_data"):
        Evaluator(["fid"], None, num_samples=10, cache_dir=str(tmp_path))
    ev = Evaluator(["fid", "pr"], RandomFeatureExtractor(size=8), num_samples=20, batch_size=8,
                   class_diagnostics=False, cache_dir=None)
    real = torch.rand(20, 3, 8, 8) * 2 - 1
    out = ev.evaluate(lambda n: torch.rand(n, 3, 8, 8) * 2 - 1, batches_of(real, 8))
    assert set(out) == {"fid", "precision", "recall"}
    with pytest.raises(UserError, match=r"\[-1, 1\]"):
        Evaluator(["fid"], RandomFeatureExtractor(size=8), num_samples=20, cache_dir=None).evaluate(
            lambda n: torch.zeros(n, 3, 8, 8), batches_of(real * 127.5 + 127.5, 8))


def test_mode_statistics_through_the_evaluator():
    angles = torch.arange(8) * 2 * math.pi / 8
    modes = torch.stack([angles.cos(), angles.sin()], 1)
    ev = Evaluator({"modes": {"modes": modes.tolist(), "std": 0.01}}, num_samples=400, batch_size=100)
    assert ev.extractor is None

    g = torch.Generator().manual_seed(0)  # the thresholds are many standard errors wide; seeded all the same

    def ring(n):
        idx = torch.randint(0, 8, (n,), generator=g)
        return modes[idx] + 0.01 * torch.randn(n, 2, generator=g)

    out = ev.evaluate(ring)
    assert out["modes_captured"] == 8 and out["high_quality_frac"] > 0.95 and out["mode_kl"] < 0.05
    collapsed = ev.evaluate(lambda n: modes[:1].expand(n, 2))
    assert collapsed["modes_captured"] == 1 and collapsed["mode_kl"] == pytest.approx(math.log(8))


def test_plain_module_is_wrapped(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU())
    # batch_size 5 for 16 samples: an uneven last batch (1), the same for real and generated images
    ev = Evaluator(["fid"], net, num_samples=16, batch_size=5, cache_dir=str(tmp_path), real_key={"name": "r"})
    assert ev.extractor.num_features == 6 and ev.extractor.num_classes is None and "class" not in ev.metrics
    real = torch.rand(16, 3, 10, 10, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fid = ev.evaluate(sampler_over(real), batches_of(real, 5))["fid"]
    assert abs(fid) <= fid_self_distance_bound(ev.extract(real)[0])


def test_cpu_chunks_are_small_and_do_not_change_features():
    """Large extractors run in chunks of ``cpu_max_batch`` on CPU (system time of big batches);
    the chunking must not change a single feature value or drop an image."""

    class Chunked(CountingExtractor):
        max_batch, cpu_max_batch = 32, 4

        def extract(self, x):
            self.sizes.append(x.shape[0])
            return super().extract(x)

    ext = Chunked(num_features=8, num_classes=None)
    ext.sizes = []
    assert ext.chunk_size(200) == 4 and ext.chunk_size(3) == 3
    ext.cpu_max_batch = None
    assert ext.chunk_size(200) == 32
    ext.cpu_max_batch = 4
    images = torch.rand(10, 3, 12, 12, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ev = Evaluator(metrics=["fid"], feature=ext, num_samples=10, batch_size=200, cache_dir=None)
    feats, _ = ev.extract(images)
    assert ext.sizes == [4, 4, 2] and ext.images_seen == 10
    with torch.no_grad():
        whole = RandomFeatureExtractor(num_features=8, num_classes=None).extract(images.clamp(-1, 1)).features
    torch.testing.assert_close(feats, whole.float(), rtol=1e-5, atol=1e-6)


def test_shard_bounds_cover_everything_once():
    for n, w in [(10, 3), (7, 2), (5, 5), (100, 4)]:
        parts = [shard_bounds(n, w, r) for r in range(w)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert max(h - l for l, h in parts) - min(h - l for l, h in parts) <= 1


# ------------------------------------------------------------------------------------ Hydra snippets


def test_hydra_metric_and_feature_groups(tmp_path, digits):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose(config_name=None, overrides=["+metrics=[fid,kid,is,pr]", "+feature=random"])
        dom = compose(config_name=None, overrides=["+feature=domain", f"feature.cache_dir={tmp_path}", "feature.epochs=1"])
        for name in ("inception", "torchscript"):
            assert compose(config_name=None, overrides=[f"+feature={name}"]).feature._target_.startswith("gan_lab.metrics.features.")
    assert set(cfg.metrics) == {"fid", "kid", "is", "pr"}
    assert cfg.metrics.kid.subset_size == 1000 and cfg.metrics["is"].splits == 10
    x, y = digits
    real = x[:40].expand(-1, 3, -1, -1)
    ev = Evaluator(OmegaConf.create({**OmegaConf.to_container(cfg.metrics), "kid": {"subsets": 3, "subset_size": 20}}),
                   cfg.feature, num_samples=40, batch_size=20, cache_dir=str(tmp_path), real_key={"name": "digits"})
    out = ev.evaluate(sampler_over(real), batches_of(real, 20))
    assert abs(out["fid"]) <= fid_self_distance_bound(ev.extract(real)[0]) and out["precision"] == 1.0
    # the domain entry is partial: the caller adds the labelled data
    ev = Evaluator(["fid"], dom.feature, num_samples=40, batch_size=20, cache_dir=str(tmp_path),
                   real_key={"name": "digits"}, labeled_data=(x[:300], y[:300]))
    assert ev.extractor.name == "domain" and ev.extractor.info["key"]["data"] == "digits"
    assert "class" in ev.metrics
