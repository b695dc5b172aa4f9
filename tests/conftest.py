"""pytest configuration shared by all tests."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    # Tiny networks run fastest single-threaded; it also keeps parallel test processes calm.
    # For speed only: no assertion depends on the thread count (exact comparisons are between runs
    # of one process, round-off bounds follow from the data, thresholds on trained classifiers hold
    # across training seeds); the metric, config, evaluation, resume, loss and network tests also
    # pass with 2 threads.
    import torch

    torch.set_num_threads(1)
