"""Credentials in text: the one place that knows what a secret looks like in a URL or a message.

Telemetry quotes text it did not write: a URL handed to an HTTP client, a driver's exception
message that repeats the DSN it failed to connect with, a header dump in a log line. Two
functions take the credentials out of such text before it leaves the process:

:func:`redact_url` gives ``url.full`` as the OTel HTTP semantic conventions describe it:
``user:password@`` becomes ``REDACTED:REDACTED@``; every query value becomes ``REDACTED``
(the conventions ask it for known sensitive parameters; we cannot know them all, so all) and
so does a bare query key (``?s3cr3t``), which is a value in all but name; matrix parameters
of a path segment (``/cart;jsessionid=abc``) are treated like query fields; the fragment is
dropped, since OAuth's implicit flow puts tokens there. Parameter names are kept: they say
what kind of request it was.

:func:`redact_text` is for free text (exception messages, span status descriptions, log
messages and field values, health-check details). It finds, anywhere in the text:

- URLs with a scheme (``https://...``, ``postgresql://u:p@h/db``, ``redis://:pw@h``): as
  :func:`redact_url`; so is a ``/path?query`` standing alone, as urllib3 quotes the request
  in its errors ("Max retries exceeded with url: /v1?key=...");
- ``user:password@host`` without a scheme: ``REDACTED:REDACTED@host``;
- ``Bearer <token>`` and ``Basic <credentials>``, case-insensitive (a following word of
  lowercase letters only, as in "bearer token expired", is taken for prose and kept);
- header lines ``Authorization:``, ``Proxy-Authorization:``, ``Cookie:``, ``Set-Cookie:``,
  ``X-Api-Key:``, ``X-Auth-Token:``, ``Private-Token:``: the rest of the line;
- ``key=value`` (conninfo and query style: ``password=x``, ``password='x y'``, ``token=abc&``),
  and ``"key": value`` / ``'key': value`` (JSON and Python reprs), when the key, any case,
  ends with a credential name (:data:`CREDENTIAL_KEY_SUFFIXES`: ``password``, ``passwd``,
  ``pwd``, ``sslpassword``, ``token``, ``access_token``, ``sig``, ``signature``, ``secret``,
  ``api_key``, ``auth``, ``authorization``, ``otp``, ``jwt``, ``passphrase``, ``cookie``,
  ``session``...) or is ``pass`` or ``pw`` as a whole word (``db_pass``, not ``bypass``). The
  value becomes ``REDACTED`` (inside its quotes, if quoted; an auth scheme before it, as in
  ``authorization=Bearer x``, is kept). A bare value runs to whitespace, or to ``&`` or
  ``;`` followed by another ``key=``; trailing ``)``, ``,``, ``.`` and quotes stay outside.

What it does not find: ``key: value`` with an unquoted key other than the header names above
(``password: x`` in YAML; "invalid token: expired" is prose far more often); secrets under
other names (``key=``, ``code=``, ``state=``) outside a URL's query; a password holding
whitespace or ``/`` in URL userinfo (the URL, or its authority, ends there); the second word
of an unterminated quoted value; secrets split across separate strings. It also takes
``scheme:user@host`` forms that are not credentials (``mailto:bob@example.com``) for them.

The text comes back readable: only the secret is replaced, by ``REDACTED``, and already
redacted text comes back unchanged (``redact_text`` is idempotent).

Cost: most text holds no secret, and a regular expression scanning every position of a
string costs microseconds in CPython, so the search is anchored on what each form needs and
C-level string methods find: a separator (``=`` or ``:``) is looked at further only when the
letters before it end like a credential name (one dict look-up, one ``endswith``); URLs only
when the text has ``://`` and an ``@``, ``?``, ``#`` or ``;``; ``Bearer``/``Basic`` only when
the lower-cased text has the word. A clean string costs a few ``in`` tests and one ``lower``
and comes back as the very same object. Neither function raises: should anything fail, the
whole text becomes ``"REDACTED"``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CREDENTIAL_KEY_SUFFIXES", "REDACTED", "redact_text", "redact_url"]

REDACTED: Final = "REDACTED"

_ALREADY_REDACTED: Final = frozenset({REDACTED, "[REDACTED]"})

_KEY_PREFIXES: Final = ("api", "private", "secret", "access", "client", "signing", "master")

CREDENTIAL_KEY_SUFFIXES: Final[tuple[str, ...]] = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "sig",
    "signature",
    "auth",
    "authorization",
    "otp",
    "jwt",
    "cookie",
    "session",
    "sessionid",
    "session_id",
    "sessid",
    "credential",
    "credentials",
    *(f"{prefix}{separator}key" for prefix in _KEY_PREFIXES for separator in ("", "_", "-")),
)
"""A ``key=value`` key (any case) ending with one of these is a credential's in free text."""

