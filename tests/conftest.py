import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_process():
    """Tiny models run fastest on one thread, and the 2-core CI machine is shared: oversubscribed
    threads made small steps ~100x slower there. DDP tests start 2 processes of their own."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
