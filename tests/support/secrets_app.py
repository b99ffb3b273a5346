"""A program that hands credentials to every client the distribution instruments.

``tests/launcher/test_secrets_end_to_end.py`` runs it under ``opentelemetry-instrument`` and
then looks for each of :data:`SECRETS` in everything the process exported. The program sends real
requests (requests, httpx sync and async) to a local HTTP server, real statements to
PostgreSQL (psycopg, psycopg2), MariaDB (PyMySQL) and SQLite, real commands to Redis; it logs
records with secrets in fields, bound context, messages and exceptions, and registers health
checks whose failures quote a DSN. Each secret sits where a careless integration would copy
it into a span, a metric point, a log record or the status page: URL userinfo, query, fragment
and matrix parameters, headers, DSNs, SQL literals in awkward positions, bound parameters,
driver error messages that echo a statement or a value, Redis ``AUTH``/``HELLO``/``ACL`` in
both the argument and the one-string form.

Every secret is distinct and names its place (``s3cr3t-psycopg-nested-comment-q7``), so a leak
says which construct let it through. The program never prints a secret: it prints one
``OUTCOME <label> <result>`` line per planted secret (``ok``, a status code, or the class of
the exception its call ended with), which the test compares with :data:`EXPECTED_FAILURES`
to know that each call really happened as planned. Ports, paths and the accounts the test
created come from the environment (see :class:`Settings`); with ``SECRETS_APP_LINGER=1`` it
prints ``READY`` and waits for its standard input to close, so the test can read
``/metrics`` and ``/status`` first.

Every address is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import psycopg2
import pymysql
import redis
import redis.asyncio
import requests
from opentelemetry import trace
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from otel_resilience.health import CheckResult, register_check
from otel_resilience.logs import bind

LOCALHOST = "127.0.0.1"
POSTGRESQL_PORT = 5432
MARIADB_PORT = 3306
REDIS_PORT = 6379
DATABASE = "test"
BASIC_AUTH_USER = "svc-user"  # the user name beside a password in userinfo and Basic auth

# --------------------------------------------------------------------------- the secrets

HTTP_CLIENTS = ("requests", "httpx", "httpx-async")
HTTP_PLACES = (
    "userinfo",
    "userinfo-user-only",
    "query-value",
    "query-key",
    "fragment",
    "matrix",
    "authorization-header",
    "custom-header",
    "cookie-header",
    "basic-auth",
    "status-500-query",
    "status-503-query",
    "failed-userinfo",
    "failed-query",
    "proxy-password",
    "proxy-target-query",
)
POSTGRESQL_DRIVERS = ("psycopg", "psycopg2")
POSTGRESQL_PLACES = (
    "dsn-password",
    "failed-dsn-password",
    "after-backslash",
    "doubled-quote",
    "continued-string",
    "line-comment",
    "block-comment",
    "nested-comment",
    "escape-string",
    "escape-string-backslash",
    "dollar-quote",
    "tagged-dollar-quote",
    "unicode-string",
    "syntax-error",
    "cast-error",
    "bound-parameter",
    "duplicate-key-parameter",
    "executemany-parameter",
)
MARIADB_PLACES = (
    "user-password",
    "wrong-password",
    "create-user",
    "backslash-escape",
    "escaped-quote-inside",
    "escaped-backslash",
    "double-quoted-string",
    "line-comment",
    "hash-comment",
    "block-comment",
    "executable-comment",
    "introducer",
    "national-string",
    "syntax-error",
    "bound-parameter",
    "duplicate-key-parameter",
    "executemany-parameter",
    "callproc-parameter",
)
SQLITE_PLACES = (
    "after-backslash",
    "doubled-quote",
    "double-quoted-string",
    "line-comment",
    "block-comment",
    "no-such-table",
    "syntax-error",
    "bound-parameter",
    "named-parameter",
    "executemany-parameter",
    "connection-execute",
    "executescript-literal",
    "executescript-comment",
)
# Passwords the Redis ACL user must accept (the test creates the user with all of them), so
# that every AUTH and HELLO succeeds as it would in a real program.
REDIS_PASSWORDS = (
    "redis-auth-args",
    "redis-auth-one-string",
    "redis-auth-method",
    "redis-hello-args",
    "redis-hello-one-string",
    "redis-client-password",
    "redis-url-password",
    "redis-pipeline-auth-args",
    "redis-pipeline-auth-one-string",
    "redis-async-auth-args",
    "redis-async-auth-one-string",
)
REDIS_OTHERS = (
    "redis-auth-password-only",
    "redis-acl-setuser",
    "redis-acl-setuser-one-string",
    "redis-failed-password",
    "redis-set-value",
    "redis-set-one-string",
    "redis-unknown-command-arg",
    "redis-migrate-auth",
    "redis-pipeline-set-value",
    "redis-multi-set-value",
)
LOG_PLACES = (
    "log-extra-password",
    "log-extra-authorization",
    "log-extra-dsn",
    "log-extra-token-pair",
    "log-extra-url-query",
    "log-extra-nested-header",
    "log-bound-api-key",
    "log-bound-url",
    "log-bound-nested-header",
    "log-bound-dotted-token",
    "log-message-url",
    "log-message-password-pair",
    "log-message-bearer",
    "log-message-dict-repr",
    "log-exception-userinfo",
    "log-exception-query",
    "log-exception-password-pair",
    "log-exception-cause-dsn",
)
HEALTH_PLACES = (
    "health-raised-dsn",
    "health-raised-password-pair",
    "health-raised-token-pair",
    "health-detail-url",
    "health-detail-bearer",
    "health-detail-api-key",
)
OTHER_PLACES = ("requests-rejected-query", "psycopg-sql-literal")


def _secret(label: str) -> str:
    return f"s3cr3t-{label}-q7"


SECRETS: dict[str, str] = {
    _label: _secret(_label)
    for _label in (
        *(f"{client}-{place}" for client in HTTP_CLIENTS for place in HTTP_PLACES),
        *(f"{driver}-{place}" for driver in POSTGRESQL_DRIVERS for place in POSTGRESQL_PLACES),
        *(f"pymysql-{place}" for place in MARIADB_PLACES),
        *(f"sqlite3-{place}" for place in SQLITE_PLACES),
        *REDIS_PASSWORDS,
        *REDIS_OTHERS,
        *LOG_PLACES,
        *HEALTH_PLACES,
        *OTHER_PLACES,
    )
}
# Literals that cannot be spelled with letters: numbers and hexadecimal strings.
SECRETS |= {
    "psycopg-number": "917364028511",
    "psycopg2-number": "917364028512",
    "pymysql-number": "917364028513",
    "sqlite3-number": "917364028514",
    "pymysql-hex-literal": "5ec2e7a1b0c4d9f3e8a7",
    "pymysql-hex-number": "5ec2e7a1b0c4d9f3e8a8",
    "sqlite3-blob-literal": "5ec2e7a1b0c4d9f3e8a9",
}
# The HTTP Basic credentials (user:password, sent in base64) of the places that have some.
BASIC_CREDENTIALS: dict[str, str] = {
    **{
        f"{client}-{place}": f"{BASIC_AUTH_USER}:{SECRETS[f'{client}-{place}']}"
        for client in HTTP_CLIENTS
        for place in ("userinfo", "basic-auth", "failed-userinfo", "proxy-password")
    },
    **{
        f"{client}-userinfo-user-only": f"{SECRETS[f'{client}-userinfo-user-only']}:"
        for client in HTTP_CLIENTS
    },
}


def secret(label: str) -> str:
    return SECRETS[label]


def needles(redis_user: str) -> dict[str, str]:
    """Every secret by name; also the Redis ACL user and each Basic credential in base64.

    What the end-to-end test looks for in everything the program exported.
    """
    found = dict(SECRETS)
    found["redis-acl-user (the user name)"] = redis_user
    for label, credentials in BASIC_CREDENTIALS.items():
        encoded = base64.b64encode(credentials.encode()).decode()
        found[f"{label} (base64, as in an Authorization header)"] = encoded
    return found


# --------------------------------------------------------------------------- what must happen

# How the calls that plant these secrets must end (the class of the exception, or the
# status code); every other planted call must succeed ("ok"). A call planting several
# secrets reports its outcome once per secret.
EXPECTED_FAILURES: dict[str, str] = {
    **{f"{client}-status-500-query": "500" for client in HTTP_CLIENTS},
    **{f"{client}-status-503-query": "503" for client in HTTP_CLIENTS},
    **{
        f"{client}-{place}": "ConnectionError" if client == "requests" else "ConnectError"
        for client in HTTP_CLIENTS
        for place in ("failed-userinfo", "failed-query")
    },
    **{
        f"{client}-{place}": "ProxyError" if client == "requests" else "ConnectError"
        for client in HTTP_CLIENTS
        for place in ("proxy-password", "proxy-target-query")
    },
    "requests-rejected-query": "RequestsCircuitOpenError",
    **{f"{driver}-failed-dsn-password": "OperationalError" for driver in POSTGRESQL_DRIVERS},
    **{f"{driver}-syntax-error": "SyntaxError" for driver in POSTGRESQL_DRIVERS},
    **{f"{driver}-cast-error": "InvalidTextRepresentation" for driver in POSTGRESQL_DRIVERS},
    **{f"{driver}-duplicate-key-parameter": "UniqueViolation" for driver in POSTGRESQL_DRIVERS},
    "pymysql-wrong-password": "OperationalError",
    "pymysql-syntax-error": "ProgrammingError",
    "pymysql-duplicate-key-parameter": "IntegrityError",
    "sqlite3-no-such-table": "OperationalError",
    "sqlite3-syntax-error": "OperationalError",
    "redis-failed-password": "ConnectionError",
    "redis-unknown-command-arg": "ResponseError",
    "redis-auth-password-only": "AuthenticationError",
}
# Planted in health checks, which run when /status is asked for: no outcome line.
UNREPORTED = frozenset(HEALTH_PLACES)


# --------------------------------------------------------------------------- plumbing


@dataclass(frozen=True)
class Settings:
    """Ports, paths and the accounts the test made, from ``SECRETS_APP_*`` variables."""

    http_port: int
    closed_port: int
    sqlite_path: str
    redis_user: str
    mariadb_user: str
    run_id: str
    linger: bool

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        return cls(
            http_port=int(env["SECRETS_APP_HTTP_PORT"]),
            closed_port=int(env["SECRETS_APP_CLOSED_PORT"]),
            sqlite_path=env["SECRETS_APP_SQLITE_PATH"],
            redis_user=env["SECRETS_APP_REDIS_USER"],
            mariadb_user=env["SECRETS_APP_MARIADB_USER"],
            run_id=env["SECRETS_APP_RUN_ID"],
            linger=env.get("SECRETS_APP_LINGER") == "1",
        )

    @property
    def server(self) -> str:
        return f"http://{LOCALHOST}:{self.http_port}"

    @property
    def created_mariadb_user(self) -> str:
        """The user the program itself creates (``CREATE USER ... IDENTIFIED BY``)."""
        return f"{self.mariadb_user}_made"


def report(labels: Sequence[str], result: str) -> None:
    # One write per line: the console exporters write from their own threads, and print()
    # writes the line and its end separately.
    for label in labels:
        sys.stdout.write(f"OUTCOME {label} {result}\n")
    sys.stdout.flush()


def outcome_of(result: object) -> str:
    """``ok``, or the status code of an HTTP response that is not a success."""
    status = getattr(result, "status_code", None)
    return str(status) if isinstance(status, int) and status >= 300 else "ok"


def attempt(call: Callable[[], object], *labels: str) -> None:
    """Run one planted call; report how it ended, never what it raised (that holds secrets)."""
    try:
        result = call()
    except Exception as error:
        report(labels, type(error).__name__)
    else:
        report(labels, outcome_of(result))


async def attempt_async(call: Callable[[], Awaitable[object]], *labels: str) -> None:
    try:
        result = await call()
    except Exception as error:
        report(labels, type(error).__name__)
    else:
        report(labels, outcome_of(result))


def send(target: Any, *command: object) -> Any:
    """``execute_command``, which redis-py leaves untyped, on a client or a pipeline."""
    return target.execute_command(*command)


# --------------------------------------------------------------------------- HTTP

HttpPlan = list[tuple[tuple[str, ...], str, dict[str, Any]]]


def http_plan(client: str, settings: Settings) -> HttpPlan:
    """(secrets planted, URL, keyword arguments) of every request one client sends."""

    def s(place: str) -> str:
        return secret(f"{client}-{place}")

    def planted(*places: str) -> tuple[str, ...]:
        return tuple(f"{client}-{place}" for place in places)

    base = settings.server
    authority = f"{LOCALHOST}:{settings.http_port}"
    closed = f"{LOCALHOST}:{settings.closed_port}"
    return [
        (planted("userinfo"), f"http://{BASIC_AUTH_USER}:{s('userinfo')}@{authority}/ok", {}),
        # A token as the user name, as in https://<token>@github.com/...
        (planted("userinfo-user-only"), f"http://{s('userinfo-user-only')}@{authority}/ok", {}),
        (planted("query-value"), f"{base}/ok?lang=en&q={s('query-value')}", {}),
        (planted("query-key"), f"{base}/ok?{s('query-key')}", {}),
        (planted("fragment"), f"{base}/ok#access_token={s('fragment')}&token_type=bearer", {}),
        (planted("matrix"), f"{base}/ok;jsessionid={s('matrix')}", {}),
        (
            planted("authorization-header"),
            f"{base}/ok",
            {"headers": {"Authorization": f"Bearer {s('authorization-header')}"}},
        ),
        (
            planted("custom-header"),
            f"{base}/ok",
            {"headers": {"X-Partner-Signature": s("custom-header")}},
        ),
        (
            planted("cookie-header"),
            f"{base}/ok",
            {"headers": {"Cookie": f"session={s('cookie-header')}"}},
        ),
        (planted("basic-auth"), f"{base}/ok", {"auth": (BASIC_AUTH_USER, s("basic-auth"))}),
        # Failures alternate with a success, so that the server's breaker stays closed.
        (planted("status-500-query"), f"{base}/status/500?q={s('status-500-query')}", {}),
        ((), f"{base}/ok", {}),
        (planted("status-503-query"), f"{base}/status/503?sig={s('status-503-query')}", {}),
        (
            planted("failed-userinfo", "failed-query"),
            f"http://{BASIC_AUTH_USER}:{s('failed-userinfo')}@{closed}/fail?q={s('failed-query')}",
            {},
        ),
    ]


def through_a_proxy(client: str, settings: Settings) -> tuple[tuple[str, ...], str, str]:
    """(secrets planted, URL, proxy URL): the proxy, with credentials, refuses connections."""
    proxy, target = f"{client}-proxy-password", f"{client}-proxy-target-query"
    return (
        (proxy, target),
        f"{settings.server}/ok?q={secret(target)}",
        f"http://{BASIC_AUTH_USER}:{secret(proxy)}@{LOCALHOST}:{settings.closed_port}",
    )


def send_with_requests(settings: Settings) -> None:
    for labels, url, options in http_plan("requests", settings):
        attempt(functools.partial(requests.get, url, timeout=5, **options), *labels)
    labels, url, proxy = through_a_proxy("requests", settings)
    attempt(functools.partial(requests.get, url, timeout=5, proxies={"http": proxy}), *labels)


def send_with_httpx(settings: Settings) -> None:
    with httpx.Client(timeout=5) as client:
        for labels, url, options in http_plan("httpx", settings):
            attempt(functools.partial(client.get, url, **options), *labels)
    labels, url, proxy = through_a_proxy("httpx", settings)
    with httpx.Client(timeout=5, proxy=proxy) as proxied:
        attempt(functools.partial(proxied.get, url), *labels)


async def send_with_httpx_async(settings: Settings) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for labels, url, options in http_plan("httpx-async", settings):
            await attempt_async(functools.partial(client.get, url, **options), *labels)
    labels, url, proxy = through_a_proxy("httpx-async", settings)
    async with httpx.AsyncClient(timeout=5, proxy=proxy) as proxied:
        await attempt_async(functools.partial(proxied.get, url), *labels)


def trip_the_closed_ports_breaker(settings: Settings) -> None:
    """Fail until the closed port's breaker rejects: the rejection's message names the
    endpoint, and must not name the query too."""
    label = "requests-rejected-query"
    url = f"http://{LOCALHOST}:{settings.closed_port}/fail?q={secret(label)}"
    for _ in range(8):
        try:
            requests.get(url, timeout=5)
        except requests.ConnectionError as error:
            if type(error).__name__ == "RequestsCircuitOpenError":
                report([label], type(error).__name__)
                return
    report([label], "never-rejected")


# --------------------------------------------------------------------------- PostgreSQL


def postgresql_statements(driver: str) -> list[tuple[str, str]]:
    """(secret planted, statement): a literal, comment or error message holds the secret."""

    def s(place: str) -> str:
        return secret(f"{driver}-{place}")

    statements = [
        # standard_conforming_strings: 'C:\' is a whole string; the next literal is a secret.
        ("after-backslash", f"SELECT 'C:\\', '{s('after-backslash')}'"),
        ("doubled-quote", f"SELECT 'it''s {s('doubled-quote')}'"),
        ("continued-string", f"SELECT 'a'\n'{s('continued-string')}'"),
        ("line-comment", f"SELECT 1 -- {s('line-comment')}\n"),
        ("block-comment", f"SELECT /* {s('block-comment')} */ 1"),
        ("nested-comment", f"SELECT /* outer /* inner */ {s('nested-comment')} */ 1"),
        ("escape-string", f"SELECT E'it\\'s {s('escape-string')}'"),
        ("escape-string-backslash", f"SELECT E'C:\\\\', '{s('escape-string-backslash')}'"),
        ("dollar-quote", f"SELECT $${s('dollar-quote')}$$"),
        ("tagged-dollar-quote", f"SELECT $a$ don't {s('tagged-dollar-quote')} $a$"),
        ("unicode-string", f"SELECT U&'{s('unicode-string')}'"),
        ("number", f"SELECT {s('number')} AS n"),
        # The server's message quotes the literal, and psycopg adds the statement (LINE 1:).
        ("syntax-error", f"SELECT 1 '{s('syntax-error')}'"),
        ("cast-error", f"SELECT '{s('cast-error')}'::int"),
    ]
    return [(f"{driver}-{place}", statement) for place, statement in statements]


def run_postgresql(driver: str, cursor: Any, table: str) -> None:
    """The same statements through either driver's cursor (autocommit: errors do not stick)."""
    for label, statement in postgresql_statements(driver):
        attempt(functools.partial(cursor.execute, statement), label)
    cursor.execute(f"CREATE TEMP TABLE {table} (id text PRIMARY KEY, note text)")
    insert = f"INSERT INTO {table} (id, note) VALUES (%s, %s)"
    label = f"{driver}-bound-parameter"
    attempt(functools.partial(cursor.execute, insert, ("row-1", secret(label))), label)
    label = f"{driver}-executemany-parameter"
    rows = [("row-2", secret(label)), ("row-3", "plain")]
    attempt(functools.partial(cursor.executemany, insert, rows), label)
    # The server's message says "Key (id)=(<the bound value>) already exists".
    label = f"{driver}-duplicate-key-parameter"
    cursor.execute(insert, (secret(label), "first"))
    attempt(functools.partial(cursor.execute, insert, (secret(label), "again")), label)


