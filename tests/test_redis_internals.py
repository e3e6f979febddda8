"""The private internals of redis-py (and asyncio) that store/redis_internals.py reaches:
each one still there, with the shape the auto-pipeline uses. A redis-py upgrade that moves
one fails here, by name, instead of as a slower or broken loader check."""

import asyncio

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from service.embedded import EmbeddedValkey
from store import redis_internals


async def test_a_connections_streams_and_parser(valkey_server: EmbeddedValkey) -> None:
    assert redis_internals.stream_writer(Connection()) is None, "not connected yet"
    assert redis_internals.stream_writer(None) is None
    client = Redis.from_url(valkey_server.url)
    conn = await client.connection_pool.get_connection()
    try:
        reader = redis_internals.stream_reader(conn)
        writer = redis_internals.stream_writer(conn)
        assert isinstance(reader, asyncio.StreamReader), type(reader)
        assert isinstance(writer, asyncio.StreamWriter), type(writer)
        assert isinstance(reader._buffer, bytearray)  # type: ignore[attr-defined]
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        assert isinstance(transport.get_protocol(), asyncio.StreamReaderProtocol)

        # Bytes that arrived and were not read yet are in the buffer.
        assert not redis_internals.buffered(reader)
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        for _ in range(500):  # does not hang: up to 5 s for one reply on a local socket
            if redis_internals.buffered(reader):
                break
            await asyncio.sleep(0.01)
        assert redis_internals.buffered(reader)
        assert await conn.read_response() == b"PONG"
        assert not redis_internals.buffered(reader)

        # The connection's own error mapping: EVALSHA's fallback to EVAL needs NoScriptError.
        parse_error = redis_internals.error_parser(conn)
        assert isinstance(parse_error("NOSCRIPT No matching script."), NoScriptError)
        error = parse_error("WRONGTYPE Operation against a key")
        assert type(error) is ResponseError and "Operation against a key" in str(error)
    finally:
        await client.connection_pool.release(conn)
        await client.aclose()


def test_info_text_is_parsed_as_redis_py_does() -> None:
    text = (
        "# Persistence\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n"
        "rdb_last_bgsave_status:ok\r\n"
    )
    assert redis_internals.parse_info(text) == {
        "aof_enabled": 1,
        "aof_rewrite_in_progress": 0,
        "rdb_last_bgsave_status": "ok",
    }
