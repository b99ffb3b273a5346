"""What a Redis command is called in telemetry, and whether it may run twice.

A command is described as the server receives it. redis-py splits a command name at
whitespace before sending it: its own methods send ``"CONFIG SET"`` or ``"ACL SETUSER"`` as
one string, and a program may send a whole command as one (``execute_command("AUTH user
secret")``). So the first word is the command, a known subcommand of a container command
(``CONFIG SET``, ``CLIENT SETNAME``, ``OBJECT ENCODING``) joins it, and every other word is
an argument: a ``?``. Only names from the tables below, never an argument, can reach a span,
a metric or a log; the arguments of ``AUTH`` and ``HELLO`` (credentials) are not even
counted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from otel_resilience.instrumentation import Statement

__all__ = ["READ_ONLY_COMMANDS", "command_statement", "pipeline_statement"]

READ_ONLY_COMMANDS: frozenset[str] = frozenset(
    {
        # keys and server
        "DBSIZE", "DUMP", "ECHO", "EXISTS", "EXPIRETIME", "INFO", "KEYS", "LASTSAVE",
        "MEMORY USAGE", "OBJECT ENCODING", "OBJECT FREQ", "OBJECT IDLETIME",
        "OBJECT REFCOUNT", "PEXPIRETIME", "PING", "PTTL", "RANDOMKEY", "SCAN", "TIME",
        "TTL", "TYPE",
        # strings and bits
        "BITCOUNT", "BITFIELD_RO", "BITPOS", "GET", "GETBIT", "GETRANGE", "LCS", "MGET",
        "STRLEN", "SUBSTR",
        # hashes
        "HEXISTS", "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "HRANDFIELD", "HSCAN",
        "HSTRLEN", "HVALS",
        # lists
        "LINDEX", "LLEN", "LPOS", "LRANGE",
        # sets
        "SCARD", "SDIFF", "SINTER", "SINTERCARD", "SISMEMBER", "SMEMBERS", "SMISMEMBER",
        "SRANDMEMBER", "SSCAN", "SUNION",
        # sorted sets
        "ZCARD", "ZCOUNT", "ZDIFF", "ZINTER", "ZINTERCARD", "ZLEXCOUNT", "ZMSCORE",
        "ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE",
        "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION",
        # geo, streams, scripts
        "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO",
        "GEOSEARCH", "XLEN", "XPENDING", "XRANGE", "XREVRANGE",
        "EVALSHA_RO", "EVAL_RO", "FCALL_RO", "SORT_RO",
    }
)  # fmt: skip
"""Commands that change nothing, so running one twice is safe: the ones retried."""

_SUBCOMMANDS: dict[str, frozenset[str]] = {
    container: frozenset(names.split())
    for container, names in {
        "ACL": "CAT DELUSER DRYRUN GENPASS GETUSER HELP LIST LOAD LOG SAVE SETUSER USERS WHOAMI",
        "CLIENT": "CACHING GETNAME GETREDIR HELP ID INFO KILL LIST NO-EVICT NO-TOUCH PAUSE "
        "REPLY SETINFO SETNAME TRACKING TRACKINGINFO UNBLOCK UNPAUSE",
        "CLUSTER": "ADDSLOTS ADDSLOTSRANGE BUMPEPOCH COUNT-FAILURE-REPORTS COUNTKEYSINSLOT "
        "DELSLOTS DELSLOTSRANGE FAILOVER FLUSHSLOTS FORGET GETKEYSINSLOT HELP INFO KEYSLOT "
        "LINKS MEET MYID MYSHARDID NODES REPLICAS REPLICATE RESET SAVECONFIG "
        "SET-CONFIG-EPOCH SETSLOT SHARDS SLAVES SLOT-STATS SLOTS",
        "COMMAND": "COUNT DOCS GETKEYS GETKEYSANDFLAGS HELP INFO LIST",
        "CONFIG": "GET HELP RESETSTAT REWRITE SET",
        "FUNCTION": "DELETE DUMP FLUSH HELP KILL LIST LOAD RESTORE STATS",
        "LATENCY": "DOCTOR GRAPH HELP HISTOGRAM HISTORY LATEST RESET",
        "MEMORY": "DOCTOR HELP MALLOC-STATS PURGE STATS USAGE",
        "MODULE": "HELP LIST LOAD LOADEX UNLOAD",
        "OBJECT": "ENCODING FREQ HELP IDLETIME REFCOUNT",
        "PUBSUB": "CHANNELS HELP NUMPAT NUMSUB SHARDCHANNELS SHARDNUMSUB",
        "SCRIPT": "DEBUG EXISTS FLUSH HELP KILL LOAD",
        "SLOWLOG": "GET HELP LEN RESET",
        "XGROUP": "CREATE CREATECONSUMER DELCONSUMER DESTROY HELP SETID",
        "XINFO": "CONSUMERS GROUPS HELP STREAM",
    }.items()
}
"""The container commands of Redis 7.0 to 8.2 and their subcommands (``COMMAND LIST``).