def use_psycopg(settings: Settings) -> None:
    label = "psycopg-failed-dsn-password"
    unreachable = f"postgresql://root:{secret(label)}@{LOCALHOST}:{settings.closed_port}/{DATABASE}"
    attempt(functools.partial(psycopg.connect, unreachable, connect_timeout=3), label)
    label = "psycopg-dsn-password"
    dsn = f"postgresql://root:{secret(label)}@{LOCALHOST}:{POSTGRESQL_PORT}/{DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as connection:  # trust auth ignores the password
        report([label], "ok")
        with connection.cursor() as cursor:
            run_postgresql("psycopg", cursor, f"secrets_e2e_psycopg_{settings.run_id}")
            label = "psycopg-sql-literal"
            composed = sql.SQL("SELECT {}").format(sql.Literal(secret(label)))
            attempt(functools.partial(cursor.execute, composed), label)


def use_psycopg2(settings: Settings) -> None:
    label = "psycopg2-failed-dsn-password"
    attempt(
        functools.partial(
            psycopg2.connect,
            host=LOCALHOST,
            port=settings.closed_port,
            dbname=DATABASE,
            user="root",
            password=secret(label),
            connect_timeout=3,
        ),
        label,
    )
    label = "psycopg2-dsn-password"
    conninfo = (
        f"host={LOCALHOST} port={POSTGRESQL_PORT} dbname={DATABASE} user=root "
        f"password={secret(label)}"
    )
    connection = psycopg2.connect(conninfo)
    report([label], "ok")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            run_postgresql("psycopg2", cursor, f"secrets_e2e_psycopg2_{settings.run_id}")
    finally:
        connection.close()


