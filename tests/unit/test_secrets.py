"""Credentials in URLs and free text: what ``redact_url`` and ``redact_text`` take out, and keep."""

from __future__ import annotations

import pytest

from otel_resilience._secrets import redact_text, redact_url

SECRET = "s3cr3t-XYZ"


# -- redact_url: url.full ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"https://alice:{SECRET}@api.example.com/v1/items?token={SECRET}&page=2",
            "https://REDACTED:REDACTED@api.example.com/v1/items?token=REDACTED&page=REDACTED",
        ),
        # A user name alone may be a token (``https://<token>@github.com``).
        (f"https://{SECRET}@example.com/", "https://REDACTED:REDACTED@example.com/"),
        # A password holding an unescaped ``@``: the host is what follows the last one.
        (f"postgresql://u:{SECRET}@x@127.0.0.1/db", "postgresql://REDACTED:REDACTED@127.0.0.1/db"),
        # A bare query key is a value in all but name.
        (f"https://h.example/search?{SECRET}", "https://h.example/search?REDACTED"),
        (
            f"https://h.example/a?x=1&{SECRET}&&y=",
            "https://h.example/a?x=REDACTED&REDACTED&y=REDACTED",
        ),
        # The fragment is dropped: OAuth's implicit flow puts tokens there.
        (f"https://h.example/cb#access_token={SECRET}", "https://h.example/cb"),
        (f"https://h.example/cb?a=1#{SECRET}", "https://h.example/cb?a=REDACTED"),
        # Matrix parameters of a path segment, named or bare.
        (
            f"https://h.example/cart;jsessionid={SECRET}/items;{SECRET}?page=2",
            "https://h.example/cart;jsessionid=REDACTED/items;REDACTED?page=REDACTED",
        ),
        ("http://[::1]:8080/p?q=1", "http://[::1]:8080/p?q=REDACTED"),
        (f"/relative/path?sig={SECRET}", "/relative/path?sig=REDACTED"),
    ],
)
def test_url_full_keeps_the_shape_and_loses_every_secret(url: str, expected: str) -> None:
    redacted = redact_url(url)
    assert redacted == expected
    assert SECRET not in redacted
    assert redact_url(redacted) == redacted


def test_a_url_with_nothing_to_hide_comes_back_as_the_same_object() -> None:
    url = "https://api.example.com:8443/v1/items/42"
    assert redact_url(url) is url


@pytest.mark.parametrize("url", ["", "://", "?", "#", "@", "http://[::1", "http://h:99999999/?"])
def test_odd_urls_never_raise(url: str) -> None:
    assert isinstance(redact_url(url), str)


