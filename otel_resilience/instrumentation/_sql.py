"""What a span may say about a SQL statement: its operation, its table, its sanitised text.

``db.query.text`` must never carry what a program put into a statement (a user's e-mail
address, a token), and a regular expression that guesses where literals are gets it wrong
at the edges (a string ending in a backslash, an apostrophe in a quoted name or in a
comment, nested dollar quotes). So each dialect has a tokenizer that follows the server's
own lexer, and what it cannot tokenize with confidence is never shown.

What the sanitised text keeps, per dialect:

- **Everywhere**: keywords, unquoted names (``t1``, ``col_2``: digits inside a name stay),
  operators, punctuation and whitespace, verbatim. Placeholders stay, as they carry no
  value: ``%s`` and ``%(name)s`` (psycopg, PyMySQL), ``$1`` (PostgreSQL), ``?``, ``?1``,
  ``:name``, ``@name``, ``$name`` (SQLite).
- **Replaced by ``?``**: every literal. Numbers (``42``, ``1.5e3``, ``.5``, ``0x1F``,
  ``0b101``, ``1_000``) and every string form. PostgreSQL: ``'...'`` (``''`` escape, no
  backslash escape), ``E'...'`` (backslash escapes), ``U&'...'``, ``N'...'``, ``B'...'``,
  ``X'...'``, the continuation of a string on the next line (``'a'`` newline ``'b'`` is one
  string), and ``$tag$...$tag$`` (the body ends only at the same tag, a ``$$`` inside
  ``$a$...$a$`` is body). MySQL/MariaDB: ``'...'`` and ``"..."`` (a string unless
  ``ANSI_QUOTES``: replacing a name is harmless, showing a string is not), both with
  backslash and doubled-quote escapes, with an optional ``X``/``B``/``N`` prefix (a
  ``_charset`` introducer stays, it is a name). SQLite: ``'...'`` (``''`` escape, no
  backslash escape), ``x'...'`` blobs, and ``"..."``, which SQLite takes for a string when
  no column has that name, except where only a name can stand: after ``FROM``, ``INTO``,
  ``TABLE``, ``JOIN``, ``UPDATE``, ``EXISTS`` or ``AS``, and next to a ``.``.
- **Names that stay**: PostgreSQL ``"..."`` and ``U&"..."``; MySQL ```...```; SQLite
  ```...``` and ``[...]``, and ``"..."`` where only a name can stand.
- **Dropped**: every comment, as it can hold anything: ``--`` to the end of the line
  (PostgreSQL ends it at ``\\n`` or ``\\r``, the others at ``\\n``; MySQL only takes ``--``
  followed by a space or control character as a comment, ``1--1`` is ``1 - -1``), ``#``
  (MySQL), ``/* */`` (nested in PostgreSQL; to the end of the text when unterminated in
  SQLite), and MySQL optimizer hints ``/*+ ... */``. MySQL executable comments
  ``/*! ... */`` and ``/*M! ... */`` hold SQL the server runs: their markers stay (without the
  version number), their content is sanitised like the rest.

What cannot be tokenized with confidence shows as the operation only (``SELECT ?``, or ``?``
when the statement does not start with a keyword): an unterminated string, quoted name,
dollar quote or comment, a character the dialect has no token for (a backslash outside a
string), a NUL, an executable comment or hint whose end depends on the server version, and
a statement whose literals would fall elsewhere under the other setting of
``standard_conforming_strings`` (PostgreSQL) or of ``NO_BACKSLASH_ESCAPES`` and
``ANSI_QUOTES`` (MySQL) when both settings tokenize it.

Programs send the same statements again and again, so the analysis is cached per statement
text; a statement that is not a ``str`` (bytes, a psycopg ``sql.SQL`` object) is analysed
through its text when it has one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Dialect", "Statement", "analyse", "sanitise"]

Dialect = Literal["postgresql", "mysql", "sqlite"]

# --- the tokens of each dialect ---------------------------------------------------------------
# One pattern per dialect, tried at each position. Its groups say what to do with the token:
# "keep" (a run of names, keywords, placeholders, operators and whitespace: no literal can
# hide in it), "literal" (becomes "?"), "comment" (dropped), "bad" (anything else: give up).
# No pattern uses nested quantifiers that can backtrack badly (Python 3.10 has no possessive
# quantifiers): a pathological statement costs time linear in its length.

_NON_ASCII = "\u0080-\U0010ffff"  # every server takes these for letters of a name
_NAME_CHAR = f"A-Za-z0-9_${_NON_ASCII}"
_STANDARD_BODY = r"[^']*(?:''[^']*)*'(?!')"
_ESCAPED_BODY = r"[^'\\]*(?:(?:''|\\[\s\S])[^'\\]*)*'(?!')"
_ESCAPED_DOUBLE_BODY = r'[^"\\]*(?:(?:""|\\[\s\S])[^"\\]*)*"(?!")'
_DOUBLED_DOUBLE_BODY = r'[^"]*(?:""[^"]*)*"(?!")'
_BACKTICK_NAME = r"`[^`]*(?:``[^`]*)*`(?!`)"

# PostgreSQL (src/backend/parser/scan.l). A string followed by whitespace holding a newline
# and another quote goes on (and keeps its kind: an E string stays an E string), comments
# allowed in that whitespace. \v is whitespace from PostgreSQL 16 only: not taken here.
_PG_CONTINUE = r"[ \t\f]*(?:--[^\n\r]*)?[\n\r](?:[ \t\n\r\f]|--[^\n\r]*[\n\r])*'"
_PG_IDENT = f"[A-Za-z_{_NON_ASCII}][{_NAME_CHAR}]*"
_PG_NUMBER = (
    r"(?:[0-9][0-9_]*(?:\.(?!\.)[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9][0-9_]*)?"
    # 0x1F, 0o17, 0b101 and junk glued to a number are in the "?" too; not an E before a
    # quote: PostgreSQL 15 reads 1E'\' as 1 and an E string
    f"(?:(?![eE]'){_PG_IDENT})?"
)
_PG_DOLLAR = (
    f"\\$(?P<tag>(?:[A-Za-z_{_NON_ASCII}][A-Za-z0-9_{_NON_ASCII}]*)?)\\$[\\s\\S]*?\\$(?P=tag)\\$"
)
_PG_KEEP = (
    r"[ \t\n\r\f]+"
    f"|(?![eEbBxXnN]'|[uU]&['\"]){_PG_IDENT}"
    f'|(?:[uU]&)?"{_DOUBLED_DOUBLE_BODY}'
    r"|\$[0-9]+"
    r"|[~!@#^&|`?+*%<>=,()\[\];:]|-(?!-)|/(?!\*)|\.(?![0-9])"
)


def _postgresql(plain_body: str) -> re.Pattern[str]:
    strings = (
        f"[eE]'{_ESCAPED_BODY}(?:{_PG_CONTINUE}{_ESCAPED_BODY})*"
        f"|[bBxX]'[^']*'(?:{_PG_CONTINUE}[^']*')*"
        f"|[uU]&'{_STANDARD_BODY}(?:{_PG_CONTINUE}{_STANDARD_BODY})*"
        f"|[nN]?'{plain_body}(?:{_PG_CONTINUE}{plain_body})*"
    )
    return re.compile(
        f"(?P<keep>(?:{_PG_KEEP})+)"
        f"|(?P<literal>{strings}|{_PG_DOLLAR}|{_PG_NUMBER})"
        r"|(?P<comment>--[^\n\r]*)"
        r"|(?P<nested_comment>/\*)"
        r"|(?P<bad>[\s\S])"
    )


# MySQL and MariaDB (sql/sql_lex.cc). "--" starts a comment only before a space or control
# character; a "*/" closes an executable comment, elsewhere it is two operators.
_MYSQL_NUMBER = f"(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?[{_NAME_CHAR}]*"
_MYSQL_KEEP = (
    r"[ \t\n\v\f\r]+"
    f"|(?![xXbBnN]')[A-Za-z_${_NON_ASCII}][{_NAME_CHAR}]*"
    f"|{_BACKTICK_NAME}"
    r"|[~!@^&|?+%<>=,();:{}]|\*(?!/)|-(?!-(?:[\x00-\x20\x7f]|\Z))|/(?!\*)|\.(?![0-9])"
)


def _mysql(single_body: str, double_body: str) -> re.Pattern[str]:
    return re.compile(
        f"(?P<keep>(?:{_MYSQL_KEEP})+)"
        f"|(?P<literal>[xXbBnN]?'{single_body}|\"{double_body}|{_MYSQL_NUMBER})"
        r"|(?P<comment>#[^\n]*|--(?=[\x00-\x20\x7f]|\Z)[^\n]*|/\*(?!M?!|\+)[\s\S]*?\*/)"
        r"|(?P<executable>/\*(?P<marker>M?!)(?P<version>[0-9]*))"
        r"|(?P<hint>/\*\+)"
        r"|(?P<close>\*/)"
        r"|(?P<bad>[\s\S])"
    )


# SQLite (src/tokenize.c). A variable followed by "(" is a Tcl array element: its index
# is shown as "?". "..." is decided by where it stands (see _sqlite_name_at).
_SQLITE_VARIABLE = f"[$@#:](?:::)*[{_NAME_CHAR}](?:[{_NAME_CHAR}]|::)*"
_SQLITE_KEEP = (
    r"[ \t\n\f\r][ \t\n\v\f\r]*"
    f"|(?![xX]')[A-Za-z_{_NON_ASCII}][{_NAME_CHAR}]*"
    f"|{_BACKTICK_NAME}|\\[[^\\]]*\\]"
    f"|\\?[0-9]*|{_SQLITE_VARIABLE}(?![{_NAME_CHAR}(]|::)"
    r"|[+*%=<>|,&~();]|!=|-(?!-)|/(?!\*)|\.(?![0-9])"
)
_SQLITE = re.compile(
    f"(?P<keep>(?:{_SQLITE_KEEP})+)"
    f"|(?P<literal>'{_STANDARD_BODY}|[xX]'[^']*'"
    f"|(?:[0-9][0-9_]*(?:\\.[0-9_]*)?|\\.[0-9][0-9_]*)(?:[eE][-+]?[0-9][0-9_]*)?[{_NAME_CHAR}]*)"
    r"|(?P<comment>--[^\n]*|/\*(?:[\s\S]*?\*/|[\s\S]+))"
    f'|(?P<double_quoted>"{_DOUBLED_DOUBLE_BODY})'
    f"|(?P<tcl_variable>(?P<tcl_name>{_SQLITE_VARIABLE})\\([^ \\t\\n\\v\\f\\r)]*\\))"
    r"|(?P<bad>[\s\S])"
)

# The first lexer of each dialect is the server's default; the others are the settings that
# move where a literal ends. They only differ on backslashes, so they only run when there is one.
_LEXERS: dict[Dialect, tuple[re.Pattern[str], ...]] = {
    "postgresql": (_postgresql(_STANDARD_BODY), _postgresql(_ESCAPED_BODY)),
    "mysql": (
        _mysql(_ESCAPED_BODY, _ESCAPED_DOUBLE_BODY),
        _mysql(_STANDARD_BODY, _DOUBLED_DOUBLE_BODY),  # NO_BACKSLASH_ESCAPES
        _mysql(_ESCAPED_BODY, _DOUBLED_DOUBLE_BODY),  # ANSI_QUOTES: "..." is a name
    ),
    "sqlite": (_SQLITE,),
}

_WHITESPACE = " \t\n\r\f\v"
_SPACES = re.compile(r"[ \t\n\r\f]*")
_NESTED_COMMENT_MARK = re.compile(r"/\*|\*/")
_SQLITE_NAME_BEFORE = re.compile(
    f"(?:(?<=[^{_NAME_CHAR}])(?:FROM|INTO|TABLE|JOIN|UPDATE|EXISTS|AS)|\\.)[ \\t\\n\\r\\f\\v]*\\Z",
    re.IGNORECASE,
)
_SQLITE_DISTINCT_FROM_BEFORE = re.compile(r"DISTINCT[ \t\n\r\f\v]+FROM[ \t\n\r\f\v]*\Z", re.I)
_SQLITE_DOT_AFTER = re.compile(r"(?:[ \t\n\r\f\v]|--[^\n]*\n|/\*(?:[^*]|\*(?!/))*\*/)*\.(?![0-9])")


def _drop_comment(out: list[str], text: str, end: int) -> int:
    """Where to go on after a comment ending at ``end``, which leaves nothing behind but the
    space that keeps its neighbours apart (``1/**/2`` must not become ``12``)."""
    if not out or out[-1][-1] in _WHITESPACE:
        return _SPACES.match(text, end).end()  # type: ignore[union-attr]  # always matches
    if out[-1].endswith("--"):  # MySQL's minus signs, which a space would make a comment
        signs = out[-1].rstrip("-")
        out[-1] = signs + " ".join("-" * (len(out[-1]) - len(signs)))
    if end < len(text) and text[end] not in _WHITESPACE:
        out.append(" ")
    return end


def _nested_comment_end(text: str, pos: int) -> int:
    """The end of a PostgreSQL comment whose ``/*`` ends at ``pos``, or -1: they nest."""
    depth = 1
    for mark in _NESTED_COMMENT_MARK.finditer(text, pos):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return -1


def _discarded_comment_end(text: str, pos: int, nesting: int) -> int:
    """Where MySQL ends a comment it skips, from ``pos``: at the first ``*/``, with ``nesting``
    levels of ``/* */`` allowed inside; -1 if it does not end."""
    size = len(text)
    while pos < size:
        char = text[pos]
        pos += 1
        if nesting and char == "/" and text.startswith("*", pos):
            pos = _discarded_comment_end(text, pos + 1, nesting - 1)
            if pos < 0:
                return -1
        elif char == "*" and text.startswith("/", pos):
            return pos + 1
    return -1


def _skipped_executable_ends(text: str, content: int, token: re.Match[str]) -> tuple[int, ...]:
    """Where the servers that skip an executable comment starting ``content`` would end it.

    A ``/*!NNNNN`` for a newer version (and MariaDB skips 50700 to 99999, MySQL's own) is
    skipped with one level of ``/* */`` allowed inside; MySQL skips any ``/*M!`` as a plain
    comment. Those that run it end it at the first ``*/`` outside a literal: all must agree.
    """
    versioned = len(token.group("version")) >= 5
    ends = [_discarded_comment_end(text, content, 1)] if versioned else []
    if token.group("marker") == "M!":
        ends.append(_discarded_comment_end(text, content, 0))
    return tuple(ends)


def _sqlite_name_at(out: list[str], text: str, end: int) -> bool:
    """Whether a ``"..."`` ending at ``end`` stands where SQLite only takes a name."""
    if (out and out[-1].rstrip(_WHITESPACE).endswith(".")) or _SQLITE_DOT_AFTER.match(text, end):
        return True
    before = "".join(out[-3:])
    if len(out) <= 3:
        before = " " + before  # the statement's start: nothing glued to its first word
    before = before[-48:]
    return bool(_SQLITE_NAME_BEFORE.search(before)) and not _SQLITE_DISTINCT_FROM_BEFORE.search(
        before
    )


def _tokenize(text: str, lexer: re.Pattern[str]) -> tuple[list[str], bool]:
    """The sanitised pieces of ``text``, and whether it was tokenized to its end; when it
    was not, the pieces stop before the first token the lexer was unsure of."""
    out: list[str] = []
    pos = 0
    size = len(text)
    match = lexer.match
    in_executable = False
    skipped_ends: tuple[int, ...] = ()  # where a server that skips the open /*! ends it
    while pos < size:
        token = match(text, pos)
        assert token is not None  # the "bad" group takes any character
        kind = token.lastgroup
        end = token.end()
        if kind == "keep":
            out.append(token.group())
        elif kind == "literal":
            out.append("?")
        elif kind == "comment":
            end = _drop_comment(out, text, end)
        elif kind == "nested_comment":
            end = _nested_comment_end(text, end)
            if end < 0:
                return out, False
            end = _drop_comment(out, text, end)
        elif kind == "double_quoted":
            out.append(token.group() if _sqlite_name_at(out, text, end) else "?")
        elif kind == "tcl_variable":
            out.append(f"{token.group('tcl_name')}(?)")
        elif kind == "executable":
            if in_executable:
                return out, False
            in_executable = True
            marker = token.group("marker")
            skipped_ends = _skipped_executable_ends(text, token.start() + 2 + len(marker), token)
            out.append(f"/*{marker}")
        elif kind == "close":
            if in_executable:
                if any(skipped != end for skipped in skipped_ends):
                    return out, False
                in_executable = False
            out.append("*/")
        elif kind == "hint":
            # MySQL reads a hint right after SELECT (...) with quoted strings in it, and any
            # other /*+ as a comment ending at the first */: only safe when both agree.
            close = text.find("*/", end)
            if close < 0 or any(quote in text[end:close] for quote in "'\"`"):
                return out, False
            end = _drop_comment(out, text, close + 2)
        else:
            return out, False
        pos = end
    return out, not in_executable


def _sanitised(text: str, dialect: Dialect) -> tuple[str, bool]:
    """``text`` sanitised, and whether it could be; if not, what came before the trouble."""
    primary, *others = _LEXERS[dialect]
    if "\x00" in text:  # ends a comment early in MySQL, refused by the others
        out, _ = _tokenize(text[: text.index("\x00")], primary)
        return "".join(out), False
    out, complete = _tokenize(text, primary)
    sanitised = "".join(out)
    if complete and "\\" in text:
        for other in others:
            other_out, other_complete = _tokenize(text, other)
            if other_complete and "".join(other_out) != sanitised:
                return sanitised, False
    return sanitised, complete


_LEADING = re.compile(r"(?:[ \t\n\r\f\v(]|/\*M?!)*")
_FIRST_WORD = re.compile(f"[A-Za-z]+(?![{_NAME_CHAR}])")


def _operation(sanitised: str) -> str | None:
    first = _FIRST_WORD.match(sanitised, _LEADING.match(sanitised).end())  # type: ignore[union-attr]
    return first.group().upper() if first else None


def sanitise(text: str, dialect: Dialect) -> str:
    """``text`` with its literals replaced by ``?`` and its comments dropped, names and
    placeholders kept; ``OPERATION ?`` when it cannot be tokenized with confidence."""
    sanitised, complete = _sanitised(text, dialect)
    if complete:
        return sanitised.strip()
    operation = _operation(sanitised)
    return f"{operation} ?" if operation else "?"


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
    """``db.query.text``: the statement with every literal replaced by ``?`` and its comments
    dropped, or ``OPERATION ?`` when it could not be tokenized with confidence."""
    read_only: bool
    """A plain ``SELECT`` (or ``SHOW``...): running it twice changes nothing."""
    procedure: str | None = None
    """``db.stored_procedure.name``, for a DB-API ``callproc``."""


def _unquote(name: str) -> str:
    return name.replace('"', "").replace("`", "").replace("[", "").replace("]", "")


@functools.lru_cache(maxsize=2048)
def analyse(text: str, dialect: Dialect) -> Statement:
    """The :class:`Statement` of ``text``, cached: the same statements run again and again."""
    sanitised, complete = _sanitised(text, dialect)
    operation = _operation(sanitised)
    if not complete:  # nothing to trust beyond the first word, not even that it only reads
        return Statement(operation, None, f"{operation} ?" if operation else "?", False)
    # Table and writes are looked for in the sanitised text: a literal or a comment saying
    # "FROM users" or "FOR UPDATE" is not one.
    body = sanitised[_LEADING.match(sanitised).end() :]  # type: ignore[union-attr]
    collection = None
    finder = _TABLE_AFTER.get(operation or "")
    if finder is not None:
        found = finder.search(body)
        if found is not None:
            collection = _unquote(found.group(1))
    read_only = operation in _READ_ONLY_OPERATIONS and not (
        operation == "SELECT" and _WRITES_INSIDE_SELECT.search(body) is not None
    )
    # Sanitised whole, then cut: the cut must not decide where a literal ends.
    return Statement(operation, collection, sanitised.strip()[:_MAX_TEXT], read_only)
