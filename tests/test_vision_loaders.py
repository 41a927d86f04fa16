"""The image loaders, on tiny files fabricated in the exact on-disk formats torchvision reads.

MNIST / Fashion-MNIST: idx files, big-endian, magic 2051 (uint8, 3 dims) for
images and 2049 (uint8, 1 dim) for labels. CIFAR: Python 2 pickles written by
cPickle, whose keys and strings are Python 2 ``str`` (``b"data"`` when read with
``encoding="bytes"``, ``"data"`` with torchvision's ``encoding="latin1"``) and
whose uint8 ``data`` array (n x 3072: 1024 R, 1024 G, 1024 B, each row-major
32 x 32) is a ``numpy.core.multiarray._reconstruct`` call with a Python 2 ``str``
buffer. :class:`_Py2Pickler` writes those opcodes, so numpy's and torchvision's
real Python-2 code path is what is tested.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from noisylabels.data.base import RawDataset
from noisylabels.data.vision import VISION_DATASETS, load_vision
from noisylabels.errors import UserError

N_TRAIN, N_TEST = 20, 10
MNIST_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


@pytest.fixture(autouse=True)
def _never_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a loader tried to download")

    for cls in (tvd.MNIST, tvd.CIFAR10):
        monkeypatch.setattr(cls, "download", refuse)
    monkeypatch.setattr(tvd.utils, "download_url", refuse)


# ---------------------------------------------------------------- idx files


def write_idx_images(path: Path, images: np.ndarray) -> None:
    n, rows, cols = images.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def make_mnist(root: Path, folder: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train": (rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8), np.arange(N_TRAIN) % 10),
        "t10k": (rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8), (np.arange(N_TEST) * 3) % 10),
    }
    raw = root / folder / "raw"
    for split, (images, labels) in arrays.items():
        write_idx_images(raw / f"{split}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{split}-labels-idx1-ubyte", labels)
    return arrays


# ---------------------------------------------------------------- Python 2 pickles


class _Py2Str(bytes):
    """A Python 2 ``str`` (what cPickle wrote for every key, name and data buffer)."""


class _Py2Global:
    """A global referenced by module and name, as a Python 2 pickle names it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # save_reduce insists on a callable
        raise NotImplementedError


class _Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj):
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def save_py2global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    def save_ndarray(self, arr):
        func = _Py2Global("numpy.core.multiarray", "_reconstruct")
        args = (np.ndarray, (0,), _Py2Str(b"b"))
        state = (1, arr.shape, arr.dtype, False, _Py2Str(np.ascontiguousarray(arr).tobytes()))
        self.save_reduce(func, args, state, obj=arr)

    dispatch[_Py2Str] = save_py2str
    dispatch[_Py2Global] = save_py2global
    dispatch[np.ndarray] = save_ndarray


def write_py2_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def cifar_rows(n: int, seed: int) -> np.ndarray:
    """``n`` rows of 3072 bytes; row 0 has the flat planes R=10, G=20, B=30 plus one marked pixel each."""
    rows = np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)
    rows[0, :1024], rows[0, 1024:2048], rows[0, 2048:] = 10, 20, 30
    rows[0, 32 * 5 + 7] = 200  # R at row 5, column 7
    rows[0, 1024 + 32 * 31 + 0] = 201  # G at row 31, column 0
    rows[0, 2048 + 32 * 0 + 31] = 202  # B at row 0, column 31
    return rows


def make_cifar10(root: Path):
    base = root / "cifar-10-batches-py"
    rows, labels = cifar_rows(N_TRAIN, 1), (np.arange(N_TRAIN) * 7) % 10
    per = N_TRAIN // 5
    for i in range(5):
        sl = slice(per * i, per * (i + 1))
        batch = {
            _Py2Str(b"batch_label"): _Py2Str(f"training batch {i + 1} of 5".encode()),
            _Py2Str(b"labels"): [int(v) for v in labels[sl]],
            _Py2Str(b"data"): rows[sl],
            _Py2Str(b"filenames"): [_Py2Str(f"img_{j}.png".encode()) for j in range(sl.start, sl.stop)],
        }
        write_py2_pickle(base / f"data_batch_{i + 1}", batch)
    test_rows, test_labels = cifar_rows(N_TEST, 2), (np.arange(N_TEST) * 3) % 10
    write_py2_pickle(
        base / "test_batch",
        {
            _Py2Str(b"batch_label"): _Py2Str(b"testing batch 1 of 1"),
            _Py2Str(b"labels"): [int(v) for v in test_labels],
            _Py2Str(b"data"): test_rows,
            _Py2Str(b"filenames"): [_Py2Str(f"t_{j}.png".encode()) for j in range(N_TEST)],
        },
    )
    names = [_Py2Str(s) for s in (b"airplane", b"automobile", b"bird", b"cat", b"deer")]
    names += [_Py2Str(s) for s in (b"dog", b"frog", b"horse", b"ship", b"truck")]
    write_py2_pickle(
        base / "batches.meta",
        {_Py2Str(b"num_cases_per_batch"): per, _Py2Str(b"label_names"): names, _Py2Str(b"num_vis"): 3072},
    )
    return rows, labels, test_rows, test_labels


