"""Generators trained without a discriminator, through their latents: GLO and Gradient Origin
Networks.

* :class:`GLO` (Bojanowski et al. 2018, Generative Latent Optimization): one learnable code per
  training image (``codes``, a table of N x d parameters with its own optimizer group), kept on
  the unit sphere (every row is projected back after each update), optimised jointly with the
  ``generator`` under the Laplacian-pyramid L1 loss (``loss=lap1``; ``l2`` the squared error).
  Networks ``generator`` and ``codes``; groups ``g`` and ``codes``; one update per batch, ``fit``,
  stepping both groups from one backward pass (the engine's ``Update.also``). New images come
  from a full-covariance Gaussian fitted to the codes (the paper's sampling). Codes of other
  images (the test split, for reconstructions and ``encode split=test``) are found the paper's
  way: with the generator fixed, ``infer.steps`` Adam steps on the codes from the fitted mean,
  projected to the sphere after each.
* :class:`GON` (Bond-Taylor & Willcocks 2021): no encoder; the latent of an image is the negative
  gradient of its reconstruction loss at the origin, ``z = -grad_{z0} L(x, F(z0))`` at ``z0 = 0``,
  and F is trained on ``L(x, F(z))`` through that gradient (second order). ``variational=true``:
  F starts with two linear maps z -> (mu, log var), decodes a reparameterised sample and the loss
  adds the KL term to N(0, I), in the inner and the outer pass (the authors' variational GON);
  samples are then decoded from N(0, I), as theirs. The plain GON samples from a full-covariance
  Gaussian fitted to the latents of the training images (recomputed, at the current weights, for
  every grid, evaluation and checkpoint, and saved in checkpoints). The decoder has no batch
  norm: with batch statistics an image's latent would depend on the rest of its batch.

**A step is one update of the generator** (GLO: with the codes of its batch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gan_lab import checks
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine import OptimGroup, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.families.codes import CodeModel
from gan_lab.losses.autoencoding import (
    RECON_LOSSES,
    gaussian_kl,
    gradient_origin_latent,
    laplacian_l1,
    reconstruction_error,
)
from gan_lab.networks.autoencoder import build_coder, resolve_arch
from gan_lab.priors import FittedGaussian, GaussianPrior

DEFAULT_OPTIMIZER = {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]}
GLO_LOSSES = ("lap1", "l2")


def _decoder(info: DataInfo, latent_dim: int, net: dict | None, batch_norm_default: bool) -> nn.Module:
    net = dict(checks.mapping(net, "model.net"))
    arch = resolve_arch(net.pop("arch", "auto"), info)
    unknown = sorted(set(net) - {"dcgan", "mlp"})
    if unknown:
        raise UserError(f"unknown setting model.net.{unknown[0]}; it takes: arch, dcgan, mlp")
    settings = {"batch_norm": batch_norm_default, **checks.mapping(net.get(arch), f"model.net.{arch}")}
    settings.pop("norm", None)  # an encoder's setting; these models have none
    return build_coder("decoder", arch, info, latent_dim, settings)


def _training_data(module) -> Any:
    """The data module of the run being trained, else None (a model rebuilt from a checkpoint)."""
    trainer = module._trainer
    return getattr(trainer, "datamodule", None) if trainer is not None else None


class CodeTable(nn.Module):
    """GLO's codes: an ``(N, d)`` parameter, row i the code of training image i."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num, dim))
        self.project()

    @torch.no_grad()
    def project(self) -> None:
        """Every row back onto the unit sphere."""
        self.weight.div_(self.weight.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def forward(self, index: Tensor) -> Tensor:
        return self.weight[index]


def pca_codes(x: Tensor, dim: int) -> Tensor:
    """Codes from the principal components of flattened data ``x`` (N, D): the first ``dim``
    coordinates (zero-padded past D), each row scaled to unit length (float64 eigh of the
    covariance; the sign of each axis fixed so that its largest entry is positive)."""
    flat = x.flatten(1).double()
    centred = flat - flat.mean(dim=0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    axes = vectors.flip(1)[:, : min(dim, flat.shape[1])]
    axes = axes * torch.sign(axes[axes.abs().argmax(dim=0), torch.arange(axes.shape[1])])
    codes = torch.zeros(len(flat), dim, dtype=torch.float64)
    codes[:, : axes.shape[1]] = centred @ axes
    return (codes / codes.norm(dim=1, keepdim=True).clamp_min(1e-12)).float()


class _LatentModel(CodeModel):
    family = "latent"

    def __init__(self, name, data_info, run):
        super().__init__(name, data_info, run)
        self._fit: FittedGaussian | None = None
        self._fit_step = -1

    def decode(self, h: Tensor) -> Tensor:
        return self.nets["generator"](h)

    def fitted_codes(self) -> Tensor:  # pragma: no cover - abstract
        """The codes the sampling Gaussian is fitted to, at the current weights."""
        raise NotImplementedError

    def fitted_gaussian(self) -> FittedGaussian:
        """The full-covariance Gaussian of the codes at the current step (recomputed when the
        step moved and the codes can be computed; else the last one, e.g. from a checkpoint)."""
        if self._fit is None or (self._fit_step != self.step and self.can_fit()):
            if not self.can_fit():
                raise UserError(f"model={self.name}: this checkpoint holds no fitted Gaussian to sample from")
            self._fit, self._fit_step = FittedGaussian.fit(self.fitted_codes()), self.step
        return self._fit

    def can_fit(self) -> bool:
        return True

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        self.check_sample_options(options)
        if condition is not None:
            raise UserError(f"model={self.name} is unconditional: it takes no labels or other condition")
        z, _ = self.sampling_prior().sample(n, generator)
        with self.sampling_mode(self.nets["generator"]):
            return Batch(self.decode(z.to(self.device)))


class GLO(_LatentModel):
    """Generative Latent Optimization; see the module docstring."""

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        latent_dim: int = 32,
        num_codes: int | None = None,
        loss: str = "lap1",
        pyramid_levels: int | None = None,
        init: str = "pca",
        net: dict | None = None,
        g_optimizer: dict | None = None,
        code_optimizer: dict | None = None,
        infer: dict | None = None,
        lr_schedule: str = "constant",
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
    ):
        super().__init__(name, data_info, run)
        self.latent_dim = self.code_dim = checks.integer(latent_dim, "model.latent_dim", minimum=1)
        self.loss_name = checks.choice(loss, "model.loss", GLO_LOSSES)
        if self.loss_name == "lap1" and data_info.modality != "image":
            raise UserError(f"model.loss=lap1 (the Laplacian pyramid) needs images; data {data_info.name} is "
                            f"{data_info.modality} data: use model.loss=l2")
        self.levels = None if pyramid_levels is None else checks.integer(pyramid_levels, "model.pyramid_levels", 1)
        init = checks.choice(init, "model.init", ("pca", "random"))
        infer = {"steps": 100, "lr": 0.05, **checks.mapping(infer, "model.infer")}
        unknown = sorted(set(infer) - {"steps", "lr"})
        if unknown:
            raise UserError(f"unknown setting model.infer.{unknown[0]}; it takes: steps, lr")
        self.infer_steps = checks.integer(infer["steps"], "model.infer.steps", minimum=0)
        self.infer_lr = checks.number(infer["lr"], "model.infer.lr", positive=True)
        training_images = None
        if num_codes is None:
            training_images = self._training_images()
            num_codes = len(training_images)
            model_cfg = (self.lab_meta.get("config") or {}).get("model")
            if isinstance(model_cfg, dict):  # checkpoints then rebuild the table without the data
                model_cfg["num_codes"] = num_codes
        self.num_codes = checks.integer(num_codes, "model.num_codes", minimum=2)
        self.add_net("generator", _decoder(data_info, self.latent_dim, net, batch_norm_default=True))
        self.add_net("codes", CodeTable(self.num_codes, self.latent_dim))
        if init == "pca":
            if training_images is None:
                training_images = self._training_images()
            with torch.no_grad():
                self.nets["codes"].weight.copy_(pca_codes(training_images, self.latent_dim))
        self.declare(
            groups=[OptimGroup("g", ("generator",), dict(checks.mapping(g_optimizer, "model.g_optimizer")
                                                          or DEFAULT_OPTIMIZER)),
                    OptimGroup("codes", ("codes",), dict(checks.mapping(code_optimizer, "model.code_optimizer")
                                                          or {"name": "sgd", "lr": 10.0}))],
            updates=[Update("fit", "g", "fit_loss", step=True, after="project_codes", also=("codes",))],
            schedule=lr_schedule, warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
            schedule_steps=lr_schedule_steps,
        )
        from gan_lab.metrics.conditional import check_model_metrics

        check_model_metrics(self, (self.lab_meta.get("config") or {}).get("metrics"))

    def _training_images(self) -> Tensor:
        """The run's training set (from its data config): its size is the number of codes, and
        ``init=pca`` starts the codes from its principal components."""
        config = self.lab_meta.get("config") or {}
        if "data" not in config:
            raise UserError(f"model={self.name} keeps a code per training image: give model.num_codes "
                            "(or build it from a run config with its data)")
        from omegaconf import OmegaConf

        from gan_lab.app import instantiate

        data = instantiate(OmegaConf.create(config["data"]), "data", _convert_="all")
        return torch.cat([b.x for b in data.batches(1024, order_seed=None)])

    def setup(self, stage: str) -> None:
        super().setup(stage)
        data = _training_data(self)
        if data is not None and len(data.dataset) != self.num_codes:
            raise UserError(f"model={self.name} has {self.num_codes} codes but data {self.data_info.name} has "
                            f"{len(data.dataset)} training images (model.num_codes must be the training set's size)")

    def per_sample_loss(self, out: Tensor, x: Tensor) -> Tensor:
        if self.loss_name == "lap1":
            return laplacian_l1(out, x, self.levels)
        return reconstruction_error(out, x, "mse")

    def fit_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        if batch.index is None:
            raise UserError(f"model={self.name} needs the index of every training image (Batch.index)")
        codes = self.fwd("codes")(batch.index)
        loss = self.per_sample_loss(self.fwd("generator")(codes), batch.x).mean()
        return loss, {"g_loss": loss.detach(), self.loss_name: loss.detach()}

    def project_codes(self) -> None:
        self.nets["codes"].project()

    # ------------------------------------------------------------------ codes of images

    def infer_codes(self, x: Tensor) -> Tensor:
        """Codes of images not in the table: the generator fixed (eval mode), ``infer.steps``
        Adam steps on the sum of the per-image losses (so each image's code is found alone)
        from the fitted Gaussian's mean direction, projected to the sphere after every step."""
        start = self.fitted_gaussian().mean().float().to(x.device)
        start = start / start.norm().clamp_min(1e-12)
        codes = start.expand(len(x), -1).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([codes], lr=self.infer_lr)
        g = self.nets["generator"]
        with self.sampling_mode(g), torch.enable_grad():
            for _ in range(self.infer_steps):
                loss = self.per_sample_loss(g(codes), x).sum()
                (grad,) = torch.autograd.grad(loss, codes)
                codes.grad = grad
                optimizer.step()
                with torch.no_grad():
                    codes.div_(codes.norm(dim=1, keepdim=True).clamp_min(1e-12))
        return codes.detach()

    def decoder_input(self, x, y=None, index=None, split="test"):
        if split == "train" and index is not None:
            return self.nets["codes"](index.to(self.device)).detach()
        return self.infer_codes(x)

    def fitted_codes(self) -> Tensor:
        return self.nets["codes"].weight.detach()

    def sampling_prior(self):
        return self.fitted_gaussian()


class GONNetwork(nn.Module):
    """F of a GON: a decoder from the latent, with the variational form's linear maps
    z -> (mu, log var) in front."""

    def __init__(self, decoder: nn.Module, latent_dim: int, variational: bool):
        super().__init__()
        self.decoder = decoder
        self.variational = variational
        if variational:
            self.mu = nn.Linear(latent_dim, latent_dim)
            self.logvar = nn.Linear(latent_dim, latent_dim)

    def forward(self, z: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(output, mu, logvar)``; variational: the output decodes ``mu + exp(logvar / 2) noise``
        (``mu`` without noise), plain: ``z`` itself."""
        if not self.variational:
            return self.decoder(z), None, None
        mu, logvar = self.mu(z), self.logvar(z)
        sample = mu if noise is None else mu + (0.5 * logvar).exp() * noise
        return self.decoder(sample), mu, logvar


class GON(_LatentModel):
    """Gradient Origin Networks; see the module docstring."""

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        latent_dim: int = 32,
        variational: bool = False,
        kl_weight: float = 1.0,
        recon_loss: str = "bce",
        net: dict | None = None,
        g_optimizer: dict | None = None,
        lr_schedule: str = "constant",
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
    ):
        super().__init__(name, data_info, run)
        self.latent_dim = self.code_dim = checks.integer(latent_dim, "model.latent_dim", minimum=1)
        self.variational = checks.boolean(variational, "model.variational")
        self.kl_weight = checks.number(kl_weight, "model.kl_weight", minimum=0)
        self.recon_loss = checks.choice(recon_loss, "model.recon_loss", RECON_LOSSES)
        if self.recon_loss == "bce" and data_info.modality != "image":
            raise UserError(f"model.recon_loss=bce reads images as intensities; data {data_info.name} is "
                            f"{data_info.modality} data: use model.recon_loss=mse")
        decoder = _decoder(data_info, self.latent_dim, net, batch_norm_default=False)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in decoder.modules()):
            raise UserError("model=gon: the decoder must not use batch norm (model.net.<arch>.batch_norm=false): "
                            "batch statistics would make an image's latent depend on the rest of its batch")
        self.add_net("generator", GONNetwork(decoder, self.latent_dim, self.variational))
        self.declare(
            groups=[OptimGroup("g", ("generator",), dict(checks.mapping(g_optimizer, "model.g_optimizer")
                                                          or DEFAULT_OPTIMIZER))],
            updates=[Update("fit", "g", "fit_loss", step=True)],
            schedule=lr_schedule, warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
            schedule_steps=lr_schedule_steps,
        )
        from gan_lab.metrics.conditional import check_model_metrics

        check_model_metrics(self, (self.lab_meta.get("config") or {}).get("metrics"))

    def per_sample_loss(self, net, z: Tensor, x: Tensor, noise: Tensor | None) -> Tensor:
        """``L(x, F(z))`` per sample: the summed reconstruction error (a log-likelihood up to
        constants), plus ``kl_weight`` times the KL term in the variational form."""
        out, mu, logvar = net(z, noise)
        loss = reconstruction_error(out, x, self.recon_loss, "sum")
        if self.variational:
            loss = loss + self.kl_weight * gaussian_kl(mu, logvar)
        return loss

    def latents(self, net, x: Tensor, create_graph: bool, noise: Tensor | None = None) -> Tensor:
        """``z = -grad_{z0} L(x, F(z0))`` at ``z0 = 0`` (the inner pass)."""
        return gradient_origin_latent(lambda z0: self.per_sample_loss(net, z0, x, noise), len(x), self.latent_dim,
                                      x, create_graph=create_graph)

    def fit_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        x = batch.x
        noise = (lambda: torch.randn(len(x), self.latent_dim, device=x.device)) if self.variational else (lambda: None)
        # the inner pass runs on the network itself, the outer one on its DDP wrapper: one
        # wrapper forward per backward, whose gradients (through both passes) it all-reduces
        z = self.latents(self.nets["generator"], x, create_graph=True, noise=noise())
        loss = self.per_sample_loss(self.fwd("generator", compiled=False), z, x, noise()).mean()
        return loss, {"g_loss": loss.detach(), "latent_norm": z.detach().norm(dim=1).mean()}

    def decoder_input(self, x, y=None, index=None, split="test"):
        with self.sampling_mode(self.nets["generator"]):
            return self.latents(self.nets["generator"], x, create_graph=False).detach()

    def decode(self, h: Tensor) -> Tensor:
        return self.nets["generator"](h)[0]

    def fitted_codes(self) -> Tensor:
        data = _training_data(self)
        codes = [self.decoder_input(b.x.to(self.device)) for b in data.batches(500, order_seed=None)]
        return torch.cat(codes)

    def can_fit(self) -> bool:
        return _training_data(self) is not None

    def sampling_prior(self):
        if self.variational:
            return GaussianPrior(self.latent_dim)
        return self.fitted_gaussian()

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        if not self.variational:
            return super().sample(n, generator, condition, use_ema=use_ema, **options)
        self.check_sample_options(options)
        if condition is not None:
            raise UserError(f"model={self.name} is unconditional: it takes no labels or other condition")
        z, _ = self.sampling_prior().sample(n, generator)
        net = self.nets["generator"]
        with self.sampling_mode(net):
            return Batch(net.decoder(z.to(self.device)))

    def family_state(self) -> dict:
        if self.variational:
            return {}
        fit = self.fitted_gaussian() if (self.can_fit() or self._fit is not None) else None
        return {} if fit is None else {"latent_fit": {**fit.state(), "step": self._fit_step}}

    def load_family_state(self, state: dict) -> None:
        fit = state.get("latent_fit")
        if fit is not None:
            self._fit, self._fit_step = FittedGaussian(fit["mean"], fit["cov"]), int(fit["step"])


__all__ = ["GLO", "GON", "CodeTable", "pca_codes"]