_WHOLE_WORD_KEYS: Final = ("pass", "pw")
"""Credential keys too short to match as a suffix (``bypass``): whole words only."""

_HEADER_NAMES: Final = (
    "proxy-authorization",
    "authorization",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "private-token",
    "set-cookie",
    "cookie",
)

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SCHEME_CHARACTERS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-"
)
_URL_TAIL: Final = re.compile(r"(?:[^\s/?#@]*@)*[^\s<>\"'`]*")  # userinfo through its last @
# A ``/`` that starts a token (after whitespace, a quote, a bracket, ``=`` or ``,``, or at
# the start): a literal first, so the search skips to slashes, and the look-behind right
# after it, so the slashes inside a path start no scan of their own (a long path stays
# linear).
_RELATIVE_REFERENCE: Final = re.compile(r"/(?<![^\s\"'(<\[=,]/)[^\s?#<>\"'`]*\?[^\s<>\"'`]*")
_USERINFO: Final = re.compile(r"(?<![\w.%+\-:/@])[\w.%+\-]+:[^\s@/]*@(?=[\w\[])")
_AUTH_WORDS: Final = ("bearer", "basic")
# A run of lowercase letters is a word of prose ("bearer token expired"), not a credential.
_AUTH_TOKEN: Final = re.compile(r"[ \t]+(?![a-z]+(?![A-Za-z0-9\-._~+/=]))[A-Za-z0-9\-._~+/]+=*")
_HEADER_VALUE: Final = re.compile(r"[ \t]*([^\s:][^\r\n]*)")
_VALUE: Final = re.compile(
    r"""[ \t]*(?:
        [bBrRuUfF]{0,2}(?P<quote>\\?["'])(?P<quoted>(?:\\.|[^\\\n])*?)(?P=quote)
        |(?P<scheme>(?i:bearer|basic|digest|negotiate|ntlm|token)[ \t]+)?
        (?P<bare>(?:[^\s&;]|[&;](?![\w.\-]+=))+)
    )""",
    re.VERBOSE,
)


