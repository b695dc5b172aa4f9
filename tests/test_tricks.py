"""The Improved-Techniques switches (model.tricks.*) on the adversarial variants: each alone trains,
each does what the paper says (checked against a hand computation on the model's own networks),
off means exactly the old run, and a trick that does not apply is refused in one line."""

import math

import pytest
import torch

from helpers import TINY, compose_config, load_ckpt, train
from gan_lab.errors import UserError
from gan_lab.families.tricks import TRICKS, Tricks

RING = ["data=ring8", "data.source.n_samples=256", "trainer.log_every_n_steps=1"]
MNIST = ["data=mnist_5k", "trainer.log_every_n_steps=1"]
LOGGED = {"feature_matching": "feature_matching", "historical_averaging": "hist_avg_d"}


def build(overrides, run_dir):
    from gan_lab.app import instantiate
    from gan_lab.checkpoint import build_module

    cfg = compose_config(TINY + list(overrides), run_dir)
    datamodule = instantiate(cfg.data, "data", _convert_="all")
    return build_module(cfg, datamodule.info), datamodule


def first_batch(datamodule, n=16):
    return datamodule.real_batch(n, seed=0)


@pytest.mark.parametrize("trick", TRICKS)
@pytest.mark.parametrize("model,data", [("gan", RING), ("dcgan", MNIST)], ids=["gan-ring8", "dcgan-mnist_5k"])
def test_each_trick_alone_trains(trick, model, data, tmp_path):
    extra = []
    if trick == "virtual_batch_norm" and model == "gan":
        # VBN replaces batch norm, which the 2-D default MLP generator leaves out
        extra = ["model.net.mlp.g_batch_norm=true"]
    metrics = train([f"model={model}", *data, f"model.tricks.{trick}=true", "trainer.max_steps=3", *extra], tmp_path)
    assert math.isfinite(metrics["d_loss"]) and math.isfinite(metrics["g_loss"])
    if trick in LOGGED:
        assert math.isfinite(metrics[LOGGED[trick]])
    config = load_ckpt(tmp_path)["gan_lab"]["config"]["model"]["tricks"]
    assert config[trick] is True


def test_tricks_off_is_the_run_without_them(tmp_path):
    # every trick off but with other settings: the same weights and logs as the defaults
    base = ["model=gan", *RING, "trainer.max_steps=3"]
    train(base, tmp_path / "a")
    train(base + ["model.tricks.feature_matching.layer=0", "model.tricks.virtual_batch_norm.seed=5",
                  "model.tricks.historical_averaging.enabled=false"], tmp_path / "b")
    a, b = load_ckpt(tmp_path / "a"), load_ckpt(tmp_path / "b")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    assert a["gan_lab"]["family_state"] == {}
    module, _ = build(base, tmp_path / "c")
    assert module.d_adv_loss is module.loss.d_loss and module.updates["d"].after is None
    assert module.updates["g"].after is None


def test_feature_matching_is_the_distance_of_mean_hidden_features(tmp_path):
    module, datamodule = build(["model=gan", *RING, "model.tricks.feature_matching=true"], tmp_path)
    batch = first_batch(datamodule)
    torch.manual_seed(3)
    _, logs = module.generator_loss(batch)
    # by hand: the same latents, D's last hidden layer (its last LeakyReLU) on real and fake
    torch.manual_seed(3)
    z = torch.randn(len(batch), module.latent_dim)
    g, d = module.nets["generator"], module.nets["discriminator"]
    with torch.no_grad():
        fake = g(z)
        diff = d.features(batch.x).mean(0) - d.features(fake).mean(0)
    assert float(logs["feature_matching"]) == pytest.approx(float((diff**2).sum()), rel=1e-5)
    assert float(logs["g_loss"].detach()) == float(logs["feature_matching"])
    # G's loss is the feature distance only (adversarial_weight 0): G gets a gradient through D's features
    loss, _ = module.generator_loss(batch)
    loss.backward()
    assert all(p.grad is not None for p in g.parameters())