# --------------------------------------------------------------------------- MariaDB


def mariadb_statements() -> list[tuple[str, str]]:
    def s(place: str) -> str:
        return secret(f"pymysql-{place}")

    statements = [
        # Backslash escapes by default: 'it\'s' is one string, the next literal is a secret.
        ("backslash-escape", f"SELECT 'it\\'s', '{s('backslash-escape')}'"),
        ("escaped-quote-inside", f"SELECT 'it\\'s {s('escaped-quote-inside')}'"),
        ("escaped-backslash", f"SELECT 'C:\\\\', '{s('escaped-backslash')}'"),
        ("double-quoted-string", f'SELECT "{s("double-quoted-string")}"'),
        ("line-comment", f"SELECT 1 -- {s('line-comment')}\n"),
        ("hash-comment", f"SELECT 1 # {s('hash-comment')}\n"),
        ("block-comment", f"SELECT /* {s('block-comment')} */ 1"),
        # The server runs what an executable comment holds: here, a second column.
        ("executable-comment", f"SELECT 1 /*!50000 , '{s('executable-comment')}' */"),
        ("introducer", f"SELECT _utf8mb4'{s('introducer')}'"),
        ("national-string", f"SELECT N'{s('national-string')}'"),
        ("hex-literal", f"SELECT X'{s('hex-literal')}'"),
        ("hex-number", f"SELECT 0x{s('hex-number')}"),
        ("number", f"SELECT {s('number')}"),
        # "... the right syntax to use near 'FROM '<secret>'' at line 1"
        ("syntax-error", f"SELECT FROM '{s('syntax-error')}'"),
    ]
    return [(f"pymysql-{place}", statement) for place, statement in statements]


