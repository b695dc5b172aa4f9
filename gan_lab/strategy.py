"""Data-parallel training for two networks with manual optimization.

Lightning's stock DDP strategy wraps the whole LightningModule in one
``DistributedDataParallel``. A GAN step runs several backward passes per batch, each touching
only one network, so the stock wrapper either fails on "unused parameters" or needs
``find_unused_parameters=True`` (an extra graph traversal every step and still fragile with
two backward passes per forward). Here G and D are wrapped separately instead: the
discriminator backward syncs only D's gradients, the generator backward only G's (D's wrapper
runs under ``no_sync`` during the G step, and its weights are frozen then anyway).
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
