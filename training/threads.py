"""Thread pinning for the measuring instruments: a classifier that scores a generator must train to the same
weights whatever the machine's thread count, and a float sum split over another number of threads rounds
otherwise."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then restore the count found."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