def _by_last_letter(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for name in names:
        grouped.setdefault(name[-1], []).append(name)
    return {letter: tuple(group) for letter, group in grouped.items()}


# Every name a key may end with, by its last letter: one dict look-up rejects most keys.
_KEY_ENDINGS: Final = _by_last_letter(CREDENTIAL_KEY_SUFFIXES + _WHOLE_WORD_KEYS + _HEADER_NAMES)
_HEADER_ENDINGS: Final = _by_last_letter(_HEADER_NAMES)
_BEFORE_SEPARATOR_MARKS: Final = frozenset(" \t\"'")
_TRAILING: Final = ".,;:!?)]}>'\""
_USERINFO_STARTS: Final = (" ", "\t", "\n", "/")
_REDACTED_USERINFO: Final = f"{REDACTED}:{REDACTED}@"
_SHORTEST_AUTHORIZATION: Final = len("basic x")


def redact_url(url: str) -> str:
    """``url`` as ``url.full``: no userinfo, query values, bare query keys, matrix parameter
    values or fragment (see the module documentation); ``url`` itself when there is nothing
    to take out. Never raises: what cannot be read becomes ``"REDACTED"``."""
    try:
        if "@" not in url and "?" not in url and "#" not in url and ";" not in url:
            return url
        return _redacted_url(url)
    except Exception:
        return REDACTED


def _redacted_url(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    if separator and _SCHEME.fullmatch(scheme):
        end = len(rest)
        for delimiter in "/?#":
            found = rest.find(delimiter, 0, end)
            if found != -1:
                end = found
        authority = rest[:end]
        if "@" in authority:
            authority = f"{REDACTED}:{REDACTED}@{authority.rpartition('@')[2]}"
        prefix = f"{scheme}://{authority}"
        rest = rest[end:]
    else:  # no authority to look for (a relative reference)
        prefix = ""
        rest = url
    path, _, query = rest.partition("#")[0].partition("?")
    if ";" in path:
        path = "/".join(
            _redacted_parameters(segment, ";", keep_first=True) if ";" in segment else segment
            for segment in path.split("/")
        )
    if query:
        query = _redacted_parameters(query, "&", keep_first=False)
    return f"{prefix}{path}?{query}" if query else f"{prefix}{path}"


def _redacted_parameters(text: str, separator: str, *, keep_first: bool) -> str:
    """``name=value`` fields with values redacted and bare names replaced; empty ones gone
    (a path segment's first part, its name, is kept when ``keep_first``)."""
    fields = text.split(separator)
    redacted = [fields[0]] if keep_first else []
    for field in fields[1:] if keep_first else fields:
        if not field:
            continue
        name, equals, _ = field.partition("=")
        redacted.append(f"{name}={REDACTED}" if equals else REDACTED)
    return separator.join(redacted)


def redact_text(text: str) -> str:
    """``text`` with the credentials it quotes replaced by ``REDACTED`` (see the module
    documentation); the same object when it holds none. Never raises."""
    try:
        # The common clean strings, at a glance (inline: a call costs as much as a test).
        # A ``?`` matters only in a URL or a path, which has a ``/``.
        if "=" not in text and "@" not in text and ("?" not in text or "/" not in text):
            if ":" not in text:
                # Only an authorization scheme's credentials can be there.
                if len(text) < _SHORTEST_AUTHORIZATION:
                    return text
                lowered = text.lower()
                if "bearer" not in lowered and "basic" not in lowered:
                    return text
            elif (
                '"' not in text
                and "'" not in text
                and ("://" not in text or ("#" not in text and ";" not in text))
            ):
                # Colons without quotes ("error: timeout", "12:30:01"): only a header line
                # or an authorization scheme's credentials can be there.
                lowered = text.lower()
                if not ("bearer" in lowered or "basic" in lowered or _names_a_header(lowered)):
                    return text
        spans = _secret_spans(text)
        if not spans:
            return text
        # Leftmost first, the outer of two that start together; one inside another is
        # already covered (a ``token=`` in a URL's query, a URL as a password's value).
        spans.sort(key=lambda span: (span[0], -span[1]))
        pieces: list[str] = []
        done = 0
        for start, end, replacement in spans:
            if start < done:
                continue
            pieces.append(text[done:start])
            pieces.append(replacement)
            done = end
        pieces.append(text[done:])
        redacted = "".join(pieces)
    except Exception:
        return REDACTED
    return text if redacted == text else redacted


def _secret_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) for each secret in ``text``, possibly overlapping.

    Each form is looked for only when ``in`` tests find what it needs (a separator, an
    ``@``, ``://`` with a query, fragment or parameter, ``bearer``/``basic``), and a
    separator is looked at further only when the key before it ends like a credential
    name. Pairs come first, so that of a pair and a URL starting together
    (``token=https://...``), the pair wins.
    """
    spans: list[tuple[int, int, str]] = []
    lowered = text.lower()
    if len(lowered) != len(text):  # a few non-ASCII letters lengthen: keep indices aligned
        lowered = "".join(
            character.lower() if len(character.lower()) == 1 else character for character in text
        )
    if "=" in text:
        _pair_spans(text, lowered, "=", _KEY_ENDINGS, spans)
    # Unquoted, only a header name may come before a ``:``; a quoted key has its quote.
    if ":" in text and ('"' in text or "'" in text or _names_a_header(lowered)):
        _pair_spans(text, lowered, ":", _HEADER_ENDINGS, spans)
    for word in _AUTH_WORDS:
        if word in lowered:
            _auth_spans(text, lowered, word, spans)
    at_sign = "@" in text
    question = "?" in text
    if "://" in text and (at_sign or question or "#" in text or ";" in text):
        _url_spans(text, spans)
    if question and "/" in text:
        _relative_reference_spans(text, spans)
    if at_sign:
        _userinfo_spans(text, spans)
    return spans


def _names_a_header(lowered: str) -> bool:
    """Whether a header name of :data:`_HEADER_NAMES` may be in the lower-cased text."""
    return (
        "authorization" in lowered
        or "cookie" in lowered
        or "api-key" in lowered
        or "token" in lowered
    )


def _pair_spans(
    text: str,
    lowered: str,
    separator: str,
    endings: dict[str, tuple[str, ...]],
    spans: list[tuple[int, int, str]],
) -> None:
    marks = _BEFORE_SEPARATOR_MARKS
    at = text.find(separator, 1)  # one at the very start has no key before it
    while at != -1:
        before = lowered[at - 1]
        names = endings.get(before)
        after = at + 1
        if before in marks or (names is not None and lowered.endswith(names, 0, at)):
            found = len(spans)
            _pair_span(text, lowered, at, spans)
            if len(spans) > found:  # a separator inside the value is the value's
                after = max(after, spans[-1][1])
        at = text.find(separator, after)


def _url_spans(text: str, spans: list[tuple[int, int, str]]) -> None:
    found = text.find("://")
    while found != -1:
        start = found
        while start > 0 and text[start - 1] in _SCHEME_CHARACTERS:
            start -= 1
        while start < found and not text[start].isalpha():  # a scheme starts with a letter
            start += 1
        after = found + 3
        if start < found:
            tail = _URL_TAIL.match(text, after)
            end = tail.end() if tail is not None else after
            url = text[start:end].rstrip(_TRAILING)
            # Kept even when unchanged: a ``name=value`` inside is the URL's business.
            spans.append((start, start + len(url), _redacted_url(url)))
            after = max(after, end)
        found = text.find("://", after)


def _relative_reference_spans(text: str, spans: list[tuple[int, int, str]]) -> None:
    """``/path?query`` without scheme or host, as urllib3 quotes it ("with url: /v1?...")."""
    for match in _RELATIVE_REFERENCE.finditer(text):
        start = match.start()
        url = match.group().rstrip(_TRAILING)
        spans.append((start, start + len(url), _redacted_url(url)))


def _userinfo_spans(text: str, spans: list[tuple[int, int, str]]) -> None:
    previous = 0
    at = text.find("@")
    while at != -1:
        # ``user:password`` cannot hold whitespace, ``/`` or ``@``: look only since the last
        # (and no further back than the previous ``@``, so that many stay linear).
        since = max(text.rfind(character, previous, at) for character in _USERINFO_STARTS) + 1
        match = _USERINFO.search(text, max(since, previous), at + 2)
        if match is not None and match.end() == at + 1 and match.group() != _REDACTED_USERINFO:
            spans.append((match.start(), at + 1, _REDACTED_USERINFO))
        previous = at + 1
        at = text.find("@", previous)


def _auth_spans(text: str, lowered: str, word: str, spans: list[tuple[int, int, str]]) -> None:
    found = lowered.find(word)
    while found != -1:
        end = found + len(word)
        if not _continues_word(text, found):
            token = _AUTH_TOKEN.match(text, end)
            if token is not None and token.group().strip() != REDACTED:
                spans.append((end, token.end(), f" {REDACTED}"))
        found = lowered.find(word, end)


def _pair_span(text: str, lowered: str, at: int, spans: list[tuple[int, int, str]]) -> None:
    """The secret after the separator at ``at``, if the key before it names a credential."""
    key_end = at
    quoted = False
    if at and text[at - 1] in _BEFORE_SEPARATOR_MARKS:  # the rare case: spaces or a quote
        while key_end > 0 and text[key_end - 1] in " \t":
            key_end -= 1
        quoted = key_end > 0 and text[key_end - 1] in "\"'"
        if quoted:
            key_end -= 1
            if key_end > 0 and text[key_end - 1] == "\\":
                key_end -= 1
    # Most separators follow no credential name: their key's last letter already says so.
    endings = _KEY_ENDINGS.get(lowered[key_end - 1]) if key_end else None
    if endings is None or not lowered.endswith(endings, 0, key_end):
        return
    if text[at] == ":" and not quoted:
        # ``name: value`` only for header names; elsewhere it is mostly prose.
        if lowered.endswith(_HEADER_NAMES, 0, key_end):
            value = _HEADER_VALUE.match(text, at + 1)
            if value is not None and value.group(1) not in _ALREADY_REDACTED:
                spans.append((value.start(1), value.end(1), REDACTED))
        return
    if not lowered.endswith(CREDENTIAL_KEY_SUFFIXES, 0, key_end) and not _whole_word_key(
        text, lowered, key_end
    ):
        return
    value = _VALUE.match(text, at + 1)
    if value is None:
        return
    if value.group("quote") is not None:
        secret = value.group("quoted")
        if secret and secret not in _ALREADY_REDACTED:
            spans.append((value.start("quoted"), value.end("quoted"), REDACTED))
        return
    bare = value.group("bare")
    secret = bare.rstrip(_TRAILING) or bare
    if secret not in _ALREADY_REDACTED and bare not in _ALREADY_REDACTED:
        start = value.start("bare")
        spans.append((start, start + len(secret), REDACTED))


def _whole_word_key(text: str, lowered: str, key_end: int) -> bool:
    for word in _WHOLE_WORD_KEYS:
        if lowered.endswith(word, 0, key_end):
            start = key_end - len(word)
            return start == 0 or not text[start - 1].isalnum()
    return False


def _continues_word(text: str, start: int) -> bool:
    """Whether ``text[start]`` continues a word or a hyphenated name (``x-bearer``)."""
    if start <= 0:
        return False
    previous = text[start - 1]
    return previous.isalnum() or previous in "_-"
