"""The OTLP test receiver's decoding of attribute values, on messages built in memory.

The receiver against the real upstream exporters is in tests/integration/test_otlp_receiver.py.
"""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from otlp_receiver import (
    any_value_to_python,
)


def test_any_value_to_python_decodes_nested_values() -> None:
    value = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="s", value=AnyValue(string_value="x")),
                KeyValue(key="b", value=AnyValue(bool_value=False)),
                KeyValue(key="i", value=AnyValue(int_value=-3)),
                KeyValue(key="d", value=AnyValue(double_value=0.25)),
                KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\x01")),
                KeyValue(
                    key="arr",
                    value=AnyValue(
                        array_value=ArrayValue(
                            values=[AnyValue(int_value=1), AnyValue(string_value="two")]
                        )
                    ),
                ),
                KeyValue(key="empty", value=AnyValue()),
            ]
        )
    )
    assert any_value_to_python(value) == {
        "s": "x",
        "b": False,
        "i": -3,
        "d": 0.25,
        "raw": b"\x00\x01",
        "arr": [1, "two"],
        "empty": None,
    }
