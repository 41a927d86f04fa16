"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 read from ``--data-dir`` through torchvision.

Nothing is ever downloaded: every torchvision data set class is built with
``download=False``, so the files must already be on disk, in torchvision's
standard layout under ``data_dir``:

* MNIST: ``MNIST/raw/train-images-idx3-ubyte``, ``MNIST/raw/train-labels-idx1-ubyte``,
  ``MNIST/raw/t10k-images-idx3-ubyte``, ``MNIST/raw/t10k-labels-idx1-ubyte``;
  Fashion-MNIST: the same four names under ``FashionMNIST/raw/``.
  torchvision 0.29 reads only the **uncompressed** idx files: its existence
  check looks for the names without ``.gz`` and ``read_sn3_pascalvincent_tensor``
  opens them with a plain ``open``; the ``.gz`` archives are used only by
  ``download()``, which gunzips them. ``.gz`` files alone are therefore not
  accepted (the error says to gunzip them). It checks no md5 of the raw files.
  It also still accepts the legacy cache ``MNIST/processed/{training,test}.pt``
  written by torchvision < 0.9, in place of the raw files.
* CIFAR-10: ``cifar-10-batches-py/data_batch_1`` … ``data_batch_5``, ``test_batch``
  and ``batches.meta`` (the extracted ``cifar-10-python.tar.gz``).
* CIFAR-100: ``cifar-100-python/train``, ``test`` and ``meta`` (the extracted
  ``cifar-100-python.tar.gz``).

Integrity: torchvision's CIFAR classes compare the md5 of every batch and meta
file with the published checksums and refuse anything else. Here the CIFAR
classes are subclassed with those checksums set to ``None``, which makes
torchvision's own ``check_integrity`` an existence check (exactly what the MNIST
classes do for their raw files); everything else, unpickling the batches, the
``data`` / ``labels`` / ``fine_labels`` keys, the reshape to ``(n, 3, 32, 32)`` and
the meta file's class names, is torchvision's code unchanged. In exchange, the
arrays torchvision returns are checked here: dtype uint8, image shape, one label
per image, labels in ``[0, num_classes)`` and the number of class names; a file
that fails to parse is named in a :class:`UserError`.

torchvision is imported on first use only, so importing this module is cheap.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noisylabels.data.base import RawDataset
from noisylabels.errors import UserError

_MNIST_SPLIT_FILES = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
# What can go wrong while torchvision parses a damaged file: a bad idx magic
# number trips an assert, a truncated idx file a failing ``view``, a damaged
# pickle ``UnpicklingError`` / ``EOFError``, a missing pickle key ``KeyError``.
_PARSE_ERRORS = (
    AssertionError,
    EOFError,
    IndexError,
    KeyError,
    OSError,
    RuntimeError,
    TypeError,
    ValueError,
    pickle.UnpicklingError,
)


