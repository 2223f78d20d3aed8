"""Scenarios for the python-socketio AsyncClient peer suite (see run.py)."""

import asyncio
import re

import aiohttp
import socketio

SCENARIOS = []


def scenario(name):
    def deco(fn):
        SCENARIOS.append((name, fn))
        return fn
    return deco


class Ctx:
    """Per-scenario context: servers and clients (closed after the scenario)."""

    def __init__(self, get_server):
        self._get_server = get_server
        self._clients = []

    async def url(self, kind="default"):
        return (await self._get_server(kind)).url

    def client(self, **kwargs):
        kwargs.setdefault("reconnection", False)
        c = socketio.AsyncClient(**kwargs)
        self._clients.append(c)
        return c

    async def connected(self, kind="default", transports=None, namespaces=None, auth=None, **kwargs):
        c = self.client(**kwargs)
        await c.connect(await self.url(kind), transports=transports, namespaces=namespaces or ["/"],
                        auth=auth, wait_timeout=5)
        return c

    async def close(self):
        for c in self._clients:
            try:
                await asyncio.wait_for(c.disconnect(), 3)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        self._clients = []


OFFSET = re.compile(r"^[\w.-]+$")


def strip_offset(args):
    """Stored event packets carry the recovery offset as an extra last string argument."""
    args = list(args)
    assert args, "expected an offset argument"
    assert isinstance(args[-1], str) and OFFSET.match(args[-1]), "no trailing offset in %r" % (args,)
    return args[:-1]


class Inbox:
    """Collects the args of every `event` received by a client."""

    def __init__(self, client, event, namespace="/"):
        self.items = []
        self._cond = asyncio.Condition()

        async def handler(*args):
            async with self._cond:
                self.items.append(list(args))
                self._cond.notify_all()

        client.on(event, handler, namespace=namespace)

    async def wait(self, n=1, timeout=5):
        async def enough():
            async with self._cond:
                await self._cond.wait_for(lambda: len(self.items) >= n)
        await asyncio.wait_for(enough(), timeout)
        return self.items


async def call(c, event, *args, namespace="/", timeout=5):
    return await c.call(event, args if len(args) != 1 else args[0], namespace=namespace, timeout=timeout) \
        if args else await c.call(event, namespace=namespace, timeout=timeout)


async def server_reason(c, sid, timeout=5):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await call(c, "last-reason", sid)
        if r is not None:
            return r
        assert asyncio.get_running_loop().time() < deadline, "server recorded no reason for %s" % sid
        await asyncio.sleep(0.02)


def disconnect_waiter(c, namespace="/"):
    fut = asyncio.get_running_loop().create_future()

    async def on_disconnect(*args):
        if not fut.done():
            fut.set_result(args)

    c.on("disconnect", on_disconnect, namespace=namespace)
    return fut


# ---------------------------------------------------------------- transports

@scenario("websocket only")
async def _(ctx):
    c = await ctx.connected(transports=["websocket"])
    assert c.transport() == "websocket"
    me = await call(c, "whoami")
    assert me == {"id": c.get_sid("/"), "recovered": False, "rooms": [c.get_sid("/")],
                  "transport": "websocket"}, me
    assert await call(c, "echo", "hi") == "hi"


@scenario("polling only")
async def _(ctx):
    c = await ctx.connected(transports=["polling"])
    assert c.transport() == "polling"
    me = await call(c, "whoami")
    assert me["transport"] == "polling", me
    # several calls in flight: their acks come back batched in one polling payload.
    # (python-engineio refuses payloads of more than 16 packets -- Payload.max_decode_packets --
    # and Node batches everything queued, so stay at or below 16 here.)
    results = await asyncio.gather(*(call(c, "echo", i) for i in range(16)))
    assert results == list(range(16)), results
    big = "x" * 100_000 + "é€😀"
    assert await call(c, "echo", big) == big
    assert c.transport() == "polling"


@scenario("polling then upgrade")
async def _(ctx):
    c = await ctx.connected(transports=["polling", "websocket"])
    for _ in range(300):
        if c.transport() == "websocket":
            break
        await asyncio.sleep(0.01)
    assert c.transport() == "websocket", c.transport()
    me = await call(c, "whoami")
    assert me["transport"] == "websocket", me
    assert await call(c, "echo", "after upgrade") == "after upgrade"


# ---------------------------------------------------------------- acks

