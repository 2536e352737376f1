"""Weight files read without running code, and checked against published hashes.

- `load_torch`: every `torch.load` of a project file. `weights_only=True` (tensors and plain
  containers only); a file it refuses, or a truncated or corrupt one, is one DataError line
  naming the file and what to do, never torch's advice to turn `weights_only` off.
- `load_pickled_npy`: a `.npy` holding a pickled object array (Caffe's `bvlc_alexnet.npy`, a
  dict layer -> [W, b]) read by an unpickler that, like torch's `weights_only` one, builds only
  numpy arrays and dtypes; anything else in the pickle (a `__reduce__` payload) is refused
  before it runs.
- `check_weights`: a weight file's sha256, checked against the hash it is published with.
  torchvision's file names carry the first hex digits of their sha256
  (`resnet152-394f9c45.pth`), which `torch.hub` checks on download; the same pattern is
  checked here. No SHA-256 is published for the Toronto `bvlc_alexnet.npy` (only the
  `.caffemodel` it was converted from has a SHA-1), so it, like any file without a published
  hash, is reported with its sha256 for the run's record.
"""
import codecs
import hashlib
import pickle
import re
import struct
from pathlib import Path

import numpy as np

from imgdag.errors import DataError

# torch.hub.HASH_REGEX: a file name's `-<hex>.` part is the start of its sha256
HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_weights(path) -> dict:
    """{"sha256", "published"} of a weight file; "published" names the hash it was checked
    against, or is None (no published hash known). DataError when the file is not the one
    its name publishes."""
    sha256 = file_sha256(path)
    match = HASH_IN_NAME.search(Path(path).name)
    if not match or not match.group(1):
        return {"sha256": sha256, "published": None}
    if not sha256.startswith(match.group(1)):
        raise DataError(path, f"sha256 {sha256[:12]}... does not start with {match.group(1)}, the hash its "
                              "torchvision file name publishes: a corrupt or altered download, fetch it again")
    return {"sha256": sha256, "published": f"torchvision file name ({match.group(1)})"}


def load_torch(path, remedy: str, **kwargs):
    """torch.load(path, weights_only=True, **kwargs); a refused, truncated or corrupt file is a
    DataError naming it and `remedy` (what to do, e.g. "delete it to retrain")."""
    import torch

    try:
        return torch.load(path, weights_only=True, **kwargs)
    except pickle.UnpicklingError:
        problem = "not a file of tensors and plain containers (torch's weights-only loader refused it unread)"
    except (EOFError, OSError, RuntimeError, ValueError, KeyError, IndexError, struct.error) as e:
        problem = f"unreadable, truncated or corrupt ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    raise DataError(path, f"{problem}; {remedy}")


class _Refused(pickle.UnpicklingError):
    """A pickle names a class `_ArraysOnly` does not build."""


class _ArraysOnly(pickle.Unpickler):
    """Builds numpy arrays, dtypes and plain containers; refuses every other class."""

    # what numpy's pickles of arrays and scalars name (numpy 1.x `numpy.core`, 2.x `numpy._core`)
    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        **{(f"numpy.{core}.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0]
           for core in ("core", "_core")},
        **{(f"numpy.{core}.multiarray", "scalar"): np.float32(0).__reduce__()[0]
           for core in ("core", "_core")},
        ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise _Refused(f"{module}.{name}")
        return self.ALLOWED[module, name]


def load_pickled_npy(path, remedy: str):
    """The object array in a `.npy` file (`np.save` of a dict gives a 0-d one), unpickled
    with `_ArraysOnly`; DataError naming the file (and `remedy`) when it is not such a file
    or its pickle names anything else."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _, _, dtype = read_header(f)
            if not dtype.hasobject:
                raise DataError(path, f"expected a pickled object array, found a {dtype} array; {remedy}")
            return _ArraysOnly(f, encoding="latin1").load()
    except _Refused as e:
        raise DataError(path, f"its pickle names {e}, which is not an array or a plain container: "
                              f"refused unread (it could run code); {remedy}") from None
    except (OSError, ValueError, EOFError, TypeError, AttributeError, pickle.UnpicklingError) as e:
        raise DataError(path, f"not a pickled numpy .npy file ({e}); {remedy}") from None
