"""An allow-listed unpickler for the FLAME files users download (DESIGN §2.2, §4).

Two files are pickles:
* FLAME 2020 ``generic_model.pkl``: a dict of numpy arrays, chumpy ``Ch`` objects (shapedirs,
  v_template, weights, J) and a scipy sparse ``J_regressor``. chumpy is never imported: a ``Ch``
  becomes :class:`ChumpyArray`, whose ``.x`` is its numpy value; the sparse matrix becomes
  :class:`SparseMatrix` (``.toarray()``).
* DECA's ``landmark_embedding.npy``: an object .npy (header + pickle) of a dict holding numpy arrays
  and torch tensors. Its globals are numpy's ``_reconstruct``/``ndarray``/``dtype``,
  ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and ``torch.storage._load_from_bytes``;
  the last is replaced by a ``torch.load(..., weights_only=True)`` of the same bytes.

Python 3 writes bytes in protocol-2 pickles as ``_codecs.encode(text, "latin1")``; that call is
allowed for exactly that use.

Any other global is refused *before* anything runs, with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import ast
import io
import pickle
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError


class UnsafePickleError(BadInputError):
    """The file asks the unpickler for something outside the allow-list."""


class ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch``: keeps the pickled state; ``.x`` is the array."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"x": state})

    @property
    def value(self) -> np.ndarray:
        return np.asarray(self.__dict__["x"])


class SparseMatrix:
    """Stand-in for a pickled scipy CSC/CSR matrix: keeps data/indices/indptr/shape; ``toarray()``."""

    def __setstate__(self, state):
        self.__dict__.update(state)

    def toarray(self) -> np.ndarray:
        d = self.__dict__
        shape = tuple(d.get("_shape") or d.get("shape"))
        fmt = d.get("format") or ("csr" if self.__class__.__name__ == "CsrMatrix" else "csc")
        out = np.zeros(shape, dtype=np.asarray(d["data"]).dtype)
        indptr, indices, data = (np.asarray(d[k]) for k in ("indptr", "indices", "data"))
        for major in range(len(indptr) - 1):
            sl = slice(indptr[major], indptr[major + 1])
            if fmt == "csc":
                out[indices[sl], major] = data[sl]
            else:
                out[major, indices[sl]] = data[sl]
        return out


class CsrMatrix(SparseMatrix):
    pass


def _load_tensor_bytes(b: bytes):
    import torch

    return torch.load(io.BytesIO(b), weights_only=True)


def _encode(text: str, encoding: str = "utf-8") -> bytes:
    """_codecs.encode as Python 3 protocol-2 pickles use it for bytes (str -> latin-1 bytes) and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused a _codecs.encode call that is not a latin-1 bytes literal")
    return text.encode("latin1")


def _reconstructor(cls, base, state):
    """copyreg._reconstructor, restricted to our stand-in classes."""
    if cls not in (ChumpyArray, SparseMatrix, CsrMatrix) or base is not object:
        raise UnsafePickleError(f"refused to reconstruct {cls!r}")
    return object.__new__(cls)


def _allowed() -> dict[tuple[str, str], object]:
    import torch._utils

    recon = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's _reconstruct, wherever this numpy keeps it
    scalar = np.float64(0).__reduce__()[0]
    table = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): _load_tensor_bytes,
        ("copy_reg", "_reconstructor"): _reconstructor, ("copyreg", "_reconstructor"): _reconstructor,
        ("__builtin__", "object"): object, ("builtins", "object"): object,
        ("_codecs", "encode"): _encode,
        ("__builtin__", "set"): set, ("builtins", "set"): set,  # chumpy keeps sets of dirty variables
        ("__builtin__", "frozenset"): frozenset, ("builtins", "frozenset"): frozenset,
        ("chumpy.ch", "Ch"): ChumpyArray,
        ("scipy.sparse.csc", "csc_matrix"): SparseMatrix, ("scipy.sparse._csc", "csc_matrix"): SparseMatrix,
        ("scipy.sparse.csr", "csr_matrix"): CsrMatrix, ("scipy.sparse._csr", "csr_matrix"): CsrMatrix,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = recon
        table[(mod, "scalar")] = scalar
    return table


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, name: str):
        super().__init__(f, encoding="latin1")
        self._name, self._table = name, _allowed()

    def find_class(self, module: str, name: str):
        try:
            return self._table[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{self._name}: refused to load {module}.{name} (not on the allow-list)") from None


def loads(data: bytes, name: str = "pickle"):
    """Unpickle ``data`` through the allow-list."""
    try:
        return _Unpickler(io.BytesIO(data), name).load()
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise BadInputError(f"{name}: not a readable pickle ({exc.__class__.__name__}: {exc})") from None


def load_pickle(path: str | Path):
    """Load a ``.pkl`` file (FLAME ``generic_model.pkl``) through the allow-list."""
    path = Path(path)
    return loads(path.read_bytes(), str(path))


def load_object_npy(path: str | Path):
    """Load an object-dtype ``.npy`` (DECA ``landmark_embedding.npy``) without numpy's pickle loader."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:6] != b"\x93NUMPY":
        raise BadInputError(f"{path}: not a .npy file")
    major = raw[6]
    hlen_size = 2 if major == 1 else 4
    hlen = struct.unpack("<H" if hlen_size == 2 else "<I", raw[8:8 + hlen_size])[0]
    header = ast.literal_eval(raw[8 + hlen_size:8 + hlen_size + hlen].decode("latin1"))
    if header.get("descr") != "|O":
        raise BadInputError(f"{path}: expected an object array, got {header.get('descr')}")
    arr = loads(raw[8 + hlen_size + hlen:], str(path))
    return arr.item() if isinstance(arr, np.ndarray) and arr.shape == () else arr


def to_numpy(value) -> np.ndarray:
    """An array from numpy, chumpy stand-ins, sparse stand-ins or torch tensors."""
    if isinstance(value, ChumpyArray):
        return value.value
    if isinstance(value, SparseMatrix):
        return value.toarray()
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