def use_pymysql(settings: Settings) -> None:
    label = "pymysql-wrong-password"
    attempt(
        functools.partial(
            pymysql.connect,
            host=LOCALHOST,
            port=MARIADB_PORT,
            user=settings.mariadb_user,
            password=secret(label),
            database=DATABASE,
        ),
        label,
    )
    admin = pymysql.connect(
        host=LOCALHOST, port=MARIADB_PORT, user="root", password="", autocommit=True
    )
    with closing(admin), admin.cursor() as cursor:
        made, label = settings.created_mariadb_user, "pymysql-create-user"
        create = f"CREATE USER '{made}'@'%' IDENTIFIED BY '{secret(label)}'"
        attempt(functools.partial(cursor.execute, create), label)
        cursor.execute(f"DROP USER IF EXISTS '{made}'@'%'")
    label = "pymysql-user-password"
    connection = pymysql.connect(
        host=LOCALHOST,
        port=MARIADB_PORT,
        user=settings.mariadb_user,
        password=secret(label),
        database=DATABASE,
        autocommit=True,
    )
    report([label], "ok")
    with closing(connection), connection.cursor() as cursor:
        for label, statement in mariadb_statements():
            attempt(functools.partial(cursor.execute, statement), label)
        table = f"secrets_e2e_pymysql_{settings.run_id}"
        cursor.execute(
            f"CREATE TEMPORARY TABLE {table} (id VARCHAR(80) PRIMARY KEY, note VARCHAR(80))"
        )
        insert = f"INSERT INTO {table} (id, note) VALUES (%s, %s)"
        label = "pymysql-bound-parameter"
        attempt(functools.partial(cursor.execute, insert, ("row-1", secret(label))), label)
        label = "pymysql-executemany-parameter"
        rows = [("row-2", secret(label)), ("row-3", "plain")]
        attempt(functools.partial(cursor.executemany, insert, rows), label)
        # "Duplicate entry '<the bound value>' for key 'PRIMARY'"
        label = "pymysql-duplicate-key-parameter"
        cursor.execute(insert, (secret(label), "first"))
        attempt(functools.partial(cursor.execute, insert, (secret(label), "again")), label)
        # PyMySQL sends a callproc's arguments in SET statements of its own.
        procedure, label = f"secrets_e2e_echo_{settings.run_id}", "pymysql-callproc-parameter"
        cursor.execute(f"CREATE PROCEDURE {procedure}(IN note VARCHAR(80)) SELECT note")
        try:
            attempt(functools.partial(cursor.callproc, procedure, (secret(label),)), label)
            while cursor.nextset():
                pass
        finally:
            cursor.execute(f"DROP PROCEDURE IF EXISTS {procedure}")