# -- redact_text: free text ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # URLs and DSNs inside a message: as redact_url.
        (
            f"cannot connect to postgresql://orders:{SECRET}@db.internal:5432/orders now",
            "cannot connect to postgresql://REDACTED:REDACTED@db.internal:5432/orders now",
        ),
        (
            f"mysql://root:{SECRET}@127.0.0.1:3306/test refused",
            "mysql://REDACTED:REDACTED@127.0.0.1:3306/test refused",
        ),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://REDACTED:REDACTED@127.0.0.1:6379/0"),
        (
            f"jdbc:postgresql://u:{SECRET}@h/db",
            "jdbc:postgresql://REDACTED:REDACTED@h/db",
        ),
        (
            f"GET https://h.example/x?page=2&sig={SECRET}.",
            "GET https://h.example/x?page=REDACTED&sig=REDACTED.",
        ),
        (f"(see https://h.example/cb#token={SECRET})", "(see https://h.example/cb)"),
        (
            f"https://h.example/cart;jsessionid={SECRET}?{SECRET} failed",
            "https://h.example/cart;jsessionid=REDACTED?REDACTED failed",
        ),
        # urllib3 quotes the path and query alone.
        (
            f"Max retries exceeded with url: /v1/geo?key={SECRET}&q=x (Caused by X)",
            "Max retries exceeded with url: /v1/geo?key=REDACTED&q=REDACTED (Caused by X)",
        ),
        # user:password@host without a scheme.
        (
            f"connecting as orders:{SECRET}@db.internal:5432",
            "connecting as REDACTED:REDACTED@db.internal:5432",
        ),
        # Authorization schemes and header lines.
        (f"sent Bearer {SECRET} upstream", "sent Bearer REDACTED upstream"),
        ("auth: basic dXNlcjpwYXNzd29yZA==", "auth: basic REDACTED"),
        (f"Authorization: token {SECRET}", "Authorization: REDACTED"),
        (f"Proxy-Authorization: Basic {SECRET}", "Proxy-Authorization: REDACTED"),
        (f"Cookie: sid={SECRET}; theme=dark", "Cookie: REDACTED"),
        (f"X-Api-Key: {SECRET}", "X-Api-Key: REDACTED"),
        # key=value, conninfo and query style, any case, as a suffix too.
        (
            f"dsn: host=db password={SECRET} user=orders",
            "dsn: host=db password=REDACTED user=orders",
        ),
        (
            f"host=db sslpassword='{SECRET} with spaces' port=5432",
            "host=db sslpassword='REDACTED' port=5432",
        ),
        (f"PGPASSWORD={SECRET}", "PGPASSWORD=REDACTED"),
        (f"--db-password={SECRET} --verbose", "--db-password=REDACTED --verbose"),
        (f"token={SECRET}&page=2", "token=REDACTED&page=2"),
        (f"access_token = {SECRET}, expires=3600", "access_token = REDACTED, expires=3600"),
        (
            f"X-Amz-Signature={SECRET}&X-Amz-Date=20260101",
            "X-Amz-Signature=REDACTED&X-Amz-Date=20260101",
        ),
        (
            f"Server=db;Database=orders;Pwd={SECRET};Encrypt=true",
            "Server=db;Database=orders;Pwd=REDACTED;Encrypt=true",
        ),
        (f"client_secret={SECRET}", "client_secret=REDACTED"),
        (f"api_key={SECRET} apiKey={SECRET}", "api_key=REDACTED apiKey=REDACTED"),
        (f"otp={SECRET} jwt={SECRET}", "otp=REDACTED jwt=REDACTED"),
        (f"passphrase={SECRET}", "passphrase=REDACTED"),
        (f"authorization=Bearer {SECRET} next", "authorization=Bearer REDACTED next"),
        (f"db_pass={SECRET} pw={SECRET}", "db_pass=REDACTED pw=REDACTED"),
        (f"Config(password='{SECRET}', retries=3)", "Config(password='REDACTED', retries=3)"),
        # JSON-ish and Python reprs.
        (
            f'body {{"password": "{SECRET}", "user": "bob"}}',
            'body {"password": "REDACTED", "user": "bob"}',
        ),
        (
            f"{{'Authorization': 'Bearer {SECRET}', 'Accept': '*/*'}}",
            "{'Authorization': 'REDACTED', 'Accept': '*/*'}",
        ),
        (f"{{b'secret': b'{SECRET}'}}", "{b'secret': b'REDACTED'}"),
        (f'{{\\"api_key\\": \\"{SECRET}\\"}}', '{\\"api_key\\": \\"REDACTED\\"}'),
        (f'{{"pin": 1, "otp": {SECRET}}}', '{"pin": 1, "otp": REDACTED}'),
        # Non-ASCII text before the secret (``İ`` lengthens when lower-cased).
        (f"İstanbul: password={SECRET}", "İstanbul: password=REDACTED"),
    ],
)
def test_credentials_in_text_are_replaced_and_the_rest_kept(text: str, expected: str) -> None:
    redacted = redact_text(text)
    assert redacted == expected
    assert SECRET not in redacted
    assert redact_text(redacted) == redacted  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "order 4711 placed for customer 42 in region eu-west-1 after 3 attempts, all ok",
        "GET /v1/items returned 200 in 12.3ms: cache hit ratio=0.93 region=eu-west-1",
        "GET https://api.example.com/v1/items -> 200",
        "footprint=3 author=bob tokenizer count=5 signal=9 design=flat",
        "tokens used: 512, passed: 12, keyboard: de, session count=4",
        "Bearer token expired; basic auth is disabled",
        "KeyError: 'user_id' while reading session state",
        "bypass=1 compass=north monkey=banana",
        "email bob@example.com bounced",
        "is it on/off? see /docs",
        "password=REDACTED token=[REDACTED] url=https://REDACTED:REDACTED@h/x",
        "",
        "é",
    ],
)
def test_ordinary_text_comes_back_as_the_same_object(text: str) -> None:
    assert redact_text(text) is text
