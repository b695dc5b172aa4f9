"""Adversarial autoencoders (Makhzani et al. 2016) in the paper's forms, one class, ``model.form``:

============== =========================================================== ==================
form           what                                                        variant
============== =========================================================== ==================
unsupervised   E(x) = z; decoder(z); a discriminator on codes tells prior  ``aae``
               samples from encoded ones (priors: gaussian, mixture,
               swiss_roll; ``prior_labels``: the paper's label-regularised
               figure, D also sees the label and each label has its own
               mixture component)
supervised     E(x) = z (style); decoder(z, one-hot label): z learns       ``aae_supervised``
               style, the label the content
semi_supervised E(x) = (y, z): y a softmax over K = the classes, z the     ``aae_semi``
               style; one discriminator pushes y to the categorical prior,
               another z to N(0, I); a supervised phase trains y with
               cross-entropy on the labelled subset (data.labeled_per_class)
cluster        the same with K clusters (16) and no labels: the paper's    ``aae_cluster``
               unsupervised clustering
============== =========================================================== ==================

Declared to the engine: networks ``encoder``, ``decoder``, ``code_d`` (and ``cat_d`` for y);
optimizer groups ``ae`` (encoder + decoder), ``d`` (the code discriminators), ``gen`` (the
encoder as the codes' generator) and ``sup`` (the encoder's y, semi-supervised only). Every batch
runs, in order, the updates ``recon`` (the reconstruction phase: E and decoder on the
reconstruction error), ``d`` (the discriminators on prior samples against the codes of the
batch), ``gen`` (E against the discriminators) and, semi-supervised, ``sup``. **A step is one
``recon`` update**, i.e. one batch. The adversarial loss on codes is the lab's ``loss=`` pair
(non-saturating by default).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lab import checks
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.data.labels import cycle_labels, parse_labels
from gan_lab.engine import OptimGroup, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.families.codes import CodeModel
from gan_lab.losses import get_loss
from gan_lab.losses.autoencoding import RECON_LOSSES, reconstruction_error
from gan_lab.networks.autoencoder import CodeDiscriminator, build_coder, resolve_arch
from gan_lab.priors import CategoricalPrior, GaussianPrior, build_prior

FORMS = ("unsupervised", "supervised", "semi_supervised", "cluster")
DEFAULT_OPTIMIZER = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
GRID_STYLES = 10  # rows of the style x category grid


class AdversarialAutoencoder(CodeModel):
    """See the module docstring.

    Args:
        form: unsupervised | supervised | semi_supervised | cluster.
        latent_dim: size of the code z (the style, for the labelled forms).
        prior: ``{name: gaussian|mixture|swiss_roll, mixture: {...}, swiss_roll: {...}}``; the
            forms with a category use a Gaussian for z.
        prior_labels: unsupervised form with a mixture or swiss-roll prior: the code
            discriminator also sees the label, prior samples come from the label's component.
        categories: K of the categorical y (semi_supervised: the number of classes; cluster: 16).
        recon_loss: mse | bce (per value, averaged).
        loss: the adversarial loss pair on codes (``loss=`` group).
        net: ``{arch: auto|dcgan|mlp, dcgan: {width, norm, batch_norm}, mlp: {width, depth, batch_norm}}``.
        code_d: the code discriminators ``{width, depth}``.
        supervised: ``{batch_size}``: labelled examples per supervised update (semi_supervised).
    """

    family = "aae"

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        form: str = "unsupervised",
        latent_dim: int = 2,
        prior: dict | None = None,
        prior_labels: bool = False,
        categories: int | None = None,
        recon_loss: str = "mse",
        loss: str = "non_saturating",
        net: dict | None = None,
        code_d: dict | None = None,
        ae_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        gen_optimizer: dict | None = None,
        sup_optimizer: dict | None = None,
        supervised: dict | None = None,
        lr_schedule: str = "constant",
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
    ):
        super().__init__(name, data_info, run)
        self.form = checks.choice(form, "model.form", FORMS)
        self.latent_dim = self.code_dim = checks.integer(latent_dim, "model.latent_dim", minimum=1)
        self.recon_loss = checks.choice(recon_loss, "model.recon_loss", RECON_LOSSES)
        self.loss = get_loss(loss)
        classes = int(data_info.num_classes)
        labelled = self.form in ("supervised", "semi_supervised")
        if labelled and classes < 2:
            raise UserError(f"model={name} needs labelled data, but data {data_info.name} has no labels; "
                            "use a labelled set (mnist_5k, digits, ...) or model=aae")
        self.num_classes = classes
        prior = dict(checks.mapping(prior, "model.prior"))
        unknown = sorted(set(prior) - {"name", "mixture", "swiss_roll"})
        if unknown:
            raise UserError(f"unknown setting model.prior.{unknown[0]}; it takes: name, mixture, swiss_roll")
        prior_name = prior.pop("name", "gaussian")
        self.prior_labels = checks.boolean(prior_labels, "model.prior_labels")
        if self.form in ("semi_supervised", "cluster"):
            default_k = classes if self.form == "semi_supervised" else 16
            self.k = checks.integer(categories if categories is not None else default_k, "model.categories", minimum=2)
            if self.form == "semi_supervised" and self.k != classes:
                raise UserError(f"model.categories={self.k}: the semi-supervised AAE's categories are the "
                                f"{classes} classes of data {data_info.name}")
            if prior_name != "gaussian":
                raise UserError(f"model={name}: its style z is pushed to N(0, I); model.prior.name={prior_name} "
                                "applies to aae (unsupervised) only")
            self.prior = GaussianPrior(self.latent_dim)
            self.category_prior = CategoricalPrior(self.k)
        else:
            self.k = 0
            self.prior = build_prior(prior_name, self.latent_dim, prior.get(prior_name))
            self.category_prior = None
        if self.prior_labels:
            if self.form != "unsupervised" or self.prior.num_components == 0:
                raise UserError("model.prior_labels=true applies to model=aae with a prior made of components "
                                "(model.prior.name=mixture or swiss_roll)")
            if classes != self.prior.num_components:
                raise UserError(f"model.prior_labels=true gives each class a component: data {data_info.name} has "
                                f"{classes} classes, the prior {self.prior.num_components} components")
        self.conditional = self.form in ("supervised", "semi_supervised")
        self.has_classifier = self.form == "semi_supervised"
        self.num_clusters = self.k if self.form == "cluster" else 0
        self.needs_labels_to_decode = self.form == "supervised"
        self.sample_options = ()
        sup = {"batch_size": 100, **checks.mapping(supervised, "model.supervised")}
        unknown = sorted(set(sup) - {"batch_size"})
        if unknown:
            raise UserError(f"unknown setting model.supervised.{unknown[0]}; it takes: batch_size")
        self.sup_batch = checks.integer(sup["batch_size"], "model.supervised.batch_size", minimum=1)
        self.labelled_pool: tuple[Tensor, Tensor] | None = None
        self._check_config()

        net = dict(checks.mapping(net, "model.net"))
        arch = resolve_arch(net.pop("arch", "auto"), data_info)
        settings = checks.mapping(net.get(arch), f"model.net.{arch}")
        unknown = sorted(set(net) - {"dcgan", "mlp"})
        if unknown:
            raise UserError(f"unknown setting model.net.{unknown[0]}; it takes: arch, dcgan, mlp")
        d_in = self.latent_dim + (classes if self.form == "supervised" else self.k)
        self.add_net("encoder", build_coder("encoder", arch, data_info, self.latent_dim + self.k, settings))
        self.add_net("decoder", build_coder("decoder", arch, data_info, d_in, settings))
        code_d = dict(checks.mapping(code_d, "model.code_d"))
        unknown = sorted(set(code_d) - {"width", "depth"})
        if unknown:
            raise UserError(f"unknown setting model.code_d.{unknown[0]}; it takes: width, depth")
        width = checks.integer(code_d.get("width", 256), "model.code_d.width", minimum=1)
        depth = checks.integer(code_d.get("depth", 2), "model.code_d.depth", minimum=0)
        self.add_net("code_d", CodeDiscriminator(self.latent_dim, width, depth, classes if self.prior_labels else 0))
        d_nets = ["code_d"]
        if self.k:
            self.add_net("cat_d", CodeDiscriminator(self.k, width, depth))
            d_nets.append("cat_d")

        def opt(cfg, key):
            return dict(checks.mapping(cfg, key) or DEFAULT_OPTIMIZER)

        groups = [OptimGroup("ae", ("encoder", "decoder"), opt(ae_optimizer, "model.ae_optimizer")),
                  OptimGroup("d", tuple(d_nets), opt(d_optimizer, "model.d_optimizer")),
                  OptimGroup("gen", ("encoder",), opt(gen_optimizer, "model.gen_optimizer"))]
        updates = [Update("recon", "ae", "reconstruction_loss", step=True),
                   Update("d", "d", "discriminator_loss"),
                   Update("gen", "gen", "regularization_loss")]
        if self.form == "semi_supervised":
            groups.append(OptimGroup("sup", ("encoder",), opt(sup_optimizer, "model.sup_optimizer")))
            updates.append(Update("sup", "sup", "supervised_loss"))
        self.declare(groups=groups, updates=updates, schedule=lr_schedule,
                     warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0), schedule_steps=lr_schedule_steps)

    # ------------------------------------------------------------------ checks before any work

    def _check_config(self) -> None:
        from gan_lab.metrics.conditional import check_model_metrics

        config = self.lab_meta.get("config") or {}
        check_model_metrics(self, config.get("metrics"))
        data = config.get("data") or {}
        if self.form == "semi_supervised" and config and data.get("labeled_per_class") is None:
            raise UserError(f"model={self.name} trains its classifier on a labelled subset: set "
                            "data.labeled_per_class=<labels per class> (e.g. 10 or 100)")

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        n = len(datamodule.dataset)
        if self.num_clusters and self.num_clusters > n:
            raise UserError(f"model.categories={self.num_clusters} clusters is more than the {n} training samples "
                            f"of data {self.data_info.name}; choose at most {n}")
        if self.form == "semi_supervised" and datamodule.labeled_mask is None:
            raise UserError(f"model={self.name} trains its classifier on a labelled subset: set "
                            "data.labeled_per_class=<labels per class> (e.g. 10 or 100)")

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.form == "semi_supervised":
            from gan_lab.data.labels import labelled_pool

            self.labelled_pool = labelled_pool(self.trainer.datamodule, self.device)

    def prepare_batch(self, batch: Batch) -> Batch:
        if (self.form == "supervised" or self.prior_labels) and batch.y is None:
            raise UserError(f"model={self.name} needs labels, but the training batches have none")
        return super().prepare_batch(batch)

    # ------------------------------------------------------------------ codes

    def _split(self, out: Tensor) -> tuple[Tensor | None, Tensor]:
        """The encoder's output as (category logits or None, z)."""
        return (out[:, : self.k], out[:, self.k :]) if self.k else (None, out)

    def _decoder_input(self, out: Tensor, y: Tensor | None) -> Tensor:
        logits, z = self._split(out)
        if self.form == "supervised":
            return torch.cat([z, F.one_hot(y.long(), self.num_classes).to(z)], dim=1)
        if self.k:
            return torch.cat([logits.softmax(dim=1), z], dim=1)
        return z

    def decoder_input(self, x, y=None, index=None, split="test"):
        if self.form == "supervised" and y is None:
            raise UserError(f"model={self.name} decodes a style code with its label: give labelled data")
        return self._decoder_input(self.nets["encoder"](x), y)

    def decode(self, h: Tensor) -> Tensor:
        return self.nets["decoder"](h)

    def style(self, h: Tensor) -> Tensor:
        return h[:, : self.latent_dim] if self.form == "supervised" else h[:, self.k :]

    def categories(self, h: Tensor) -> Tensor | None:
        return h[:, : self.k] if self.k else None

    def sampling_prior(self):
        return self.prior

    # ------------------------------------------------------------------ the updates

    def reconstruction_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        h = self._decoder_input(self.fwd("encoder")(batch.x), batch.y)
        recon = reconstruction_error(self.fwd("decoder")(h), batch.x, self.recon_loss).mean()
        return recon, {"recon": recon.detach()}

    def _judge(self, net: str, codes: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.fwd(net)(codes, labels)

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        with torch.no_grad():
            logits, z = self._split(self.fwd("encoder")(batch.x))
        labels = batch.y if self.prior_labels else None
        prior_z, _ = self.prior.sample(len(z), component=None if labels is None else labels.cpu())
        prior_z = prior_z.to(z)
        d_prior, d_code = self._judge("code_d", prior_z, labels), self._judge("code_d", z, labels)
        loss = self.loss.d_loss(d_prior, d_code)
        logs = {"d_z_loss": loss.detach(), "d_z_acc": ((d_prior > 0).float().mean() + (d_code < 0).float().mean()) / 2}
        if self.k:
            onehot, _ = self.category_prior.sample(len(z))
            d_cat_prior, d_cat = self._judge("cat_d", onehot.to(z)), self._judge("cat_d", logits.softmax(dim=1))
            cat_loss = self.loss.d_loss(d_cat_prior, d_cat)
            logs["d_y_loss"] = cat_loss.detach()
            loss = loss + cat_loss
        logs["d_loss"] = loss.detach()
        return loss, logs

    def regularization_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        logits, z = self._split(self.fwd("encoder")(batch.x))
        labels = batch.y if self.prior_labels else None
        real = None
        if self.loss.g_uses_real:
            with torch.no_grad():
                prior_z, _ = self.prior.sample(len(z), component=None if labels is None else labels.cpu())
                real = self._judge("code_d", prior_z.to(z), labels)
        loss = self.loss.g_loss(real, self._judge("code_d", z, labels))
        logs = {"gen_z_loss": loss.detach()}
        if self.k:
            real_cat = None
            if self.loss.g_uses_real:
                with torch.no_grad():
                    real_cat = self._judge("cat_d", self.category_prior.sample(len(z))[0].to(z))
            cat = self.loss.g_loss(real_cat, self._judge("cat_d", logits.softmax(dim=1)))
            logs["gen_y_loss"] = cat.detach()
            loss = loss + cat
        logs["gen_loss"] = loss.detach()
        return loss, logs

    def supervised_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        if self.labelled_pool is None:
            raise UserError(f"model={self.name} trains its classifier on a labelled subset: set "
                            "data.labeled_per_class=<labels per class>")
        pool_x, pool_y = self.labelled_pool
        m = min(self.sup_batch, len(pool_x))
        pick = torch.randperm(len(pool_x))[:m].to(pool_x.device)
        logits, _ = self._split(self.fwd("encoder")(pool_x[pick]))
        ce = F.cross_entropy(logits, pool_y[pick])
        return ce, {"sup_ce": ce.detach(), "sup_acc": (logits.argmax(1) == pool_y[pick]).float().mean()}

    # ------------------------------------------------------------------ sampling

    def condition_for(self, labels: Any, n: int) -> Tensor:
        if not self.conditional:
            raise UserError(f"model={self.name} takes no labels= (aae_supervised and aae_semi do)")
        from omegaconf import ListConfig, OmegaConf

        if isinstance(labels, ListConfig):
            labels = OmegaConf.to_container(labels)
        return cycle_labels(n, parse_labels(labels, self.num_classes))

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        """Prior codes decoded; the labelled forms cycle through the classes (or take
        ``condition``: labels), the clustering form draws its categories uniformly."""
        self.check_sample_options(options)
        if condition is not None and not self.conditional:
            self.condition_for(condition, n)  # the one-line refusal
        z, _ = self.prior.sample(n, generator)
        y = None
        if self.k or self.form == "supervised":
            k = self.num_classes if self.conditional else self.k
            if condition is not None:
                y = torch.as_tensor(condition).long().flatten().cpu()
                if y.numel() != n or bool(((y < 0) | (y >= k)).any()):
                    raise UserError(f"labels must be {n} classes in 0..{k - 1} of model={self.name}")
            else:
                start = torch.randint(k, (1,), generator=generator)
                y = (start + torch.arange(n)) % k
            onehot = F.one_hot(y, k).float()
            h = torch.cat([z, onehot] if self.form == "supervised" else [onehot, z], dim=1)
        else:
            h = z
        with self.sampling_mode(self.nets["decoder"]):
            x = self.decode(h.to(self.device))
        return Batch(x, y.to(self.device) if (y is not None and self.conditional) else None)

    def grid(self, generator: torch.Generator):
        """One style per row and every category across (labelled and clustering forms)."""
        if not (self.k or self.form == "supervised") or self.data_info.modality != "image":
            return super().grid(generator)
        k = self.num_classes if self.conditional else self.k
        z, _ = self.prior.sample(GRID_STYLES, generator)
        z = z.repeat_interleave(k, dim=0)
        onehot = F.one_hot(torch.arange(k).repeat(GRID_STYLES), k).float()
        h = torch.cat([z, onehot] if self.form == "supervised" else [onehot, z], dim=1)
        with self.sampling_mode(self.nets["decoder"]):
            x = self.decode(h.to(self.device))
        return Batch(x), k, None
