"""The engine on its own: what a family declares (groups, updates with intervals, phases, EMA
copies, family state) is what runs, counts, logs and resumes exactly."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from helpers import compose_config
from gan_lab.data import Batch
from gan_lab.engine import EMASpec, LabModule, OptimGroup, Phase, Update
from gan_lab.errors import UserError


class ToyFamily(LabModule):
    """Two small networks fitted to the data's mean in two phases: ``warm`` (3 batches of update
    ``a`` only), then ``main`` with ``a`` every batch and ``b`` every second batch (the step).
    Every update records (phase, tick, update) so the schedule can be checked; the record is the
    family's state, saved in checkpoints."""

    family = "toy"

    def __init__(self, name, data_info, run=None, warm: int = 3, every_b: int = 2):
        super().__init__(name, data_info, run)
        d = data_info.shape[0]
        self.add_net("a", nn.Linear(d, d))
        self.add_net("b", nn.Linear(d, d))
        self.trace: list[tuple[str, int, str]] = []
        self.declare(
            groups=[OptimGroup("ga", ("a",), {"name": "sgd", "lr": 0.05}),
                    OptimGroup("gb", ("b",), {"name": "adam", "lr": 0.01}, clip_grad_norm=0.5)],
            updates=[Update("a", "ga", "loss_a"), Update("b", "gb", "loss_b", every=every_b, step=True)],
            phases=[Phase("warm", ("a",), length=warm), Phase("main", ("a", "b"))],
            ema=[EMASpec("b", decay=0.5, rampup=None)],
            schedule="linear",
        )

    def _record(self, update):
        self.trace.append((self.phase.name, self.counters["phase_tick"], update))

    def loss_a(self, batch: Batch):
        self._record("a")
        # b is frozen here: its weights must get no gradient from this loss
        out = self.nets["b"](self.fwd("a")(batch.x))
        return ((out - batch.x) ** 2).mean(), {"loss_a": ((out - batch.x) ** 2).mean()}

    def loss_b(self, batch: Batch):
        self._record("b")
        assert self.nets["a"].weight.grad is None or not self.nets["a"].weight.requires_grad
        loss = (self.fwd("b")(batch.x) - batch.x.mean(0)).pow(2).mean() + 0.01 * torch.randn(()).abs()
        return loss, {"loss_b": loss}

    def sample(self, n, generator=None, condition=None, *, use_ema=True, **options):
        self.check_sample_options(options)
        z = torch.randn(n, self.data_info.shape[0], generator=generator)
        return Batch(self.sampling_net("b", use_ema)(z).detach())

    def family_state(self):
        return {"trace": list(self.trace)}

    def load_family_state(self, state):
        self.trace = [tuple(t) for t in state.get("trace", [])]


TOY = ["data=ring8", "data.source.n_samples=64", "data.batch_size=16", "print_config=false", "callbacks=minimal",
       "trainer.log_every_n_steps=1"]


def toy_config(run_dir, extra=()):
    from omegaconf import OmegaConf, open_dict

    cfg = compose_config(TOY + list(extra), run_dir)
    with open_dict(cfg):
        cfg.model = OmegaConf.create({"_target_": f"{__name__}.ToyFamily", "name": "toy", "warm": 3, "every_b": 2})
    return cfg


def run_toy(run_dir, extra=()):
    from gan_lab.train import run

    return run(toy_config(run_dir, extra))


def load(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=False)


def test_updates_phases_and_steps_follow_the_declaration(tmp_path):
    run_toy(tmp_path, ["trainer.max_steps=4"])
    meta = load(tmp_path)["gan_lab"]
    trace = [tuple(t) for t in meta["family_state"]["trace"]]
    # warm: 3 batches of a alone; main: a every batch, b (the step) after every second a
    assert trace[:3] == [("warm", 0, "a"), ("warm", 1, "a"), ("warm", 2, "a")]
    main = trace[3:]
    assert [u for _, _, u in main] == ["a", "a", "b"] * 4
    assert meta["counters"] == {"tick": 3 + 8, "step": 4, "phase": 1, "phase_tick": 8, "a": 11, "b": 4}
    assert meta["phase"] == "main" and meta["family"] == "toy"
    import csv

    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert {"lr/ga", "lr/gb", "a_grad_norm", "b_grad_norm", "loss_a", "loss_b"} <= set(rows[0])
    # one linear schedule per group, a function of the step: 0 at max_steps
    assert float(rows[-1]["lr/ga"]) == 0.0 and float(rows[0]["lr/gb"]) == pytest.approx(0.01 * 3 / 4)
    # gb clips its gradient norm to 0.5 before stepping; the logged norm is before clipping
    sd = load(tmp_path)["state_dict"]
    assert set(k.split(".")[0] for k in sd) == {"nets", "ema"} and "ema.b.weight" in sd


