"""Helpers of the packaging suite: the repository, the binary, processes started with a sealed
resolver (so that Chromium's own lookups never leave the machine, as in tests/api/harness.py),
processes found by a tag in their environment, HTTP with the standard library."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAG_VAR = 'BROWSERD_PKG_TAG'


def browserd_bin():
    p = os.environ.get('BROWSERD_BIN', 'build/browserd')
    return p if os.path.isabs(p) else os.path.join(REPO, p)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, headers=None, timeout=5.0):
    """(status, headers dict, body bytes); HTTP errors are answers too."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(url, key=None):
    status, _, body = http_get(url, {'Authorization': 'Bearer ' + key} if key else None)
    return status, json.loads(body.decode()) if body else None


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.05)
    raise AssertionError('timed out after %.0f s waiting for %s (last: %r)' % (timeout, what, last))


def sealed(argv, tmpdir):
    """argv in a mount namespace whose resolv.conf names a loopback address where nothing
    answers (root only; otherwise argv as it is)."""
    if os.geteuid() != 0 or not shutil.which('unshare'):
        return argv
    conf = os.path.join(tmpdir, 'resolv.conf')
    with open(conf, 'w') as f:
        f.write('nameserver 127.0.0.1\noptions timeout:1 attempts:1\n')
    return ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
            'mount --bind "$0" /etc/resolv.conf && exec "$@"', conf] + argv


def new_tag():
    return 'pkg-%d-%s' % (os.getpid(), uuid.uuid4().hex[:12])


def tagged_pids(tag):
    """Live processes whose environment carries TAG_VAR=tag."""
    needle = ('%s=%s' % (TAG_VAR, tag)).encode() + b'\0'
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % d, 'rb') as f:
                if needle in f.read() + b'\0':
                    out.append(int(d))
        except OSError:
            pass
    return out


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return [a.decode('utf-8', 'replace') for a in f.read().split(b'\0') if a]
    except OSError:
        return []


def uid_of(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Uid:'):
                return int(line.split()[1])
    return None


def descendants(pid):
    """Every live process below pid (by the PPid of /proc/N/status)."""
    parent = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open('/proc/%s/status' % d) as f:
                    for line in f:
                        if line.startswith('PPid:'):
                            parent[int(d)] = int(line.split()[1])
                            break
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def chromium_mains(tag):
    """Chromium browser processes (not renderers, not browserd's supervisors) of a tag."""
    out = []
    for pid in tagged_pids(tag):
        argv = cmdline(pid)
        if not argv or any(a.startswith('--type=') for a in argv):
            continue
        if any(a.startswith('--user-data-dir=') for a in argv) and '__browser-supervisor' not in argv:
            out.append((pid, argv))
    return out


def kill_tagged(tag):
    for pid in tagged_pids(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def stop(proc, timeout=20):
    """SIGTERM and the exit code (SIGKILL and an error if it does not stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError('did not stop within %d s of SIGTERM' % timeout)