@dataclass(frozen=True)
class VisionSpec:
    """How one image data set lies on disk and what it must contain."""

    torchvision_class: str  # the class in ``torchvision.datasets`` that reads it
    num_classes: int
    train_files: tuple[str, ...]  # relative to data_dir
    test_files: tuple[str, ...]
    meta_files: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (channels, height, width)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file torchvision needs, relative to ``data_dir``."""
        return self.train_files + self.test_files + self.meta_files

    @property
    def folder(self) -> str:
        """The sub-folder of ``data_dir`` that holds the files."""
        return Path(self.files[0]).parts[0]


def _mnist_like(folder: str) -> dict[str, Any]:
    train, test = ([f"{folder}/raw/{name}" for name in split] for split in _MNIST_SPLIT_FILES)
    return dict(
        num_classes=10,
        train_files=tuple(train),
        test_files=tuple(test),
        meta_files=(),
        image_shape=(1, 28, 28),
    )


VISION_DATASETS: dict[str, VisionSpec] = {
    "mnist": VisionSpec(torchvision_class="MNIST", **_mnist_like("MNIST")),
    "fashion-mnist": VisionSpec(torchvision_class="FashionMNIST", **_mnist_like("FashionMNIST")),
    "cifar10": VisionSpec(
        torchvision_class="CIFAR10",
        num_classes=10,
        train_files=tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
        test_files=("cifar-10-batches-py/test_batch",),
        meta_files=("cifar-10-batches-py/batches.meta",),
        image_shape=(3, 32, 32),
    ),
    "cifar100": VisionSpec(
        torchvision_class="CIFAR100",
        num_classes=100,
        train_files=("cifar-100-python/train",),
        test_files=("cifar-100-python/test",),
        meta_files=("cifar-100-python/meta",),
        image_shape=(3, 32, 32),
    ),
}


def _without_md5(cls: type) -> type:
    """A subclass of a torchvision CIFAR class whose integrity check is existence only."""
    return type(
        f"{cls.__name__}NoMD5",
        (cls,),
        {
            "train_list": [[name, None] for name, _ in cls.train_list],
            "test_list": [[name, None] for name, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
        },
    )


def _dataset_class(spec: VisionSpec) -> type:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    return _without_md5(cls) if spec.meta_files else cls


def _missing_files_error(name: str, spec: VisionSpec, root: Path, missing: list[str]) -> UserError:
    where = f"under {root}" if root.is_dir() else f"under {root}, which does not exist"
    hint = ""
    gzipped = [f for f in missing if (root / f"{f}.gz").is_file()]
    if gzipped:
        hint = f" ({len(gzipped)} found only as .gz, which torchvision does not read: gunzip them)"
    elif spec.meta_files:
        archive = "cifar-10-python.tar.gz" if spec.num_classes == 10 else "cifar-100-python.tar.gz"
        hint = f" (extract {archive} into that directory)"
    absent = "none of them is there" if len(missing) == len(spec.files) else f"missing {', '.join(missing)}"
    return UserError(
        f"{name} not found: expected {', '.join(spec.files)} {where}; {absent}{hint}; "
        f"put the standard {name} files there or pass --data-dir DIR (the directory holding {spec.folder}/)"
    )


def _corrupt_error(name: str, path: Path | str, exc: BaseException, root: Path, plural: bool = False) -> UserError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if len(detail) > 160:
        detail = detail[:157] + "..."
    what, it = ("files", "them") if plural else ("file", "it")
    return UserError(
        f"{name} {what} {path} {'are' if plural else 'is'} corrupt or truncated "
        f"({type(exc).__name__}: {detail}); "
        f"replace {it} with the original {what} from the official {name} release (data dir {root})"
    )


def _find_bad_file(spec: VisionSpec, root: Path, files: tuple[str, ...]) -> tuple[Path, BaseException] | None:
    """Parse ``files`` one at a time with torchvision's own readers; the first that fails."""
    if spec.meta_files:
        for rel in files:
            try:
                with open(root / rel, "rb") as f:
                    entry = pickle.load(f, encoding="latin1")
                if rel in spec.meta_files:
                    entry["fine_label_names" if spec.num_classes == 100 else "label_names"]
                else:
                    pixels = np.asarray(entry["data"])
                    if pixels.ndim != 2 or pixels.shape[1] != int(np.prod(spec.image_shape)):
                        raise ValueError(f"data is {pixels.shape}, expected (n, {np.prod(spec.image_shape)})")
                    entry["labels" if spec.num_classes == 10 else "fine_labels"]
            except _PARSE_ERRORS as exc:
                return root / rel, exc
        return None
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for rel in files:
        reader = read_image_file if "-images-" in rel else read_label_file
        try:
            reader(os.fspath(root / rel))
        except _PARSE_ERRORS as exc:
            return root / rel, exc
    return None


