"""When a PostgreSQL error means "the server is unavailable", for psycopg and psycopg2 alike.

Only evidence that the server is unreachable or unhealthy counts against it. Both drivers
report the server's SQLSTATE when there is one; errors raised while connecting usually have
none and carry libpq's message instead:

==========================================================  =========================
error                                                       verdict
==========================================================  =========================
SQLSTATE class 08, 53, 58; 57P01-57P05 (shutdown, crash)    unavailable (a failure)
57014 ``canceling statement due to statement timeout``      unavailable (a failure)
57014 ``canceling statement due to user request``           neither: the program's own
                                                            ``cancel()``
any other SQLSTATE (syntax, constraint, permission...)      the server answered: success
libpq refused, reset, closed, timed out (no SQLSTATE)       unavailable (a failure)
``FATAL:`` while connecting (unknown role, bad password)    the server answered, unless
                                                            it says it is busy
``target_session_attrs`` mismatch (``session is not         the server answered: success
read-only``, ``server is not in hot standby mode``)
a connection string libpq rejects before any contact        neither: the caller's
(``invalid target_session_attrs value``, unknown option)
==========================================================  =========================
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping

from otel_resilience.instrumentation._db_client import DbEndpoint

__all__ = [
    "endpoint_from_parameters",
    "endpoint_of_connection_info",
    "sqlstate_unavailable",
    "unavailable_postgresql",
]

# Classes 08 (connection exception), 53 (insufficient resources: too many connections,
# out of memory or disk), 58 (system error); and operator intervention that ends or refuses
# sessions, or cancels a statement on a timeout.
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "58"})
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "57014"})
_SERVER_BUSY_MESSAGES = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients already",
    "remaining connection slots are reserved",
)


_QUERY_CANCELED = "57014"  # a statement timeout, or the program's own cancel()
_CANCELED_BY_USER = "canceling statement due to user request"
# target_session_attrs asked for another kind of server than the one that answered.
_SESSION_MISMATCH_MESSAGES = (
    "session is not read-only",
    "session is read-only",
    "server is not in hot standby mode",
    "server is in hot standby mode",
)
# libpq's complaints about the connection string itself, before it contacts any server.
_REJECTED_BY_LIBPQ = re.compile(
    r"invalid [\w ]+ value|invalid connection option|missing \"=\" after|invalid uri"
    r"|unterminated quoted string|invalid (?:integer|ipv6|percent-encoded)"
)


def sqlstate_unavailable(sqlstate: str) -> bool:
    """Whether the server's SQLSTATE means it cannot serve now (versus the client's error)."""
    return sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate in _UNAVAILABLE_STATES


def unavailable_postgresql(sqlstate: str | None, message: str) -> bool | None:
    """The verdict for a driver's ``OperationalError``-family error (see the table above).

    ``True``: the server is unavailable; ``False``: it answered; ``None``: nothing says
    either (the caller's own doing).
    """
    if sqlstate:
        if sqlstate == _QUERY_CANCELED and _CANCELED_BY_USER in message:
            return None
        return sqlstate_unavailable(sqlstate)
    lowered = message.lower()
    if any(mismatch in lowered for mismatch in _SESSION_MISMATCH_MESSAGES):
        return False
    if "connection to server" not in lowered and _REJECTED_BY_LIBPQ.search(lowered):
        return None
    if "FATAL:" in message:
        return any(busy in lowered for busy in _SERVER_BUSY_MESSAGES)
    return True


def endpoint_from_parameters(parameters: Mapping[str, object]) -> DbEndpoint:
    """The endpoint a connection with these libpq parameters goes to, before it exists.

    libpq's defaults apply (``PGHOST``/``PGPORT``/``PGDATABASE``/``PGUSER``, port 5432, the
    database named after the user). A Unix-socket directory has no host and port in the
    conventions' sense, so its endpoint is ``postgresql:///<database>``. Only the first of
    several comma-separated hosts is used: it names the breaker.
    """

    def value(name: str, variable: str) -> str | None:
        given = parameters.get(name)
        text = str(given) if given not in (None, "") else os.environ.get(variable)
        return text or None

    host = (value("host", "PGHOST") or value("hostaddr", "PGHOSTADDR") or "").split(",")[0]
    port_text = (value("port", "PGPORT") or "5432").split(",")[0]
    user = value("user", "PGUSER") or _operating_system_user()
    database = value("dbname", "PGDATABASE") or user
    port = int(port_text) if port_text.isdigit() else 5432
    if not host or host.startswith("/") or host.startswith("@"):
        return DbEndpoint("postgresql", None, None, database)
    return DbEndpoint("postgresql", host, port, database)


def _operating_system_user() -> str | None:
    """libpq's last resort for the user, and so for the database name too."""
    try:
        return getpass.getuser()
    except Exception:  # no user name to be found (a container without /etc/passwd entry)
        return None


def endpoint_of_connection_info(
    host: str | None, port: int | None, dbname: str | None
) -> DbEndpoint:
    """The endpoint of a connected connection, from the driver's ``info``."""
    if not host or host.startswith(("/", "@")):
        return DbEndpoint("postgresql", None, None, dbname)
    return DbEndpoint("postgresql", host, port or 5432, dbname)
