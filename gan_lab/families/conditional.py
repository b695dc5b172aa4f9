"""The class-conditional family: CGAN, ACGAN, the projection cGAN, BigGAN and the semi-supervised GAN.

Every model here is one generator against one discriminator, so :class:`ConditionalGAN`
subclasses :class:`~gan_lab.families.adversarial.AdversarialGAN` and only overrides its hooks
(networks, generator inputs, the two losses, sampling). The engine sees the same declaration:
networks ``generator`` and ``discriminator``, groups ``g`` and ``d``, update ``d`` every batch and
``g`` (the step) after every ``n_critic``-th, an EMA generator where ``model.ema`` is set.

``model.conditioning`` says how the label enters (the variants are configs,
``conf/model/<name>.yaml``):

============== ======================================================= =========================
conditioning   how                                                      variants
============== ======================================================= =========================
input          G(z, y) with a label embedding concatenated to z; D sees cgan
               one-hot label maps (conv) or the one-hot code (MLP)
auxiliary      G(z, y) as cgan; D = real/fake logit + class logits,    acgan
               class cross-entropy on real and fake in D, on fake in G
projection     conditional-BN generator; projection D with spectral    cgan_proj (ResNet),
               norm: ``linear(h) + <embed(y), h>``                      biggan (BigGAN nets)
semi_supervised G(z) unconditional; D a K-way classifier whose fake     ssgan
               class is the (K+1)-th logit fixed at 0; feature matching
               for G; D trains on a labelled subset plus all data
============== ======================================================= =========================

Labels come from the data (``Batch.y``); a data set without labels is a one-line error at
construction. Sampling takes a condition (int64 labels, one per sample; ``labels=all|k|[k1,..]``
through :meth:`condition_for`), draws labels cycling through the classes when none is given, and
for BigGAN a truncation ``psi`` (latent entries beyond ``±psi`` redrawn).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab import checks
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.data.labels import cycle_labels, parse_labels
from gan_lab.engine import RunOptions
from gan_lab.errors import UserError
from gan_lab.families.adversarial import AdversarialGAN, parse_top_k
from gan_lab.losses.conditional import (
    acgan_d_loss,
    orthogonal_regularization,
    ssgan_d_loss,
    ssgan_real_logit,
)

CONDITIONINGS = ("input", "auxiliary", "projection", "semi_supervised")
ARCHS = ("auto", "mlp", "dcgan", "resnet", "biggan")
# what net.arch=auto builds for images (points always get the MLPs)
AUTO_IMAGE_ARCH = {"input": "dcgan", "auxiliary": "dcgan", "projection": "resnet", "semi_supervised": "dcgan"}
ARCH_SETTINGS = {
    "mlp": ("width", "g_depth", "d_depth", "g_batch_norm"),
    "dcgan": ("g_width", "d_width"),
    "resnet": ("g_width", "d_width"),
    "biggan": ("g_width", "d_width", "shared_dim", "attention", "init"),
}
NET_KEYS = ("arch", "d_norm", "embed_dim", *ARCH_SETTINGS)
GRID_ROWS = 10  # a conditional grid shows at most this many classes, one per row
GRID_PER_ROW = 10


class ConditionalGAN(AdversarialGAN):
    """A class-conditional (or semi-supervised) G-vs-D model; see the module docstring.

    Beyond :class:`AdversarialGAN`'s arguments (``pack`` excepted):

    Args:
        conditioning: input | auxiliary | projection | semi_supervised.
        fake_labels: the labels fakes are generated for in training: ``batch`` (those of the
            real batch, so fakes follow the data's class frequencies and gradient penalties see
            one label per pair) or ``uniform``.
        class_loss: ACGAN's class cross-entropy weights ``{d_real, d_fake, g}``.
        ortho_reg: BigGAN's orthogonal regularisation strength beta on G's weights (0: off).
        truncation_trick: sampling takes ``truncation=psi`` (BigGAN).
        ssgan: the semi-supervised GAN's settings ``{labeled_batch_size, unsupervised_weight,
            input_noise, hidden_noise}``.
    """

    family = "conditional"

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        conditioning: str = "input",
        fake_labels: str = "batch",
        class_loss: dict | None = None,
        ortho_reg: float = 0.0,
        truncation_trick: bool = False,
        ssgan: dict | None = None,
        **adversarial: Any,
    ):
        if "pack" in adversarial:
            raise UserError(f"model={name}: PacGAN packing (model.pack) applies to unconditional models only")
        if parse_top_k(adversarial.get("top_k")):  # a disabled top_k mapping is no request
            raise UserError(f"model={name}: top-k training (model.top_k) applies to unconditional models only")
        # read by the hooks AdversarialGAN.__init__ calls (build_networks, check_metrics, ...)
        self.conditioning = checks.choice(conditioning, "model.conditioning", CONDITIONINGS)
        self.num_classes = int(data_info.num_classes)
        if self.num_classes < 2:
            raise UserError(f"model={name} is class-conditional and needs labelled data, but data {data_info.name} "
                            f"has no labels (num_classes={data_info.num_classes}); use a labelled set "
                            "(mnist_5k, digits, cifar10, ...) or an unconditional model")
        self.semi_supervised = self.conditioning == "semi_supervised"
        self.conditional = not self.semi_supervised
        self.has_classifier = self.conditioning in ("auxiliary", "semi_supervised")
        self.fake_labels = checks.choice(fake_labels, "model.fake_labels", ("batch", "uniform"))
        weights = {"d_real": 1.0, "d_fake": 1.0, "g": 1.0}
        class_loss = checks.mapping(class_loss, "model.class_loss")
        unknown = sorted(set(class_loss) - set(weights))
        if unknown:
            raise UserError(f"unknown setting model.class_loss.{unknown[0]}; it takes: {', '.join(weights)}")
        self.class_weights = {k: checks.number(class_loss.get(k, v), f"model.class_loss.{k}", minimum=0)
                              for k, v in weights.items()}
        self.ortho_reg = checks.number(ortho_reg, "model.ortho_reg", minimum=0)
        self.truncation_trick = checks.boolean(truncation_trick, "model.truncation_trick")
        self.sample_options = ("truncation",) if self.truncation_trick else ()
        settings = {"labeled_batch_size": 100, "unsupervised_weight": 1.0, "input_noise": 0.0, "hidden_noise": 0.0}
        given = checks.mapping(ssgan, "model.ssgan")
        unknown = sorted(set(given) - set(settings))
        if unknown:
            raise UserError(f"unknown setting model.ssgan.{unknown[0]}; it takes: {', '.join(settings)}")
        settings.update(given)
        self.ssgan = {
            "labeled_batch_size": checks.integer(settings["labeled_batch_size"], "model.ssgan.labeled_batch_size", 1),
            "unsupervised_weight": checks.number(settings["unsupervised_weight"], "model.ssgan.unsupervised_weight",
                                                 minimum=0),
            "input_noise": checks.number(settings["input_noise"], "model.ssgan.input_noise", minimum=0),
            "hidden_noise": checks.number(settings["hidden_noise"], "model.ssgan.hidden_noise", minimum=0),
        }
        self.labelled_pool: tuple[Tensor, Tensor] | None = None  # SSGAN's labelled subset, loaded at fit start
        super().__init__(name, data_info, run, **adversarial)
        if self.semi_supervised and self.loss.name != "non_saturating":
            raise UserError(f"model={name}: the semi-supervised GAN's loss is its (K+1)-way cross-entropy; "
                            f"loss={self.loss.name} does not apply (leave loss=non_saturating)")
        self._ortho_params = self.orthogonal_parameters() if self.ortho_reg else []

    # ------------------------------------------------------------------ construction hooks

    def refused_tricks(self) -> dict[str, str]:
        if self.semi_supervised:
            return {"one_sided_label_smoothing": "its D loss is the (K+1)-way cross-entropy, not a real/fake one"}
        return {}

    def reference_labels(self, n: int) -> Tensor | None:
        return cycle_labels(n, list(range(self.num_classes))) if self.conditional else None

    def resolve_arch(self, arch: str) -> str:
        arch = checks.choice(arch, "model.net.arch", ARCHS)
        image = self.data_info.modality == "image"
        if arch == "auto":
            return AUTO_IMAGE_ARCH[self.conditioning] if image else "mlp"
        if arch != "mlp" and not image:
            raise UserError(f"model.net.arch={arch} needs images, but data {self.data_info.name} is "
                            f"{self.data_info.modality} data of shape {tuple(self.data_info.shape)}; "
                            f"use model.net.arch=mlp" + (" (a projection cGAN with MLPs)"
                                                         if self.conditioning == "projection" else ""))
        if arch in ("resnet", "biggan") and self.conditioning != "projection":
            raise UserError(f"model.net.arch={arch} builds a projection discriminator: it goes with "
                            f"model.conditioning=projection (cgan_proj, biggan), not {self.conditioning}; "
                            "use mlp or dcgan")
        return arch

    def build_networks(self, net: dict | None):
        from gan_lab.networks.biggan import BigGANDiscriminator, BigGANGenerator
        from gan_lab.networks.conditional import (
            ACGANDiscriminator,
            CGANDiscriminator,
            CGANGenerator,
            CondBNResNetGenerator,
            ProjectionDiscriminator,
            SSGANDiscriminator,
        )
        from gan_lab.networks.dcgan import DCGANDiscriminator, DCGANGenerator
        from gan_lab.networks.mlp import MLPDiscriminator, MLPGenerator

        net = checks.mapping(net, "model.net")
        unknown = sorted(set(net) - set(NET_KEYS))
        if unknown:
            raise UserError(f"unknown setting model.net.{unknown[0]}; it takes: {', '.join(NET_KEYS)}")
        arch = self.resolve_arch(net.get("arch", "auto"))
        s = checks.mapping(net.get(arch), f"model.net.{arch}")
        unknown = sorted(set(s) - set(ARCH_SETTINGS[arch]))
        if unknown:
            raise UserError(f"unknown setting model.net.{arch}.{unknown[0]}; "
                            f"it takes: {', '.join(ARCH_SETTINGS[arch])}")
        info, k, z = self.data_info, self.num_classes, self.latent_dim
        shape = tuple(info.shape)
        d_norm = net.get("d_norm", "batch")
        embed_dim = net.get("embed_dim")
        if embed_dim is not None:
            embed_dim = checks.integer(embed_dim, "model.net.embed_dim", minimum=1)
        mb = self.tricks.settings.get("minibatch_discrimination") or {}
        trunk = {"norm": d_norm, "minibatch_kernels": mb.get("kernels", 0),
                 "minibatch_kernel_dim": mb.get("kernel_dim", 5)}
        image = info.modality == "image"

        def width(key: str, default: int) -> int:
            return checks.integer(s.get(key, default), f"model.net.{arch}.{key}", minimum=1)

        if arch == "mlp":
            w = width("width", 256)
            g_depth, d_depth = width("g_depth", 3), width("d_depth", 3)
            g_bn = checks.boolean(s.get("g_batch_norm", True), f"model.net.{arch}.g_batch_norm")
            if self.semi_supervised:
                g = MLPGenerator(z, shape, w, g_depth, g_bn, tanh=image)
            else:
                g = CGANGenerator(z, shape, k, arch="mlp", width=w, depth=g_depth, embed_dim=embed_dim, batch_norm=g_bn)
            cases = {
                "input": lambda: CGANDiscriminator(shape, k, "mlp", w, d_depth, **trunk),
                "auxiliary": lambda: ACGANDiscriminator(shape, k, "mlp", w, d_depth, **trunk),
                "semi_supervised": lambda: SSGANDiscriminator(shape, k, "mlp", w, d_depth, **trunk,
                                                              input_noise=self.ssgan["input_noise"],
                                                              hidden_noise=self.ssgan["hidden_noise"]),
                "projection": lambda: MLPDiscriminator(shape, w, d_depth, d_norm, num_classes=k),
            }
            return g, cases[self.conditioning]()
        if arch == "dcgan":
            gw, dw = width("g_width", 64), width("d_width", 64)
            if self.semi_supervised:
                from gan_lab.networks.cond_layers import image_size_plan

                image_size_plan(shape, "the DCGAN generator")  # one line for a size it cannot take
                g = DCGANGenerator(z, shape[0], shape[1], gw)
            else:
                g = CGANGenerator(z, shape, k, arch="conv", width=gw, embed_dim=embed_dim)
            cases = {
                "input": lambda: CGANDiscriminator(shape, k, "conv", dw, **trunk),
                "auxiliary": lambda: ACGANDiscriminator(shape, k, "conv", dw, **trunk),
                "semi_supervised": lambda: SSGANDiscriminator(shape, k, "conv", dw, **trunk,
                                                              input_noise=self.ssgan["input_noise"],
                                                              hidden_noise=self.ssgan["hidden_noise"]),
                "projection": lambda: DCGANDiscriminator(shape[0], shape[1], dw, d_norm, num_classes=k),
            }
            return g, cases[self.conditioning]()
        if arch == "resnet":
            return (CondBNResNetGenerator(z, shape, k, width=width("g_width", 64)),
                    ProjectionDiscriminator(shape, k, width=width("d_width", 64)))
        # biggan
        gw, dw = width("g_width", 64), width("d_width", 64)
        init = s.get("init", "ortho")
        g_attn, d_attn = self._attention(s.get("attention", "auto"), shape, dw)
        g = BigGANGenerator(z, shape, k, width=gw, shared_dim=width("shared_dim", 128), attention_resolution=g_attn,
                            spectral_norm=True, init=init)
        d = BigGANDiscriminator(shape, k, width=dw, attention_resolution=d_attn, spectral_norm=True, init=init)
        return g, d

    @staticmethod
    def _attention(value: Any, shape: tuple[int, ...], d_width: int) -> tuple[int | None, int | None]:
        """BigGAN's self-attention resolution for G and D: a number (both nets, an error where a net
        does not pass through it), 0/null for none, or ``auto``: half the image size, in each net
        that passes through it (BigGAN's 64 px for 128 px images; 16 px for 32 px)."""
        from gan_lab.networks.biggan import discriminator_plan
        from gan_lab.networks.cond_layers import image_size_plan

        if value in (None, 0):
            return None, None
        _, base, k = image_size_plan(shape, "the BigGAN generator")
        if value != "auto":
            return checks.integer(value, "model.net.biggan.attention", minimum=0), \
                checks.integer(value, "model.net.biggan.attention", minimum=0)
        half = shape[-1] // 2
        g_res = [base * 2 ** (i + 1) for i in range(k)]
        res, d_res = shape[-1], []
        for down in discriminator_plan(k, d_width)[1]:
            res = res // 2 if down else res
            d_res.append(res)
        return (half if half in g_res else None), (half if half in d_res and half % 2 == 0 else None)

    def orthogonal_parameters(self) -> list[nn.Parameter]:
        """The generator weights BigGAN's orthogonal regularisation acts on: every weight with at
        least two dimensions except class embeddings."""
        g = self.core_generator()
        if hasattr(g, "orthogonal_reg_parameters"):
            return g.orthogonal_reg_parameters()
        embeddings = {id(m.weight) for m in g.modules() if isinstance(m, nn.Embedding)}
        return [p for p in g.parameters() if p.dim() >= 2 and id(p) not in embeddings]

    def core_generator(self) -> nn.Module:
        """The generator without the virtual-batch-norm wrapper."""
        g = self.nets["generator"]
        return getattr(g, "generator", g) if hasattr(g, "ref_z") else g

    # ------------------------------------------------------------------ training

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.semi_supervised:
            self.load_labelled_pool(self.trainer.datamodule)

    def load_labelled_pool(self, datamodule) -> None:
        """SSGAN: the labelled subset (``data.labeled_per_class``) as tensors on this device; D's
        supervised loss draws a batch of it every update. Without that setting every label of
        the training batch is used."""
        from gan_lab.data.labels import labelled_pool

        self.labelled_pool = labelled_pool(datamodule, self.device)

    def prepare_batch(self, batch: Batch) -> Batch:
        if batch.y is None:
            raise UserError(f"model={self.name} needs labels, but the training batches have none")
        return super().prepare_batch(batch)

    def generator_inputs(self, n: int, batch: Batch) -> tuple[Tensor, Tensor | None]:
        z = self.sample_latent(n)
        if not self.conditional:
            return z, None
        if self.fake_labels == "batch":
            return z, batch.y[:n]
        return z, torch.randint(self.num_classes, (n,), device=self.device)

    def discriminate(self, x: Tensor, y: Tensor | None = None, penalty: bool = False):
        """D's output: a logit per sample (input, projection), ``(logit, class logits)``
        (auxiliary) or ``(B, K)`` class logits (semi-supervised). ``augment=`` applies first."""
        return self.fwd("discriminator", compiled=not penalty)(self.augment_images(x), y if self.conditional else None)

    def adversarial_output(self, out) -> Tensor:
        """The real/fake logit of D's output (ACGAN's first head; SSGAN's logsumexp)."""
        if self.conditioning == "auxiliary":
            return out[0]
        if self.semi_supervised:
            return ssgan_real_logit(out)
        return out

    def _real_for_g(self, real: Tensor, y_real: Tensor | None) -> Tensor | None:
        if not self.loss.g_uses_real:
            return None
        with torch.no_grad():
            return self.adversarial_output(self.discriminate(real, y_real))

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        real, y_real = batch.x, batch.y
        z, y_fake = self.generator_inputs(real.shape[0], batch)
        with torch.no_grad():
            fake = self.fwd("generator")(z, y_fake)
        out_real = self.discriminate(real, y_real)
        out_fake = self.discriminate(fake, y_fake)
        self.observe_real_logits(self.adversarial_output(out_real))
        if self.semi_supervised:
            loss, logs = self.semi_supervised_d_loss(batch, out_real, out_fake)
        elif self.conditioning == "auxiliary":
            (d_real, cls_real), (d_fake, cls_fake) = out_real, out_fake
            loss, logs = acgan_d_loss(d_real, d_fake, cls_real, cls_fake, y_real, y_fake, adv_loss=self.d_adv_loss,
                                      real_class_weight=self.class_weights["d_real"],
                                      fake_class_weight=self.class_weights["d_fake"])
            logs["d_class_acc"] = (cls_real.argmax(1) == y_real).float().mean().detach()
        else:
            d_real, d_fake = out_real, out_fake
            loss, logs = self.d_adv_loss(d_real, d_fake), {}
        logs["d_loss"] = loss
        if self.loss.wasserstein and not self.semi_supervised:
            logs["wasserstein"] = (d_real.mean() - d_fake.mean()).detach()
        if self.penalty_fn is not None:
            with torch.autocast(real.device.type, enabled=False):
                pen = self.penalty_fn(
                    lambda t: self.adversarial_output(self.discriminate(t, y_real, penalty=True)),
                    real.float(), fake.float(), **self.penalty_kwargs,
                )
            loss = loss + self.penalty_weight * pen
            logs["penalty"] = pen
        return self.with_history("discriminator", loss, logs), logs

    def semi_supervised_d_loss(self, batch: Batch, real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, dict]:
        """``L_sup + w * L_unsup``: the supervised cross-entropy on a batch drawn from the labelled
        subset (or, without ``data.labeled_per_class``, on every labelled row of the batch), and
        the real/fake cross-entropy of ``D = sigmoid(logsumexp l)`` on the whole batch and the fakes."""
        w = self.ssgan["unsupervised_weight"]
        if self.labelled_pool is None:
            labeled = batch.labeled if batch.labeled is not None else torch.ones_like(batch.y, dtype=torch.bool)
            return ssgan_d_loss(real_logits, fake_logits, batch.y, labeled, unsupervised_weight=w)
        pool_x, pool_y = self.labelled_pool
        m = min(self.ssgan["labeled_batch_size"], len(pool_x))
        pick = torch.randperm(len(pool_x))[:m].to(pool_x.device)
        sup = F.cross_entropy(self.discriminate(pool_x[pick], None), pool_y[pick])
        unsup, logs = ssgan_d_loss(real_logits, fake_logits, None, None, unsupervised_weight=w)
        logs.update(d_sup=sup.detach(), labeled_rows=torch.tensor(float(m)))
        return sup + unsup, logs

    def generator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        real, y_real = batch.x, batch.y
        z, y_fake = self.generator_inputs(real.shape[0], batch)
        fake = self.fwd("generator")(z, y_fake)
        fm_settings = self.tricks.feature_matching
        logs: dict[str, Any] = {}
        if fm_settings is None:
            out_fake = self.discriminate(fake, y_fake)
        else:
            out_fake, fm = self.feature_matching_loss(real, y_real, fake, y_fake)
            logs["feature_matching"] = fm.detach()
        adv_weight = 1.0 if fm_settings is None else fm_settings["adversarial_weight"]
        loss = fm if fm_settings is not None else None
        if adv_weight:
            adv = self.loss.g_loss(self._real_for_g(real, y_real), self.adversarial_output(out_fake))
            logs["g_adv"] = adv.detach()
            loss = adv_weight * adv if loss is None else loss + adv_weight * adv
        if self.conditioning == "auxiliary" and self.class_weights["g"]:
            ce = F.cross_entropy(out_fake[1], y_fake)
            logs["g_class"] = ce.detach()
            loss = loss + self.class_weights["g"] * ce
        if self._ortho_params:
            ortho = orthogonal_regularization(self._ortho_params, self.ortho_reg)
            logs["ortho"] = ortho.detach()
            loss = loss + ortho
        logs["g_loss"] = loss
        return self.with_history("generator", loss, logs), logs

    # ------------------------------------------------------------------ sampling

    def condition_for(self, labels: Any, n: int) -> Tensor:
        """``n`` labels for a ``labels=`` request: ``all`` cycles through the classes, ``k`` is one
        class, ``[k1, k2, ...]`` cycles through those."""
        if not self.conditional:
            raise UserError(f"model={self.name} has an unconditional generator (its discriminator classifies); "
                            "labels= applies to cgan, acgan, cgan_proj and biggan")
        from omegaconf import ListConfig, OmegaConf

        if isinstance(labels, ListConfig):
            labels = OmegaConf.to_container(labels)
        return cycle_labels(n, parse_labels(labels, self.num_classes))

    def default_labels(self, n: int, generator: torch.Generator | None) -> Tensor:
        """Labels cycling through the classes from a random start (drawn from ``generator``): every
        class gets ``n / K`` samples up to one."""
        start = torch.randint(self.num_classes, (1,), generator=generator) if generator is not None \
            else torch.randint(self.num_classes, (1,))
        return (start + torch.arange(n)) % self.num_classes

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        self.check_sample_options(options)
        y = None
        if self.conditional:
            y = self.default_labels(n, generator) if condition is None else torch.as_tensor(condition).long().flatten()
            if y.numel() != n:
                raise ValueError(f"{y.numel()} labels for {n} samples")
            if bool(((y < 0) | (y >= self.num_classes)).any()):
                raise UserError(f"labels must be classes 0..{self.num_classes - 1} of model={self.name}")
            y = y.to(self.device)
        elif condition is not None:
            self.condition_for(condition, n)  # the one-line refusal
        z = self.sample_latent(n, generator, options.get("truncation"))
        g = self.sampling_net("generator", use_ema)
        with self.sampling_mode(g, train=self.sample_mode == "train"):
            return Batch(g(z, y), y)

    def evaluation_sample(self, n: int, generator: torch.Generator, data: Any = None, *, use_ema: bool = True,
                          **options) -> Batch:
        batch = self.sample(n, generator, use_ema=use_ema, **options)
        if not self.has_classifier:
            return batch
        from gan_lab.metrics.conditional import SamplesWithClassifier

        return SamplesWithClassifier(batch.x, self.classify, batch.y)

    @torch.no_grad()
    def classify(self, x: Tensor, batch_size: int = 500) -> Tensor:
        """Class logits ``(B, K)`` of D's classifier (ACGAN's auxiliary head, SSGAN's K logits),
        in eval mode (no noise layers), on the CPU."""
        if not self.has_classifier:
            raise UserError(f"model={self.name} has no classifier")
        d = self.nets["discriminator"]
        out = []
        with self.sampling_mode(d):
            for start in range(0, len(x), batch_size):
                logits = d(x[start:start + batch_size].to(self.device), None)
                out.append((logits[1] if self.conditioning == "auxiliary" else logits).float().cpu())
        return torch.cat(out)

    def grid(self, generator: torch.Generator) -> tuple[Batch, int | None, list[str] | None]:
        """Image models: one row per class (up to 10 classes, evenly spread for more), ten samples
        each, the class names beside the rows."""
        if not self.conditional or self.data_info.modality != "image":
            return super().grid(generator)
        k = self.num_classes
        if k <= GRID_ROWS:
            classes = list(range(k))
        else:
            classes = sorted({round(i * (k - 1) / (GRID_ROWS - 1)) for i in range(GRID_ROWS)})
        labels = torch.tensor(classes).repeat_interleave(GRID_PER_ROW)
        batch = self.sample(len(labels), generator, labels)
        return batch, GRID_PER_ROW, [self.data_info.class_name(c) for c in classes]