# --------------------------------------------------------------------------- SQLite


def sqlite_statements() -> list[tuple[str, str]]:
    def s(place: str) -> str:
        return secret(f"sqlite3-{place}")

    statements = [
        ("after-backslash", f"SELECT 'C:\\', '{s('after-backslash')}'"),
        ("doubled-quote", f"SELECT 'it''s {s('doubled-quote')}'"),
        # No column has that name, so SQLite takes it for a string.
        ("double-quoted-string", f'SELECT "{s("double-quoted-string")}"'),
        ("line-comment", f"SELECT 1 -- {s('line-comment')}\n"),
        ("block-comment", f"SELECT /* {s('block-comment')} */ 1"),
        ("blob-literal", f"SELECT x'{s('blob-literal')}'"),
        ("number", f"SELECT {s('number')}"),
        # "no such table: <secret>" and "near "'<secret>'": syntax error"
        ("no-such-table", f"SELECT 1 FROM '{s('no-such-table')}'"),
        ("syntax-error", f"SELECT ('x' '{s('syntax-error')}')"),
    ]
    return [(f"sqlite3-{place}", statement) for place, statement in statements]


def use_sqlite3(settings: Settings) -> None:
    connection = sqlite3.connect(settings.sqlite_path)
    try:
        cursor = connection.cursor()
        for label, statement in sqlite_statements():
            attempt(functools.partial(cursor.execute, statement), label)
        table = f"secrets_e2e_sqlite3_{settings.run_id}"
        cursor.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, note TEXT)")
        insert = f"INSERT INTO {table} VALUES (?, ?)"
        label = "sqlite3-bound-parameter"
        attempt(functools.partial(cursor.execute, insert, ("row-1", secret(label))), label)
        label = "sqlite3-named-parameter"
        named = {"id": "row-2", "note": secret(label)}
        attempt(
            functools.partial(cursor.execute, f"INSERT INTO {table} VALUES (:id, :note)", named),
            label,
        )
        label = "sqlite3-executemany-parameter"
        rows = [("row-3", secret(label)), ("row-4", "plain")]
        attempt(functools.partial(cursor.executemany, insert, rows), label)
        label = "sqlite3-connection-execute"
        attempt(functools.partial(connection.execute, f"SELECT '{secret(label)}'"), label)
        literal, comment = "sqlite3-executescript-literal", "sqlite3-executescript-comment"
        script = f"SELECT '{secret(literal)}'; -- {secret(comment)}\n"
        attempt(functools.partial(connection.executescript, script), literal, comment)
        connection.commit()
    finally:
        connection.close()


