"""Mixed precision and speed switches, each smoke-tested on CPU."""

import os
import warnings
from functools import partial

import pytest
import torch

from helpers import compose_config, train

FAST = ["data=ring8", "trainer.max_steps=2", "trainer.log_every_n_steps=1"]


def finite(metrics):
    return all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_bf16_mixed_on_cpu_with_full_precision_penalty(tmp_path):
    metrics = train(FAST + ["model=wgan_gp", "trainer.precision=bf16-mixed"], tmp_path)
    assert finite(metrics) and metrics["penalty"] >= 0


def test_penalty_runs_in_float32_under_autocast():
    from gan_lab.data import Batch
    from gan_lab.data.sources import Ring8
    from gan_lab.families import AdversarialGAN
    from gan_lab.networks import mlp_pair

    _, info = Ring8(n_samples=64).load()
    module = AdversarialGAN("wgan_gp", info, loss="wasserstein", net={"arch": "mlp", "mlp": partial(mlp_pair, width=16)},
                            penalty={"name": "gp", "weight": 10.0})
    dtypes = []
    module.discriminator.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, logs = module.discriminator_loss(Batch(torch.randn(8, 2)))
    assert dtypes == [torch.bfloat16, torch.bfloat16, torch.float32]  # D(real), D(fake), D(x_hat)
    assert logs["penalty"].dtype == torch.float32


def test_16_mixed_on_cpu_falls_back_to_bf16(tmp_path):
    # Lightning 2.6 has no fp16 autocast on CPU; it warns and trains in bf16-mixed instead
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train(FAST + ["model=gan", "trainer.precision=16-mixed"], tmp_path)
    assert finite(metrics)
    assert any("Using `precision='bf16-mixed'` instead" in str(w.message) for w in caught)


def test_unknown_precision_is_one_clear_error(tmp_path):
    from gan_lab.errors import UserError

    with pytest.raises(UserError, match="precision"):
        train(FAST + ["model=gan", "trainer.precision=12-bits"], tmp_path)


def test_compile(tmp_path):
    # aot_eager goes through dynamo and AOTAutograd like inductor, without the C++ build time
    metrics = train(FAST + ["model=wgan_gp", "compile=true", "compile_backend=aot_eager"], tmp_path)
    assert finite(metrics) and metrics["penalty"] >= 0  # penalty path stays uncompiled (double backward)


def test_channels_last(tmp_path):
    metrics = train(["data=mnist_5k", "trainer.max_steps=2", "trainer.log_every_n_steps=1", "model=dcgan",
                     "channels_last=true"], tmp_path)
    assert finite(metrics)
    sd = torch.load(os.path.join(tmp_path, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=False)["state_dict"]
    conv = next(v for k, v in sd.items() if k.startswith("nets.discriminator.") and v.dim() == 4 and v.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_speed_switches_compose():
    cfg = compose_config(["compile=true", "channels_last=true", "trainer.precision=bf16-mixed", "divergence=skip"])
    assert cfg.compile and cfg.channels_last and cfg.divergence == "skip"
