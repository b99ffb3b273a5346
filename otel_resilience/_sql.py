"""What a span may say about a SQL statement: its operation, its table, its sanitised text.

``db.query.text`` must never carry the values a program put into a statement (a user's
e-mail address, a token), so every literal becomes ``?``: quoted strings, numbers, hex and
PostgreSQL dollar-quoted strings. Placeholders (``%s``, ``?``, ``$1``, ``:name``) are kept:
they carry no value. Programs send the same statements again and again, so the analysis is
cached per statement text; a statement that is not a ``str`` (bytes, a psycopg ``sql.SQL``
object) is analysed through its text when it has one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Dialect", "Statement", "analyse", "sanitise"]

Dialect = Literal["postgresql", "mysql", "sqlite"]

_SINGLE_QUOTED = r"[EeXxBbNn]?'(?:[^'\\]|''|\\.)*'"
_DOLLAR_QUOTED = r"\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$"
_NUMBER = r"(?<![\w$:.])(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
_DOUBLE_QUOTED = r'"(?:[^"\\]|""|\\.)*"'
_COMMENT = r"--[^\n]*|/\*.*?\*/"

# Comments are matched (and kept) first, so that a quote inside one starts no literal.
_LITERALS: dict[Dialect, re.Pattern[str]] = {
    "postgresql": re.compile(
        f"(?P<comment>{_COMMENT})|{_DOLLAR_QUOTED}|{_SINGLE_QUOTED}|{_NUMBER}", re.DOTALL
    ),
    # MySQL takes "..." for a string unless ANSI_QUOTES is on: treat it as one, to be safe.
    "mysql": re.compile(
        f"(?P<comment>{_COMMENT})|{_SINGLE_QUOTED}|{_DOUBLE_QUOTED}|{_NUMBER}", re.DOTALL
    ),
    "sqlite": re.compile(f"(?P<comment>{_COMMENT})|{_SINGLE_QUOTED}|{_NUMBER}", re.DOTALL),
}
_LEADING = re.compile(r"(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_TABLE_AFTER = {
    "SELECT": re.compile(r"\bFROM\s+([\w.\"`\[\]]+)", re.IGNORECASE),
    "DELETE": re.compile(r"\bFROM\s+([\w.\"`\[\]]+)", re.IGNORECASE),
    "INSERT": re.compile(r"\bINTO\s+([\w.\"`\[\]]+)", re.IGNORECASE),
    "REPLACE": re.compile(r"\bINTO\s+([\w.\"`\[\]]+)", re.IGNORECASE),
    "UPDATE": re.compile(r"^\s*UPDATE\s+(?:ONLY\s+)?([\w.\"`\[\]]+)", re.IGNORECASE),
    "CREATE": re.compile(r"\bTABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"`\[\]]+)", re.IGNORECASE),
    "DROP": re.compile(r"\bTABLE\s+(?:IF\s+EXISTS\s+)?([\w.\"`\[\]]+)", re.IGNORECASE),
    "COPY": re.compile(r"^\s*COPY\s+([\w.\"`\[\]]+)", re.IGNORECASE),
    "TRUNCATE": re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?([\w.\"`\[\]]+)", re.IGNORECASE),
}
_READ_ONLY_OPERATIONS = frozenset({"SELECT", "SHOW", "EXPLAIN", "DESCRIBE", "VALUES"})
_WRITES_INSIDE_SELECT = re.compile(r"\b(?:FOR\s+UPDATE|FOR\s+SHARE|INTO)\b", re.IGNORECASE)
_MAX_TEXT = 4096


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """One statement as telemetry sees it; shared by every execution of the same text.

    Compared and hashed by identity (``eq=False``): :func:`analyse` hands out one object per
    statement text, and the span-attribute caches key on it at the cost of a pointer hash.
    """

    operation: str | None
    """``db.operation.name``: the statement's first keyword (``SELECT``), if it has one."""
    collection: str | None
    """``db.collection.name``: the table of a simple statement, unquoted, if found."""
    text: str
    """``db.query.text``: the statement with every literal replaced by ``?``."""
    read_only: bool
    """A plain ``SELECT`` (or ``SHOW``...): running it twice changes nothing."""
    procedure: str | None = None
    """``db.stored_procedure.name``, for a DB-API ``callproc``."""


def sanitise(text: str, dialect: Dialect) -> str:
    """``text`` with its literals replaced by ``?``, comments and placeholders kept."""

    def replace(match: re.Match[str]) -> str:
        return match.group() if match.group("comment") is not None else "?"

    return _LITERALS[dialect].sub(replace, text)


def _unquote(name: str) -> str:
    return name.replace('"', "").replace("`", "").replace("[", "").replace("]", "")


@functools.lru_cache(maxsize=2048)
def analyse(text: str, dialect: Dialect) -> Statement:
    """The :class:`Statement` of ``text``, cached: the same statements run again and again."""
    body = text[_LEADING.match(text).end() :]  # type: ignore[union-attr]  # always matches
    first = _FIRST_WORD.match(body)
    operation = first.group().upper() if first else None
    collection = None
    finder = _TABLE_AFTER.get(operation or "")
    if finder is not None:
        found = finder.search(body)
        if found is not None:
            collection = _unquote(found.group(1))
    read_only = operation in _READ_ONLY_OPERATIONS and not (
        operation == "SELECT" and _WRITES_INSIDE_SELECT.search(body) is not None
    )
    # Sanitised whole, then cut: cutting first could leave a literal unterminated, unmatched.
    sanitised = sanitise(text, dialect).strip()[:_MAX_TEXT]
    return Statement(operation, collection, sanitised, read_only)
