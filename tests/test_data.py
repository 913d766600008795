import time
from pathlib import Path

import pytest
import torch
import torchvision

import coursekit as ck
from coursekit import data
from conftest import write_tiny_dataset


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    entry = data.DATASETS["fashion_mnist"]
    monkeypatch.setitem(data.DATASETS, "fashion_mnist", entry[:3] + (str(tmp_path / "no-debian"),))


def test_real_data_shapes_and_normalisation(fashion):
    X_train, y_train, X_test, y_test = fashion
    assert X_train.shape == (2000, 784) and X_test.shape == (500, 784)
    assert y_train.dtype == torch.long and set(y_train.unique().tolist()) == set(range(10))
    assert abs(X_train.mean().item()) < 0.1 and abs(X_train.std().item() - 1) < 0.1


def test_images_not_flattened_and_raw_pixels():
    X, _, _, _ = ck.load_data(n_train=50, n_test=20, flatten=False, normalize=False)
    assert X.shape == (50, 1, 28, 28) and X.min() >= 0 and X.max() <= 1


def test_subset_is_seeded():
    a = ck.load_data(n_train=100, n_test=10)[1]
    b = ck.load_data(n_train=100, n_test=10)[1]
    c = ck.load_data(n_train=100, n_test=10, seed=1)[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_source_1_data_folder(tmp_path, no_debian):
    write_tiny_dataset(tmp_path / "FashionMNIST" / "raw")
    X, y, Xt, yt = ck.load_data(root=tmp_path, n_train=None, n_test=None)
    assert X.shape == (30, 784) and Xt.shape == (10, 784) and y.tolist()[:3] == [0, 1, 2]


def test_source_1_env_variable(tmp_path, monkeypatch, no_debian):
    write_tiny_dataset(tmp_path / "FashionMNIST" / "raw")
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    assert ck.data_root() == tmp_path
    assert ck.load_data(n_train=None, n_test=None)[0].shape == (30, 784)


def test_source_2_debian_package_is_decompressed(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_tiny_dataset(debian, gz=True)
    entry = data.DATASETS["fashion_mnist"]
    monkeypatch.setitem(data.DATASETS, "fashion_mnist", entry[:3] + (str(debian),))
    root = tmp_path / "cache"
    X, _, _, _ = ck.load_data(root=root, n_train=None, n_test=None)
    assert X.shape == (30, 784)
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.RAW_FILES)  # plain files, no .gz


def test_source_3_torchvision_download(tmp_path, monkeypatch, no_debian):
    def fake_download(self):  # stands in for the network: writes what torchvision would
        write_tiny_dataset(Path(self.raw_folder))

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", fake_download)
    X, _, _, _ = ck.load_data(root=tmp_path, n_train=None, n_test=None)
    assert X.shape == (30, 784)


def test_no_source_fails_fast_with_the_three_ways(tmp_path, monkeypatch, no_debian):
    def offline(self):
        raise RuntimeError("Error downloading: <urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    start = time.time()
    with pytest.raises(RuntimeError) as err:
        ck.load_data(root=tmp_path)
    assert time.time() - start < 5
    message = str(err.value)
    assert "COURSEKIT_DATA" in message and "dataset-fashion-mnist" in message and "download" in message


def test_truncated_file_names_the_file(tmp_path, no_debian):
    raw = tmp_path / "FashionMNIST" / "raw"
    write_tiny_dataset(raw)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match="damaged or truncated"):
        ck.load_data(root=tmp_path)


@pytest.mark.parametrize("kwargs, name", [({"dataset": "cifar"}, "dataset"), ({"n_train": 0}, "n_train"),
                                          ({"n_test": -5}, "n_test"), ({"n_train": 2.5}, "n_train")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ck.load_data(**kwargs)


def test_class_names():
    assert ck.class_names()[9] == "Ankle boot" and len(ck.class_names("mnist")) == 10