def make_cifar100(root: Path, n_classes_in_meta: int = 100):
    base = root / "cifar-100-python"
    splits = {"train": (cifar_rows(N_TRAIN, 3), (np.arange(N_TRAIN) * 11) % 100)}
    splits["test"] = (cifar_rows(N_TEST, 4), 99 - np.arange(N_TEST))
    for split, (rows, fine) in splits.items():
        write_py2_pickle(
            base / split,
            {
                _Py2Str(b"filenames"): [_Py2Str(f"{split}_{j}.png".encode()) for j in range(len(rows))],
                _Py2Str(b"batch_label"): _Py2Str(f"{split} batch".encode()),
                _Py2Str(b"fine_labels"): [int(v) for v in fine],
                _Py2Str(b"coarse_labels"): [int(v) // 5 for v in fine],
                _Py2Str(b"data"): rows,
            },
        )
    write_py2_pickle(
        base / "meta",
        {
            _Py2Str(b"fine_label_names"): [_Py2Str(f"class{k}".encode()) for k in range(n_classes_in_meta)],
            _Py2Str(b"coarse_label_names"): [_Py2Str(f"super{k}".encode()) for k in range(20)],
        },
    )
    return splits


def check_types(ds: RawDataset, name: str, n_classes: int, image_shape: tuple[int, int, int]) -> None:
    assert isinstance(ds, RawDataset)
    assert ds.name == name and ds.num_classes == n_classes
    assert ds.x_train.shape == (N_TRAIN, *image_shape) and ds.x_test.shape == (N_TEST, *image_shape)
    assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert ds.y_train.shape == (N_TRAIN,) and ds.y_test.shape == (N_TEST,)
    assert ds.x_train.flags.c_contiguous and ds.x_test.flags.c_contiguous


# ---------------------------------------------------------------- reading


def test_fabricated_pickle_is_the_python2_cifar_format(tmp_path):
    """What the CIFAR site's snippet and torchvision each see in the fabricated files."""
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    raw = path.read_bytes()
    assert raw.startswith(b"\x80\x02}")  # protocol 2, a dict
    assert pickle.SHORT_BINSTRING + b"\x04data" in raw  # a Python 2 str key, as cPickle wrote it
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    with open(path, "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert as_bytes[b"data"].dtype == np.uint8 and as_bytes[b"data"].shape == (N_TRAIN // 5, 3072)
    with open(path, "rb") as f:
        as_latin1 = pickle.load(f, encoding="latin1")
    assert set(as_latin1) == {"batch_label", "labels", "data", "filenames"}


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_like_pixels_and_labels(tmp_path, name):
    arrays = make_mnist(tmp_path, MNIST_FOLDERS[name])
    ds = load_vision(name, tmp_path)
    check_types(ds, name, 10, (1, 28, 28))
    np.testing.assert_array_equal(ds.x_train[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(ds.x_test[:, 0], arrays["t10k"][0])
    np.testing.assert_array_equal(ds.y_train, arrays["train"][1])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k"][1])


def test_mnist_accepts_str_path_and_user_dir(tmp_path, monkeypatch):
    make_mnist(tmp_path / "home" / "data", "MNIST")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_vision("MNIST", "~/data").x_train.shape == (N_TRAIN, 1, 28, 28)
    assert load_vision("mnist", str(tmp_path / "home" / "data")).name == "mnist"


def test_mnist_legacy_processed_cache_is_accepted(tmp_path):
    """torchvision still reads MNIST/processed/{training,test}.pt (torchvision < 0.9) instead of raw/."""
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    x = torch.arange(N_TRAIN * 784, dtype=torch.int64).remainder(256).to(torch.uint8).view(N_TRAIN, 28, 28)
    y = torch.arange(N_TRAIN) % 10
    torch.save((x, y), processed / "training.pt")
    torch.save((x[:N_TEST], y[:N_TEST]), processed / "test.pt")
    ds = load_vision("mnist", tmp_path)
    check_types(ds, "mnist", 10, (1, 28, 28))
    np.testing.assert_array_equal(ds.x_train[:, 0], x.numpy())
    np.testing.assert_array_equal(ds.y_test, y[:N_TEST].numpy())


def test_cifar10_chw_order_and_batch_order(tmp_path):
    rows, labels, test_rows, test_labels = make_cifar10(tmp_path)
    ds = load_vision("cifar10", tmp_path)
    check_types(ds, "cifar10", 10, (3, 32, 32))
    # batches 1..5 concatenated in order; each row is 1024 R, 1024 G, 1024 B, row-major
    np.testing.assert_array_equal(ds.x_train, rows.reshape(N_TRAIN, 3, 32, 32))
    np.testing.assert_array_equal(ds.x_test, test_rows.reshape(N_TEST, 3, 32, 32))
    np.testing.assert_array_equal(ds.y_train, labels)
    np.testing.assert_array_equal(ds.y_test, test_labels)
    img = ds.x_train[0]
    assert (img[0, 5, 7], img[1, 31, 0], img[2, 0, 31]) == (200, 201, 202)
    assert img[0, 0, 0] == 10 and img[1, 0, 0] == 20 and img[2, 31, 31] == 30
    assert img[0, 7, 5] == 10  # not transposed: (row 5, col 7) is marked, (row 7, col 5) is not
    for k in range(N_TRAIN):  # pixel by pixel against the raw row
        assert ds.x_train[k, 1, 3, 4] == rows[k, 1024 + 32 * 3 + 4]


def test_cifar100_fine_labels(tmp_path):
    splits = make_cifar100(tmp_path)
    ds = load_vision("cifar100", tmp_path)
    check_types(ds, "cifar100", 100, (3, 32, 32))
    np.testing.assert_array_equal(ds.x_train, splits["train"][0].reshape(N_TRAIN, 3, 32, 32))
    np.testing.assert_array_equal(ds.y_train, splits["train"][1])
    np.testing.assert_array_equal(ds.y_test, splits["test"][1])
    assert ds.y_test.max() == 99


def test_stock_torchvision_refuses_fabricated_cifar_on_md5(tmp_path):
    """Why the loader sets torchvision's CIFAR checksums to None (and leaves torchvision itself alone)."""
    make_cifar10(tmp_path)
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        tvd.CIFAR10(root=str(tmp_path), train=True, download=False)
    load_vision("cifar10", tmp_path)
    assert all(md5 for _, md5 in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list)
    assert tvd.CIFAR10.meta["md5"]


def test_specs_match_torchvision_layout():
    for name, folder in MNIST_FOLDERS.items():
        cls = getattr(tvd, VISION_DATASETS[name].torchvision_class)
        expected = {f"{folder}/raw/{url[: -len('.gz')]}" for url, _ in cls.resources}
        assert set(VISION_DATASETS[name].files) == expected
    for name in ("cifar10", "cifar100"):
        spec = VISION_DATASETS[name]
        cls = getattr(tvd, spec.torchvision_class)
        assert spec.train_files == tuple(f"{cls.base_folder}/{f}" for f, _ in cls.train_list)
        assert spec.test_files == tuple(f"{cls.base_folder}/{f}" for f, _ in cls.test_list)
        assert spec.meta_files == (f"{cls.base_folder}/{cls.meta['filename']}",)
    assert {k: v.num_classes for k, v in VISION_DATASETS.items()} == {
        "mnist": 10,
        "fashion-mnist": 10,
        "cifar10": 10,
        "cifar100": 100,
    }


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name", sorted(VISION_DATASETS))
def test_missing_files_name_every_expected_file(tmp_path, name):
    with pytest.raises(UserError) as err:
        load_vision(name, tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert name in msg and str(tmp_path) in msg and "--data-dir" in msg
    for rel in VISION_DATASETS[name].files:
        assert rel in msg


def test_missing_dir_and_partially_missing(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_vision("cifar10", tmp_path / "nowhere")
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(
        UserError, match=r"missing cifar-10-batches-py/data_batch_4 .*cifar-10-python\.tar\.gz"
    ):
        load_vision("cifar10", tmp_path)


def test_gz_only_is_refused_with_a_gunzip_hint(tmp_path):
    make_mnist(tmp_path, "FashionMNIST")
    for path in (tmp_path / "FashionMNIST" / "raw").iterdir():
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    with pytest.raises(UserError, match="4 found only as .gz.*gunzip"):
        load_vision("fashion-mnist", tmp_path)


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(UserError) as err:
        load_vision("svhn", tmp_path)
    msg = str(err.value)
    assert "'svhn'" in msg and all(name in msg for name in VISION_DATASETS)


@pytest.mark.parametrize(
    "file,damage",
    [
        ("train-images-idx3-ubyte", lambda b: b[: len(b) // 2]),  # truncated
        ("t10k-labels-idx1-ubyte", lambda b: b[:-3]),  # truncated labels
        ("t10k-images-idx3-ubyte", lambda b: b""),  # empty
        ("train-labels-idx1-ubyte", lambda b: struct.pack(">I", 2051) + b[4:]),  # wrong magic
    ],
)
def test_damaged_idx_file_is_named(tmp_path, file, damage):
    make_mnist(tmp_path, "MNIST")
    path = tmp_path / "MNIST" / "raw" / file
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError) as err:
        load_vision("mnist", tmp_path)
    msg = str(err.value)
    assert str(path) in msg and "corrupt or truncated" in msg and "\n" not in msg


def test_wrong_image_size_is_refused(tmp_path):
    make_mnist(tmp_path, "MNIST")
    bad = np.zeros((N_TEST, 32, 32), np.uint8)
    write_idx_images(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte", bad)
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte.*\(1, 32, 32\), expected \(1, 28, 28\)"):
        load_vision("mnist", tmp_path)


@pytest.mark.parametrize("file", ["data_batch_3", "test_batch", "batches.meta"])
def test_truncated_cifar_pickle_is_named(tmp_path, file):
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / file
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError) as err:
        load_vision("cifar10", tmp_path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_cifar_content_errors(tmp_path):
    splits = make_cifar100(tmp_path, n_classes_in_meta=10)  # a CIFAR-10 sized meta in the CIFAR-100 folder
    with pytest.raises(UserError, match="10 class names, expected 100"):
        load_vision("cifar100", tmp_path)
    make_cifar100(tmp_path)
    rows, fine = splits["test"]
    write_py2_pickle(
        tmp_path / "cifar-100-python" / "test",
        {_Py2Str(b"data"): rows, _Py2Str(b"fine_labels"): [int(v) for v in fine[:-1]]},
    )
    with pytest.raises(UserError, match=f"{N_TEST} images but {N_TEST - 1} labels"):
        load_vision("cifar100", tmp_path)
    write_py2_pickle(
        tmp_path / "cifar-100-python" / "test",
        {_Py2Str(b"data"): rows, _Py2Str(b"fine_labels"): [int(v) + 1 for v in fine]},
    )
    with pytest.raises(UserError, match="labels span 91..100, expected 0..99"):
        load_vision("cifar100", tmp_path)
    write_py2_pickle(tmp_path / "cifar-100-python" / "test", {_Py2Str(b"data"): rows})  # no fine_labels
    with pytest.raises(UserError, match=r"cifar-100-python/test is corrupt.*KeyError"):
        load_vision("cifar100", tmp_path)


def test_wrong_cifar_row_length_names_the_batch(tmp_path):
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    rows = np.zeros((N_TRAIN // 5, 3000), np.uint8)
    write_py2_pickle(path, {_Py2Str(b"data"): rows, _Py2Str(b"labels"): [0] * len(rows)})
    with pytest.raises(UserError, match=r"data_batch_2 is corrupt.*\(4, 3000\), expected \(n, 3072\)"):
        load_vision("cifar10", tmp_path)


def test_damaged_legacy_cache_is_named(tmp_path):
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    (processed / "training.pt").write_bytes(b"not a torch file")
    (processed / "test.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match=r"MNIST/processed/training\.pt is corrupt or truncated"):
        load_vision("mnist", tmp_path)
