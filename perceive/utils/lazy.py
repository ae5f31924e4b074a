"""Lazily computed, cached values that are safe to share between threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from perceive.errors import MissingComponentError

K = TypeVar("K")
V = TypeVar("V")


class LazyMapping(Mapping[K, V], Generic[K, V]):
    """A read-only mapping whose values are computed on first access and cached.

    Args:
        loaders: for each key, a zero-argument function that computes its value.
        what: what the values are ("camera image", "range image"), for the error
            raised on a missing key.
    """

    def __init__(self, loaders: Mapping[K, Callable[[], V]], what: str = "item") -> None:
        self._loaders = dict(loaders)
        self._what = what
        self._cache: dict[K, V] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: K) -> V:
        try:
            return self._cache[key]
        except KeyError:
            pass
        try:
            loader = self._loaders[key]
        except KeyError:
            raise MissingComponentError.absent(self._what, key, self._loaders) from None
        value = loader()
        with self._lock:
            return self._cache.setdefault(key, value)

    def __contains__(self, key: object) -> bool:
        # Mapping's default would compute the value (and call a failing loader "absent")
        return key in self._loaders

    def __iter__(self) -> Iterator[K]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def __repr__(self) -> str:
        return f"LazyMapping(keys={list(self._loaders)!r})"
