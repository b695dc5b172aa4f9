"""Image-to-image translation: Pix2Pix (paired) and CycleGAN (unpaired).

* :class:`Pix2Pix` (Isola et al. 2017): a U-Net ``generator`` with decoder dropout as its noise
  and a PatchGAN ``discriminator`` judging (input, image) pairs; G minimises the cGAN term plus
  ``lambda_l1`` times L1 to the target. Updates per batch: ``d`` then ``g`` (the step). The
  ablations of the paper are settings: ``adversarial=false`` (L1 alone: no D is trained),
  ``lambda_l1=0`` (cGAN alone), ``conditional_d=false`` (D judges the output alone).
* :class:`CycleGAN` (Zhu et al. 2017): ``g_ab``, ``g_ba`` (ResNet generators) and ``d_a``, ``d_b``
  (PatchGANs judging domain A and B); the generators minimise the adversarial terms plus
  ``lambda_cycle`` times the cycle L1 (and ``lambda_identity * lambda_cycle`` times the identity
  L1); the discriminators are trained on the generators' last fakes through a history buffer of
  ``pool_size`` images each. Updates per batch: ``g`` (both generators, the step) then ``d`` (both
  discriminators), as the original.

A step is one update of the generator(s). The adversarial losses are the lab's (``loss=``),
scaled like the originals (:mod:`gan_lab.losses.translation`). Random jitter (resize to
``load_size``, crop ``crop_size``, mirror: ``DataInfo.extras``) is applied here, from a generator
of the family's whose state is saved in checkpoints; image pools are saved the same way. Under
DDP each process keeps its own pools and jitter stream; the engine saves every rank's (family
state and random streams), so a DDP run resumes exactly on the same number of processes.

Evaluation (``metrics=[...]`` and ``gan_lab.evaluate``) scores translations of the **test split**:
:meth:`evaluation_sample` translates test inputs (all of them, in a seeded order, cycling when
more samples are asked) and hands the metrics the outputs with their targets, input labels and,
for CycleGAN, the reconstructions. Direction: the data's A → B (Pix2Pix: input → target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gan_lab import checks
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine import EMASpec, LabModule, OptimGroup, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.losses.translation import (
    ImagePool,
    cyclegan_g_loss,
    jitter,
    paired_jitter,
    pix2pix_g_loss,
    translation_adversarial,
    translation_d_loss,
)
from gan_lab.networks.translation import PatchDiscriminator, ResNetTranslator, UNetGenerator, patch_layers_for_size

DEFAULT_OPTIMIZER = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
GRID_IMAGES = 8  # test images shown in a sample grid


@dataclass
class Translated(Batch):
    """Translations as the metrics see them: ``x`` the outputs, ``target`` what they should be
    (paired), ``y`` the inputs' labels, ``inputs`` the inputs, ``reconstruction`` the round trip
    back to the input domain (unpaired)."""

    inputs: Tensor | None = None
    reconstruction: Tensor | None = None


class _Translation(LabModule):
    """What both translation models share: jitter, grids and evaluation on the test split."""

    family = "translation"
    sample_options = ("direction",)
    augmentable = True  # augment=diffaugment: what each discriminator judges (with its condition) is augmented

    def __init__(self, name: str, data_info: DataInfo, run: RunOptions | None, loss: str, loss_scale: str,
                 jitter_seed: int):
        super().__init__(name, data_info, run)
        if getattr(self.augmenter, "adaptive", False):
            raise UserError(f"model={name} takes augment=diffaugment; augment=ada reads a real/fake logit per image, "
                            "which the PatchGAN discriminators do not give")
        self.adv = translation_adversarial(loss, loss_scale)
        extras = data_info.extras
        self.load_size = int(extras.get("load_size", data_info.shape[-1]))
        self.crop_size = int(extras.get("crop_size", data_info.shape[-1]))
        self.flip = bool(extras.get("flip", False))
        self.jitter_generator = torch.Generator().manual_seed(checks.integer(jitter_seed, "model.jitter_seed"))
        self._grid_inputs: Batch | None = None
        self._eval: tuple[Any, Tensor, int] | None = None  # (generator, order, cursor) of one evaluation

    @property
    def jitters(self) -> bool:
        return self.load_size != self.crop_size or self.flip

    @staticmethod
    def _optimizer_config(cfg: dict | None, key: str) -> dict:
        return dict(checks.mapping(cfg, key) or DEFAULT_OPTIMIZER)

    # ------------------------------------------------------------------ state

    def family_state(self) -> dict:
        return {"jitter_generator": self.jitter_generator.get_state()}

    def load_family_state(self, state: dict) -> None:
        if "jitter_generator" in state:
            self.jitter_generator.set_state(state["jitter_generator"])

    # ------------------------------------------------------------------ test inputs

    def _test_set(self, data) -> Any:
        split = "test" if "test" in data.splits else ("val" if "val" in data.splits else None)
        return data.dataset_for(split)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and self._grid_inputs is None:
            self.set_grid_inputs(datamodule)

    def set_grid_inputs(self, data) -> None:
        """The fixed test images every sample grid of a run shows (the first of the test split)."""
        from gan_lab.data.module import take

        dataset = self._test_set(data)
        count = min(GRID_IMAGES, len(dataset))
        # spread over the split (sets stored sorted by class show every class)
        self._grid_inputs = take(dataset, torch.linspace(0, len(dataset) - 1, count).round().long())

    def evaluation_sample(self, n: int, generator: torch.Generator, data: Any = None, *, use_ema: bool = True,
                          **options) -> Batch:
        """Translations of ``n`` test inputs: every test input once, in an order drawn from
        ``generator`` (a new generator starts a new pass), cycling when ``n`` exceeds the split."""
        from gan_lab.data.module import take

        if data is None:
            raise UserError(f"model={self.name} is scored on translations of the test split: it needs the data")
        dataset = self._test_set(data)
        if self._eval is None or self._eval[0] is not generator:
            self._eval = (generator, torch.randperm(len(dataset), generator=generator), 0)
        gen, order, cursor = self._eval
        index = order[(cursor + torch.arange(n)) % len(order)]
        self._eval = (gen, order, cursor + n)
        batch = take(dataset, index)
        return self.translate_batch(batch, generator, use_ema=use_ema, **options)

    def translate_batch(self, batch: Batch, generator: torch.Generator | None, *, use_ema: bool = True,
                        **options) -> Translated:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        """Translations of ``condition`` (a batch of input images, or a :class:`Batch`)."""
        self.check_sample_options(options)
        if condition is None:
            raise UserError(f"model={self.name} translates images: give it inputs (python -m gan_lab.translate "
                            f"ckpt=... split=test out=...)")
        batch = condition if isinstance(condition, Batch) else Batch(torch.as_tensor(condition))
        return self.translate_batch(batch.select(slice(0, n)), generator, use_ema=use_ema, **options)

    def condition_for(self, labels: Any, n: int) -> Any:
        raise UserError(f"model={self.name} is a translation model: it takes no labels= (see gan_lab.translate)")

    def grid(self, generator: torch.Generator):
        if self._grid_inputs is None:
            raise UserError(f"model={self.name}: no test images for the sample grid")
        out = self.translate_batch(self._grid_inputs, generator)
        columns = self.grid_rows(out)
        # one test example per row: input | output | target (or reconstruction)
        images = torch.stack([img for example in zip(*columns) for img in example])
        return Batch(images), len(columns), None

    def grid_rows(self, out: Translated) -> list[Tensor]:  # pragma: no cover - abstract
        """The grid's columns, each a batch of images."""
        raise NotImplementedError