for _transport in ("websocket", "polling"):
    @scenario("[%s] echo with ack, several arguments" % _transport)
    async def _(ctx, transport=_transport):
        c = await ctx.connected(transports=[transport])
        res = await c.call("echo", (1, "two", {"three": [3, 3.5, None, True]}, "ünï ✓"), timeout=5)
        assert list(res) == [1, "two", {"three": [3, 3.5, None, True]}, "ünï ✓"], res

    @scenario("[%s] echo without ack comes back as an event (with offset)" % _transport)
    async def _(ctx, transport=_transport):
        c = await ctx.connected(transports=[transport])
        inbox = Inbox(c, "echo")
        await c.emit("echo", ("a", {"b": 1}))
        items = await inbox.wait(1)
        assert strip_offset(items[0]) == ["a", {"b": 1}], items

    @scenario("[%s] server -> client ack (ask-me)" % _transport)
    async def _(ctx, transport=_transport):
        c = await ctx.connected(transports=[transport])

        @c.on("question")
        async def question(*args):
            return ("answer",) + args

        res = await call(c, "ask-me", 2000, "q", {"n": 1})
        assert res == {"response": ["answer", "q", {"n": 1}]}, res


@scenario("server-side ack timeout (slow handler)")
async def _(ctx):
    c = await ctx.connected(transports=["websocket"])

    @c.on("question")
    async def question(*args):
        await asyncio.sleep(0.5)
        return "too late"

    res = await call(c, "ask-me", 150)
    assert res == {"error": "operation has timed out"}, res


@scenario("python-socketio acks a question even without a handler")
async def _(ctx):
    # python-socketio always answers an event that requests an ack: with no handler, the
    # ack has no arguments (so this client can never make the server time out by silence)
    c = await ctx.connected(transports=["websocket"])
    res = await call(c, "ask-me", 1000, "q")
    assert res == {"response": []}, res


@scenario("client-side ack timeout")
async def _(ctx):
    c = await ctx.connected()
    try:
        await c.call("no-such-event", 1, timeout=0.2)
    except socketio.exceptions.TimeoutError:
        pass
    else:
        raise AssertionError("expected a timeout")
    assert await call(c, "echo", "still here") == "still here"


# ---------------------------------------------------------------- binary

BIN_CASES = [
    ("bytes", (b"\x01\x02\x03",)),
    ("empty bytes", (b"",)),
    ("several", (b"\x00", b"\xff\xfe", "mid", bytes(range(256)))),
    ("nested", ({"a": b"\xde\xad", "b": [b"\xbe\xef", {"c": b"", "d": [[b"\x01"]]}, "t"], "n": None},
                [b"\x09", b"\x08"])),
    ("large", (bytes(i * 7919 % 256 for i in range(100_000)),)),
]

for _kind in ("default", "msgpack"):
    for _transport in ("websocket", "polling"):
        for _name, _args in BIN_CASES:
            @scenario("[%s/%s] binary echo: %s" % (_kind, _transport, _name))
            async def _(ctx, kind=_kind, transport=_transport, args=_args):
                c = await ctx.connected(kind, transports=[transport],
                                        serializer="msgpack" if kind == "msgpack" else "default")
                res = await c.call("echo", args if len(args) != 1 else args[0], timeout=5)
                expected = args[0] if len(args) == 1 else list(args)
                if isinstance(res, tuple):
                    res = list(res)
                assert res == expected, (res if len(repr(res)) < 300 else repr(res)[:300])

        @scenario("[%s/%s] binary event and binary ack to a question" % (_kind, _transport))
        async def _(ctx, kind=_kind, transport=_transport):
            c = await ctx.connected(kind, transports=[transport],
                                    serializer="msgpack" if kind == "msgpack" else "default")
            inbox = Inbox(c, "echo")
            await c.emit("echo", ({"x": b"\x01\x02"}, b""))
            items = await inbox.wait(1)
            assert strip_offset(items[0]) == [{"x": b"\x01\x02"}, b""], items
            seen = []

            @c.on("question")
            async def question(*args):
                seen.append(list(args))
                return {"back": b"\x04\x05"}, b""

            res = await call(c, "ask-me", 2000, b"\x07", {"y": [b"\x08"]})
            assert seen == [[b"\x07", {"y": [b"\x08"]}]], seen
            assert res == {"response": [{"back": b"\x04\x05"}, b""]}, res


# ---------------------------------------------------------------- rooms

