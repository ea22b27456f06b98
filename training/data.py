"""Data that needs no download: digits (bundled with scikit-learn), CIFAR-10 from a local folder,
and a synthetic generator for tests.

Every loader returns a :class:`ImageData`: float images in a known value range (what the
accountant's L1 diameter is computed from), integer labels, and a fixed train/test split.
CIFAR-10 is read from its standard binary format (``data_batch_1.bin`` ...) or its python
format (``data_batch_1`` ...) through an unpickler that only builds numpy arrays: pickled code is
never executed. A missing or malformed file raises ``ValueError`` naming the file.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from dpaccount.errors import InputError

__all__ = ["ImageData", "load_digits", "load_cifar10", "synthetic", "load_dataset",
           "DATASET_CLASSES", "DATASET_SHAPES"]


@dataclass(frozen=True)
class ImageData:
    name: str
    x_train: torch.Tensor  # (N, C, H, W) float32 in value_range
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    value_range: tuple  # (lo, hi)
    num_classes: int

    @property
    def shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def to(self, device) -> "ImageData":
        return ImageData(self.name, self.x_train.to(device), self.y_train.to(device),
                         self.x_test.to(device), self.y_test.to(device), self.value_range,
                         self.num_classes)


#: classes and record shape (C, H, W) of the data sets the poisoning grid loads (what a
#: configuration is checked against before any data is loaded)
DATASET_CLASSES = {"digits": 10, "synthetic": 4, "cifar10": 10}
DATASET_SHAPES = {"digits": (1, 8, 8), "synthetic": (1, 8, 8), "cifar10": (3, 32, 32)}


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    """A fixed stratified split (public preprocessing: it depends on no training randomness)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test[idx[:int(round(test_fraction * idx.size))]] = True
    return x[~test], y[~test], x[test], y[test]


def _tensors(name, xtr, ytr, xte, yte, value_range, num_classes) -> ImageData:
    f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    g = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return ImageData(name, f(xtr), g(ytr), f(xte), g(yte), value_range, num_classes)


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> ImageData:
    """scikit-learn's bundled 8x8 digits (1797 images, pixel values 0..16 scaled to [0, 1]);
    a stratified 80/20 split gives N = 1438 training images."""
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:
        raise InputError("the digits data set needs scikit-learn: pip install 'dpaccount[train]'") \
            from None
    d = _sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    xtr, ytr, xte, yte = _split(x, d.target, test_fraction, split_seed)
    return _tensors("digits", xtr, ytr, xte, yte, (0.0, 1.0), 10)


def synthetic(n: int = 512, n_test: int = 256, shape=(1, 8, 8), num_classes: int = 4,
              seed: int = 0) -> ImageData:
    """Class-conditional images in [0, 1]: each class is a fixed random pattern, each image its
    class pattern plus uniform noise, clipped. Learnable by the small models in a few epochs."""
    rng = np.random.default_rng(seed)
    protos = rng.random((num_classes, *shape))
    y = rng.integers(0, num_classes, n + n_test)
    x = np.clip(0.7 * protos[y] + 0.3 * rng.random((n + n_test, *shape)), 0.0, 1.0)
    return _tensors("synthetic", x[:n], y[:n], x[n:], y[n:], (0.0, 1.0), num_classes)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds the dicts, lists, bytes and numpy arrays of CIFAR's python format, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are "
                                     "allowed in a CIFAR-10 batch")


_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR_TEST = ["test_batch"]


def _read_binary(path: Path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise InputError(f"CIFAR-10 file {str(path)!r} is malformed: {raw.size} bytes is not a "
                         "multiple of 3073 (1 label byte + 3072 pixel bytes per record)")
    rec = raw.reshape(-1, 3073)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise InputError(f"CIFAR-10 file {str(path)!r} is malformed: label {labels.max()} > 9")
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


def _read_python(path: Path):
    try:
        with open(path, "rb") as fh:
            d = _NumpyOnlyUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise InputError(f"CIFAR-10 file {str(path)!r} was refused: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(f"CIFAR-10 file {str(path)!r} is malformed ({type(exc).__name__})") \
            from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise InputError(f"CIFAR-10 file {str(path)!r} is malformed: expected a dict with "
                         "b'data' and b'labels'")
    x = np.asarray(d[b"data"])
    y = np.asarray(d[b"labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or x.shape[0] != y.size:
        raise InputError(f"CIFAR-10 file {str(path)!r} is malformed: data must be uint8 of shape "
                         f"(n, 3072) with n labels; got {x.dtype} {x.shape} and {y.size} labels")
    return x.reshape(-1, 3, 32, 32), y


def load_cifar10(folder, max_train: int | None = None) -> ImageData:
    """CIFAR-10 from ``folder`` (the extracted ``cifar-10-batches-bin`` or
    ``cifar-10-batches-py``), pixels scaled to [0, 1]. ``max_train`` keeps the first images."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"CIFAR-10 folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise InputError(f"CIFAR-10 folder {str(folder)!r} is not a directory")
    if (folder / "data_batch_1.bin").exists():
        reader, suffix = _read_binary, ".bin"
    elif (folder / "data_batch_1").exists():
        reader, suffix = _read_python, ""
    else:
        raise InputError(f"CIFAR-10 folder {str(folder)!r} has neither data_batch_1.bin (binary "
                         "format) nor data_batch_1 (python format)")

    def read(names):
        xs, ys = [], []
        for nm in names:
            p = folder / (nm + suffix)
            if not p.exists():
                raise InputError(f"CIFAR-10 file {str(p)!r} is missing")
            x, y = reader(p)
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    xtr, ytr = read(_CIFAR_TRAIN)
    xte, yte = read(_CIFAR_TEST)
    if max_train is not None:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    return _tensors("cifar10", xtr.astype(np.float32) / 255.0, ytr,
                    xte.astype(np.float32) / 255.0, yte, (0.0, 1.0), 10)


def load_dataset(name: str, data_dir=None, seed: int = 0) -> ImageData:
    if name == "digits":
        return load_digits()
    if name == "synthetic":
        return synthetic(seed=seed)
    if name == "cifar10":
        if data_dir is None:
            raise InputError("dataset 'cifar10' needs --data-dir (the extracted batches folder); "
                             "nothing is downloaded")
        return load_cifar10(data_dir)
    raise InputError(f"dataset must be 'digits', 'cifar10' or 'synthetic'; got {name!r}")
