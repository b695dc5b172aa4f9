"""cond_acc, intra-FID and CAS on constructed cases (a "perfect conditional sampler" that returns
real images of the requested class), and the label helpers (labelled subset, labels=...)."""

import math

import pytest
import torch

from gan_lab.data.labels import cycle_labels, labeled_subset, parse_labels
from gan_lab.data.sources.embedded import Digits
from gan_lab.errors import UserError
from gan_lab.metrics.conditional import cas, cond_acc, intra_fid
from gan_lab.metrics.domain import train_domain_classifier
from gan_lab.metrics.functional import frechet_distance, mean_cov

K = 10


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits split into fixed, disjoint train/held-out halves."""
    ds, _ = Digits().load()
    batch = ds.take(torch.arange(len(ds)))
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:900], perm[900:]
    return batch.x[tr], batch.y[tr], batch.x[te], batch.y[te]


@pytest.fixture(scope="module")
def classifier(digits):
    x_tr, y_tr, _, _ = digits
    model, _ = train_domain_classifier(x_tr, y_tr, num_classes=K, test_fraction=0.0, seed=0, epochs=10)
    return model


def perfect_sampler(x, y, labels, seed):
    """Real images of each requested class, drawn (seeded, with replacement) from ``(x, y)``."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(len(labels), *x.shape[1:])
    for c in labels.unique().tolist():
        rows = torch.nonzero(labels == c).flatten()
        members = torch.nonzero(y == c).flatten()
        out[rows] = x[members[torch.randint(len(members), (len(rows),), generator=g)]]
    return out


# ---------------------------------------------------------------------------------------------
# cond_acc
# ---------------------------------------------------------------------------------------------


def test_cond_acc_hand_case():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    y = torch.tensor([0, 1, 1, 1, 0])
    r = cond_acc(logits, y, num_classes=4)
    assert r["overall"] == pytest.approx(2 / 5)
    assert r["per_class"][:2] == [pytest.approx(1 / 2), pytest.approx(1 / 3)]
    assert r["per_class"][2] != r["per_class"][2] and math.isnan(r["per_class"][3])  # no samples of class 2, 3
    assert r["counts"] == [2, 3, 0, 0]
    probs = torch.softmax(logits, 1)
    assert cond_acc(probs, y, num_classes=4)["overall"] == r["overall"]


@torch.no_grad()
def test_cond_acc_of_a_perfect_sampler_is_the_classifier_accuracy_on_real_data(digits, classifier):
    _, _, x_te, y_te = digits
    real_logits = classifier(x_te)
    real_acc = float((real_logits.argmax(1) == y_te).double().mean())
    # the held-out images themselves, labelled with their class: exactly the real accuracy
    assert cond_acc(real_logits, y_te)["overall"] == pytest.approx(real_acc, abs=1e-12)
    # a sampler asked for every class in turn (labels=all), drawing real images of that class
    labels = cycle_labels(3000, list(range(K)))
    fake = perfect_sampler(x_te, y_te, labels, seed=1)
    r = cond_acc(classifier(fake), labels)
    # per-class accuracies are those of the real images of that class (up to sampling error)
    for c in range(K):
        real_c = float((real_logits[y_te == c].argmax(1) == c).double().mean())
        assert r["per_class"][c] == pytest.approx(real_c, abs=4 * math.sqrt(0.25 / 300) + 1e-9)
    # overall: classes are near-balanced in digits; 4 sigma of a 3000-draw mean plus the balance gap
    assert r["overall"] == pytest.approx(real_acc, abs=4 * math.sqrt(0.25 / 3000) + 0.01)
    assert real_acc > 0.5  # the classifier is a meaningful judge here (chance is 0.1)


# ---------------------------------------------------------------------------------------------
# intra-FID
# ---------------------------------------------------------------------------------------------


def test_intra_fid_per_class_is_the_fid_of_each_class(digits):
    x_tr, y_tr, x_te, y_te = digits
    f_fake, f_real = x_te.flatten(1).double(), x_tr.flatten(1).double()
    r = intra_fid(f_fake, y_te, f_real, y_tr)
    for c in (0, 7):
        mu1, s1 = mean_cov(f_fake[y_te == c])
        mu2, s2 = mean_cov(f_real[y_tr == c])
        assert r["per_class"][c] == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-12)
    assert r["mean"] == pytest.approx(sum(r["per_class"]) / K, rel=1e-12)
    assert r["classes"] == K
    # a class with fewer than two samples on one side is left out of the mean
    keep = (y_te != 3) | (torch.cumsum((y_te == 3).long(), 0) == 1)
    r3 = intra_fid(f_fake[keep], y_te[keep], f_real, y_tr)
    assert math.isnan(r3["per_class"][3]) and r3["classes"] == K - 1
    assert r3["mean"] == pytest.approx(sum(v for c, v in enumerate(r3["per_class"]) if c != 3) / (K - 1))