def test_one_sided_label_smoothing_sets_real_targets_to_alpha(tmp_path):
    module, datamodule = build(["model=gan", *RING, "model.tricks.one_sided_label_smoothing.enabled=true",
                                "model.tricks.one_sided_label_smoothing.alpha=0.8"], tmp_path)
    batch = first_batch(datamodule)
    torch.manual_seed(4)
    _, logs = module.discriminator_loss(batch)
    torch.manual_seed(4)
    g, d = module.nets["generator"], module.nets["discriminator"]
    with torch.no_grad():
        fake = g(torch.randn(len(batch), module.latent_dim))
        real_p, fake_p = torch.sigmoid(d(batch.x)).double(), torch.sigmoid(d(fake)).double()
    # binary cross-entropy with targets 0.8 (real) and 0 (fake)
    expected = -(0.8 * real_p.log() + 0.2 * (1 - real_p).log()).mean() - (1 - fake_p).log().mean()
    assert float(logs["d_loss"].detach()) == pytest.approx(float(expected), rel=1e-5)


def test_historical_average_is_the_mean_of_past_weights(tmp_path):
    args = ["model=gan", *RING, "model.tricks.historical_averaging.enabled=true",
            "model.tricks.historical_averaging.weight=0.5"]
    train(args + ["trainer.max_steps=1"], tmp_path / "one")
    train(args + ["trainer.max_steps=2", "resume=auto"], tmp_path / "one")  # continued: step 2
    train(args + ["trainer.max_steps=1"], tmp_path / "first")
    first, second = load_ckpt(tmp_path / "first"), load_ckpt(tmp_path / "one")
    history = second["gan_lab"]["family_state"]["historical_average"]["discriminator"]
    assert history["count"] == 2 and history["weight"] == 0.5
    for name, avg in history["average"].items():
        key = f"nets.discriminator.{name}"
        expected = (first["state_dict"][key].double() + second["state_dict"][key].double()) / 2
        assert torch.allclose(avg, expected, rtol=0, atol=1e-12), name
    # the penalty it adds: weight * ||theta - mean||^2
    module, datamodule = build(args, tmp_path / "m")
    module.tricks.load_state_dict(second["gan_lab"]["family_state"], "cpu")
    module.load_state_dict(second["state_dict"])
    logs = {}
    d = module.nets["discriminator"]
    penalty = module.tricks.history_penalty("discriminator", d, logs)
    by_hand = 0.5 * sum(float(((p.double() - history["average"][n]) ** 2).sum()) for n, p in d.named_parameters())
    assert float(penalty) == pytest.approx(by_hand, rel=1e-5) and "hist_avg_d" in logs


def test_minibatch_discrimination_sits_before_the_head_and_couples_the_batch(tmp_path):
    module, datamodule = build(["model=dcgan", *MNIST, "model.tricks.minibatch_discrimination.enabled=true",
                                "model.tricks.minibatch_discrimination.kernels=7",
                                "model.tricks.minibatch_discrimination.kernel_dim=3"], tmp_path)
    d = module.nets["discriminator"].eval()
    layer = d.head.minibatch
    assert layer.T.shape == (d.head.head.linear.in_features - 7, 21)
    x = first_batch(datamodule, 8).x
    with torch.no_grad():
        alone, together = d(x[:2]), d(x)[:2]
    assert not torch.allclose(alone, together)  # a sample's output depends on its batch


