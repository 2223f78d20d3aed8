"""python-socketio AsyncClient peer suite.

Runs every scenario in scenarios.py against peer servers that implement
tests/peers/CONTRACT.md and prints one line per scenario, then
`python: N passed, M failed`. Exit status 1 if anything failed.

Servers are started from PEER_SERVER_CMD (run with `sh -c` from the repository
root; default `node tests/peers/reference-server.mjs`) with the contract's env
variables. If PEER_URL is set it is used for the default-configuration server.

Usage: python tests/peers/python/run.py [-k SUBSTRING] [-v]
"""

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SERVER_CMD = os.environ.get("PEER_SERVER_CMD") or "node tests/peers/reference-server.mjs"
TEST_TIMEOUT = 20.0


class Server:
    """A peer server process (or the external PEER_URL)."""

    def __init__(self, env=None):
        self.env = dict(env or {})
        self.proc = None
        self.url = None

    async def start(self):
        if os.environ.get("PEER_URL") and not self.env:
            self.url = os.environ["PEER_URL"].rstrip("/")
            return self
        env = dict(os.environ)
        env["PORT"] = "0"
        env.update(self.env)
        self.proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "exec " + SERVER_CMD,
            cwd=REPO_ROOT, env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() reaches e.g. cargo's child
        )
        out = b""
        deadline = time.monotonic() + 120
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("server did not print 'listening on <port>': " + SERVER_CMD)
            line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            if not line:
                raise RuntimeError("server exited early: " + SERVER_CMD)
            out += line
            m = re.search(rb"listening on (\d+)", out)
            if m:
                self.url = "http://127.0.0.1:%d" % int(m.group(1))
                break
        # keep draining stdout so the server never blocks on a full pipe
        self._drain = asyncio.ensure_future(self._drain_stdout())
        return self

    async def _drain_stdout(self):
        while self.proc and await self.proc.stdout.read(65536):
            pass

    async def stop(self):
        if not self.proc or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(self.proc.wait(), 3)
        except asyncio.TimeoutError:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", default="", help="run only scenarios whose name contains this")
    parser.add_argument("-v", action="store_true", help="print tracebacks")
    args = parser.parse_args()

    sys.path.insert(0, HERE)
    import scenarios  # noqa: E402

    servers = {}

    async def server(kind="default"):
        if kind not in servers:
            env = {"default": {}, "msgpack": {"PARSER": "msgpack"}}[kind]
            servers[kind] = await Server(env).start()
        return servers[kind]

    passed = failed = 0
    started = time.monotonic()
    try:
        for name, fn in scenarios.SCENARIOS:
            if args.k not in name:
                continue
            t0 = time.monotonic()
            ctx = scenarios.Ctx(server)
            try:
                await asyncio.wait_for(fn(ctx), TEST_TIMEOUT)
            except Exception as e:  # noqa: BLE001 - report every failure
                failed += 1
                print("FAIL %s (%.2fs): %s: %s" % (name, time.monotonic() - t0, type(e).__name__, e), flush=True)
                if args.v:
                    traceback.print_exc()
            else:
                passed += 1
                print("ok   %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
            finally:
                await ctx.close()
    finally:
        for s in servers.values():
            await s.stop()
    print("python suite took %.1fs" % (time.monotonic() - started))
    print("python: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
