"""Test harness for the browserd API suite (Python 3 standard library only).

- Browserd: a daemon on a temporary database and a free loopback port, with helpers for the
  command line (customers, keys, zones, imports). Always stopped with SIGTERM, its exit code
  checked (0), its temporary directory removed.
- HTTPConn: a raw HTTP/1.1 client over one persistent socket. It can send arbitrary bytes
  (pipelining, malformed requests, oversized headers) and parses responses itself.
- Client: a convenience wrapper (one persistent connection, reconnecting only when the server
  closed it between requests) used by most tests.

The binary: $BROWSERD_BIN, default build/browserd, relative paths resolved against the repo root.

The store: SQLite (a file in the daemon's temporary directory) unless BROWSERD_TEST_STORE is
"postgres": then every Browserd gets a fresh database of a PostgreSQL server, the one that
BROWSERD_TEST_PG_ADMIN_URI names (scripts/test.sh starts one per run) or else one this
harness starts once for the run (tests/pg/pgserver.py). Browserd.db is then that database's
URI, which `serve` and every command line helper get as --db.
"""

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STORE = os.environ.get('BROWSERD_TEST_STORE', 'sqlite')

HEX64 = re.compile(r'\b[0-9a-f]{64}\b')


def browserd_bin():
    p = os.environ.get('BROWSERD_BIN', 'build/browserd')
    if not os.path.isabs(p):
        p = os.path.join(REPO_ROOT, p)
    return p


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


class HarnessError(AssertionError):
    pass


# --------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body        # bytes

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self):
        return self.body.decode('utf-8')

    def json(self):
        return json.loads(self.text)

    def json_pairs(self):
        """Parsed with key order kept: every object becomes a list of (key, value) pairs."""
        return json.loads(self.text, object_pairs_hook=list)

    def __repr__(self):
        body = self.body[:400]
        return '<HTTP %s %s headers=%r body=%r>' % (self.status, self.reason, self.headers, body)


class ConnectionClosed(Exception):
    pass