class Pix2Pix(_Translation):
    """Paired translation: ``generator`` (U-Net), ``discriminator`` (PatchGAN on pairs)."""

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        loss: str = "non_saturating",
        loss_scale: str = "original",
        generator: dict | None = None,
        discriminator: dict | None = None,
        lambda_l1: float = 100.0,
        adversarial: bool = True,
        conditional_d: bool = True,
        g_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        lr_schedule: str = "linear",
        lr_hold: float = 0.5,
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
        ema: dict | None = None,
        jitter_seed: int = 0,
        sample_dropout: bool = True,
    ):
        if data_info.modality != "image" or data_info.pairing != "paired":
            raise UserError(
                f"model={name} needs paired images (data=edges2mnist_5k, pix2pix_folder, facades, maps, edges2shoes); "
                f"data {data_info.name} is {data_info.modality} data, pairing {data_info.pairing or 'none'}"
            )
        super().__init__(name, data_info, run, loss, loss_scale, jitter_seed)
        self.lambda_l1 = checks.number(lambda_l1, "model.lambda_l1", minimum=0)
        self.adversarial = checks.boolean(adversarial, "model.adversarial")
        self.conditional_d = checks.boolean(conditional_d, "model.conditional_d")
        self.sample_dropout = checks.boolean(sample_dropout, "model.sample_dropout")
        if not self.adversarial and self.lambda_l1 == 0:
            raise UserError("model.adversarial=false with model.lambda_l1=0 leaves the generator nothing to learn")
        in_ch, out_ch = data_info.shape[0], data_info.shape_b[0]
        g = dict(checks.mapping(generator, "model.generator"))
        self.add_net("generator", UNetGenerator(in_ch, out_ch, self.crop_size, **g))
        groups = [OptimGroup("g", ("generator",), self._optimizer_config(g_optimizer, "model.g_optimizer"))]
        updates = [Update("g", "g", "generator_loss", step=True)]
        if self.adversarial:
            d = dict(checks.mapping(discriminator, "model.discriminator"))
            if d.get("n_layers") in (None, "auto"):
                d["n_layers"] = patch_layers_for_size(self.crop_size)
            self.add_net("discriminator", PatchDiscriminator(out_ch, in_ch if self.conditional_d else 0,
                                                             image_size=self.crop_size, **d))
            groups.append(OptimGroup("d", ("discriminator",), self._optimizer_config(d_optimizer, "model.d_optimizer")))
            updates.insert(0, Update("d", "d", "discriminator_loss"))
        ema = checks.mapping(ema, "model.ema")
        self.declare(
            groups=groups, updates=updates,
            ema=[EMASpec("generator", checks.number(ema["decay"], "model.ema.decay", positive=True),
                         checks.integer(ema.get("start", 0), "model.ema.start", minimum=0))] if ema.get("decay") else [],
            schedule=lr_schedule, warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
            schedule_steps=lr_schedule_steps, schedule_hold=lr_hold,
        )

    def prepare_batch(self, batch: Batch) -> Batch:
        batch = super().prepare_batch(batch)
        if self.jitters:
            x, target = paired_jitter(batch.x.cpu(), batch.target.cpu(), self.jitter_generator, self.load_size,
                                      self.crop_size, self.flip)
            batch.x, batch.target = x.to(batch.x.device), target.to(batch.target.device)
        return batch

    def judge(self, image: Tensor, condition: Tensor) -> Tensor:
        if not self.conditional_d:
            return self.fwd("discriminator")(self.augment_images(image), None)
        return self.fwd("discriminator")(*self.augment_images(image, condition))  # one draw for both: aligned

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        with torch.no_grad():
            fake = self.fwd("generator")(batch.x)
        loss, logs = translation_d_loss(self.adv, self.judge(batch.target, batch.x), self.judge(fake, batch.x))
        return loss, logs

    def generator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        fake = self.fwd("generator")(batch.x)
        if not self.adversarial:
            l1 = (fake - batch.target).abs().mean()
            return l1, {"g_l1": l1.detach()}
        d_real = None
        if self.adv.uses_real:
            with torch.no_grad():
                d_real = self.judge(batch.target, batch.x)
        loss, logs = pix2pix_g_loss(self.adv, self.judge(fake, batch.x), fake, batch.target, d_real, self.lambda_l1)
        return loss, {"g_loss": loss.detach(), **logs}

    def translate_batch(self, batch: Batch, generator: torch.Generator | None, *, use_ema: bool = True,
                        direction: str | None = None, **options) -> Translated:
        if direction not in (None, "AtoB"):
            raise UserError(f"model={self.name} translates in the direction it was trained (input -> target, "
                            f"'AtoB' here); for the other one train with data.source.direction swapped")
        g = self.sampling_net("generator", use_ema)
        x = batch.x.to(self.device)
        with self.sampling_mode(g):
            # the paper keeps dropout on at test time: it is the generator's noise
            out = g(x, generator=generator, dropout=self.sample_dropout)
        return Translated(out, batch.y, index=batch.index, target=batch.target, inputs=x)

    def grid_rows(self, out: Translated) -> list[Tensor]:
        rows = [out.inputs, out.x]
        if out.target is not None:
            rows.append(out.target.to(out.x.device))
        return [_as_rgb_like(r, out.x) for r in rows]


