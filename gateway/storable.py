"""What a sender wrote, made storable once, at the boundary, before anything is kept.

Every string that reaches the database, a log line or an outgoing body must be valid Unicode that both
stores accept: no lone surrogates (JSON may spell ``"\\ud800"``, and ``json.loads`` reads the raw bytes
``ED A0 80`` as one) and no NUL (PostgreSQL's ``text`` and ``jsonb`` refuse ``\\u0000``). Each is replaced
by U+FFFD. Numbers that strict JSON cannot spell (``NaN``, ``Infinity``) become ``null``. Nesting is
bounded by ``MAX_DEPTH``, far below what every reader decodes (Python's ``json`` gives up near 1,000
levels, inside SQLAlchemy's result processing sooner). Times are bounded by ``gateway.when``.

``document`` returns the repaired value and the paths it repaired, so the caller can record the fact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
REPLACEMENT = "\ufffd"


class TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


def text(value: str) -> str:
    """``value`` with lone surrogates and NUL replaced by U+FFFD; itself when clean (the fast path)."""
    if value.isascii():
        if "\x00" not in value:
            return value
    elif "\x00" not in value:
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
    # UTF-16 with surrogatepass pairs up what can pair; what cannot is replaced on the way back
    repaired = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return repaired.replace("\x00", REPLACEMENT)


def is_clean(value: str) -> bool:
    return text(value) is value


def document(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """A JSON value made storable: ``(value, repaired paths)``; ``value`` itself when nothing needed
    repair (the common case, checked without building anything). Raises ``TooDeep`` past ``MAX_DEPTH``."""
    if _clean_already(value, 0):
        return value, []
    repaired: list[str] = []
    return _clean(value, path, 0, repaired), repaired


def _clean_already(value: Any, depth: int) -> bool:
    """True when ``value`` needs no repair: the hot path, so exact type checks first and no allocation."""
    kind = type(value)
    if kind is str or isinstance(value, str):  # str enums (Direction, Status) too
        return (value.isascii() and "\x00" not in value) or text(value) is value
    if kind is dict or isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return False
        for key, item in value.items():
            if type(key) is not str or (not (key.isascii() and "\x00" not in key) and text(key) is not key):
                return False
            if type(item) is str:  # most values: checked here without a call
                if not (item.isascii() and "\x00" not in item) and text(item) is not item:
                    return False
            elif not _clean_already(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            return False
        return all(_clean_already(item, depth + 1) for item in value)
    if kind is float:
        return math.isfinite(value)
    return True  # int, bool, None


def _clean(value: Any, path: str, depth: int, repaired: list[str]) -> Any:
    if isinstance(value, str):
        clean = text(value)
        if clean is not value:
            repaired.append(path or "$")
        return clean
    if isinstance(value, float) and not math.isfinite(value):
        repaired.append(path or "$")
        return None
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            raise TooDeep
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = text(key) if isinstance(key, str) else str(key)
                if name is not key:
                    repaired.append(f"{path}.{name}" if path else name)
                out[name] = _clean(item, f"{path}.{name}" if path else name, depth + 1, repaired)
            return out
        return [_clean(item, f"{path}[{i}]", depth + 1, repaired) for i, item in enumerate(value)]
    return value


def depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests no deeper than ``limit`` (without building anything)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            if depth >= limit:
                return False
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            if depth >= limit:
                return False
            stack.extend((v, depth + 1) for v in item)
    return True