class HTTPConn:
    """One TCP connection. request() = send + read_response(); send_raw() for anything else."""

    def __init__(self, port, host='127.0.0.1', timeout=10.0):
        self.port = port
        self.host = host
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def build(method, target, headers=None, body=None, host='127.0.0.1'):
        lines = ['%s %s HTTP/1.1' % (method, target)]
        hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if not any(k.lower() == 'host' for k, _ in hdrs):
            hdrs.insert(0, ('Host', host))
        if body is not None and not any(k.lower() == 'content-length' for k, _ in hdrs):
            hdrs.append(('Content-Length', str(len(body))))
        for k, v in hdrs:
            lines.append('%s: %s' % (k, v))
        data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
        if body is not None:
            data += body
        return data

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise ConnectionClosed('connection closed by server')
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b''
        except socket.timeout:
            raise HarnessError('timed out after %.1fs waiting for the server (buffered: %r)'
                               % (self.timeout, self.buf[:200]))
        if not chunk:
            self.eof = True
            raise ConnectionClosed('connection closed by server')
        self.buf += chunk

    def _read_until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return out
            if len(self.buf) > 1 << 20:
                raise HarnessError('response head too large')
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method='GET'):
        """Reads one response. Raises ConnectionClosed if the server closed before sending one."""
        if not self.buf and self.eof:
            raise ConnectionClosed('connection closed by server')
        head = self._read_until(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        m = re.match(r'(HTTP/\d\.\d) (\d{3})(?: (.*))?$', lines[0])
        if not m:
            raise HarnessError('bad status line %r' % lines[0])
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ''
        headers = []
        for line in lines[1:]:
            k, sep, v = line.partition(':')
            if not sep:
                raise HarnessError('bad header line %r' % line)
            headers.append((k.strip(), v.strip()))
        resp = Response(version, status, reason, headers, b'')
        te = (resp.header('Transfer-Encoding') or '').lower()
        cl = resp.header('Content-Length')
        if method == 'HEAD' or status in (204, 304) or 100 <= status < 200:
            body = b''
        elif 'chunked' in te:
            body = b''
            while True:
                size_line = self._read_until(b'\r\n').split(b';')[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    # trailers until an empty line
                    while self._read_until(b'\r\n'):
                        pass
                    break
                body += self._read_exact(size)
                self._read_until(b'\r\n')
        elif cl is not None:
            body = self._read_exact(int(cl))
        else:
            # delimited by close
            while True:
                try:
                    self._fill()
                except ConnectionClosed:
                    break
            body, self.buf = self.buf, b''
        resp.body = body
        return resp

    def request(self, method, target, headers=None, body=None):
        self.send_raw(self.build(method, target, headers, body))
        return self.read_response(method)

    def closed_by_peer(self, wait=3.0):
        """True when the server has closed the connection (EOF or reset) within `wait` seconds
        and nothing else is pending."""
        if self.eof:
            return not self.buf
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            self.eof = True
            return True
        self.buf += chunk
        return False


def encode_query(params):
    """params: dict or list of pairs; values are percent-encoded (space as %20)."""
    items = params.items() if isinstance(params, dict) else params
    return '&'.join('%s=%s' % (urllib.parse.quote(str(k), safe=''), urllib.parse.quote(str(v), safe=''))
                    for k, v in items)


class Client:
    """A persistent connection plus defaults: `key` is sent as a Bearer token unless the call
    gives `auth` (a raw Authorization value) or `auth=None` with no key."""

    NO_AUTH = object()

    def __init__(self, port, key=None):
        self.port = port
        self.key = key
        self.conn = None
        self.connections_opened = 0

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def _connect(self):
        self.close()
        self.conn = HTTPConn(self.port)
        self.connections_opened += 1

    def request(self, method, path, query=None, key=None, auth=None, headers=None, body=None):
        target = path
        if query is not None:
            q = query if isinstance(query, str) else encode_query(query)
            target = path + '?' + q
        hdrs = list(headers or [])
        if auth is Client.NO_AUTH:
            pass
        elif auth is not None:
            hdrs.append(('Authorization', auth))
        else:
            k = key if key is not None else self.key
            if k is not None:
                hdrs.append(('Authorization', 'Bearer ' + k))
        data = HTTPConn.build(method, target, hdrs, body)
        for attempt in (0, 1):
            if self.conn is None or self.conn.eof:
                self._connect()
            try:
                self.conn.send_raw(data)
                resp = self.conn.read_response(method)
            except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection: retry once on a new one.
                self.close()
                if attempt:
                    raise
                continue
            if (resp.header('Connection') or '').lower() == 'close':
                self.close()
            return resp
        raise HarnessError('unreachable')

    def get(self, path, query=None, **kw):
        return self.request('GET', path, query, **kw)

    def delete(self, path, **kw):
        return self.request('DELETE', path, None, **kw)

    def list(self, query=None, **kw):
        return self.get('/browser_sessions', query, **kw)


# --------------------------------------------------------------------------------------------
# WebSocket (the CDP endpoint), minimal: text frames, close, ping/pong


class WebSocket:
    def __init__(self, port, user, password, path='/', timeout=30.0):
        import base64
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        self.buf = b''
        self.closed = None  # (code, reason) once a close frame arrived, or 'eof'
        self.next_id = 1
        key = base64.b64encode(os.urandom(16)).decode()
        cred = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
        self.sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
                           'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
                           'Authorization: Basic %s\r\n\r\n' % (path, port, key, cred)).encode())
        while b'\r\n\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise HarnessError('CDP endpoint closed during the handshake: %r' % self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        self.status = int(head.split(b' ', 2)[1])
        self.head = head.decode('latin-1')
        if self.status != 101:
            self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, 'big')
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, 'big')
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + body)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def send_close(self, code=1000):
        try:
            self._send_frame(0x8, code.to_bytes(2, 'big'))
        except OSError:
            pass

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed('eof')
            self.buf += chunk

    def recv(self):
        """The next text message (str), or None once the connection is closed."""
        message = b''
        while True:
            try:
                self._need(2)
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7f, 2
                if n == 126:
                    self._need(4)
                    n, off = int.from_bytes(self.buf[2:4], 'big'), 4
                elif n == 127:
                    self._need(10)
                    n, off = int.from_bytes(self.buf[2:10], 'big'), 10
                self._need(off + n)
            except (ConnectionClosed, ConnectionResetError):
                self.closed = self.closed or 'eof'
                return None
            payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
            opcode = b0 & 0x0f
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], 'big') if len(payload) >= 2 else None
                self.closed = (code, payload[2:].decode('utf-8', 'replace'))
                return None
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            message += payload
            if b0 & 0x80:
                return message.decode('utf-8')

    def cdp(self, method, params=None, session_id=None):
        """Sends a CDP command and returns its response object (events are skipped)."""
        mid = self.next_id
        self.next_id += 1
        msg = {'id': mid, 'method': method, 'params': params or {}}
        if session_id:
            msg['sessionId'] = session_id
        self.send_text(json.dumps(msg))
        while True:
            text = self.recv()
            if text is None:
                raise HarnessError('CDP connection closed waiting for %s: %r' % (method, self.closed))
            obj = json.loads(text)
            if obj.get('id') == mid:
                return obj

    def wait_closed(self, timeout=15.0):
        """Reads until the server closes; True when it did within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while self.recv() is not None:
                pass
        except socket.timeout:
            return False
        return True


# --------------------------------------------------------------------------------------------
# PostgreSQL (BROWSERD_TEST_STORE=postgres)

_pg = {'server': None, 'n': 0}


def pg_admin_uri():
    uri = os.environ.get('BROWSERD_TEST_PG_ADMIN_URI')
    if uri:
        return uri
    if _pg['server'] is None:
        import sys
        sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'pg'))
        from pgserver import PgServer
        _pg['server'] = PgServer.start()  # stopped and removed at exit
    return _pg['server'].uri('postgres')


def pg_uri_of(db):
    """The admin URI with its database replaced by db."""
    u = urllib.parse.urlsplit(pg_admin_uri())
    return urllib.parse.urlunsplit((u.scheme, u.netloc, '/' + db, u.query, ''))


def pg_sql(sql, db=None):
    """Runs sql with psql (on the admin database, or db); returns its unaligned output."""
    p = subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', pg_uri_of(db) if db else pg_admin_uri(),
                        '-c', sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if p.returncode != 0:
        raise HarnessError('psql failed: %s' % p.stderr.strip())
    return p.stdout


def pg_new_database():
    _pg['n'] += 1
    name = 'bd_api_%d_%d_%s' % (os.getpid(), _pg['n'], secrets.token_hex(3))
    pg_sql('CREATE DATABASE %s' % name)
    return name


# --------------------------------------------------------------------------------------------
# Daemon

_live = set()


def _cleanup_all():
    for d in list(_live):
        try:
            d.kill()
        finally:
            d.cleanup()


atexit.register(_cleanup_all)


class Browserd:
    """A browserd on its own temporary database. Use as a context manager or call close()."""

    _counter = 0

    def __init__(self, store=None):
        """store: 'sqlite' or 'postgres' (default: BROWSERD_TEST_STORE's)."""
        self.bin = browserd_bin()
        self.tmpdir = tempfile.mkdtemp(prefix=os.environ.get('API_TMP_PREFIX', 'bdt-'))
        self.pg_db = None
        if (store or STORE) == 'postgres':
            self.pg_db = pg_new_database()
            self.db = pg_uri_of(self.pg_db)
        else:
            self.db = os.path.join(self.tmpdir, 'browserd.db')
        self.proc = None
        self.port = None
        self.exit_code = None
        self._stderr_path = os.path.join(self.tmpdir, 'serve.stderr')
        self._stdout_path = os.path.join(self.tmpdir, 'serve.stdout')
        # short on purpose: Chromium's socket paths under it must fit in sun_path (108 bytes)
        self.daemon_tmp = os.path.join(self.tmpdir, 't')
        _live.add(self)

    # ---- lifecycle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stderr_text(self):
        try:
            with open(self._stderr_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def stdout_text(self):
        try:
            with open(self._stdout_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def _tail(self, n=4000):
        t = self.stderr_text()
        return t[-n:] if t else '(empty)'

    def _dns_sealed(self, argv):
        """With browsers, Chromium looks up hosts of its own (update and sign-in services)
        through the session's proxy: in a private mount namespace whose resolv.conf points at
        loopback, where nothing answers, no lookup leaves the machine. Needs root (CI is);
        otherwise the command is left as it is."""
        if os.geteuid() != 0 or not shutil.which('unshare'):
            return argv
        conf = os.path.join(self.tmpdir, 'resolv.conf')
        with open(conf, 'w') as f:
            f.write('nameserver 127.0.0.1\noptions timeout:1 attempts:1\n')
        return (['unshare', '-m', '--propagation', 'private', 'sh', '-c',
                 'mount --bind "$0" /etc/resolv.conf && exec "$@"', conf] + argv)

    def start(self, timeout=20.0, cdp=False, extra=()):
        """Starts `serve`. The CDP endpoint is off unless cdp=True (then on a free port,
        self.cdp_port); `extra` are more serve options (e.g. ['--pool', '0'])."""
        if not os.path.exists(self.bin):
            raise HarnessError('browserd binary not found at %s (set BROWSERD_BIN)' % self.bin)
        last = ''
        for attempt in range(3):
            self.port = free_port()
            self.cdp_port = free_port() if cdp else None
            cdp_args = ['--cdp-listen', '127.0.0.1:%d' % self.cdp_port] if cdp else ['--cdp-listen', 'off']
            out = open(self._stdout_path, 'ab')
            err = open(self._stderr_path, 'ab')
            # everything the daemon puts in TMPDIR (browser profiles) stays inside our temp dir
            env = dict(os.environ, TMPDIR=self.daemon_tmp)
            os.makedirs(self.daemon_tmp, exist_ok=True)
            # the contract tests send hundreds of wrong keys from one address on purpose: no
            # limit on failed authentications unless a test asks for one (it has tests of its own)
            limit = [] if '--auth-fail-limit' in [str(x) for x in extra] else ['--auth-fail-limit', '0']
            argv = ([self.bin, '--db', self.db, 'serve', '--api-listen', '127.0.0.1:%d' % self.port]
                    + cdp_args + limit + [str(x) for x in extra])
            if cdp:
                argv = self._dns_sealed(argv)
            try:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True, env=env)
            finally:
                out.close()
                err.close()
            deadline = time.monotonic() + timeout
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    self.proc = None
                    last = self._tail()
                    if 'in use' in last.lower() and attempt < 2:
                        break  # port race: retry with another port
                    raise HarnessError('browserd serve exited with %s before answering /healthz; stderr:\n%s'
                                       % (rc, last))
                if self._healthz_ok():
                    return self
                if time.monotonic() > deadline:
                    self.kill()
                    raise HarnessError('browserd did not answer GET /healthz on port %d within %.0fs; stderr:\n%s'
                                       % (self.port, timeout, self._tail()))
                time.sleep(0.05)
        raise HarnessError('could not start browserd: %s' % last)

    def _healthz_ok(self):
        try:
            with HTTPConn(self.port, timeout=2.0) as c:
                r = c.request('GET', '/healthz', [('Connection', 'close')])
                return r.status == 200
        except (OSError, ConnectionClosed, HarnessError):
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, wait, and require exit code 0. Returns the exit code."""
        if self.proc is None:
            return self.exit_code
        proc = self.proc
        if proc.poll() is None:
            # the first SIGTERM drains (running sessions go on, docs/operations.md), the
            # second ends them at once
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(0.3)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessError('browserd did not exit within %.0fs of SIGTERM; stderr:\n%s' % (timeout, self._tail()))
        self.proc = None
        self.exit_code = rc
        if rc != 0:
            raise HarnessError('browserd exited with %s after SIGTERM (expected 0); stderr:\n%s' % (rc, self._tail()))
        # nothing of a session survives it: no browser profile left in its TMPDIR
        deadline = time.monotonic() + 5
        while True:
            left = self.leftover_profiles()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if left:
            raise HarnessError('browser profiles left after browserd stopped: %s' % left)
        return rc

    def leftover_profiles(self):
        left = []
        for root, dirs, files in os.walk(self.daemon_tmp):
            left += [os.path.join(root, x) for x in dirs if x.startswith(('s-', '.new-s-'))]
            if root.count(os.sep) - self.daemon_tmp.count(os.sep) >= 2:
                dirs[:] = []
        return left

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self.pg_db:
            try:
                pg_sql('DROP DATABASE IF EXISTS %s WITH (FORCE)' % self.pg_db)
            except (HarnessError, OSError, subprocess.SubprocessError):
                pass
            self.pg_db = None
        _live.discard(self)

    def close(self):
        try:
            self.stop()
        finally:
            self.cleanup()

    # ---- command line

    def cli(self, *args, input=None, check=True, timeout=120):
        if not os.path.exists(self.bin):
            raise HarnessError('browserd binary not found at %s (set BROWSERD_BIN)' % self.bin)
        cmd = [self.bin, '--db', self.db] + [str(a) for a in args]
        p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        p.stdout_text = p.stdout.decode('utf-8', 'replace')
        p.stderr_text = p.stderr.decode('utf-8', 'replace')
        if check and p.returncode != 0:
            raise HarnessError('%s -> exit %d\nstdout: %s\nstderr: %s'
                               % (' '.join(cmd[1:]), p.returncode, p.stdout_text, p.stderr_text))
        return p

    def add_customer(self, customer_id=None):
        if customer_id is None:
            Browserd._counter += 1
            customer_id = 'c%d_%s' % (Browserd._counter, secrets.token_hex(4))
        p = self.cli('customer', 'add', customer_id)
        if customer_id not in p.stdout_text:
            raise HarnessError('customer add printed %r, expected the id %r' % (p.stdout_text, customer_id))
        return customer_id

    def add_key(self, customer_id):
        p = self.cli('key', 'add', customer_id)
        m = HEX64.search(p.stdout_text)
        if not m:
            raise HarnessError('key add printed no 64-hex key: %r' % p.stdout_text)
        return m.group(0)

    def list_keys(self, customer_id):
        p = self.cli('key', 'list', customer_id)
        rows = []
        for line in p.stdout_text.splitlines():
            if line.strip():
                rows.append(tuple(line.split('\t')))
        return rows

    def revoke_key(self, key_id):
        return self.cli('key', 'revoke', key_id)

    def add_zone(self, customer_id, zone):
        """Returns the zone's password (printed once)."""
        p = self.cli('zone', 'add', customer_id, zone)
        words = p.stdout_text.split()
        if not words:
            raise HarnessError('zone add printed nothing')
        return words[-1]

    @staticmethod
    def jsonl(records):
        lines = []
        for r in records:
            lines.append(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False, separators=(',', ':')))
        return ('\n'.join(lines) + '\n').encode('utf-8') if lines else b''

    def import_sessions(self, customer_id, records, check=True):
        """records: dicts (serialised as JSON objects, key order kept) or raw line strings."""
        return self.cli('sessions', 'import', customer_id, '-', input=self.jsonl(records), check=check)

    def new_customer(self, records=(), customer_id=None):
        cid = self.add_customer(customer_id)
        key = self.add_key(cid)
        if records:
            p = self.import_sessions(cid, records)
            if str(len(records)) not in p.stdout_text:
                raise HarnessError('import printed %r, expected the count %d' % (p.stdout_text, len(records)))
        return cid, key

    # ---- HTTP

    def connect(self, timeout=10.0):
        return HTTPConn(self.port, timeout=timeout)

    def client(self, key=None):
        return Client(self.port, key)