def test_virtual_batch_norm_makes_each_sample_independent_of_its_batch(tmp_path):
    module, _ = build(["model=dcgan", *MNIST, "model.tricks.virtual_batch_norm.enabled=true",
                       "model.tricks.virtual_batch_norm.reference_size=8"], tmp_path)
    g = module.nets["generator"].train()
    assert g.ref_z.shape == (8, module.latent_dim) and "nets.generator.ref_z" in module.state_dict()
    z = torch.randn(6, module.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        together, alone = g(z), torch.cat([g(z[i : i + 1]) for i in range(6)])
        g.eval()
        in_eval = g(z)
    # float32 round-off of the per-channel statistics of a batch of 9 (reference + example)
    assert torch.allclose(together, alone, atol=1e-5) and torch.allclose(together, in_eval, atol=1e-5)
    # the reference batch comes from its own seed: the same in every run, not from the training streams
    again, _ = build(["model=dcgan", *MNIST, "model.tricks.virtual_batch_norm.enabled=true",
                      "model.tricks.virtual_batch_norm.reference_size=8"], tmp_path)
    assert torch.equal(again.nets["generator"].ref_z, g.ref_z)


def test_trick_settings_are_checked():
    with pytest.raises(UserError, match="unknown trick model.tricks.label_smoothing"):
        Tricks({"label_smoothing": True}, "gan")
    with pytest.raises(UserError, match="unknown setting model.tricks.feature_matching.layr; it takes: enabled"):
        Tricks({"feature_matching": {"enabled": True, "layr": 1}}, "gan")
    with pytest.raises(UserError, match="alpha must be in"):
        Tricks({"one_sided_label_smoothing": {"alpha": 0.3}}, "gan").check_applies("non_saturating", None)
    with pytest.raises(UserError, match="reference_size must be an integer >= 2"):
        Tricks({"virtual_batch_norm": {"reference_size": 1}}, "gan")
    off = Tricks({"feature_matching": {"enabled": False, "layer": 3}}, "gan")
    assert not off and off.on() == []


# ---------------------------------------------------------------- top-k generator loss (model.top_k)


def test_top_k_schedule_and_selection():
    from gan_lab.losses.adversarial import top_k_fraction, top_k_outputs

    assert top_k_fraction(0, 0.99, 0.5) == 1.0
    assert top_k_fraction(10, 0.99, 0.5) == pytest.approx(0.99**10, rel=1e-12)
    assert top_k_fraction(1000, 0.99, 0.5) == 0.5  # the floor
    out = torch.tensor([[0.3], [-1.0], [2.0], [0.1], [5.0]])
    # ceil(0.5 * 5) = 3 largest, whatever the order; never fewer than one
    assert sorted(top_k_outputs(out, 0.5).tolist()) == pytest.approx([0.3, 2.0, 5.0])
    assert top_k_outputs(out, 1e-6).tolist() == pytest.approx([5.0])
    assert top_k_outputs(out.squeeze(1), 1.0).shape == (5,)
    with pytest.raises(ValueError, match="one output per sample"):
        top_k_outputs(torch.zeros(4, 2), 0.5)


def test_top_k_generator_loss_uses_the_fakes_d_rates_most_real(tmp_path):
    module, datamodule = build(["model=gan", *RING, "model.top_k.enabled=true", "model.top_k.every=10",
                                "model.top_k.decay=0.5", "model.top_k.min_fraction=0.25"], tmp_path)
    batch = first_batch(datamodule)  # 16 points
    module.counters["step"] = 10  # one decay period done: half the batch is kept
    torch.manual_seed(5)
    _, logs = module.generator_loss(batch)
    torch.manual_seed(5)
    g, d = module.nets["generator"], module.nets["discriminator"]
    with torch.no_grad():
        d_fake = d(g(torch.randn(len(batch), module.latent_dim))).double().flatten()
    best = d_fake.sort(descending=True).values[:8]
    # the non-saturating G loss, softplus(-D(G(z))), averaged over the 8 best-rated fakes only
    assert float(logs["g_loss"].detach()) == pytest.approx(float(torch.nn.functional.softplus(-best).mean()), rel=1e-5)
    assert float(logs["top_k"]) == 0.5
    module.counters["step"] = 1000  # long past the floor
    _, logs = module.generator_loss(batch)
    assert float(logs["top_k"]) == 0.25


def test_top_k_trains_logs_and_is_off_by_default(tmp_path):
    metrics = train(["model=lsgan", *RING, "model.top_k.enabled=true", "model.top_k.every=1", "trainer.max_steps=3"],
                    tmp_path / "on")
    assert metrics["top_k"] == pytest.approx(0.99**2)  # the share at the last step (step 2)
    assert "top_k" not in train(["model=lsgan", *RING, "trainer.max_steps=1"], tmp_path / "off")


def test_conditional_models_refuse_top_k_only_when_it_is_on():
    from gan_lab.data import DataInfo
    from gan_lab.families.conditional import ConditionalGAN

    info = DataInfo("ring8", "points", (2,), num_classes=8)
    with pytest.raises(UserError, match="model=cgan: top-k training"):
        ConditionalGAN("cgan", info, top_k={"enabled": True})
    ConditionalGAN("cgan", info, top_k={"enabled": False, "decay": 0.9})  # off: builds


def test_top_k_settings_are_checked():
    from gan_lab.families.adversarial import parse_top_k

    assert parse_top_k(None) is None and parse_top_k({"enabled": False, "decay": 0.9}) is None
    assert parse_top_k(True) == {"decay": 0.99, "min_fraction": 0.5, "every": None}
    with pytest.raises(UserError, match="unknown setting model.top_k.floor"):
        parse_top_k({"enabled": True, "floor": 0.5})
    with pytest.raises(UserError, match="decay must be in"):
        parse_top_k({"decay": 1.5})
    with pytest.raises(UserError, match="min_fraction must be in"):
        parse_top_k({"min_fraction": 2})
