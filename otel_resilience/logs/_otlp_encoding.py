"""OTLP log batches written straight to protobuf bytes, for our OTLP log exporters.

The upstream exporters encode a batch by building one protobuf object per record, per
attribute and per value (``encode_logs``), then serialising the tree: about 20 µs a record
here, as much as everything else a log record costs on its way out, and more than the
record's own formatting. :func:`encode_log_records` writes the same
``ExportLogsServiceRequest`` directly in the protobuf wire format, with what repeats
written once: the resource and each scope once per batch, the trace-context fields once per
span, and string attributes (bound context such as ``request_id``) once per key and value.

What it writes decodes to the message ``encode_logs`` builds for the same batch (records
grouped by resource, then by instrumentation scope, in the order first seen; when equal
resources or scopes are held in distinct objects, only the order of records within their
group can differ). Values of the
common types (``str``, ``bool``, ``int`` within 64 bits, ``float``, ``None``) are written
here; any other value (bytes, sequences, mappings, subclasses such as enums) goes through
upstream's own ``_encode_value`` (:data:`otel_resilience._compat.encode_any_value`), so
it is encoded, or refused, exactly as upstream does: an attribute upstream cannot encode is
left out with an error logged, a body it cannot encode fails the batch. Strings with lone
surrogates, which protobuf refuses, are written with the replacement character instead of
failing the batch.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_resilience._compat import ReadableLogRecord, encode_any_value, plain_attributes

__all__ = ["encode_log_records"]

_logger = logging.getLogger(__name__)

_FIXED64: Final = struct.Struct("<Q").pack
_FIXED32: Final = struct.Struct("<I").pack
_DOUBLE: Final = struct.Struct("<d").pack
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UINT64_MASK: Final = 2**64 - 1
_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))

# Field tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
_TIME: Final = b"\x09"  # LogRecord.time_unix_nano = 1, fixed64
_SEVERITY_NUMBER: Final = b"\x10"  # 2, varint
_SEVERITY_TEXT: Final = b"\x1a"  # 3, string
_BODY: Final = b"\x2a"  # 5, AnyValue
_ATTRIBUTE: Final = b"\x32"  # 6, KeyValue
_DROPPED: Final = b"\x38"  # 7, varint
_FLAGS: Final = b"\x45"  # 8, fixed32
_TRACE_ID: Final = b"\x4a"  # 9, bytes
_SPAN_ID: Final = b"\x52"  # 10, bytes
_OBSERVED_TIME: Final = b"\x59"  # 11, fixed64
_EVENT_NAME: Final = b"\x62"  # 12, string
_STRING_VALUE: Final = b"\x0a"  # AnyValue.string_value = 1
_BOOL_TRUE: Final = b"\x10\x01"  # AnyValue.bool_value = 2
_BOOL_FALSE: Final = b"\x10\x00"
_INT_VALUE: Final = b"\x18"  # AnyValue.int_value = 3, varint
_DOUBLE_VALUE: Final = b"\x21"  # AnyValue.double_value = 4, fixed64
_KEY: Final = b"\x0a"  # KeyValue.key = 1
_VALUE: Final = b"\x12"  # KeyValue.value = 2
_FIELD_1: Final = b"\x0a"  # ExportLogsServiceRequest.resource_logs, ResourceLogs.resource,
# ScopeLogs.scope, Resource.attributes, InstrumentationScope.name
_FIELD_2: Final = b"\x12"  # ResourceLogs.scope_logs, ScopeLogs.log_records, scope version
_FIELD_3: Final = b"\x1a"  # ResourceLogs/ScopeLogs.schema_url, InstrumentationScope.attributes

_Scope = InstrumentationScope | None

_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_CACHE_LIMIT: Final = 4096
"""Entries in each cache below before it is emptied: bounded whatever the program logs."""


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    """``payload`` as a length-delimited field."""
    size = len(payload)
    return tag + (_SMALL_VARINTS[size] if size < 128 else _varint(size)) + payload


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates: protobuf would refuse the whole message
        return _LONE_SURROGATE.sub("\ufffd", text).encode()


def _any_value(value: object) -> bytes:
    """The ``AnyValue`` message for ``value`` (its content, without tag and length)."""
    kind = type(value)
    if kind is str:
        return _delimited(_STRING_VALUE, _utf8(value))  # type: ignore[arg-type]
    if kind is bool:
        return _BOOL_TRUE if value else _BOOL_FALSE
    if kind is int and _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
        return _INT_VALUE + _varint(value & _UINT64_MASK)  # type: ignore[operator]
    if kind is float:
        return _DOUBLE_VALUE + _DOUBLE(value)
    if value is None:
        return b""
    return encode_any_value(value).SerializeToString()  # upstream's rules, upstream's errors


def _key_value(key: str, value: object) -> bytes:
    """The ``KeyValue`` message (content only)."""
    return _delimited(_KEY, _utf8(key)) + _delimited(_VALUE, _any_value(value))


def _attribute(tag: bytes, key: str, value: object) -> bytes:
    """One ``KeyValue`` field; empty, with the error logged, where upstream leaves it out."""
    try:
        return _delimited(tag, _key_value(key, value))
    except Exception as error:
        _logger.exception("Failed to encode key %s: %s", key, error)
        return b""


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Every attribute as a ``KeyValue`` field; one upstream cannot encode is left out."""
    if not attributes:
        return b""
    return b"".join(_attribute(tag, key, value) for key, value in attributes.items())