# --------------------------------------------------------------------------- Redis


def use_redis(settings: Settings) -> None:
    user = settings.redis_user
    keys = [f"secrets-e2e:{settings.run_id}:{n}" for n in range(5)]
    s = secret
    client = redis.Redis(host=LOCALHOST, port=REDIS_PORT, decode_responses=True)
    try:
        label = "redis-acl-setuser"
        attempt(functools.partial(send, client, "ACL", "SETUSER", user, f">{s(label)}"), label)
        label = "redis-acl-setuser-one-string"
        attempt(functools.partial(send, client, f"ACL SETUSER {user} >{s(label)}"), label)
        label = "redis-auth-args"
        attempt(functools.partial(send, client, "AUTH", user, s(label)), label)
        label = "redis-auth-one-string"
        attempt(functools.partial(send, client, f"AUTH {user} {s(label)}"), label)
        # The default user has no password: the server refuses, after reading it.
        label = "redis-auth-password-only"
        attempt(functools.partial(send, client, "AUTH", s(label)), label)
        label = "redis-auth-method"
        attempt(functools.partial(client.auth, s(label), username=user), label)
        label = "redis-set-value"
        attempt(functools.partial(client.set, keys[0], s(label)), label)
        label = "redis-set-one-string"
        attempt(functools.partial(send, client, f"SET {keys[1]} {s(label)}"), label)
        # "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: '<secret>'"
        label = "redis-unknown-command-arg"
        attempt(functools.partial(send, client, "NOSUCHCOMMAND", s(label)), label)
        # No such key: the server answers NOKEY without connecting anywhere.
        label = "redis-migrate-auth"
        migrate = ("MIGRATE", LOCALHOST, settings.closed_port, "", 0, 100)
        attempt(
            functools.partial(send, client, *migrate, "AUTH2", user, s(label), "KEYS", keys[4]),
            label,
        )
        with client.pipeline(transaction=False) as pipe:
            send(pipe, "AUTH", user, s("redis-pipeline-auth-args"))
            send(pipe, f"AUTH {user} {s('redis-pipeline-auth-one-string')}")
            pipe.set(keys[2], s("redis-pipeline-set-value"))
            attempt(
                pipe.execute,
                "redis-pipeline-auth-args",
                "redis-pipeline-auth-one-string",
                "redis-pipeline-set-value",
            )
        with client.pipeline(transaction=True) as pipe:
            pipe.set(keys[3], s("redis-multi-set-value"))
            pipe.get(keys[3])
            attempt(pipe.execute, "redis-multi-set-value")
        client.delete(*keys)
    finally:
        client.close()

    with redis.Redis(host=LOCALHOST, port=REDIS_PORT, protocol=3) as resp3:
        label = "redis-hello-args"
        attempt(functools.partial(send, resp3, "HELLO", 3, "AUTH", user, s(label)), label)
        label = "redis-hello-one-string"
        attempt(functools.partial(send, resp3, f"HELLO 3 AUTH {user} {s(label)}"), label)
    label = "redis-client-password"
    with redis.Redis(host=LOCALHOST, port=REDIS_PORT, username=user, password=s(label)) as logged:
        attempt(logged.ping, label)
    label = "redis-url-password"
    with redis.Redis.from_url(f"redis://{user}:{s(label)}@{LOCALHOST}:{REDIS_PORT}/0") as by_url:
        attempt(by_url.ping, label)
    label = "redis-failed-password"
    with redis.Redis(
        host=LOCALHOST,
        port=settings.closed_port,
        password=s(label),
        socket_connect_timeout=3,
        retry=Retry(NoBackoff(), 0),  # redis-py's default would wait seconds between tries
    ) as unreachable:
        attempt(unreachable.ping, label)
    asyncio.run(use_redis_async(user))