def _read_split(name: str, spec: VisionSpec, root: Path, cls: type, train: bool) -> tuple[np.ndarray, np.ndarray]:
    legacy = _legacy_mnist_cache(spec, root)  # torchvision then reads these instead of raw/
    if legacy:
        files = (f"{spec.folder}/processed/{'training' if train else 'test'}.pt",)
    else:
        files = spec.train_files if train else spec.test_files
    try:
        ds = cls(root=os.fspath(root), train=train, download=False)
    except _PARSE_ERRORS as exc:
        bad = None if legacy else _find_bad_file(spec, root, files + spec.meta_files)
        if bad is None:  # each file parses alone; blame them together
            blamed = files + spec.meta_files
            split = ", ".join(str(root / f) for f in blamed)
            raise _corrupt_error(name, split, exc, root, plural=len(blamed) > 1) from exc
        raise _corrupt_error(name, *bad, root) from exc
    split_files = ", ".join(str(root / f) for f in files)

    def fail(problem: str) -> UserError:
        return UserError(
            f"{name} {'train' if train else 'test'} files {split_files} are not the standard {name} data "
            f"({problem}); replace them with the original files from the official release"
        )

    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    targets = ds.targets.numpy() if hasattr(ds.targets, "numpy") else np.asarray(ds.targets)
    if data.dtype != np.uint8:
        raise fail(f"pixels are {data.dtype}, expected uint8")
    if data.ndim == 3:  # MNIST-like: (n, H, W) -> (n, 1, H, W)
        data = data[:, None, :, :]
    elif data.ndim == 4:  # torchvision's CIFAR arrays are NHWC -> NCHW
        data = data.transpose(0, 3, 1, 2)
    if data.shape[1:] != spec.image_shape:
        raise fail(f"images are {tuple(data.shape[1:])}, expected {spec.image_shape}")
    if targets.ndim != 1 or len(targets) != len(data):
        raise fail(f"{len(data)} images but {targets.size} labels")
    if targets.size and (targets.min() < 0 or targets.max() >= spec.num_classes):
        raise fail(f"labels span {targets.min()}..{targets.max()}, expected 0..{spec.num_classes - 1}")
    if spec.meta_files and len(ds.classes) != spec.num_classes:  # MNIST's class list is hard-coded
        raise fail(f"the meta file lists {len(ds.classes)} class names, expected {spec.num_classes}")
    return np.ascontiguousarray(data), targets.astype(np.int64, copy=False)


def _legacy_mnist_cache(spec: VisionSpec, root: Path) -> bool:
    processed = root / spec.folder / "processed"
    return not spec.meta_files and all((processed / f).is_file() for f in ("training.pt", "test.pt"))


def load_vision(name: str, data_dir: str | os.PathLike) -> RawDataset:
    """Read one of :data:`VISION_DATASETS` from ``data_dir`` with torchvision (never downloads).

    Returns uint8 NCHW images (``(n, 1, 28, 28)`` for MNIST / Fashion-MNIST,
    ``(n, 3, 32, 32)`` for CIFAR) and int64 labels, train and test as published.
    Raises :class:`UserError` for an unknown name, missing files or a corrupt file.
    """
    key = str(name).strip().lower()
    spec = VISION_DATASETS.get(key)
    if spec is None:
        raise UserError(f"unknown image dataset {name!r}; use one of {', '.join(VISION_DATASETS)}")
    root = Path(data_dir).expanduser().resolve()
    missing = [f for f in spec.files if not (root / f).is_file()]
    if missing and not _legacy_mnist_cache(spec, root):
        raise _missing_files_error(key, spec, root, missing)
    cls = _dataset_class(spec)
    x_train, y_train = _read_split(key, spec, root, cls, train=True)
    x_test, y_test = _read_split(key, spec, root, cls, train=False)
    return RawDataset(
        name=key, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=spec.num_classes
    )


__all__ = ["VISION_DATASETS", "VisionSpec", "load_vision"]