class _RecordEncoder:
    """Writes ``LogRecord`` messages, caching what records share."""

    def __init__(self) -> None:
        self._severities: dict[tuple[object, object], bytes] = {}
        self._string_attributes: dict[tuple[str, str], bytes] = {}
        self._keys: dict[str, bytes] = {}
        self._span: tuple[int, int, int, bytes] = (-1, -1, -1, b"")

    def severity(self, number: object, text: str | None) -> bytes:
        key = (number, text)
        cached = self._severities.get(key)
        if cached is None:
            value = getattr(number, "value", None)
            cached = (_SEVERITY_NUMBER + _varint(value) if value else b"") + (
                _delimited(_SEVERITY_TEXT, _utf8(text)) if text else b""
            )
            if len(self._severities) >= _CACHE_LIMIT:
                self._severities.clear()
            self._severities[key] = cached
        return cached

    def attributes(self, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        plain = plain_attributes(attributes)  # the SDK's are iterated through its dict
        strings = self._string_attributes
        keys = self._keys
        out = []
        for key, value in plain.items():
            kind = type(value)
            if kind is str:
                pair = (key, value)
                field = strings.get(pair)
                if field is None:
                    field = _attribute(_ATTRIBUTE, key, value)
                    if len(strings) >= _CACHE_LIMIT:
                        strings.clear()
                    strings[pair] = field
                out.append(field)
            elif kind is int and _INT64_MIN <= value <= _INT64_MAX and type(key) is str:
                key_field = keys.get(key)
                if key_field is None:
                    key_field = self._key_field(key)
                number = _INT_VALUE + _varint(value & _UINT64_MASK)
                out.append(
                    _delimited(
                        _ATTRIBUTE, key_field + _VALUE + _SMALL_VARINTS[len(number)] + number
                    )
                )
            else:
                field = _attribute(_ATTRIBUTE, key, value)
                if field:
                    out.append(field)
        return b"".join(out)

    def _key_field(self, key: str) -> bytes:
        field = _delimited(_KEY, _utf8(key))
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()
        self._keys[key] = field
        return field

    def span_fields(self, trace_id: int, span_id: int, flags: int) -> bytes:
        cached_trace, cached_span, cached_flags, fields = self._span
        if trace_id == cached_trace and span_id == cached_span and flags == cached_flags:
            return fields
        fields = (
            (_FLAGS + _FIXED32(flags) if flags else b"")
            + (_TRACE_ID + b"\x10" + trace_id.to_bytes(16, "big") if trace_id else b"")
            + (_SPAN_ID + b"\x08" + span_id.to_bytes(8, "big") if span_id else b"")
        )
        self._span = (trace_id, span_id, flags, fields)
        return fields

    def record(self, readable: ReadableLogRecord) -> bytes:
        record = readable.log_record
        timestamp = record.timestamp
        observed = record.observed_timestamp
        dropped = readable.dropped_attributes
        event_name = record.event_name
        return _delimited(
            _FIELD_2,
            (_TIME + _FIXED64(timestamp) if timestamp else b"")
            + self.severity(record.severity_number, record.severity_text)
            + _delimited(_BODY, _any_value(record.body))
            + self.attributes(record.attributes)
            + (_DROPPED + _varint(dropped) if dropped else b"")
            + self.span_fields(
                record.trace_id or 0, record.span_id or 0, int(record.trace_flags or 0)
            )
            + (_OBSERVED_TIME + _FIXED64(observed) if observed else b"")
            + (_delimited(_EVENT_NAME, _utf8(event_name)) if event_name else b""),
        )


def _scope(scope: InstrumentationScope | None) -> bytes:
    """``ScopeLogs.scope`` and, after the records, ``ScopeLogs.schema_url``."""
    if scope is None:
        return _delimited(_FIELD_1, b"")
    content = (
        (_delimited(_FIELD_1, _utf8(scope.name)) if scope.name else b"")
        + (_delimited(_FIELD_2, _utf8(scope.version)) if scope.version else b"")
        + _attributes(_FIELD_3, scope.attributes)
    )
    return _delimited(_FIELD_1, content)


def _resource(resource: Resource) -> bytes:
    return _delimited(_FIELD_1, _attributes(_FIELD_1, resource.attributes))


def _schema_url(url: str | None) -> bytes:
    return _delimited(_FIELD_3, _utf8(url)) if url else b""


class _PerThread(threading.local):
    """One encoder per thread (an exporter's worker), so that its caches need no lock."""

    encoder: _RecordEncoder | None = None


_per_thread = _PerThread()


def _encoder() -> _RecordEncoder:
    encoder = _per_thread.encoder
    if encoder is None:
        encoder = _per_thread.encoder = _RecordEncoder()
    return encoder


def encode_log_records(batch: Sequence[ReadableLogRecord]) -> bytes:
    """The serialised ``ExportLogsServiceRequest`` of ``batch`` (see the module documentation)."""
    encode: Callable[[ReadableLogRecord], bytes] = _encoder().record
    # Grouped by identity first: a Resource hashes by serialising its attributes, which
    # per record would cost more than the encoding. Equal objects are merged afterwards,
    # as upstream groups them, by equality (a provider's records share one resource).
    by_identity: dict[int, tuple[Resource, dict[int, tuple[_Scope, list[bytes]]]]] = {}
    for readable in batch:
        resource = readable.resource
        group = by_identity.get(id(resource))
        if group is None:
            group = by_identity[id(resource)] = (resource, {})
        scope = readable.instrumentation_scope or None
        scopes = group[1]
        scoped = scopes.get(id(scope))
        if scoped is None:
            scoped = scopes[id(scope)] = (scope, [])
        scoped[1].append(encode(readable))
    groups: list[tuple[Resource, list[tuple[_Scope, list[bytes]]]]] = []
    for resource, scopes in by_identity.values():
        merged = next((group for group in groups if group[0] == resource), None)
        if merged is None:
            merged = (resource, [])
            groups.append(merged)
        for scope, records in scopes.values():
            same = next((entry for entry in merged[1] if entry[0] == scope), None)
            if same is None:
                merged[1].append((scope, records))
            else:
                same[1].extend(records)
    out = []
    for resource, scope_groups in groups:
        scope_logs = [
            _delimited(
                _FIELD_2,
                _scope(scope)
                + b"".join(records)
                + _schema_url(scope.schema_url if scope is not None else None),
            )
            for scope, records in scope_groups
        ]
        out.append(
            _delimited(
                _FIELD_1,
                _resource(resource) + b"".join(scope_logs) + _schema_url(resource.schema_url),
            )
        )
    return b"".join(out)