A word after a container that is not listed here is counted as an argument: whatever a
program puts there is not recorded.
"""

_CREDENTIAL_COMMANDS = frozenset({"AUTH", "HELLO"})
"""Commands whose arguments are credentials: their query text is the bare name.

Not even the number of arguments is shown (it tells whether a user name was given).
Commands that carry a password among other arguments (``ACL SETUSER``, ``CONFIG SET
requirepass``, ``MIGRATE ... AUTH``) are safe as every command is: an argument is a ``?``.
"""

_MAX_ARGUMENTS_SHOWN = 32
_MAX_COMMANDS_SHOWN = 32


@functools.lru_cache(maxsize=1024)
def _command(name: str, arguments: int) -> Statement:
    if name in _CREDENTIAL_COMMANDS:
        arguments = 0
    shown = min(arguments, _MAX_ARGUMENTS_SHOWN)
    text = name + " ?" * shown + (" ..." if arguments > shown else "")
    return Statement(
        operation=name, collection=None, text=text, read_only=name in READ_ONLY_COMMANDS
    )


def _text(argument: Any) -> str | None:
    """A command word as text; ``None`` for what cannot be one (a number, a ``None``)."""
    if isinstance(argument, str):
        return argument
    if isinstance(argument, bytes | bytearray | memoryview):
        return bytes(argument).decode("utf-8", "replace")
    return None


def command_statement(args: tuple[Any, ...]) -> Statement:
    """``GET ?``: the command as the server receives it, one ``?`` per argument.

    Statements are shared by the calls of a command with as many arguments.
    """
    name = args[0]
    # Split at whitespace as redis-py does before sending (a str name always, bytes with a
    # space), and at any whitespace anyway: a word we would not split must not be shown.
    text = name if isinstance(name, str) else _text(name)
    words = (str(name) if text is None else text).split()
    command = words[0].upper() if words else ""
    arguments = max(len(words) + len(args) - 2, 0)
    subcommands = _SUBCOMMANDS.get(command)
    if subcommands is not None and arguments > 0:
        following = _text(words[1] if len(words) > 1 else args[1])
        if following is not None and (subcommand := following.upper()) in subcommands:
            command = f"{command} {subcommand}"
            arguments -= 1
    # Arguments beyond those shown are not counted, so that MSET of any size is one entry.
    return _command(command, min(arguments, _MAX_ARGUMENTS_SHOWN + 1))


@functools.lru_cache(maxsize=256)
def _batch(commands: tuple[Statement, ...], transaction: bool) -> Statement:
    lines = [command.text for command in commands[:_MAX_COMMANDS_SHOWN]]
    if len(commands) > _MAX_COMMANDS_SHOWN:
        lines.append(f"... ({len(commands) - _MAX_COMMANDS_SHOWN} more)")
    return Statement(
        operation="MULTI" if transaction else "PIPELINE",
        collection=None,
        text="\n".join(lines),
        read_only=all(command.read_only for command in commands),
    )


def pipeline_statement(pipeline: Any) -> Statement:
    """One statement for a pipeline's queued commands: ``MULTI`` or ``PIPELINE``."""
    # asyncio's flag is is_transaction: there, "transaction" is the method of Redis.
    transaction = getattr(pipeline, "is_transaction", None)
    if transaction is None:
        transaction = pipeline.transaction
    transaction = bool(transaction or pipeline.explicit_transaction)
    stack: Iterable[Any] = pipeline.command_stack
    commands = tuple(
        command_statement(entry.args if hasattr(entry, "args") else entry[0]) for entry in stack
    )
    return _batch(commands, transaction)