def test_intra_fid_perfect_sampler_small_wrong_class_and_noise_large(digits):
    x_tr, y_tr, x_te, y_te = digits
    f_real = x_tr.flatten(1)
    labels = cycle_labels(900, list(range(K)))
    perfect = perfect_sampler(x_te, y_te, labels, seed=2).flatten(1)
    good = intra_fid(perfect, labels, f_real, y_tr)["mean"]
    # the same images, each labelled as the next class: the overall FID cannot tell ...
    shifted = (labels + 1) % K
    mu_a, s_a = mean_cov(perfect)
    mu_r, s_r = mean_cov(f_real)
    assert frechet_distance(mu_a, s_a, mu_r, s_r) < good  # the image set as a whole matches the data
    # ... intra-FID can
    wrong = intra_fid(perfect, shifted, f_real, y_tr)["mean"]
    noise = torch.rand(900, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    bad = intra_fid(noise, labels, f_real, y_tr)["mean"]
    assert wrong > 3 * good
    assert bad > 10 * good


# ---------------------------------------------------------------------------------------------
# CAS
# ---------------------------------------------------------------------------------------------


def test_cas_perfect_sampler_scores_like_real_data_and_label_noise_scores_chance(digits):
    x_tr, y_tr, x_te, y_te = digits
    state = torch.get_rng_state()
    labels = cycle_labels(900, list(range(K)))
    perfect = perfect_sampler(x_tr, y_tr, labels, seed=4)
    r = cas(perfect, labels, x_te, y_te, K, seed=0)
    assert torch.equal(torch.get_rng_state(), state)  # its own seeded generator only
    assert r["n_train"] == 900 and r["n_test"] == len(y_te)
    assert len(r["per_class"]) == K
    # a perfect sampler scores about what the real training images themselves score
    real = cas(x_tr, y_tr, x_te, y_te, K, seed=0)
    assert real["accuracy"] > 0.5  # well above chance (0.1)
    assert r["accuracy"] > real["accuracy"] - 0.1
    # a sampler whose images ignore the requested class: CAS falls to chance (1/K)
    shuffled = perfect[torch.randperm(900, generator=torch.Generator().manual_seed(5))]
    r_bad = cas(shuffled, labels, x_te, y_te, K, seed=0, epochs=2, min_updates=0)
    assert r_bad["accuracy"] < 0.1 + 6 * math.sqrt(0.09 / len(y_te)) + 0.1
    # deterministic for a given seed
    assert cas(shuffled, labels, x_te, y_te, K, seed=0, epochs=2, min_updates=0)["accuracy"] == r_bad["accuracy"]
    with pytest.raises(TypeError, match="unknown"):
        cas(perfect, labels, x_te, y_te, K, test_fraction=0.5)


# ---------------------------------------------------------------------------------------------
# labels: labelled subset, labels=..., cycling
# ---------------------------------------------------------------------------------------------


def test_labeled_subset_is_fixed_seeded_and_balanced():
    y = torch.arange(100) % 4
    y[:7] = 3  # class sizes 23, 23, 23, 31
    state = torch.get_rng_state()
    mask = labeled_subset(y, 5, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert mask.dtype == torch.bool and mask.shape == (100,)
    assert torch.bincount(y[mask], minlength=4).tolist() == [5, 5, 5, 5]
    assert torch.equal(labeled_subset(y, 5, seed=1), mask)
    assert not torch.equal(labeled_subset(y, 5, seed=2), mask)
    assert int(labeled_subset(y, 23, seed=0).sum()) == 4 * 23


def test_labeled_subset_errors_name_the_smallest_class():
    y = torch.tensor([0] * 10 + [1] * 4 + [2] * 6)
    with pytest.raises(UserError, match=r"labeled_per_class=5 .*class 1 has 4 examples.*at most 4"):
        labeled_subset(y, 5, seed=0)
    with pytest.raises(UserError, match="class 3 has no examples"):
        labeled_subset(y, 1, seed=0, num_classes=4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UserError, match="positive integer"):
            labeled_subset(y, bad, seed=0)


def test_parse_and_cycle_labels():
    assert parse_labels("all", 3) == [0, 1, 2]
    assert parse_labels(2, 3) == [2]
    assert parse_labels("2,0", 3) == [2, 0]
    assert parse_labels([1, 1], 3) == [1, 1]
    with pytest.raises(UserError, match="labels=3 is not a class.*3 classes"):
        parse_labels("1,3", 3)
    with pytest.raises(UserError, match="unconditional"):
        parse_labels("all", 0)
    with pytest.raises(UserError, match="labels must be"):
        parse_labels("dog", 3)
    assert cycle_labels(7, [0, 1, 2]).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert cycle_labels(3, [4]).dtype == torch.int64
