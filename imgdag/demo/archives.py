"""Byte-for-byte reproducible tar, tar.gz and zip writers for the demo datasets.

Fixed timestamps, owners and member order: the same seed gives the same archive bytes, so
DVC sees an unchanged demo as unchanged.
"""
import gzip
import io
import tarfile
import zipfile

from imgdag.atomic import atomic_path

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uname = info.gname = ""
    tf.addfile(info, io.BytesIO(data))


def write_tar(path, members, gzipped: bool = False) -> int:
    """members: (name, bytes) pairs, written in the given order. Returns members written."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if gzipped else raw
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for name, data in members:
                _add(tf, name, data)
                count += 1
        if gzipped:
            stream.close()
    return count


def write_zip(path, members, compress: bool = True) -> int:
    """members: (name, bytes) pairs, written in the given order. Returns members written."""
    count = 0
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", method) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
            count += 1
    return count
