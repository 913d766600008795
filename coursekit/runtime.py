"""Device choice, seeding and the one setup call at the top of every lesson."""

import os
import random

import numpy as np
import torch

from .i18n import set_language
from .validate import check_int


def get_device():
    """CUDA when a GPU is present, else the CPU; the environment variable COURSEKIT_DEVICE=cpu
    (or cuda) overrides the choice."""
    choice = os.environ.get("COURSEKIT_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    if choice not in ("cpu", "cuda") or (choice == "cuda" and not torch.cuda.is_available()):
        raise ValueError(f"COURSEKIT_DEVICE must be 'cpu' or 'cuda' (with a GPU present), got {choice!r}")
    return torch.device(choice)


_seed = 0


def get_seed():
    """The seed of the last `seed_everything` / `setup` call: lessons reseed each run with it."""
    return _seed


def seed_everything(seed):
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a run can be repeated."""
    global _seed
    seed = _seed = check_int("seed", seed, low=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def setup(lang="en", seed=0):
    """The setup cell of a lesson: language, seed, plot style. Returns the device.

    The environment variable COURSEKIT_SEED, when set, replaces `seed`: the tests use it
    to check that a lesson's claims do not depend on one lucky seed.
    """
    set_language(lang)
    seed = seed_everything(int(os.environ.get("COURSEKIT_SEED", seed)))
    from .plots import use_course_style

    use_course_style(lang)
    device = get_device()
    if device.type == "cpu":
        # The lessons' models are small: one thread is as fast as several, and it does not
        # slow to a crawl when another program (or a second kernel) shares the cores.
        torch.set_num_threads(1)
    print(f"coursekit: device={device.type}, seed={seed}, torch {torch.__version__.split('+')[0]}")
    return device
