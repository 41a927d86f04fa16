"""Where results live: a local directory or an object store, through pyarrow filesystems."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Store:
    """A filesystem and a root path inside it (``s3://bucket/prefix`` or a local directory)."""

    fs: pafs.FileSystem
    root: str

    @classmethod
    def from_uri(cls, uri: str, fs: pafs.FileSystem | None = None) -> Store:
        if fs is not None:
            return cls(fs, uri.split("://", 1)[-1].rstrip("/"))
        if "://" in uri:
            fs, path = pafs.FileSystem.from_uri(uri)
            return cls(fs, path.rstrip("/"))
        return cls(pafs.LocalFileSystem(), os.path.abspath(uri))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def write_bytes(self, path: str, data: bytes) -> None:
        """Atomic write: temp file + rename locally; one PUT on an object store."""
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        if not self.is_local:
            with self.fs.open_output_stream(path) as f:
                f.write(data)
            return
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, path)

    def read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    def write_table(self, path: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.write_bytes(path, sink.getvalue().to_pybytes())

    def read_table(self, path: str) -> pa.Table:
        return pq.read_table(path, filesystem=self.fs)

    def delete(self, path: str) -> bool:
        """Remove the file or directory tree at ``path``; False if nothing was there."""
        kind = self.fs.get_file_info(path).type
        if kind == pafs.FileType.NotFound:
            return False
        if kind == pafs.FileType.Directory:
            self.fs.delete_dir(path)
        else:
            self.fs.delete_file(path)
        return True

    def list_files(self, path: str, suffix: str = ".parquet") -> list[str]:
        if not self.exists(path):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=True))
        return sorted(
            i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix) and "/.tmp-" not in i.path
        )