@pytest.mark.parametrize("stop_at", [2, 5], ids=["mid_phase_warm", "mid_interval_main"])
def test_resume_mid_phase_is_exact(stop_at, tmp_path):
    from gan_lab.train import RunStopped

    run_toy(tmp_path / "whole", ["trainer.max_steps=4"])
    with pytest.raises(RunStopped):
        run_toy(tmp_path / "cut", ["trainer.max_steps=4", "+callbacks.stop._target_=helpers.StopAt",
                                   f"+callbacks.stop.at={stop_at}", "+callbacks.stop.counter=tick"])
    assert load(tmp_path / "cut")["gan_lab"]["counters"]["tick"] == stop_at
    run_toy(tmp_path / "cut", ["trainer.max_steps=4", "resume=auto"])
    a, b = load(tmp_path / "whole"), load(tmp_path / "cut")
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["gan_lab"]["counters"] == b["gan_lab"]["counters"]
    assert a["gan_lab"]["family_state"] == b["gan_lab"]["family_state"]
    assert torch.equal(a["gan_lab"]["rng"]["torch"], b["gan_lab"]["rng"]["torch"])
    assert np.array_equal(a["gan_lab"]["rng"]["numpy"][1], b["gan_lab"]["rng"]["numpy"][1])


def test_declarations_are_checked():
    from gan_lab.data import DataInfo

    info = DataInfo("x", "points", (2,))

    class Broken(LabModule):
        def __init__(self, **kw):
            super().__init__("broken", info)
            self.add_net("a", nn.Linear(2, 2))
            self.declare(**kw)

        def loss(self, batch):
            return torch.zeros(()), {}

    group = OptimGroup("g", ("a",), {"name": "sgd", "lr": 0.1})
    with pytest.raises(ValueError, match="unknown networks"):
        Broken(groups=[OptimGroup("g", ("zz",), {})], updates=[Update("u", "g", "loss", step=True)])
    with pytest.raises(ValueError, match="no update is marked step=True"):
        Broken(groups=[group], updates=[Update("u", "g", "loss")])
    with pytest.raises(ValueError, match="does not have"):
        Broken(groups=[group], updates=[Update("u", "g", "nope", step=True)])
    with pytest.raises(ValueError, match="never end"):
        Broken(groups=[group], updates=[Update("u", "g", "loss", step=True), Update("v", "g", "loss")],
               phases=[Phase("p", ("u",), 2), Phase("q", ("v",))])
    with pytest.raises(UserError, match="unknown lr schedule"):
        Broken(groups=[group], updates=[Update("u", "g", "loss", step=True)], schedule="zigzag")


def test_sample_options_and_conditions_are_refused_clearly(tmp_path):
    from gan_lab.checkpoint import load_module

    run_toy(tmp_path, ["trainer.max_steps=1"])
    module, _, _ = load_module(str(tmp_path / "checkpoints" / "last.ckpt"))
    with pytest.raises(UserError, match="model=toy does not take truncation when sampling"):
        module.sample(3, truncation=0.5)
    with pytest.raises(UserError, match="unconditional"):
        module.condition_for("all", 3)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(module.sample(5, gen()).x, module.sample(5, gen()).x)  # its own generator only


def test_linear_schedule_can_hold_then_decay():
    from gan_lab.engine.optim import schedule_factor

    f = schedule_factor("linear", 100, hold=0.5)  # Pix2Pix/CycleGAN: constant, then linear to 0
    assert [f(s) for s in (0, 50, 75, 100, 120)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert schedule_factor("linear", 100)(25) == 0.75  # no hold: the whole way
    with pytest.raises(UserError, match="lr_hold"):
        schedule_factor("linear", 100, hold=1.0)
