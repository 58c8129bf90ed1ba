import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Backbones at 64 px are fast on one thread; two threads on a shared 2-core box can stall."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
