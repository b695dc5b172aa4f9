"""Data-parallel training with one DDP wrapper per network.

Lightning's stock DDP strategy wraps the whole LightningModule in one
``DistributedDataParallel``. A GAN step runs several backward passes per batch, each touching
only some networks, so the stock wrapper either fails on "unused parameters" or needs
``find_unused_parameters=True`` (an extra graph traversal every step, and still fragile with
several backward passes per forward). Here every trainable network is wrapped on its own
(:meth:`gan_lab.engine.module.LabModule.wrap_for_ddp`): a backward syncs only the gradients of
the networks its update trains; the others run under ``no_sync`` with frozen weights. Copies that
must never sync (EMA copies, SeqGAN's rollout network) are not networks of the module and are
not wrapped.
"""

from __future__ import annotations

from lightning.pytorch.strategies import DDPStrategy


class GANDDPStrategy(DDPStrategy):
    strategy_name = "gan_ddp"

    def configure_ddp(self) -> None:
        module = self.lightning_module
        if not hasattr(module, "wrap_for_ddp"):
            return super().configure_ddp()
        module.wrap_for_ddp(self._setup_model)
        # self.model stays the plain LightningModule: training_step is called directly and
        # the DDP-specific backward hooks of the parent class (which expect one wrapper) are
        # skipped, since each wrapper prepares its own reducer in its forward pass.
