#!/usr/bin/env python3
"""A tiny HTTP/1.1 keep-alive server to test bench/load without browserd.

    bench/fake_server.py PORT [--drop-after N]

Listens on 127.0.0.1:PORT. Answers by path:
  /ok?total=T      200, Content-Length, {"sessions":[],"count":0,"total":T,...}
  /chunked         200, Transfer-Encoding: chunked, the body split inside "total"
  /close           200 with Connection: close (the server closes after it)
  /status/NNN      status NNN with a JSON body
  /nototal         200 without a "total" field
  /slow?ms=M       like /ok after M milliseconds
  /varying         200 with a total that changes on every request
  /healthz         200 {"status":"ok"}
--drop-after N: silently close each connection after N responses (an idle keep-alive close
that races the client's next request; load must reissue that request, not fail it).
Prints the number of requests and of connections to stderr on SIGTERM.
"""
import asyncio
import signal
import sys
import urllib.parse

requests = 0
connections = 0
varying = 0


def response(status, body, extra=""):
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "X")
    b = body.encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n{extra}\r\n").encode() + b


async def handle(reader, writer, drop_after):
    global requests, connections, varying
    connections += 1
    served = 0
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            requests += 1
            line = head.split(b"\r\n", 1)[0].decode()
            method, target, _ = line.split(" ", 2)
            u = urllib.parse.urlsplit(target)
            q = dict(urllib.parse.parse_qsl(u.query))
            close = False
            if u.path == "/ok":
                out = response(200, '{"sessions":[],"count":0,"total":%s,"pagination":{}}' % q.get("total", "42"))
            elif u.path == "/healthz":
                out = response(200, '{"status":"ok"}')
            elif u.path == "/chunked":
                parts = [b'{"sessions":[],"count":0,"to', b'tal":7,"pagination":{}}']
                out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                for p in parts:
                    out += b"%x\r\n%s\r\n" % (len(p), p)
                out += b"0\r\n\r\n"
            elif u.path == "/close":
                out = response(200, '{"total":1}', "Connection: close\r\n")
                close = True
            elif u.path.startswith("/status/"):
                out = response(int(u.path[8:]), '{"error":"x"}')
            elif u.path == "/nototal":
                out = response(200, '{"sessions":[]}')
            elif u.path == "/slow":
                await asyncio.sleep(int(q.get("ms", "10")) / 1000)
                out = response(200, '{"total":5}')
            elif u.path == "/varying":
                varying += 1
                out = response(200, '{"total":%d}' % varying)
            else:
                out = response(404, '{"error":"Not found"}')
            writer.write(out)
            await writer.drain()
            served += 1
            if close or (drop_after and served >= drop_after):
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    drop_after = int(sys.argv[sys.argv.index("--drop-after") + 1]) if "--drop-after" in sys.argv else 0
    server = await asyncio.start_server(lambda r, w: handle(r, w, drop_after), "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    print(f"requests={requests} connections={connections}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
