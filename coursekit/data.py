"""Real image data (Fashion-MNIST or MNIST) through torchvision, loaded once into tensors.

Where the files come from, in this order:
1. the course's data folder (`data/` in the repository, or the folder in $COURSEKIT_DATA),
   in torchvision's layout: <root>/FashionMNIST/raw/*-ubyte;
2. Debian's package `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/*.gz): its
   files are decompressed into the data folder (copying the .gz files would not do: they
   are recompressed, their md5 differs from torchvision's, and torchvision would try to
   download them again);
3. torchvision's own download (needs the internet once).
"""

import functools
import gzip
import os
import shutil
import socket
from pathlib import Path

import torch
import torchvision

from .i18n import tr
from .runtime import get_device
from .validate import check_choice, check_int

DATASETS = {
    # name: (torchvision class, mean, std of the training pixels in [0, 1], Debian folder)
    "fashion_mnist": (torchvision.datasets.FashionMNIST, 0.2860, 0.3530, "/usr/share/datasets/fashion-mnist"),
    "mnist": (torchvision.datasets.MNIST, 0.1307, 0.3081, None),
}
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "mnist": [str(d) for d in range(10)],
}
DOWNLOAD_TIMEOUT_S = 10


def data_root():
    """The course's data folder: $COURSEKIT_DATA, else `data/` next to the coursekit package."""
    return Path(os.environ.get("COURSEKIT_DATA", Path(__file__).resolve().parent.parent / "data"))


def _raw_folder(root, dataset):
    return Path(root) / DATASETS[dataset][0].__name__ / "raw"


def _have_raw_files(root, dataset):
    return all((_raw_folder(root, dataset) / name).is_file() for name in RAW_FILES)


def _unpack_debian_files(root, dataset):
    """Decompress Debian's .gz files into <root>/<Class>/raw/. True when it worked."""
    debian = DATASETS[dataset][3]
    if debian is None or not all((Path(debian) / f"{n}.gz").is_file() for n in RAW_FILES):
        return False
    raw = _raw_folder(root, dataset)
    raw.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        tmp = raw / f"{name}.part"
        with gzip.open(Path(debian) / f"{name}.gz", "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(raw / name)
    return True


def _torchvision_dataset(root, dataset, train):
    cls = DATASETS[dataset][0]
    try:
        return cls(root, train=train, download=False)
    except (RuntimeError, ValueError, IndexError, EOFError) as error:
        broken = _raw_folder(root, dataset) / RAW_FILES[0 if train else 2]
        raise RuntimeError(tr("data_corrupt", path=broken.parent, error=error)) from error


def _download(root, dataset):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        DATASETS[dataset][0](root, train=True, download=True)
    except Exception as error:  # any network failure ends in the same advice
        raise RuntimeError(tr("data_missing", dataset=dataset, root=root, error=str(error).strip().splitlines()[-1])) from None
    finally:
        socket.setdefaulttimeout(old)


def ensure_files(dataset="fashion_mnist", root=None):
    """Make sure the raw files are in `root`; return the folder that holds them."""
    check_choice("dataset", dataset, DATASETS)
    root = Path(root) if root is not None else data_root()
    if not _have_raw_files(root, dataset) and not _unpack_debian_files(root, dataset):
        _download(root, dataset)
    return root


@functools.lru_cache(maxsize=4)
def _load_split(root, dataset, train):
    ds = _torchvision_dataset(root, dataset, train)
    return ds.data, ds.targets


def load_data(dataset="fashion_mnist", n_train=10000, n_test=2000, flatten=True, normalize=True, root=None, seed=0,
              device=None):
    """Load a dataset as tensors: X_train, y_train, X_test, y_test, on `device` (default: the GPU
    when there is one, else the CPU).

    n_train / n_test pick a random (seeded) subset so a lesson stays fast; None keeps all.
    normalize: x = (pixel/255 - mean) / std with the training set's mean and std.
    flatten: images as vectors of 784 (for MLPs) instead of 1x28x28 (for CNNs).
    """
    check_choice("dataset", dataset, DATASETS)
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None:
            check_int(name, n)
    root = ensure_files(dataset, root)
    _, mean, std, _ = DATASETS[dataset]
    out = []
    for train, n in ((True, n_train), (False, n_test)):
        images, labels = _load_split(str(root), dataset, train)
        if n is not None and n < len(images):
            keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
            images, labels = images[keep], labels[keep]
        X = images.float().div(255).unsqueeze(1)
        if normalize:
            X = (X - mean) / std
        if flatten:
            X = X.flatten(1)
        out += [X, labels.clone()]
    device = device or get_device()
    return tuple(t.to(device) for t in out)


def class_names(dataset="fashion_mnist"):
    return CLASS_NAMES[check_choice("dataset", dataset, DATASETS)]