async def use_redis_async(user: str) -> None:
    client = redis.asyncio.Redis(host=LOCALHOST, port=REDIS_PORT)
    try:
        label = "redis-async-auth-args"
        await attempt_async(functools.partial(send, client, "AUTH", user, secret(label)), label)
        label = "redis-async-auth-one-string"
        await attempt_async(functools.partial(send, client, f"AUTH {user} {secret(label)}"), label)
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- logs and health


def write_logs() -> None:
    log = logging.getLogger("secrets_app")
    # A program that configured its logging: otherwise the distro's stand-in for Python's
    # last-resort handler prints WARNING records to stderr, as Python itself would.
    log.addHandler(logging.NullHandler())
    s = secret
    bound = {
        "api_key": s("log-bound-api-key"),
        "request_id": "r-secrets",
        "upstream": f"redis://:{s('log-bound-url')}@{LOCALHOST}:{REDIS_PORT}/0",
        "headers": {"Authorization": f"Bearer {s('log-bound-nested-header')}"},
        "session.token": s("log-bound-dotted-token"),
    }
    with bind(bound):
        log.info(
            "charging card",
            extra={
                "password": s("log-extra-password"),
                "authorization": f"Basic {s('log-extra-authorization')}",
                "dsn": f"postgresql://app:{s('log-extra-dsn')}@{LOCALHOST}/shop",
                "note": f"retrying with token={s('log-extra-token-pair')}",
                "callback": f"http://{LOCALHOST}:1/cb?code={s('log-extra-url-query')}",
                "request": {"headers": {"authorization": s("log-extra-nested-header")}},
            },
        )
        log.warning("calling %s", f"http://svc:{s('log-message-url')}@{LOCALHOST}:1/x")
        log.info(
            "connecting with %s", f"host={LOCALHOST} password={s('log-message-password-pair')}"
        )
        log.info("sent Authorization: Bearer %s", s("log-message-bearer"))
        log.info("settings %s", {"password": s("log-message-dict-repr")})
        try:
            raise RuntimeError(
                f"could not reach https://svc:{s('log-exception-userinfo')}@{LOCALHOST}:1/pay"
                f"?sig={s('log-exception-query')} (password={s('log-exception-password-pair')})"
            )
        except RuntimeError:
            log.exception("payment failed")
        try:
            try:
                raise ConnectionError(
                    f"postgresql://app:{s('log-exception-cause-dsn')}@{LOCALHOST}:1/pay"
                )
            except ConnectionError as cause:
                raise RuntimeError("checkout failed") from cause
        except RuntimeError:
            log.exception("checkout failed")
    report(LOG_PLACES, "ok")


