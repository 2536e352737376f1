"""The seed of one training epoch, from the run's seed and the epoch: what makes a resumed run
repeat an uninterrupted one. The engine seeds torch's global generator with it (dropout and the
like) and the batch iterators their shuffling and augmentation generators, so epoch e draws the
same numbers whether or not the run was killed before it. Changing the formula changes every
run's results (tests/test_resume.py, tests/test_engine_resume.py)."""

EPOCH_SEED_STRIDE = 1_000_003  # more than any epoch count: distinct (seed, epoch) pairs get distinct seeds


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch` (0-based) of a run seeded `seed`."""
    return seed * EPOCH_SEED_STRIDE + epoch
