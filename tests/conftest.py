"""pytest configuration shared by all tests."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    # Tiny networks run fastest single-threaded; it also keeps parallel test processes calm.
    import torch

    torch.set_num_threads(1)
