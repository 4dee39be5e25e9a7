#!/usr/bin/env python3
"""A private PostgreSQL server for browserd's tests and benchmarks (Debian's PostgreSQL 15).

initdb into a fresh temporary directory, password authentication (scram-sha-256) for one
superuser, listening on 127.0.0.1 only, on a free port, with its Unix socket in the data
directory (no /var/run). PostgreSQL refuses to run as root, so when started as root the server
runs as an unprivileged system user created here on first use ("browserd-test").

As a module:
    srv = PgServer.start()            # or PgServer.start(port=..., name=...)
    uri = srv.create_database()       # a fresh database: postgresql://user:pw@127.0.0.1:port/db
    srv.stop()                        # immediate shutdown, directory removed (also at exit)

From a shell (scripts start one server for a whole run):
    tests/pg/pgserver.py start DIR    # prints PG_URI=... PG_ADMIN_URI=... PG_PORT=... lines
    tests/pg/pgserver.py createdb DIR # prints a URI of a new database of that server
    tests/pg/pgserver.py stop DIR     # stops it and removes DIR
    tests/pg/pgserver.py pause DIR SECONDS / restart DIR   (fault tests: the server away)
"""

import atexit
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = os.environ.get('BROWSERD_PG_BIN', '/usr/lib/postgresql/15/bin')
RUN_AS = 'browserd-test'
SUPERUSER = 'browserd'


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _ensure_user():
    """The unprivileged account the server runs as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', RUN_AS],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return pwd.getpwnam(RUN_AS)


def _as_server_user(cmd, user):
    if user is None:
        return cmd
    return ['runuser', '-u', user.pw_name, '--'] + cmd


class PgServer:
    def __init__(self, root, port, password, user):
        self.root = root
        self.data = os.path.join(root, 'data')
        self.port = port
        self.password = password
        self.user = user
        self.n = 0
        self._stopped = False

    # ---------------------------------------------------------------- life
    @classmethod
    def start(cls, port=None, root=None, keep_root=False):
        for tool in ('initdb', 'pg_ctl', 'postgres'):
            if not os.access(os.path.join(PG_BIN, tool), os.X_OK):
                raise RuntimeError('PostgreSQL 15 is not installed (%s/%s missing; scripts/install-deps.sh test)'
                                   % (PG_BIN, tool))
        user = _ensure_user()
        root = root or tempfile.mkdtemp(prefix='browserd-pg-')
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        password = secrets.token_hex(16)
        pwfile = os.path.join(root, 'pw')
        with open(pwfile, 'w') as f:
            f.write(password + '\n')
        data = os.path.join(root, 'data')
        os.makedirs(data, exist_ok=True)
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            os.chown(data, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        os.chmod(data, 0o700)
        r = subprocess.run(_as_server_user([os.path.join(PG_BIN, 'initdb'), '-D', data, '-U', SUPERUSER,
                                            '--pwfile', pwfile, '--auth=scram-sha-256', '-E', 'UTF8',
                                            '--locale=C.UTF-8', '--no-sync'], user),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        os.unlink(pwfile)
        if r.returncode != 0:
            raise RuntimeError('initdb failed:\n' + r.stdout)
        port = port or free_port()
        with open(os.path.join(data, 'postgresql.conf'), 'a') as f:
            f.write("\n# browserd tests: loopback only, a private socket directory, quick and quiet\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "port = %d\n"
                    "unix_socket_directories = '%s'\n"
                    "max_connections = 200\n"
                    "shared_buffers = 128MB\n"
                    "fsync = on\n"
                    "synchronous_commit = on\n"
                    "log_min_messages = warning\n"
                    "logging_collector = off\n" % (port, data))
        srv = cls(root, port, password, user)
        srv._pg_ctl('start', '-w', '-t', '60', '-l', os.path.join(root, 'server.log'))
        if not keep_root:
            atexit.register(srv.stop)
        return srv

    def _pg_ctl(self, *args):
        r = subprocess.run(_as_server_user([os.path.join(PG_BIN, 'pg_ctl'), '-D', self.data] + list(args), self.user),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            log = ''
            try:
                with open(os.path.join(self.root, 'server.log')) as f:
                    log = f.read()[-3000:]
            except OSError:
                pass
            raise RuntimeError('pg_ctl %s failed:\n%s\n%s' % (' '.join(args), r.stdout, log))

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        try:
            self._pg_ctl('stop', '-m', 'immediate', '-w', '-t', '30')
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def pause(self):
        """Stops the server (fast shutdown), keeping its data: the database is away."""
        self._pg_ctl('stop', '-m', 'fast', '-w', '-t', '30')

    def resume(self):
        self._pg_ctl('start', '-w', '-t', '60', '-l', os.path.join(self.root, 'server.log'))

    # ---------------------------------------------------------------- databases
    def uri(self, db='postgres'):
        return 'postgresql://%s:%s@127.0.0.1:%d/%s' % (SUPERUSER, self.password, self.port, db)

    def psql(self, sql, db='postgres'):
        env = dict(os.environ, PGPASSWORD=self.password)
        r = subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', str(self.port),
                            '-U', SUPERUSER, '-d', db, '-At', '-c', sql],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError('psql failed: %s' % r.stderr.strip())
        return r.stdout

    def create_database(self, name=None):
        if name is None:
            self.n += 1
            name = 'browserd_%d_%d' % (os.getpid(), self.n)
        self.psql('CREATE DATABASE %s' % name)
        return self.uri(name)

    def state(self):
        return {'PG_URI': self.uri('postgres'), 'PG_PORT': str(self.port), 'PG_PASSWORD': self.password,
                'PG_ROOT': self.root}


# -------------------------------------------------------------------- command line
def _load(root):
    with open(os.path.join(root, 'state')) as f:
        st = dict(line.rstrip('\n').split('=', 1) for line in f if '=' in line)
    srv = PgServer(root, int(st['PG_PORT']), st['PG_PASSWORD'], _ensure_user())
    return srv


def main(argv):
    if len(argv) < 3 or argv[1] not in ('start', 'stop', 'createdb', 'pause', 'resume'):
        sys.stderr.write(__doc__)
        return 2
    cmd, root = argv[1], os.path.abspath(argv[2])
    if cmd == 'start':
        srv = PgServer.start(root=root, keep_root=True)
        with open(os.path.join(root, 'state'), 'w') as f:
            for k, v in srv.state().items():
                f.write('%s=%s\n' % (k, v))
        for k, v in srv.state().items():
            if k != 'PG_PASSWORD':
                print('%s=%s' % (k, v))
        return 0
    srv = _load(root)
    if cmd == 'stop':
        srv.stop()
    elif cmd == 'createdb':
        srv.n = int.from_bytes(secrets.token_bytes(3), 'big')
        print(srv.create_database())
    elif cmd == 'pause':
        srv.pause()
    elif cmd == 'resume':
        srv.resume()
    return 0


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main(sys.argv))
