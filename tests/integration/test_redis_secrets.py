"""Credentials sent in Redis commands reach no span, metric or log, however a command is given.

redis-py sends ``execute_command("AUTH user secret")`` as ``AUTH``, ``user``, ``secret``: it
splits a command name at whitespace. These tests send credentials to the real Redis on
127.0.0.1:6379 in every form a program can (one string, separate arguments, redis-py's own
methods, pipelines, asyncio), as a Redis ACL user created for the test, and look for them
in everything the SDK received.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from otel_resilience_instrumentation_redis import RedisInstrumentor

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def leaked_in(self, recorded: str) -> list[str]:
        """The credentials (either case: command names are upper-cased) found in ``recorded``."""
        recorded = recorded.lower()
        return [secret for secret in (self.user, self.password) if secret.lower() in recorded]


def send(target: Any, *command: Any) -> Any:
    """``execute_command``, which redis-py leaves untyped, on a client or a pipeline."""
    return target.execute_command(*command)


def direct() -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, decode_responses=True)


@pytest.fixture
def credentials() -> Iterator[Credentials]:
    """A Redis ACL user name and password; the user is deleted afterwards if it was created."""
    token = uuid.uuid4().hex
    created = Credentials(f"otel-resilience-user-{token[:12]}", f"pw-{token}")
    yield created
    with suppress_instrumentation(), direct() as cleanup:
        cleanup.acl_deluser(created.user)


@pytest.fixture
def masterauth() -> Iterator[None]:
    """``masterauth`` is set by a test (harmless on a server that is no replica): restored."""
    with suppress_instrumentation(), direct() as before:
        value = before.config_get("masterauth").get("masterauth", "")
    yield
    with suppress_instrumentation(), direct() as after:
        after.config_set("masterauth", value)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(RedisInstrumentor())


def everything_recorded(instrumented: Instrumented, caplog: pytest.LogCaptureFixture) -> str:
    """Span names, attributes, events and statuses, every metric point, breakers, log records."""
    recorded: list[Any] = []
    for span in instrumented.finished():
        recorded += [span.name, dict(span.attributes or {}), span.status.description]
        recorded += [(event.name, dict(event.attributes or {})) for event in span.events]
    data = instrumented.metrics.get_metrics_data()
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                recorded += [
                    (metric.name, dict(p.attributes or {})) for p in metric.data.data_points
                ]
    recorded += [breaker.name for breaker in instrumented.registry.breakers()]
    # Ours only: redis-py's own DEBUG records quote whole commands, credentials included.
    ours = [r for r in caplog.records if r.name.startswith("otel_resilience")]
    recorded += [(r.getMessage(), r.exc_text) for r in ours]
    return repr(recorded)


def query_texts(instrumented: Instrumented) -> list[Any]:
    return [dict(span.attributes or {})["db.query.text"] for span in instrumented.finished()]


def test_credentials_in_one_string_commands_are_recorded_nowhere(
    instrumented: Instrumented,
    credentials: Credentials,
    masterauth: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = credentials.user, credentials.password
    client = direct()

    def run(command: str) -> Any:
        return send(client, command)

    assert run(f"ACL SETUSER {user} on >{password} ~* &* +@all") == "OK"
    assert run(f"AUTH {user} {password}") == "OK"  # one string: redis-py splits it
    assert run(f"hello 2 auth {user} {password}")  # any case, any spacing
    assert run(f"AUTH\t{user}  {password}\n") == "OK"
    with pytest.raises(redis.exceptions.AuthenticationError):
        run(f"AUTH {user} wrong-{password}")
    assert run(f"CONFIG SET masterauth {password}") == "OK"
    assert run(f"MIGRATE 127.0.0.1 1 no-such-key 0 100 AUTH {password}") == "NOKEY"
    assert run(f"MIGRATE 127.0.0.1 1 no-such-key 0 100 AUTH2 {user} {password}") == "NOKEY"

    assert credentials.leaked_in(everything_recorded(instrumented, caplog)) == []
    assert query_texts(instrumented) == [
        "ACL SETUSER ? ? ? ? ? ?",
        "AUTH",
        "HELLO",
        "AUTH",
        "AUTH",
        "CONFIG SET ? ?",
        "MIGRATE ? ? ? ? ? ? ?",
        "MIGRATE ? ? ? ? ? ? ? ?",
    ]
    names = [span.name for span in instrumented.finished()]
    assert names[:3] == ["ACL SETUSER 0", "AUTH 0", "HELLO 0"]


def test_credentials_as_separate_arguments_and_through_redis_py_methods_too(
    instrumented: Instrumented,
    credentials: Credentials,
    masterauth: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = credentials.user, credentials.password
    client = direct()
    assert client.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys="*", commands=["+@all"]
    )
    assert send(client, "AUTH", user, password)
    assert send(client, "HELLO", 2, "AUTH", user, password)
    assert client.config_set("masterauth", password)
    assert send(client, "CONFIG", "SET", "masterauth", password)

    assert credentials.leaked_in(everything_recorded(instrumented, caplog)) == []
    assert query_texts(instrumented) == [
        "ACL SETUSER ? ? ? ? ?",
        "AUTH",
        "HELLO",
        "CONFIG SET ? ?",
        "CONFIG SET ? ?",
    ]


def test_credentials_in_pipelines_and_transactions_are_recorded_nowhere(
    instrumented: Instrumented, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = credentials.user, credentials.password
    client = direct()
    send(client, f"ACL SETUSER {user} on >{password} ~* &* +@all")
    for transaction in (False, True):
        with client.pipeline(transaction=transaction) as pipe:
            send(pipe, f"AUTH {user} {password}")
            send(pipe, "AUTH", user, password)
            send(pipe, f"PING {password}")
            assert pipe.execute() == ["OK", True, password]

    assert credentials.leaked_in(everything_recorded(instrumented, caplog)) == []
    pipeline, transaction_span = instrumented.finished()[1:]
    assert (pipeline.name, transaction_span.name) == ("PIPELINE 0", "MULTI 0")
    assert query_texts(instrumented)[1:] == ["AUTH\nAUTH\nPING ?"] * 2


def test_credentials_in_asyncio_commands_are_recorded_nowhere(
    instrumented: Instrumented, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = credentials.user, credentials.password

    async def authenticate() -> list[Any]:
        async with redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT) as client:
            await send(client, f"ACL SETUSER {user} on >{password} ~* &* +@all")
            async with client.pipeline() as pipe:
                send(pipe, f"AUTH {user} {password}")
                return [
                    await send(client, f"AUTH {user} {password}"),
                    await pipe.execute(),
                ]

    assert asyncio.run(authenticate()) == [b"OK", [b"OK"]]
    assert credentials.leaked_in(everything_recorded(instrumented, caplog)) == []
    assert query_texts(instrumented) == ["ACL SETUSER ? ? ? ? ? ?", "AUTH", "AUTH"]


def test_a_subcommand_is_named_only_when_it_is_one(
    instrumented: Instrumented, caplog: pytest.LogCaptureFixture
) -> None:
    client = direct()
    send(client, "CLIENT SETNAME otel-resilience-test-name")
    send(client, "object", "encoding", "otel-resilience-no-such-key")
    with pytest.raises(redis.exceptions.ResponseError):
        send(client, "CLIENT otel-resilience-not-a-subcommand")
    assert [
        (span.name, dict(span.attributes or {})["db.query.text"])
        for span in instrumented.finished()
    ] == [
        ("CLIENT SETNAME 0", "CLIENT SETNAME ?"),
        ("OBJECT ENCODING 0", "OBJECT ENCODING ?"),  # read-only, as redis-py's own object()
        ("CLIENT 0", "CLIENT ?"),
    ]
    assert "otel-resilience-" not in everything_recorded(instrumented, caplog)
