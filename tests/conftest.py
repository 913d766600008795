import gzip
import os
import struct

import pytest
import torch

import coursekit as ck

# The unit tests build models and tensors side by side, on the CPU. (The lessons themselves run on
# a GPU when there is one: see the README, "GPU".)
os.environ.setdefault("COURSEKIT_DEVICE", "cpu")
torch.set_num_threads(1)  # as ck.setup() does for the lessons: small models, shared cores


@pytest.fixture(autouse=True)
def english_and_seeded():
    ck.set_language("en")
    ck.seed_everything(0)
    yield
    ck.set_language("en")


def write_idx(path, tensor):
    """Write a uint8 tensor in the IDX format torchvision reads (images: 3 dims, labels: 1)."""
    magic = {1: 0x00000801, 3: 0x00000803}[tensor.ndim]
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in tensor.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + tensor.to(torch.uint8).numpy().tobytes())


def write_tiny_dataset(folder, n_train=30, n_test=10, gz=False):
    """Small files in torchvision's format: random images, labels 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", torch.randint(0, 256, (n, 28, 28), generator=g))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", torch.arange(n) % 10)


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST subset the lessons use."""
    return ck.load_data("fashion_mnist", n_train=2000, n_test=500)
