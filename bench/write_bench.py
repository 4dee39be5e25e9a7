#!/usr/bin/env python3
"""The write path of a node: session records per second through one browserd node into
PostgreSQL, and how far behind another node's catalog is at that rate.

    bench/write_bench.py [--browserd PATH] [--sessions N] [--rate R] [--seconds S]

A private PostgreSQL server (tests/pg/pgserver.py) and two nodes on it; node A runs N sessions
whose browser is bench/fake_navigator.py (a fake Chromium: every Bench.navigate of the client
becomes a main-frame commit, so a navigation browserd records and saves). The client sends R
navigations per second in all for S seconds. Measured: records written per second (the store's
change sequence before and after, read on the database), and the lag of node B: a navigation
with a unique URL is sent every 200 ms and node B's API is polled until its record shows it.
The same load is then run on an SQLite file (one node) for comparison, in the same run.
Goals: >= 2,000 records/s into PostgreSQL; node B's lag <= 1 s. Loopback only.
"""
import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'pg'))
from pgserver import PgServer  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Node:
    def __init__(self, binary, db, name, tmp, creds=None):
        self.api, self.cdp = free_port(), free_port()
        self.log = open(os.path.join(tmp, name + '.log'), 'w')
        env = {k: v for k, v in os.environ.items() if not k.startswith('BROWSERD_')}
        env['TMPDIR'] = tmp
        env['BROWSERD_DRAIN_TIMEOUT'] = '0'  # the stop below ends what still runs at once
        self.proc = subprocess.Popen(
            [binary, '--db', db, 'serve', '--node-id', name, '--api-listen', '127.0.0.1:%d' % self.api,
             '--cdp-listen', '127.0.0.1:%d' % self.cdp, '--pool', '0', '--max-sessions', '1000',
             '--chromium', os.path.join(ROOT, 'bench', 'fake_navigator.py'), '--spool', os.path.join(tmp, name + '.spool')],
            stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen('http://127.0.0.1:%d/healthz' % self.api, timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError('%s did not start (see %s)' % (name, self.log.name))
                time.sleep(0.1)
        self.creds = creds
        if creds is None:
            kv = {}
            while len(kv) < 4:
                line = self.proc.stdout.readline()
                if '=' in line:
                    k, v = line.strip().split('=', 1)
                    kv[k] = v
            self.creds = kv

    def get(self, path):
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (self.api, path),
                                     headers={'Authorization': 'Bearer ' + self.creds['api_key']})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class Client:
    """A minimal WebSocket client (text frames, masked), enough for CDP."""

    async def open(self, node):
        self.reader, self.writer = await asyncio.open_connection('127.0.0.1', node.cdp)
        c = node.creds
        auth = base64.b64encode(('brd-customer-%s-zone-%s:%s' % (c['customer_id'], c['zone'], c['zone_password'])).encode()).decode()
        self.writer.write(('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                           'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
                           'Authorization: Basic %s\r\n\r\n' % auth).encode())
        head = await self.reader.readuntil(b'\r\n\r\n')
        if not head.startswith(b'HTTP/1.1 101'):
            raise RuntimeError('upgrade refused: %r' % head[:80])
        self.next_id = 0
        self.waiting = {}
        self.task = asyncio.ensure_future(self.read_loop())
        return self

    def send(self, method, params=None):
        self.next_id += 1
        data = json.dumps({'id': self.next_id, 'method': method, 'params': params or {}}).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack('>H', n))
        self.writer.write(head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(data)))
        return self.next_id

    async def call(self, method, params=None):
        i = self.send(method, params)
        fut = asyncio.get_event_loop().create_future()
        self.waiting[i] = fut
        return await fut

    async def read_loop(self):
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7f
                if n == 126:
                    n = struct.unpack('>H', await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack('>Q', await self.reader.readexactly(8))[0]
                payload = await self.reader.readexactly(n)
                if b0 & 0x0f == 1:
                    m = json.loads(payload)
                    fut = self.waiting.pop(m.get('id'), None)
                    if fut and not fut.done():
                        fut.set_result(m)
                elif b0 & 0x0f == 8:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    async def close(self):
        self.writer.write(bytes([0x88, 0x82]) + b'\0\0\0\0' + b'\x03\xe8')
        await self.writer.drain()
        self.writer.close()
        self.task.cancel()


async def load(a, b, seq_of, sessions, rate, seconds):
    clients = [await Client().open(a) for _ in range(sessions)]
    ids = []
    for c in clients:
        r = await c.call('Browser.getSessionId')
        ids.append(r['result']['sessionId'])
    await asyncio.sleep(1)  # every session's first record written
    seq0, t0 = seq_of(), time.time()
    lags = []
    stop = t0 + seconds
    sent = 0

    async def probe():
        k = 0
        while time.time() < stop - 1:
            k += 1
            i = k % len(clients)
            url = 'https://probe.example/%d' % k
            clients[i].send('Bench.navigate', {'url': url})
            t = time.time()
            while time.time() - t < 5:
                rec = await asyncio.get_event_loop().run_in_executor(None, b.get, '/browser_sessions/' + ids[i])
                if rec['session']['end_url'] == url:
                    lags.append(time.time() - t)
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)

    probe_task = asyncio.ensure_future(probe()) if b else None
    interval = 0.01
    per_tick = rate * interval
    acc = 0.0
    k = 0
    while time.time() < stop:
        acc += per_tick
        while acc >= 1:
            acc -= 1
            k += 1
            clients[k % len(clients)].send('Bench.navigate', {'url': 'https://site.example/%d' % k})
            sent += 1
        await asyncio.sleep(interval)
    elapsed = time.time() - t0
    seq1 = seq_of()
    if probe_task:
        await probe_task
    for c in clients:
        await c.close()
    return sent / elapsed, (seq1 - seq0) / elapsed, lags


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--browserd', default=os.path.join(ROOT, 'build-release', 'browserd'))
    ap.add_argument('--sessions', type=int, default=50)
    ap.add_argument('--rate', type=int, default=3000, help='navigations per second, all sessions together')
    ap.add_argument('--seconds', type=int, default=15)
    ap.add_argument('--stores', default='postgres,sqlite', help='which stores to run, in this order')
    o = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='write-bench-')
    results = {}
    srv = PgServer.start() if 'postgres' in o.stores else None
    nodes = []
    try:
        if srv:
            uri = srv.create_database()
            a = Node(o.browserd, uri, 'node-a', tmp)
            nodes.append(a)
            b = Node(o.browserd, uri, 'node-b', tmp, creds=a.creds)
            nodes.append(b)
            seq = lambda: int(srv.psql("SELECT value FROM meta WHERE name = 'change_seq'", db=uri.rsplit('/', 1)[1]))
            results['PostgreSQL'] = asyncio.get_event_loop().run_until_complete(
                load(a, b, seq, o.sessions, o.rate, o.seconds))
            for n in nodes:
                n.stop()
            nodes = []
        if 'sqlite' in o.stores:
            db = os.path.join(tmp, 'w.db')
            single = Node(o.browserd, db, 'single', tmp)
            nodes.append(single)

            def seq_sql():
                con = sqlite3.connect(db, timeout=10)
                try:
                    return con.execute("SELECT value FROM meta WHERE name = 'change_seq'").fetchone()[0]
                finally:
                    con.close()
            results['SQLite'] = asyncio.get_event_loop().run_until_complete(
                load(single, None, seq_sql, o.sessions, o.rate, o.seconds))
    finally:
        for n in nodes:
            n.stop()
        if srv:
            srv.stop()
    print('write path: %d sessions on one node, %d navigations/s offered for %d s (fake browsers)' % (o.sessions, o.rate, o.seconds))
    print('%-12s %14s %16s %s' % ('store', 'navigations/s', 'records/s', 'other node\'s lag (p50 / max)'))
    for store, (nav, rec, lags) in results.items():
        lag = '%.0f / %.0f ms (%d probes)' % (statistics.median(lags) * 1000, max(lags) * 1000, len(lags)) if lags else '-'
        print('%-12s %14.0f %16.0f %s' % (store, nav, rec, lag))
    nav, rec, lags = results.get('PostgreSQL', (0, 0, []))
    print('goal: >= 2000 records/s into PostgreSQL through one node: %s (%.0f)' % ('met' if rec >= 2000 else 'NOT MET', rec))
    if lags:
        print('goal: another node\'s catalog <= 1 s behind at that rate: %s (max %.0f ms)' %
              ('met' if max(lags) <= 1.0 else 'NOT MET', max(lags) * 1000))
    print('(logs in %s)' % tmp)


if __name__ == '__main__':
    main()
