"""Type checks of config values against their fields' defaults (for JSON configs and the API).

A JSON config can hold anything: ``"lr": "0.1"``, ``"preload": "no"``, ``"image_size":
"64x32"``. Comparisons and conversions in ``__post_init__`` would then fail deep inside
(``'<' not supported``) or, worse, succeed with a wrong meaning (``"no"`` is true; the
string ``"1111"`` iterates as four numbers). :func:`check_field_types` compares each value
with the kind of its field's default and names the field that is wrong.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from perceive.errors import ConfigError


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, tuple | list):
        return "sequence"
    return "other"


def check_field_types(cls: type, values: Mapping[str, Any], where: str) -> None:
    """Raise :class:`ConfigError` for a value whose kind differs from its field's default.

    Kinds: booleans, numbers (``bool`` is not a number; NaN and infinities are refused),
    strings, sequences (a string is not a sequence). Fields whose default is None or
    another object (a nested config) are not checked here.

    Args:
        cls: a dataclass.
        values: field name -> value (names that are not fields are ignored).
        where: the config's name for the message, e.g. ``"training config"``.
    """
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        want = _kind(_default(f))
        if want == "other":
            continue
        value = values[f.name]
        got = _kind(value)
        if got != want:
            names = {"bool": "true or false", "number": "a number", "str": "a string"}
            raise ConfigError(
                f"{where}: {f.name} must be {names.get(want, 'a list')}, got {value!r}"
            )
        if want == "number" and not math.isfinite(value):
            raise ConfigError(f"{where}: {f.name} must be finite, got {value!r}")