class CycleGAN(_Translation):
    """Unpaired translation: ``g_ab``, ``g_ba`` (ResNet generators), ``d_a``, ``d_b`` (PatchGANs)."""

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        loss: str = "least_squares",
        loss_scale: str = "original",
        generator: dict | None = None,
        discriminator: dict | None = None,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        g_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        lr_schedule: str = "linear",
        lr_hold: float = 0.5,
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
        ema: dict | None = None,
        jitter_seed: int = 0,
        pool_seed: int = 0,
    ):
        if data_info.modality != "image" or data_info.pairing != "unpaired":
            raise UserError(
                f"model={name} needs unpaired images (data=mnist2digits, unpaired_folder, horse2zebra); "
                f"data {data_info.name} is {data_info.modality} data, pairing {data_info.pairing or 'none'}"
            )
        super().__init__(name, data_info, run, loss, loss_scale, jitter_seed)
        self.lambda_cycle = checks.number(lambda_cycle, "model.lambda_cycle", minimum=0)
        self.lambda_identity = checks.number(lambda_identity, "model.lambda_identity", minimum=0)
        ch_a, ch_b = data_info.shape[0], data_info.shape_b[0]
        if self.lambda_identity > 0 and self.lambda_cycle > 0 and ch_a != ch_b:
            raise UserError(f"model.lambda_identity needs domains with the same channels ({ch_a} vs {ch_b}); "
                            "set model.lambda_identity=0")
        g = dict(checks.mapping(generator, "model.generator"))
        d = dict(checks.mapping(discriminator, "model.discriminator"))
        if d.get("n_layers") in (None, "auto"):
            d["n_layers"] = patch_layers_for_size(self.crop_size)
        self.add_net("g_ab", ResNetTranslator(ch_a, ch_b, self.crop_size, **g))
        self.add_net("g_ba", ResNetTranslator(ch_b, ch_a, self.crop_size, **g))
        self.add_net("d_a", PatchDiscriminator(ch_a, 0, image_size=self.crop_size, **d))
        self.add_net("d_b", PatchDiscriminator(ch_b, 0, image_size=self.crop_size, **d))
        pool_size = checks.integer(pool_size, "model.pool_size", minimum=0)
        seed = checks.integer(pool_seed, "model.pool_seed")
        self.pool_a = ImagePool(pool_size, seed=seed)
        self.pool_b = ImagePool(pool_size, seed=seed + 1)
        self._fakes: tuple[Tensor, Tensor] | None = None  # the g update's fakes, for the d update
        ema = checks.mapping(ema, "model.ema")
        specs = []
        if ema.get("decay"):
            decay = checks.number(ema["decay"], "model.ema.decay", positive=True)
            start = checks.integer(ema.get("start", 0), "model.ema.start", minimum=0)
            specs = [EMASpec("g_ab", decay, start), EMASpec("g_ba", decay, start)]
        self.declare(
            groups=[OptimGroup("g", ("g_ab", "g_ba"), self._optimizer_config(g_optimizer, "model.g_optimizer")),
                    OptimGroup("d", ("d_a", "d_b"), self._optimizer_config(d_optimizer, "model.d_optimizer"))],
            updates=[Update("g", "g", "generator_loss", step=True), Update("d", "d", "discriminator_loss")],
            ema=specs, schedule=lr_schedule, warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
            schedule_steps=lr_schedule_steps, schedule_hold=lr_hold,
        )

    def family_state(self) -> dict:
        return {**super().family_state(), "pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_family_state(self, state: dict) -> None:
        super().load_family_state(state)
        if "pool_a" in state:
            self.pool_a.load_state_dict(state["pool_a"])
            self.pool_b.load_state_dict(state["pool_b"])

    def prepare_batch(self, batch: Batch) -> Batch:
        batch = super().prepare_batch(batch)
        if self.jitters:
            # the two domains are jittered independently, as the original's two transforms
            batch.x = jitter(batch.x.cpu(), self.jitter_generator, self.load_size, self.crop_size,
                             self.flip).to(batch.x.device)
            batch.x_b = jitter(batch.x_b.cpu(), self.jitter_generator, self.load_size, self.crop_size,
                               self.flip).to(batch.x_b.device)
        return batch

    def judge(self, discriminator: str, image: Tensor) -> Tensor:
        """The PatchGAN ``discriminator`` (d_a or d_b) on ``image`` (augmented with ``augment=``)."""
        return self.fwd(discriminator)(self.augment_images(image))

    def generator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        a, b = batch.x, batch.x_b
        fake_b, fake_a = self.fwd("g_ab")(a), self.fwd("g_ba")(b)
        rec_a, rec_b = self.fwd("g_ba")(fake_b), self.fwd("g_ab")(fake_a)
        same_a = same_b = None
        if self.lambda_identity > 0 and self.lambda_cycle > 0:
            same_a, same_b = self.fwd("g_ba")(a), self.fwd("g_ab")(b)
        d_b_real = d_a_real = None
        if self.adv.uses_real:
            with torch.no_grad():
                d_b_real, d_a_real = self.judge("d_b", b), self.judge("d_a", a)
        loss, logs = cyclegan_g_loss(
            self.adv, real_a=a, real_b=b, rec_a=rec_a, rec_b=rec_b, d_b_fake=self.judge("d_b", fake_b),
            d_a_fake=self.judge("d_a", fake_a), same_a=same_a, same_b=same_b, d_b_real=d_b_real, d_a_real=d_a_real,
            lambda_cycle=self.lambda_cycle, lambda_identity=self.lambda_identity,
        )
        self._fakes = (fake_a.detach(), fake_b.detach())
        return loss, {"g_loss": loss.detach(), **logs}

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        if self._fakes is None:  # a d update without this batch's g update (not with the declared order)
            with torch.no_grad():
                self._fakes = (self.fwd("g_ba")(batch.x_b), self.fwd("g_ab")(batch.x))
        fake_a, fake_b = self._fakes
        self._fakes = None
        loss_a, logs_a = translation_d_loss(self.adv, self.judge("d_a", batch.x),
                                            self.judge("d_a", self.pool_a.query(fake_a)))
        loss_b, logs_b = translation_d_loss(self.adv, self.judge("d_b", batch.x_b),
                                            self.judge("d_b", self.pool_b.query(fake_b)))
        loss = loss_a + loss_b
        return loss, {"d_loss": loss.detach(), "d_a_loss": logs_a["d_loss"], "d_b_loss": logs_b["d_loss"]}

    def translate_batch(self, batch: Batch, generator: torch.Generator | None, *, use_ema: bool = True,
                        direction: str | None = None, **options) -> Translated:
        direction = direction or "AtoB"
        if direction not in ("AtoB", "BtoA"):
            raise UserError(f"direction must be AtoB or BtoA, got {direction!r}")
        forward, back = ("g_ab", "g_ba") if direction == "AtoB" else ("g_ba", "g_ab")
        # a two-domain batch holds A in x and B in x_b; a one-domain batch holds the input in x
        two = batch.x_b is not None and batch.x_b is not batch.x
        x = (batch.x_b if direction == "BtoA" and two else batch.x).to(self.device)
        y = batch.y_b if direction == "BtoA" and two else batch.y
        g, g_back = self.sampling_net(forward, use_ema), self.sampling_net(back, use_ema)
        with self.sampling_mode(g, g_back):
            out = g(x)
            rec = g_back(out)
        return Translated(out, y, index=batch.index, inputs=x, reconstruction=rec)

    def grid_rows(self, out: Translated) -> list[Tensor]:
        return [_as_rgb_like(r, out.x) for r in (out.inputs, out.x, out.reconstruction)]


def _as_rgb_like(images: Tensor, like: Tensor) -> Tensor:
    """``images`` with ``like``'s channel count (grayscale repeated), for one grid."""
    if images.shape[1] == like.shape[1]:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, like.shape[1], -1, -1)
    return images.mean(dim=1, keepdim=True).expand(-1, like.shape[1], -1, -1)
