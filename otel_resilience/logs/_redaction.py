"""Redaction: values of fields whose names look like credentials become ``"[REDACTED]"``.

Logs travel further than the program: to files, collectors and vendors. A password or a
session cookie bound to the request context or passed in ``extra=`` must not travel with
them, so both formatters run bound and ``extra=`` fields through a :class:`Redactor`, on by
default. Only names are inspected, never values: a secret inside a message string is the
caller's to avoid.

Matching rule: a field name is sensitive when its *normalised* form contains a normalised
sensitive name as a substring. Normalising lowercases and drops ``-``, ``_``, ``.`` and
spaces, so ``api_key``, ``API-Key``, ``apiKey`` and ``x-api-key`` all contain ``apikey``, and
``Authorization``, ``api_token``, ``db_password`` and ``sessionid`` are caught without
listing each spelling. Substring rather than exact match because a leak costs more than an
over-redaction; the price is that names such as ``token_count`` or ``session_count`` are
redacted too. List such names in ``keep`` (exact, case-insensitive) to let them through.

Values are searched recursively through mappings, lists and tuples down to ``max_depth``
levels (8 by default); a container deeper than that is replaced by ``"[TRUNCATED]"``, since
what is not inspected cannot be shown. Mappings are copied only when something in them
changes, so a clean field costs a cached name look-up and a type check.

The default names are :data:`DEFAULT_SENSITIVE_NAMES`; ``names`` replaces them and ``extra``
adds to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

__all__ = [
    "DEFAULT_REDACTOR",
    "DEFAULT_SENSITIVE_NAMES",
    "REDACTED",
    "TRUNCATED",
    "Redactor",
]

REDACTED: Final = "[REDACTED]"
TRUNCATED: Final = "[TRUNCATED]"

DEFAULT_SENSITIVE_NAMES: Final[tuple[str, ...]] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "set-cookie",
    "session",
    "credential",
    "private_key",
)

# Field names seen by one redactor are few (the program's own vocabulary), but mapping keys
# inside values can be data (ids as keys), so the per-name cache is bounded.
_NAME_CACHE_LIMIT: Final = 4096

_SCALARS: Final = frozenset({str, int, float, bool, type(None), bytes})

_SEPARATORS: Final = str.maketrans("", "", "-_. ")


def _normalise(name: str) -> str:
    return name.lower().translate(_SEPARATORS)


class Redactor:
    """Replaces the values of sensitive fields; immutable once built, safe to share.

    ``names`` replaces :data:`DEFAULT_SENSITIVE_NAMES`; ``extra`` adds names to them;
    ``keep`` lists exact field names (case-insensitive) never redacted; ``enabled=False``
    turns redaction off. See the module documentation for the matching rule.
    """

    __slots__ = ("_cache", "_keep", "_needles", "enabled", "max_depth", "names")

    def __init__(
        self,
        names: Iterable[str] | None = None,
        *,
        extra: Iterable[str] = (),
        keep: Iterable[str] = (),
        enabled: bool = True,
        max_depth: int = 8,
    ) -> None:
        chosen = tuple(DEFAULT_SENSITIVE_NAMES if names is None else names) + tuple(extra)
        needles = []
        for name in chosen:
            if not isinstance(name, str) or not _normalise(name):
                raise ValueError(
                    f"sensitive field names must be non-empty strings with a letter or digit, "
                    f"got {name!r}"
                )
            needle = _normalise(name)
            if needle not in needles:
                needles.append(needle)
        if isinstance(keep, str):
            raise TypeError("keep must be an iterable of names, not one string")
        if max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {max_depth!r}")
        self.names: Final = chosen
        self.enabled: Final = enabled
        self.max_depth: Final = max_depth
        self._needles: Final = tuple(needles)
        self._keep: Final = frozenset(name.lower() for name in keep)
        self._cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Redactor(names={self.names!r}, enabled={self.enabled!r})"

    def is_sensitive(self, name: str) -> bool:
        """Whether values under ``name`` are redacted (always False when disabled)."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        sensitive = False
        if self.enabled and name.lower() not in self._keep:
            normalised = _normalise(name)
            sensitive = any(needle in normalised for needle in self._needles)
        if len(self._cache) >= _NAME_CACHE_LIMIT:
            self._cache.clear()
        self._cache[name] = sensitive
        return sensitive

    def redact(self, fields: Mapping[str, object]) -> Mapping[str, object]:
        """``fields`` with sensitive values replaced; the same object when nothing changes."""
        if not self.enabled or not fields:
            return fields
        return self._redact_mapping(fields, 0)

    __call__ = redact

    def redact_value(self, value: object) -> object:
        """``value`` with sensitive entries of nested mappings replaced (same object if none)."""
        if not self.enabled:
            return value
        return self._redact_nested(value, 0)

    def _redact_mapping(self, fields: Mapping[str, object], depth: int) -> Mapping[str, object]:
        changed: dict[str, object] | None = None
        known = self._cache
        for key, value in fields.items():
            # The common field, a known clean name with a scalar value, costs a dict look-up
            # and a set look-up, no method call.
            sensitive = known.get(key)
            if sensitive is None:
                sensitive = isinstance(key, str) and self.is_sensitive(key)
            if sensitive:
                new_value: object = REDACTED
            elif type(value) in _SCALARS:
                continue
            else:
                new_value = self._redact_nested(value, depth)
            if new_value is not value:
                if changed is None:
                    changed = dict(fields)
                changed[key] = new_value
        return fields if changed is None else changed

    def _redact_nested(self, value: object, depth: int) -> object:
        if type(value) in _SCALARS:
            return value
        if isinstance(value, Mapping):
            if depth >= self.max_depth:
                return TRUNCATED
            return self._redact_mapping(value, depth + 1)
        if isinstance(value, (list, tuple)):
            if depth >= self.max_depth:
                return TRUNCATED
            items = [self._redact_nested(item, depth + 1) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items
        return value


DEFAULT_REDACTOR: Final = Redactor()
"""The redactor formatters use unless given another: the default names, on."""
