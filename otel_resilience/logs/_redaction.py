"""Redaction: what a log record may not carry out of the process, and how it is taken out.

Logs travel further than the program: to files, collectors and vendors. A password bound to
the request context, a DSN passed in ``extra=``, a driver's exception quoting the URL it
failed to reach must not travel with them. Every output of this package (the JSON and
human formatters, the OTLP handler, the in-memory buffer) runs its records through a
:class:`Redactor`, on by default. What is redacted:

- **by field name**: the whole value of a bound or ``extra=`` field, or of a key of a
  mapping nested in one (down to ``max_depth``), becomes ``"[REDACTED]"`` when the name
  looks like a credential's (the rule below);
- **in values**: every other string, at any depth (mapping values, list, tuple and set
  items), has the credentials it quotes replaced by ``REDACTED`` through
  :func:`otel_resilience._secrets.redact_text`: URLs' userinfo, query values and
  fragments, ``user:password@host``, ``Bearer``/``Basic`` credentials, ``Authorization:``
  and ``Cookie:`` header values, ``password=``/``token=``/``sig=``-style pairs and their
  JSON-ish ``"password": "..."`` form (its documentation has the exact list). ``bytes``
  and other objects, which the outputs show as their ``repr``, are replaced by their
  redacted ``repr`` when it holds a credential and kept as they are otherwise;
- **in the record's own text**, by each output: the rendered message, the exception's
  message and formatted traceback (whose source lines may quote a hard-coded DSN), the
  ``stack_info`` stack and a formatting error's description, through the same function.

What is not: the logger name and the other fixed fields; field values under a name in
``keep``; numbers, booleans and None; objects other than those above whose ``repr`` holds
no recognisable credential (a dataclass's ``token`` field is caught, a bare random string
with no name before it is not); credentials in forms ``redact_text`` does not know (its
documentation lists them: ``password: x`` in YAML, a secret under an innocuous name);
records written by handlers that are not this package's. With ``enabled=False`` nothing
is redacted; with ``scan_values=False`` only names are looked at (and the record's text is
left as is).

Name rule: names are normalised (lowercased, ``-``, ``_``, ``.`` and spaces dropped). A
sensitive name of five characters or more matches when the normalised field name contains
it, so ``api_key``, ``API-Key``, ``apiKey`` and ``x-api-key`` all contain ``apikey``, and
``Authorization``, ``api_token``, ``db_password`` and ``sessionid`` are caught without
listing each spelling; the price is that ``token_count`` or ``session_count`` are redacted
too. A shorter one (``auth``, ``otp``, ``jwt``, ``dsn``, ``sig``, ``pwd``) would be found
inside ordinary words (``author``, ``footprint``), so it matches only a whole word of the
field name (split at ``-``, ``_``, ``.``, spaces, digits and camelCase boundaries:
``x_auth``, ``userOTP``, ``sentry_dsn``) or the end of the normalised name (``totp``,
``oauth``). List exact names in ``keep`` (case-insensitive) to let them through untouched,
names and values.

Containers deeper than ``max_depth`` levels (8 by default) become ``"[TRUNCATED]"``, since
what is not inspected cannot be shown. Mappings and sequences are copied only when
something in them changes, and a string without a credential is returned as the same
object, so a clean field costs a cached name look-up, a type check and, for a string, a
few substring tests. The default names are :data:`DEFAULT_SENSITIVE_NAMES`; ``names``
replaces them and ``extra`` adds to them.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from otel_resilience._secrets import redact_text

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
    "passphrase",
    "secret",
    "token",
    "authorization",
    "auth",
    "api_key",
    "apikey",
    "cookie",
    "set-cookie",
    "session",
    "credential",
    "private_key",
    "signature",
    "sig",
    "otp",
    "jwt",
    "dsn",
    "database_url",
)

# Field names seen by one redactor are few (the program's own vocabulary), but mapping keys
# inside values can be data (ids as keys), so the per-name cache is bounded.
_NAME_CACHE_LIMIT: Final = 4096

# Needles this short match whole words or the name's end only (the module's name rule).
_SHORT_NAME: Final = 4

# How a name's value is treated, as cached per name.
_ORDINARY: Final = 0  # its strings scanned for credentials
_SENSITIVE: Final = 1  # replaced whole
_KEPT: Final = 2  # passed untouched

_PASSIVE: Final = frozenset({int, float, bool, type(None)})
"""Value types that cannot carry a credential."""

_PLAIN_OBJECTS: Final = frozenset(
    {
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
        decimal.Decimal,
        complex,
    }
)
"""Objects whose ``repr`` cannot carry one either: not worth a look."""

_SEPARATORS: Final = str.maketrans("", "", "-_. ")
_WORDS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _normalise(name: str) -> str:
    return name.lower().translate(_SEPARATORS)


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"


class Redactor:
    """Takes credentials out of log fields and text; immutable once built, safe to share.

    ``names`` replaces :data:`DEFAULT_SENSITIVE_NAMES`; ``extra`` adds names to them;
    ``keep`` lists exact field names (case-insensitive) passed untouched; ``enabled=False``
    turns redaction off; ``scan_values=False`` keeps the name rule only. See the module
    documentation for what is redacted.
    """

    __slots__ = (
        "_cache",
        "_keep",
        "_substrings",
        "_words",
        "enabled",
        "max_depth",
        "names",
        "scan_values",
    )

    def __init__(
        self,
        names: Iterable[str] | None = None,
        *,
        extra: Iterable[str] = (),
        keep: Iterable[str] = (),
        enabled: bool = True,
        max_depth: int = 8,
        scan_values: bool = True,
    ) -> None:
        chosen = tuple(DEFAULT_SENSITIVE_NAMES if names is None else names) + tuple(extra)
        substrings: list[str] = []
        words: list[str] = []
        for name in chosen:
            if not isinstance(name, str) or not _normalise(name):
                raise ValueError(
                    f"sensitive field names must be non-empty strings with a letter or digit, "
                    f"got {name!r}"
                )
            needle = _normalise(name)
            needles = words if len(needle) <= _SHORT_NAME else substrings
            if needle not in needles:
                needles.append(needle)
        if isinstance(keep, str):
            raise TypeError("keep must be an iterable of names, not one string")
        if max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {max_depth!r}")
        self.names: Final = chosen
        self.enabled: Final = enabled
        self.max_depth: Final = max_depth
        self.scan_values: Final = enabled and scan_values
        self._substrings: Final = tuple(substrings)
        self._words: Final = tuple(words)
        self._keep: Final = frozenset(name.lower() for name in keep)
        self._cache: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"Redactor(names={self.names!r}, enabled={self.enabled!r}, "
            f"scan_values={self.scan_values!r})"
        )

    def is_sensitive(self, name: str) -> bool:
        """Whether values under ``name`` are replaced whole (always False when disabled)."""
        return self._kind(name) == _SENSITIVE

    def is_kept(self, name: str) -> bool:
        """Whether values under ``name`` pass untouched: it is in ``keep``, or redaction is
        off (its strings are then not scanned either)."""
        return self._kind(name) == _KEPT

    def is_plain(self, name: str) -> bool:
        """Whether a string under ``name`` needs :meth:`redact_text` and nothing more (and a
        number nothing at all): neither sensitive nor exempt from the text scan. Outputs
        cache such names to skip :meth:`redact` for them."""
        kind = self._kind(name)
        return kind == _ORDINARY or (kind == _KEPT and not self.scan_values)

    def _kind(self, name: str) -> int:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        if not self.enabled or name.lower() in self._keep:
            kind = _KEPT
        else:
            normalised = _normalise(name)
            sensitive = any(needle in normalised for needle in self._substrings)
            if not sensitive and self._words:
                words = {word.lower() for word in _WORDS.findall(name)}
                sensitive = any(
                    needle in words or normalised.endswith(needle) for needle in self._words
                )
            kind = _SENSITIVE if sensitive else _ORDINARY
        if len(self._cache) >= _NAME_CACHE_LIMIT:
            self._cache.clear()
        self._cache[name] = kind
        return kind

    def redact_text(self, text: str) -> str:
        """``text`` with the credentials it quotes replaced (the same object if none, or
        when values are not scanned): for messages, exception texts, rendered lines."""
        if not self.scan_values:
            return text
        return redact_text(text)

    def redact(self, fields: Mapping[str, object]) -> Mapping[str, object]:
        """``fields`` with sensitive values replaced; the same object when nothing changes."""
        if not self.enabled or not fields:
            return fields
        return self._redact_mapping(fields, 0)

    __call__ = redact

    def redact_value(self, value: object) -> object:
        """``value`` redacted as a field's value would be (the same object if unchanged)."""
        if not self.enabled:
            return value
        return self._redact_nested(value, 0)

    def _redact_mapping(self, fields: Mapping[str, object], depth: int) -> Mapping[str, object]:
        changed: dict[str, object] | None = None
        known = self._cache
        for key, value in fields.items():
            # The common field, a known name with a number or a clean string, costs a dict
            # look-up, a type check and a few substring tests: no further method call.
            kind = known.get(key)
            if kind is None:
                kind = self._kind(key) if isinstance(key, str) else _ORDINARY
            if kind == _SENSITIVE:
                new_value: object = REDACTED
            elif kind == _KEPT:
                continue
            elif type(value) is str:
                if not self.scan_values:
                    continue
                new_value = redact_text(value)
            elif type(value) in _PASSIVE:
                continue
            else:
                new_value = self._redact_nested(value, depth)
            if new_value is not value:
                if changed is None:
                    changed = dict(fields)
                changed[key] = new_value
        return fields if changed is None else changed

    def _redact_nested(self, value: object, depth: int) -> object:
        kind = type(value)
        if kind is str:
            return redact_text(value) if self.scan_values else value  # type: ignore[arg-type]
        if kind in _PASSIVE:
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
        if not self.scan_values:
            return value
        if isinstance(value, (set, frozenset)):
            if depth >= self.max_depth:
                return TRUNCATED
            members = [self._redact_nested(item, depth + 1) for item in value]
            if all(new is old for new, old in zip(members, value, strict=True)):
                return value
            try:
                return frozenset(members) if isinstance(value, frozenset) else set(members)
            except TypeError:  # a member redacted into something unhashable
                return members
        if isinstance(value, str):  # a subclass: redacted as its plain text
            text = str.__str__(value)
            redacted = redact_text(text)
            return value if redacted is text else redacted
        if isinstance(value, (int, float)) or kind in _PLAIN_OBJECTS:
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            # The JSON lines show every field, ``repr=False`` ones too: judge them by name.
            if depth >= self.max_depth:
                return TRUNCATED
            try:
                fields = {
                    field.name: getattr(value, field.name) for field in dataclasses.fields(value)
                }
            except Exception:  # a field never set: judge its repr instead
                fields = None
            if fields is not None:
                redacted_fields = self._redact_mapping(fields, depth + 1)
                return value if redacted_fields is fields else redacted_fields
        # Bytes and other objects reach the outputs as their repr: redact that, if needed.
        text = _repr(value)
        redacted = redact_text(text)
        return value if redacted is text else redacted


DEFAULT_REDACTOR: Final = Redactor()
"""The redactor every output uses unless given another: the default names, on."""