@scenario("rooms: join, to-room excludes the sender, leave")
async def _(ctx):
    a = await ctx.connected(transports=["websocket"])
    b = await ctx.connected(transports=["polling"])
    c = await ctx.connected(transports=["websocket"])
    room = "py-room"
    assert await call(a, "join", room) == sorted([a.get_sid("/"), room])
    assert await call(b, "join", room) == sorted([b.get_sid("/"), room])
    inboxes = [Inbox(x, "room") for x in (a, b, c)]
    await a.emit("to-room", (room, "hi", {"n": 1}))
    await inboxes[1].wait(1)
    # round trips: anything sent to a and c before now has arrived
    await asyncio.gather(call(a, "echo", 0), call(c, "echo", 0), call(b, "echo", 0))
    assert inboxes[0].items == [], inboxes[0].items
    assert [strip_offset(x) for x in inboxes[1].items] == [["hi", {"n": 1}]], inboxes[1].items
    assert inboxes[2].items == [], inboxes[2].items
    assert await call(b, "leave", room) == [b.get_sid("/")]
    assert sorted(await call(c, "fetch", room)) == [a.get_sid("/")]


@scenario("rooms: ask-room collects the acks of the members")
async def _(ctx):
    room = "py-ask"
    members = [await ctx.connected(transports=["websocket"]) for _ in range(3)]
    for i, m in enumerate(members):
        await call(m, "join", room)

        async def question(*args, i=i):
            return "m%d" % i
        m.on("question", question)
    asker = await ctx.connected()
    res = await call(asker, "ask-room", room, 2000)
    assert res["error"] is None, res
    assert sorted(res["responses"]) == ["m0", "m1", "m2"], res


# ---------------------------------------------------------------- namespaces

@scenario("/admin with the right token")
async def _(ctx):
    c = await ctx.connected(namespaces=["/admin"], auth={"token": "secret"})
    me = await call(c, "whoami", namespace="/admin")
    assert me["auth"] == {"token": "secret"}, me
    assert me["id"] == c.get_sid("/admin")
    assert await call(c, "echo", "adm", namespace="/admin") == "adm"