def payments_database() -> CheckResult:
    raise ConnectionError(
        f"could not connect to postgresql://app:{secret('health-raised-dsn')}@{LOCALHOST}:1/pay "
        f"(password={secret('health-raised-password-pair')}, "
        f"token={secret('health-raised-token-pair')})"
    )


def cache() -> CheckResult:
    return CheckResult.down(
        f"redis://:{secret('health-detail-url')}@{LOCALHOST}:{REDIS_PORT}/0 refused; sent "
        f"Authorization: Bearer {secret('health-detail-bearer')} "
        f"api_key={secret('health-detail-api-key')}"
    )


# --------------------------------------------------------------------------- main


@contextmanager
def job() -> Iterator[None]:
    """One span around everything, so log records carry a trace like a real request's."""
    with trace.get_tracer("secrets_app").start_as_current_span("plant secrets"):
        yield


def main() -> int:
    settings = Settings.from_environment()
    register_check("payments-database", payments_database, timeout=1.0)
    register_check("cache", cache, critical=False)
    with job():
        send_with_requests(settings)
        send_with_httpx(settings)
        asyncio.run(send_with_httpx_async(settings))
        trip_the_closed_ports_breaker(settings)
        use_psycopg(settings)
        use_psycopg2(settings)
        use_pymysql(settings)
        use_sqlite3(settings)
        use_redis(settings)
        write_logs()
    print("PLANTED", flush=True)
    if settings.linger:
        print("READY", flush=True)
        sys.stdin.read()  # until the test closes our standard input
    return 0


if __name__ == "__main__":
    sys.exit(main())
