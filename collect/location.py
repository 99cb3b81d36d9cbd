"""Where a frame store lives: a local folder, or an fsspec URL such as ``s3://bucket/run.zarr``.

A :class:`StoreLocation` is what every store-facing API takes (``FrameWriter``, ``open_store``,
``collect.check``, ``python -m render``), and what travels to writer processes and Dask render
workers: the URL plus the ``storage_options`` given in Python. Credentials and endpoints come
from where the ecosystem keeps them (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL``, ``~/.aws``, ...) or from ``storage_options``; nothing here reads a file
of its own. Object stores need their fsspec package (``pip install "evalframes[s3]"``).

Failures to reach the location (a bad URL, a missing bucket, refused credentials, an
unreachable endpoint) become one :class:`StoreAccessError` naming the URL and what to check.

>>> StoreLocation.of("s3://bucket/run.zarr/").url, StoreLocation.of("file:///tmp/x.zarr").url
('s3://bucket/run.zarr', '/tmp/x.zarr')
>>> StoreLocation.of("s3://bucket/run.zarr").is_local, StoreLocation.of("/tmp/x.zarr").name
(False, 'x.zarr')
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr.storage
from zarr.abc.store import Store
from zarr.core.sync import sync

__all__ = ["StoreAccessError", "StoreLocation", "quiet_storage_logs"]

_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")
# protocol (with buckets) -> what to install for it
_EXTRA = {"s3": "evalframes[s3]", "s3a": "evalframes[s3]", "gs": "gcsfs", "gcs": "gcsfs"}
# Client settings unless storage_options say otherwise: give up on an endpoint that does not
# answer within ~half a minute instead of botocore's minutes (60 s connect timeout, retries).
_CLIENT_DEFAULTS = {
    "s3": {"config_kwargs": {"connect_timeout": 10, "retries": {"max_attempts": 3}}},
}
_CLIENT_DEFAULTS["s3a"] = _CLIENT_DEFAULTS["s3"]
_CONNECTION_ERRORS = {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError",
                      "ReadTimeoutError", "ServerTimeoutError"}  # fmt: skip
_STORAGE_LOGGERS = ("botocore", "aiobotocore", "s3fs", "fsspec", "gcsfs", "urllib3")
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or storage_options key/secret)",
}


class StoreAccessError(OSError):
    """A store's location cannot be used; the message names the URL and what to check."""


@dataclass(frozen=True)
class StoreLocation:
    """A store's URL (an absolute local path, or ``protocol://...``) and its fsspec options."""

    url: str
    storage_options: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        store: str | os.PathLike | StoreLocation,
        storage_options: Mapping[str, Any] | None = None,
    ) -> StoreLocation:
        """The location of ``store``: a path (made absolute: a writer process or a Dask
        worker may run elsewhere) or a URL; ``file://`` URLs are paths."""
        if isinstance(store, StoreLocation):
            if storage_options is None:
                return store
            store = store.url
        if not isinstance(store, (str, os.PathLike)):
            raise TypeError(f"store must be a path or a URL. Got {store!r} instead.")
        text = os.fspath(store)
        match = _URL_RE.match(text)
        if match and match.group(1).lower() == "file":
            text, match = match.group(2), None
        if match is None:
            if storage_options:
                raise ValueError(f"storage_options are for URLs; {text!r} is a local path")
            return cls(str(Path(text).absolute()))
        if not match.group(2).strip("/"):
            raise ValueError(f"store URL {text!r} names no bucket or path")
        return cls(text.rstrip("/"), dict(storage_options) if storage_options else None)

    @property
    def protocol(self) -> str:
        match = _URL_RE.match(self.url)
        return match.group(1).lower() if match else "file"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def path(self) -> Path:
        """The local folder (only for local stores)."""
        if not self.is_local:
            raise ValueError(f"{self.url!r} is not a local path")
        return Path(self.url)

    @property
    def name(self) -> str:
        """The last component (``run.zarr``)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.url

    def zarr_store(self, *, read_only: bool) -> Store:
        """The zarr store at this location (``StoreAccessError`` if the URL cannot be used)."""
        if self.is_local:
            return zarr.storage.LocalStore(self.url, read_only=read_only)
        # no listing cache: other processes add groups and chunks all the time
        options = {"use_listings_cache": False, **_CLIENT_DEFAULTS.get(self.protocol, {})}
        options.update(self.storage_options or {})
        try:
            return zarr.storage.FsspecStore.from_url(
                self.url, storage_options=options, read_only=read_only
            )
        except ImportError as e:
            extra = _EXTRA.get(self.protocol)
            hint = f"pip install '{extra}'" if extra else "install its fsspec package"
            problem = f"the {self.protocol}:// protocol needs its fsspec package ({hint})"
            raise StoreAccessError(f"frame store {self.url!r}: {problem}") from e
        except ValueError as e:  # fsspec: "Protocol not known"
            raise StoreAccessError(
                f"frame store {self.url!r}: unknown storage protocol {self.protocol!r} "
                f"(not a path or an fsspec URL: {_first_line(e)})"
            ) from e

    def check_access(self, store: Store) -> None:
        """One request to the bucket before any other (object stores with buckets), so an
        unusable location fails with one clear line instead of many concurrent requests'.
        Needs the permission to list the bucket, which finding the groups needs anyway."""
        if self.protocol not in _EXTRA:
            return
        with self.translated_errors():
            try:
                sync(store.fs._info(self.bucket))
            except FileNotFoundError:
                raise StoreAccessError(
                    f"frame store {self.url!r}: bucket {self.bucket!r} does not exist"
                ) from None

    @contextlib.contextmanager
    def translated_errors(self, action: str = "") -> Iterator[None]:
        """Turn what the storage client raises when the location cannot be used (refused
        credentials, an unreachable endpoint, an invalid bucket name) into one
        :class:`StoreAccessError` naming this URL; everything else passes unchanged (local
        paths: all of it)."""
        try:
            yield
        except Exception as e:
            problem = None if self.is_local else self._problem(e)
            if problem is None:
                raise
            doing = f" ({action})" if action else ""
            raise StoreAccessError(f"frame store {self.url!r}{doing}: {problem}") from e

    def _problem(self, error: Exception) -> str | None:
        """What is wrong with the location, by the error's type; ``None``: not the
        location's problem (evalframes' own errors, a missing object, damaged data)."""
        names = {cls.__name__ for cls in type(error).__mro__}
        if isinstance(error, PermissionError):
            check = _CREDENTIALS.get(self.protocol, "the credentials")
            return f"access denied ({_first_line(error)}); check {check}"
        if names & _CONNECTION_ERRORS or isinstance(error, (ConnectionError, TimeoutError)):
            return f"cannot reach the storage endpoint ({_first_line(error)})"
        if "NoCredentialsError" in names:
            return f"no credentials found; set {_CREDENTIALS.get(self.protocol, 'them')}"
        if "ParamValidationError" in names:  # botocore: e.g. an invalid bucket name
            return f"invalid location ({_first_line(error)})"
        return None

    @property
    def bucket(self) -> str:
        """The first component after ``protocol://`` (an object store's bucket)."""
        match = _URL_RE.match(self.url)
        return match.group(2).split("/", 1)[0] if match else ""


def quiet_storage_logs(level: int) -> None:
    """Set the object-store clients' loggers (botocore says "Found credentials ..." at INFO)
    to ``level``: command lines keep them at WARNING unless ``-v``."""
    for name in _STORAGE_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