@scenario("/admin with a bad token is refused with message and data")
async def _(ctx):
    c = ctx.client()
    errors = []

    @c.on("connect_error", namespace="/admin")
    async def connect_error(*data):
        errors.append(data)

    try:
        await c.connect(await ctx.url(), namespaces=["/admin"], auth={"token": "nope"}, wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        raise AssertionError("connected with a bad token")
    assert errors == [({"message": "not authorized", "data": {"reason": "bad token"}},)], errors


@scenario("unknown namespace is refused with Invalid namespace")
async def _(ctx):
    c = ctx.client()
    errors = []

    @c.on("connect_error", namespace="/nope")
    async def connect_error(*data):
        errors.append(data)

    try:
        await c.connect(await ctx.url(), namespaces=["/nope"], wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        raise AssertionError("connected to an unknown namespace")
    assert errors == [({"message": "Invalid namespace"},)], errors


@scenario("several namespaces on one connection, dynamic namespace")
async def _(ctx):
    c = await ctx.connected(namespaces=["/", "/admin", "/dyn-py1"], auth={"token": "secret"})
    sids = {n: c.get_sid(n) for n in ("/", "/admin", "/dyn-py1")}
    assert len(set(sids.values())) == 3, sids
    assert await call(c, "name", namespace="/dyn-py1") == "/dyn-py1"
    assert (await call(c, "whoami", namespace="/admin"))["id"] == sids["/admin"]
    assert await call(c, "echo", "root") == "root"


# ---------------------------------------------------------------- disconnects

@scenario("disconnect by the server (disconnect-me)")
async def _(ctx):
    probe = await ctx.connected()
    c = await ctx.connected(transports=["websocket"])
    sid = c.get_sid("/")
    fut = disconnect_waiter(c)
    await c.emit("disconnect-me", False)
    reason = await asyncio.wait_for(fut, 5)
    # python-socketio names its reasons after python-engineio's: "server disconnect" is
    # what socket.io-client calls "io server disconnect"
    assert reason == (c.reason.SERVER_DISCONNECT,) == ("server disconnect",), reason
    assert await server_reason(probe, sid) == "server namespace disconnect"


@scenario("disconnect by the client")
async def _(ctx):
    probe = await ctx.connected()
    c = await ctx.connected(transports=["polling"])
    sid = c.get_sid("/")
    fut = disconnect_waiter(c)
    await c.disconnect()
    reason = await asyncio.wait_for(fut, 5)
    assert reason == (c.reason.CLIENT_DISCONNECT,) == ("client disconnect",), reason
    # python-socketio sends DISCONNECT and the Engine.IO CLOSE back to back (one polling
    # payload "41\x1e1", or two frames read together on a WebSocket). Node's socket.io
    # handles namespace packets on the next tick, so the CLOSE usually wins there and Node
    # records "transport close"; a server that handles the DISCONNECT first records
    # "client namespace disconnect". Both are a clean client-side close.
    r = await server_reason(probe, sid)
    assert r in ("transport close", "client namespace disconnect"), r


@scenario("drop-transport: transport close, server forced close, automatic reconnection")
async def _(ctx):
    probe = await ctx.connected()
    c = ctx.client(reconnection=True, reconnection_delay=0.1, randomization_factor=0)
    connects = asyncio.Queue()

    @c.event
    async def connect():
        await connects.put(c.get_sid("/"))

    await c.connect(await ctx.url(), transports=["websocket"], wait_timeout=5)
    first = await asyncio.wait_for(connects.get(), 5)
    # get an offset, as a recovery-capable client would
    inbox = Inbox(c, "echo")
    await c.emit("echo", "x")
    await inbox.wait(1)
    fut = disconnect_waiter(c)
    await c.emit("drop-transport")
    reason = await asyncio.wait_for(fut, 5)
    # python-engineio reports any lost connection as "transport error"
    assert reason == (c.reason.TRANSPORT_ERROR,) == ("transport error",), reason
    assert await server_reason(probe, first) == "forced close"
    second = await asyncio.wait_for(connects.get(), 5)
    # python-socketio does not implement connection state recovery: it never sends the
    # pid/offset, so the server hands out a fresh session
    assert second != first
    me = await call(c, "whoami")
    assert me["recovered"] is False and me["id"] == second, me


# ---------------------------------------------------------------- msgpack

@scenario("[msgpack] echo, acks, rooms")
async def _(ctx):
    a = await ctx.connected("msgpack", transports=["websocket"], serializer="msgpack")
    b = await ctx.connected("msgpack", transports=["polling"], serializer="msgpack")
    res = await a.call("echo", (1, -2.5, "s", None, True, {"a": [1, {"b": "c"}]}, [], {}, 2 ** 40), timeout=5)
    assert list(res) == [1, -2.5, "s", None, True, {"a": [1, {"b": "c"}]}, [], {}, 2 ** 40], res

    @b.on("question")
    async def question(*args):
        return ("answer",) + args

    assert await call(b, "ask-me", 2000, "q") == {"response": ["answer", "q"]}
    await call(b, "join", "mp")
    inbox = Inbox(b, "room")
    await a.emit("to-room", ("mp", {"x": b"\x01"}))
    items = await inbox.wait(1)
    assert strip_offset(items[0]) == [{"x": b"\x01"}], items


@scenario("[msgpack] /admin refused: error data survives msgpack")
async def _(ctx):
    c = ctx.client(serializer="msgpack")
    errors = []

    @c.on("connect_error", namespace="/admin")
    async def connect_error(*data):
        errors.append(data)

    try:
        await c.connect(await ctx.url("msgpack"), namespaces=["/admin"], auth={"token": "no"}, wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        raise AssertionError("connected with a bad token")
    assert errors == [({"message": "not authorized", "data": {"reason": "bad token"}},)], errors


# ---------------------------------------------------------------- raw Engine.IO

@scenario("raw HTTP: Engine.IO error answers")
async def _(ctx):
    base = await ctx.url() + "/socket.io/"
    async with aiohttp.ClientSession() as http:
        for query, method, code, message in [
            ("EIO=4&transport=foo", "GET", 0, "Transport unknown"),
            ("EIO=4&transport=polling&sid=nope", "GET", 1, "Session ID unknown"),
            ("EIO=4&transport=polling", "POST", 2, "Bad handshake method"),
            ("EIO=3&transport=polling", "GET", 5, "Unsupported protocol version"),
        ]:
            async with http.request(method, base + "?" + query, data=b"40" if method == "POST" else None) as r:
                body = await r.text()
                assert r.status == 400, (query, r.status)
                assert r.headers.get("Content-Type") == "application/json", r.headers
                assert body == '{"code":%d,"message":"%s"}' % (code, message), body
