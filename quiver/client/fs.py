"""The ``quiver://`` fsspec filesystem: ``quiver://[team/]dataset[@vN]/path``.

``pandas.read_csv("quiver://iris@v2/iris.csv")`` and pyarrow datasets read through it (ranged
reads on the file's signed URL); a file opened for writing is uploaded into the working set
when it is closed. A version is read-only. Another team's dataset is ``team/dataset@vN`` or,
for its working set, ``team/dataset@``.
"""

from __future__ import annotations

import tempfile
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from quiver.client.client import Client
from quiver.client.errors import QuiverError
from quiver.client.references import Reference, parse_reference
from quiver.client.types import File


class QuiverFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    protocol = "quiver"
    root_marker = ""

    def __init__(self, url: str | None = None, api_key: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.client = Client(url, api_key)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        path = str(path)
        if path.startswith("quiver://"):
            path = path[len("quiver://") :]
        return path.strip("/")

    # --- naming ---------------------------------------------------------------------------

    def _split(self, path: str) -> tuple[str, str]:
        """``(dataset reference, path inside it)`` for a stripped path."""
        parsed = parse_reference(self._strip_protocol(path), with_path=True)
        return str(Reference(parsed.dataset, parsed.team, parsed.version)), parsed.path

    def _name(self, reference: str, inner: str) -> str:
        return f"{reference}/{inner}" if inner else reference

    def _entry(self, reference: str, found: File) -> dict[str, Any]:
        return {
            "name": self._name(reference, found.path),
            "size": found.size,
            "type": "file",
            "sha256": found.sha256,
            "ETag": found.sha256,
            "content_type": found.content_type,
            "created": found.created_at.timestamp() if found.created_at else None,
        }

    def _files(self, reference: str, prefix: str) -> list[File]:
        try:
            return list(self.client.files(reference, prefix=prefix or None))
        except QuiverError as error:
            if error.code == "NOT_FOUND":
                raise FileNotFoundError(reference) from error
            raise

    # --- reading the tree -----------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        if not path:
            names = [d.name for d in self.client.datasets()]
            if not detail:
                return names
            return [{"name": name, "size": 0, "type": "directory"} for name in names]
        reference, inner = self._split(path)
        prefix = f"{inner}/" if inner else ""
        files = self._files(reference, prefix)
        if not files and inner:
            exact = self._file_or_none(reference, inner)
            if exact is None:
                raise FileNotFoundError(path)
            files = [exact]
            prefix = inner.rsplit("/", 1)[0] + "/" if "/" in inner else ""
        entries: dict[str, dict[str, Any]] = {}
        for found in files:
            rest = found.path[len(prefix) :]
            if "/" in rest:
                child = self._name(reference, prefix + rest.split("/", 1)[0])
                entries.setdefault(child, {"name": child, "size": 0, "type": "directory"})
            else:
                entries[self._name(reference, found.path)] = self._entry(reference, found)
        listed = sorted(entries.values(), key=lambda e: str(e["name"]))
        return listed if detail else [e["name"] for e in listed]

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Every file under ``path`` in one paged listing (not one request a folder)."""
        path = self._strip_protocol(path)
        reference, inner = self._split(path)
        prefix = f"{inner}/" if inner else ""
        found: dict[str, dict[str, Any]] = {}
        for remote in self._files(reference, prefix):
            depth = remote.path[len(prefix) :].count("/") + 1
            if maxdepth is not None and depth > maxdepth:
                continue
            found[self._name(reference, remote.path)] = self._entry(reference, remote)
            if withdirs:
                parts = remote.path[len(prefix) :].split("/")[:-1]
                for index in range(1, len(parts) + 1):
                    folder = self._name(reference, prefix + "/".join(parts[:index]))
                    found.setdefault(folder, {"name": folder, "size": 0, "type": "directory"})
        if not found and inner:
            exact = self._file_or_none(reference, inner)
            if exact is not None:
                found[path] = self._entry(reference, exact)
        if withdirs and inner and found and path not in found:
            found[path] = {"name": path, "size": 0, "type": "directory"}
        ordered = dict(sorted(found.items()))
        return ordered if detail else list(ordered)

    def _file_or_none(self, reference: str, inner: str) -> File | None:
        try:
            return self.client.file(reference, inner)
        except QuiverError as error:
            if error.code == "NOT_FOUND":
                return None
            raise

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        reference, inner = self._split(path)
        if not inner:
            self.client.dataset_id(reference)
            return {"name": path, "size": 0, "type": "directory"}
        exact = self._file_or_none(reference, inner)
        if exact is not None:
            return self._entry(reference, exact)
        if self._files(reference, f"{inner}/"):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        reference, inner = self._split(path)
        found = self._file_or_none(reference, inner)
        if found is None or found.download_url is None:
            raise FileNotFoundError(path)
        size = found.size
        first = 0 if start is None else (start if start >= 0 else max(0, size + start))
        last = size if end is None else (end if end >= 0 else max(0, size + end))
        if last <= first:
            return b""
        return self.client.read_url(found.download_url, start=first, end=last)

    # --- files ------------------------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AbstractBufferedFile:
        path = self._strip_protocol(path)
        reference, inner = self._split(path)
        if "r" in mode:
            found = self._file_or_none(reference, inner)
            if found is None:
                raise FileNotFoundError(path)
            return QuiverReadFile(self, path, found, block_size, cache_options)
        if parse_reference(reference).version is not None:
            raise PermissionError(f"{reference} is a version: versions are read-only")
        return QuiverWriteFile(self, path, reference, inner, mode, block_size)

    def rm_file(self, path: str) -> None:
        reference, inner = self._split(path)
        if not self.client.delete_files(reference, [inner]):
            raise FileNotFoundError(path)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        pass  # folders exist when files do

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        pass


class QuiverReadFile(AbstractBufferedFile):  # type: ignore[misc]
    def __init__(
        self,
        fs: QuiverFileSystem,
        path: str,
        found: File,
        block_size: int | None,
        cache_options: dict[str, Any] | None,
    ) -> None:
        self.found = found
        super().__init__(
            fs,
            path,
            mode="rb",
            block_size=block_size or 4 * 1024 * 1024,
            size=found.size,
            cache_type="readahead",
            cache_options=cache_options,
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        assert self.found.download_url is not None
        client: Client = self.fs.client
        return client.read_url(self.found.download_url, start=start, end=min(end, self.size))


class QuiverWriteFile(AbstractBufferedFile):  # type: ignore[misc]
    """Spooled to a temporary file; uploaded (one commit into the working set) on close."""

    def __init__(
        self,
        fs: QuiverFileSystem,
        path: str,
        reference: str,
        inner: str,
        mode: str,
        block_size: int | None,
    ) -> None:
        if not inner:
            raise IsADirectoryError(path)
        self.reference = reference
        self.inner = inner
        self.spool = tempfile.NamedTemporaryFile(prefix="quiver-", suffix=".part")  # noqa: SIM115
        super().__init__(fs, path, mode="wb", block_size=block_size or 5 * 1024 * 1024)

    def _initiate_upload(self) -> None:
        pass

    def _upload_chunk(self, final: bool = False) -> bool:
        self.buffer.seek(0)
        self.spool.write(self.buffer.read())
        if final:
            self.spool.flush()
            client: Client = self.fs.client
            client.upload_file(self.reference, self.inner, self.spool.name)
            self.spool.close()
        return True

    def discard(self) -> None:
        self.spool.close()
