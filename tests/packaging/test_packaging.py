"""Installing browserd: the man page, the environment file, `meson install`, the systemd unit,
the sysusers entry, the Dockerfile, sd_notify, running unprivileged."""

import fnmatch
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pkg_support import (REPO, TAG_VAR, browserd_bin, chromium_mains, cmdline, descendants, free_port, http_get,  # noqa: E402
                         http_json, kill_tagged, new_tag, sealed, stop, tagged_pids, uid_of, wait_for)

MAN = os.path.join(REPO, 'docs', 'browserd.1')
ENV_FILE = os.path.join(REPO, 'packaging', 'browserd.env')
DOCKERFILE = os.path.join(REPO, 'Dockerfile')


def help_text():
    p = subprocess.run([browserd_bin(), '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       check=True)
    return p.stdout


OPTION = re.compile(r'(?<![\w-])(--?[a-z][a-z-]*)')
VARIABLE = re.compile(r'\b((?:BROWSERD|UV)_[A-Z_]+)\b')


def help_names(text):
    """Options, environment variables and commands named in --help."""
    options = set(OPTION.findall(text))
    variables = set(VARIABLE.findall(text))
    commands = set()
    section = None
    for line in text.splitlines():
        if line.startswith('Commands:'):
            section = 'commands'
            continue
        if line and not line.startswith(' '):
            section = None
        # a command line: two spaces, then lowercase words (the first word of an entry)
        m = re.match(r'^  ([a-z]+(?: [a-z-]+)?)(?: [A-Z_\[-]|$)', line)
        if section == 'commands' and m:
            commands.add(m.group(1))
    return options, variables, commands


def man_names(source):
    """The same names in the man page's troff source (escapes removed, comments skipped)."""
    lines, section = [], None
    for ln in source.splitlines():
        if ln.startswith('.SH '):
            section = ln[4:].strip()
        # comments, and the sections that quote other programs (sudo -u, Chromium's --no-sandbox)
        if not ln.startswith('.\\"') and section not in ('FILES', 'NOTES', 'EXAMPLES', 'SEE ALSO'):
            lines.append(ln)
    text = '\n'.join(lines).replace('\\-', '-').replace('\\fB', '').replace('\\fI', '').replace('\\fR', '')
    text = text.replace('\\c', '')
    options = set(OPTION.findall(text))
    variables = set(VARIABLE.findall(text))
    commands = set()
    section = None
    it = iter(text.splitlines())
    for line in it:
        if line.startswith('.SH '):
            section = line[4:].strip()
        elif section == 'COMMANDS' and line == '.TP':
            entry = next(it, '')
            m = re.match(r'^\.BI? "?([a-z]+(?: [a-z-]+)?)', entry)
            if m:
                commands.add(m.group(1).strip())
    # -h appears as "-h" in OPTIONS; "--option=" in the prose is the same option
    return options, variables, commands


class ManPage(unittest.TestCase):
    def test_man_page_names_every_option_variable_and_command_of_help(self):
        ho, hv, hc = help_names(help_text())
        with open(MAN, encoding='utf-8') as f:
            mo, mv, mc = man_names(f.read())
        # what the man page may name beyond --help: the form --option=VALUE
        mo -= {'--option'}
        self.assertEqual(sorted(mo - ho), [], 'options in the man page that --help does not name')
        self.assertEqual(sorted(ho - mo), [], 'options of --help missing from the man page')
        self.assertEqual(sorted(mv ^ hv), [], 'environment variables named by only one of them')
        self.assertEqual(len(hc), 13, hc)
        self.assertEqual(sorted(mc ^ hc), [], 'commands named by only one of them (man page: %s)' % sorted(mc))

    def test_man_page_renders_without_warnings(self):
        p = subprocess.run(['groff', '-man', '-Tutf8', '-ww', '-z', MAN], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ''))
        with open(MAN) as f:
            self.assertIn('browserd %s' % version(), f.read().split('\n')[2], '.TH names the version')

    def test_comparison_sees_a_difference(self):
        """The comparison itself: an option missing from either side is seen."""
        text = help_text()
        with open(MAN, encoding='utf-8') as f:
            source = f.read()
        ho, _, _ = help_names(text + '        --extra-option N   new\n')
        mo, _, _ = man_names(source)
        self.assertIn('--extra-option', ho - mo)
        mo2, mv2, _ = man_names(source.replace('.B BROWSERD_SPOOL\n', '.B BROWSERD_SPOOLX\n'))
        self.assertIn('BROWSERD_SPOOLX', mv2)
        self.assertNotIn('BROWSERD_SPOOL', mv2)


def version():
    return subprocess.run([browserd_bin(), '--version'], stdout=subprocess.PIPE, text=True).stdout.split()[-1]


class EnvironmentFile(unittest.TestCase):
    def test_every_variable_of_help_is_documented_and_commented_out(self):
        _, hv, _ = help_names(help_text())
        with open(ENV_FILE) as f:
            lines = f.read().splitlines()
        assigned = [ln for ln in lines if re.match(r'^\s*[A-Z_]+=', ln)]
        self.assertEqual(assigned, [], 'every setting stays commented out (the defaults are browserd\'s)')
        commented = [m.group(1) for m in (re.match(r'^#([A-Z_]+)=', ln) for ln in lines) if m]
        self.assertEqual(len(commented), len(set(commented)), 'a variable listed twice')
        self.assertEqual(sorted(set(commented) ^ hv), [], 'variables in only one of --help and browserd.env')
        # each one has a comment of its own just above it
        for i, ln in enumerate(lines):
            if re.match(r'^#[A-Z_]+=', ln):
                self.assertTrue(lines[i - 1].startswith('# '), 'no comment above %s' % ln)


def build_and_install(tmp):
    """The Dockerfile's command (scripts/build.sh --prefix /usr --destdir), on a build directory
    of our own; then the same build reinstalled into a real prefix under tmp."""
    env = dict(os.environ, BROWSERD_BUILD_DIR=os.path.join(tmp, 'build'))
    staging = os.path.join(tmp, 'staging')
    subprocess.run([os.path.join(REPO, 'scripts', 'build.sh'), '--prefix', '/usr', '--destdir', staging],
                   env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    prefix = os.path.join(tmp, 'prefix')
    subprocess.run([os.path.join(REPO, 'scripts', 'build.sh'), '--prefix', prefix], env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    subprocess.run(['meson', 'install', '-C', env['BROWSERD_BUILD_DIR'], '--no-rebuild', '--quiet'], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return staging, prefix


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='browserd-install-')
        cls.staging, cls.prefix = build_and_install(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def read(self, *parts):
        with open(os.path.join(*parts)) as f:
            return f.read()

    def test_meson_install_puts_every_file(self):
        s = self.staging
        want = ['usr/bin/browserd', 'usr/share/man/man1/browserd.1', 'usr/lib/systemd/system/browserd.service',
                'usr/lib/sysusers.d/browserd.conf', 'usr/share/doc/browserd/examples/browserd.env']
        for rel in want:
            self.assertTrue(os.path.isfile(os.path.join(s, rel)), '%s not installed' % rel)
        self.assertTrue(os.access(os.path.join(s, 'usr/bin/browserd'), os.X_OK))
        installed = sorted(os.path.relpath(p, s) for p in glob.glob(s + '/**', recursive=True) if os.path.isfile(p))
        self.assertEqual(installed, sorted(want), 'exactly these files')
        with open(MAN, 'rb') as a, open(os.path.join(s, want[1]), 'rb') as b:
            self.assertEqual(a.read(), b.read())
        out = subprocess.run([os.path.join(s, want[0]), '--version'], stdout=subprocess.PIPE, text=True).stdout
        self.assertEqual(out.strip(), 'browserd ' + version())

    def test_unit_for_prefix_usr_reads_etc_default(self):
        unit = self.read(self.staging, 'usr/lib/systemd/system/browserd.service')
        self.assertIn('\nExecStart=/usr/bin/browserd serve\n', unit)
        self.assertIn('\nEnvironmentFile=-/etc/default/browserd\n', unit)
        self.assertNotIn('@', re.sub(r'(?m)^#.*$', '', unit), 'a configure_file placeholder left')

    def test_unit_directives(self):
        unit = self.read(self.staging, 'usr/lib/systemd/system/browserd.service')
        directives = [ln for ln in unit.splitlines() if ln and not ln.startswith('#') and '=' in ln]
        for d in ['Type=notify', 'NotifyAccess=main', 'User=browserd', 'Group=browserd', 'StateDirectory=browserd',
                  'Environment=BROWSERD_DB=/var/lib/browserd/browserd.db', 'WatchdogSec=30s', 'KillMode=mixed',
                  'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes',
                  'WantedBy=multi-user.target', 'Documentation=man:browserd(1)']:
            self.assertIn(d, directives)
        # what would break Chromium's sandbox or V8
        for bad in ['RestrictNamespaces', 'MemoryDenyWriteExecute', 'SystemCallFilter', 'PrivateUsers',
                    'DynamicUser']:
            self.assertFalse(any(ln.startswith(bad + '=') for ln in directives), bad)
        sysusers = self.read(self.staging, 'usr/lib/sysusers.d/browserd.conf')
        self.assertRegex(sysusers, r'(?m)^u browserd - "[^"]+" /var/lib/browserd /usr/sbin/nologin$')

    def test_systemd_analyze_verify_passes_on_the_installed_unit(self):
        unit = os.path.join(self.prefix, 'lib', 'systemd', 'system', 'browserd.service')
        text = self.read(unit)
        self.assertIn('ExecStart=%s/bin/browserd serve' % self.prefix, text)
        env = dict(os.environ, MANPATH=os.path.join(self.prefix, 'share', 'man'))
        p = subprocess.run(['systemd-analyze', 'verify', unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env)
        print('\n  systemd-analyze verify %s: exit %d, output: %r' % (unit, p.returncode, p.stdout))
        self.assertEqual((p.returncode, p.stdout), (0, ''))
        sec = subprocess.run(['systemd-analyze', 'security', '--offline=true', unit], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        level = [ln for ln in sec.stdout.splitlines() if 'Overall exposure level' in ln]
        print('  systemd-analyze security: %s' % (level[0].strip() if level else sec.stdout[-300:]))
        self.assertTrue(level)
        score = float(re.search(r': ([0-9.]+)', level[0]).group(1))
        self.assertLess(score, 5.0, 'the unit lost hardening')

    def test_verify_sees_a_broken_unit(self):
        """The check itself: a unit whose binary is missing or with a typo in a directive fails."""
        unit = os.path.join(self.prefix, 'lib', 'systemd', 'system', 'browserd.service')
        broken_dir = os.path.join(self.tmp, 'broken')
        os.makedirs(broken_dir, exist_ok=True)
        env = dict(os.environ, MANPATH=os.path.join(self.prefix, 'share', 'man'))
        for old, new in [('/bin/browserd serve', '/bin/browserd-missing serve'), ('Type=notify', 'Type=notfy')]:
            b = os.path.join(broken_dir, 'browserd.service')
            with open(b, 'w') as f:
                f.write(self.read(unit).replace(old, new))
            p = subprocess.run(['systemd-analyze', 'verify', b], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
            self.assertTrue(p.returncode != 0 or p.stdout, 'verify accepted %s' % new)

    def test_sysusers_entry_is_valid(self):
        root = os.path.join(self.tmp, 'sysroot')
        os.makedirs(os.path.join(root, 'etc'), exist_ok=True)
        conf = os.path.join(self.staging, 'usr/lib/sysusers.d/browserd.conf')
        p = subprocess.run(['systemd-sysusers', '--dry-run', '--root', root, conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn('browserd', p.stdout)


def dockerfile_instructions():
    """(INSTRUCTION, arguments) with continued lines joined and comments dropped."""
    out, cur = [], ''
    with open(DOCKERFILE) as f:
        for line in f:
            s = line.rstrip('\n')
            if not cur and (s.lstrip().startswith('#') or not s.strip()):
                continue
            if s.endswith('\\'):
                cur += s[:-1] + ' '
                continue
            cur += s
            word, _, rest = cur.strip().partition(' ')
            out.append((word.upper(), rest.strip()))
            cur = ''
    return out


def dockerignored(rel):
    with open(os.path.join(REPO, '.dockerignore')) as f:
        patterns = [p.strip().rstrip('/') for p in f if p.strip() and not p.startswith('#')]
    parts = rel.strip('/').split('/')
    for i in range(1, len(parts) + 1):
        prefix = '/'.join(parts[:i])
        for p in patterns:
            if fnmatch.fnmatch(prefix, p) or (p.startswith('**/') and fnmatch.fnmatch(parts[i - 1], p[3:])):
                return True
    return False


class Dockerfile(unittest.TestCase):
    def test_stages_and_runtime(self):
        ins = dockerfile_instructions()
        froms = [a for i, a in ins if i == 'FROM']
        self.assertEqual([f.split()[0] for f in froms], ['debian:bookworm-slim'] * 2)
        self.assertTrue(all(i in {'FROM', 'WORKDIR', 'COPY', 'RUN', 'USER', 'ENV', 'EXPOSE', 'VOLUME', 'HEALTHCHECK',
                                  'STOPSIGNAL', 'ENTRYPOINT', 'CMD'} for i, _ in ins), ins)
        final = ins[[k for k, (i, _) in enumerate(ins) if i == 'FROM'][-1]:]
        user = [a for i, a in final if i == 'USER']
        self.assertEqual(user, ['browserd'], 'the image runs as the non-root user browserd')
        self.assertEqual(sorted(' '.join(a for i, a in final if i == 'EXPOSE').split()), ['8080', '9222', '9515'])
        self.assertEqual([a for i, a in final if i == 'VOLUME'], ['/var/lib/browserd'])
        health = [a for i, a in final if i == 'HEALTHCHECK']
        self.assertEqual(len(health), 1)
        self.assertRegex(health[0], r'CMD curl -fsS http://127\.0\.0\.1:8080/healthz')
        env = ' '.join(a for i, a in final if i == 'ENV')
        for kv in ['BROWSERD_DB=/var/lib/browserd/browserd.db', 'BROWSERD_API_LISTEN=0.0.0.0:8080',
                   'BROWSERD_CDP_LISTEN=0.0.0.0:9222']:
            self.assertIn(kv, env.split())
        self.assertEqual([a for i, a in final if i == 'ENTRYPOINT'], ['["/usr/bin/browserd"]'])

    def test_every_copy_source_exists_and_is_not_ignored(self):
        n = 0
        for i, a in dockerfile_instructions():
            if i != 'COPY':
                continue
            words = [w for w in shlex.split(a) if not w.startswith('--')]
            if '--from=' in a:
                continue
            for src in words[:-1]:
                n += 1
                self.assertTrue(os.path.exists(os.path.join(REPO, src)), 'COPY %s: no such file' % src)
                self.assertFalse(dockerignored(src), 'COPY %s: excluded by .dockerignore' % src)
        self.assertGreater(n, 5)
        # what the build needs is copied: every meson.build of the tree is under a copied source
        copied = [shlex.split(a)[:-1] for i, a in dockerfile_instructions() if i == 'COPY' and '--from=' not in a]
        copied = [c.rstrip('/') for group in copied for c in group]
        for mb in glob.glob(os.path.join(REPO, '**', 'meson.build'), recursive=True):
            rel = os.path.relpath(mb, REPO)
            if rel.startswith('build') or 'node_modules' in rel:
                continue
            self.assertTrue(any(rel == c or rel.startswith(c + '/') for c in copied), '%s is not copied' % rel)

    def test_run_steps_are_the_project_scripts(self):
        runs = [a for i, a in dockerfile_instructions() if i == 'RUN']
        self.assertIn('scripts/build.sh --prefix /usr --destdir /staging', runs, 'the build step is scripts/build.sh')
        self.assertTrue(any(r.startswith('/usr/local/lib/browserd/install-deps.sh runtime') for r in runs))
        for r in runs:
            for script in re.findall(r'(?:^|\s)(\S*scripts/[\w.-]+|/usr/local/lib/browserd/[\w.-]+)', r):
                rel = script if script.startswith('scripts/') else 'scripts/' + os.path.basename(script)
                path = os.path.join(REPO, rel)
                self.assertTrue(os.access(path, os.X_OK), '%s: not an executable script of the project' % script)

    def test_runtime_packages_provide_every_library_the_binary_needs(self):
        text = open(os.path.join(REPO, 'scripts', 'install-deps.sh')).read()
        runtime = re.search(r'^runtime=\(([^)]*)\)', text, re.M).group(1).split()
        # installed here (install-deps.sh test installs them): so each is a real Debian 12 package
        for p in runtime:
            st = subprocess.run(['dpkg-query', '-W', '-f=${Status}', p], stdout=subprocess.PIPE, text=True).stdout
            self.assertIn('install ok installed', st, '%s (install-deps.sh runtime) is not installed' % p)
        needed = re.findall(r'NEEDED\s+(\S+)', subprocess.run(['objdump', '-p', browserd_bin()],
                                                             stdout=subprocess.PIPE, text=True).stdout)
        ldd = dict(re.findall(r'^\s*(\S+) => (\S+)', subprocess.run(['ldd', browserd_bin()], stdout=subprocess.PIPE,
                                                                     text=True).stdout, re.M))
        # systemd's protocol is spoken by browserd itself (src/service/service_notify.c)
        self.assertNotIn('libsystemd.so.0', needed)
        for lib in needed:
            if lib.startswith('ld-linux'):
                continue  # the dynamic loader: libc6's, in every Debian image
            path = os.path.realpath(ldd[lib])
            owner = subprocess.run(['dpkg', '-S', path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True).stdout
            if not owner:  # merged /usr: dpkg knows the /lib path
                owner = subprocess.run(['dpkg', '-S', path.replace('/usr/lib/', '/lib/', 1)], stdout=subprocess.PIPE,
                                       text=True).stdout
            pkg = owner.split(':')[0]
            self.assertTrue(pkg in runtime or pkg == 'libc6', '%s (%s) comes from %s, not in the runtime list %s'
                            % (lib, path, pkg, runtime))


class Notify(unittest.TestCase):
    def test_ready_once_listening_watchdog_pings_and_stopping(self):
        tmp = tempfile.mkdtemp(prefix='browserd-notify-')
        sock_path = os.path.join(tmp, 'notify')
        manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        manager.bind(sock_path)
        manager.settimeout(20)
        port = free_port()
        env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC='400000')
        proc = subprocess.Popen([browserd_bin(), '--db', os.path.join(tmp, 'b.db'), 'serve', '--api-listen',
                                 '127.0.0.1:%d' % port, '--cdp-listen', 'off'], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            msg = manager.recv(4096).decode()
            self.assertEqual(msg, 'READY=1\nSTATUS=listening: api 127.0.0.1:%d, cdp off' % port)
            # ready means listening: /healthz answers at once
            self.assertEqual(http_get('http://127.0.0.1:%d/healthz' % port)[0], 200)
            t0 = time.monotonic()
            pings = []
            while len(pings) < 3:
                pings.append(manager.recv(4096).decode())
            self.assertEqual(pings, ['WATCHDOG=1'] * 3)
            self.assertLess(time.monotonic() - t0, 2.0, 'pings every 200 ms expected')
            proc.send_signal(signal.SIGTERM)
            while True:
                msg = manager.recv(4096).decode()
                if msg != 'WATCHDOG=1':
                    break
            self.assertEqual(msg, 'STOPPING=1\nSTATUS=stopping (SIGTERM)')
            self.assertEqual(proc.wait(20), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            manager.close()
            shutil.rmtree(tmp, ignore_errors=True)


class Unprivileged(unittest.TestCase):
    """As the systemd unit and the image run it: an ordinary user, and Chromium keeps its sandbox."""

    def run_session(self, as_nobody, extra=(), check=None):
        from harness import WebSocket  # tests/api/harness.py
        tmp = tempfile.mkdtemp(prefix='browserd-unpriv-')
        os.chmod(tmp, 0o755)
        tag = new_tag()
        api, cdp = free_port(), free_port()
        db = os.path.join(tmp, 'state', 'browserd.db')
        os.makedirs(os.path.join(tmp, 'state', 'tmp'))
        argv = [browserd_bin(), '--db', db, 'serve', '--api-listen', '127.0.0.1:%d' % api, '--cdp-listen',
                '127.0.0.1:%d' % cdp, '--pool', '0'] + list(extra)
        if as_nobody:
            for d in [os.path.join(tmp, 'state'), os.path.join(tmp, 'state', 'tmp')]:
                os.chown(d, 65534, 65534)
            argv = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] + argv
        env = dict(os.environ, TMPDIR=os.path.join(tmp, 'state', 'tmp'), HOME=os.path.join(tmp, 'state'))
        env[TAG_VAR] = tag
        out = open(os.path.join(tmp, 'out'), 'w+')
        proc = subprocess.Popen(sealed(argv, tmp), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: http_get('http://127.0.0.1:%d/healthz' % api, timeout=1)[0] == 200, 20, 'healthz')
            out.seek(0)
            creds = dict(ln.split('=', 1) for ln in out.read().splitlines() if re.match(r'^[a-z_]+=', ln))
            ws = WebSocket(cdp, 'brd-customer-default-zone-scraping_browser1', creds['zone_password'])
            self.assertEqual(ws.status, 101, ws.head)
            version = ws.cdp('Browser.getVersion')
            self.assertIn('Chrome/', version['result']['product'])
            mains = chromium_mains(tag)
            self.assertEqual(len(mains), 1, mains)
            pid, chromium_argv = mains[0]
            uid = uid_of(pid)
            if check:
                check(ws, tag, proc.pid)
            ws.send_close()
            ws.close()
            status, body = http_json('http://127.0.0.1:%d/browser_sessions' % api, creds['api_key'])
            self.assertEqual(status, 200)
            self.assertEqual(stop(proc), 0)
            if check:
                root = os.path.join(tmp, 'state', 'tmp', 'browserd-%d' % uid)
                self.assertEqual(os.listdir(root), [], 'a profile was left in %s' % root)
                self.assertEqual(tagged_pids(tag), [], 'a process of the session was left')
            return uid, chromium_argv
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            kill_tagged(tag)
            out.close()
            shutil.rmtree(tmp, ignore_errors=True)

    @unittest.skipUnless(os.geteuid() == 0, 'needs root to start browserd as another user')
    def test_as_an_unprivileged_user_chromium_keeps_its_sandbox(self):
        uid, argv = self.run_session(as_nobody=True)
        self.assertEqual(uid, 65534)
        self.assertNotIn('--no-sandbox', argv)

    @unittest.skipUnless(os.geteuid() == 0, 'needs root to give the browsers another user')
    def test_as_root_with_a_browser_user_chromium_runs_as_it_with_its_sandbox(self):
        seen = {}

        def check(ws, tag, daemon_pid):
            # a page renders in the sandboxed renderer, and every process but browserd is the user's
            t = ws.cdp('Target.createTarget', {'url': 'data:text/html,<p>sandboxed</p>'})['result']['targetId']
            sid = ws.cdp('Target.attachToTarget', {'targetId': t, 'flatten': True})['result']['sessionId']
            wait_for(lambda: ws.cdp('Runtime.evaluate', {'expression': 'document.body && document.body.innerText',
                                                          'returnByValue': True}, session_id=sid)
                     ['result']['result'].get('value') == 'sandboxed', 10, 'the page')
            # the sandbox clears the renderers' environment (no tag) and Chromium rewrites their
            # command line into one string: they are found as descendants of browserd instead
            family = descendants(daemon_pid)
            seen['uids'] = sorted({uid_of(p) for p in family})
            seen['supervisors'] = [p for p in family if '__browser-supervisor' in cmdline(p)]
            seen['renderers'] = [' '.join(cmdline(p)) for p in family if '--type=renderer' in ' '.join(cmdline(p))]
            seen['daemon_uid'] = uid_of(daemon_pid)

        uid, argv = self.run_session(as_nobody=False, extra=['--browser-user', 'nobody'], check=check)
        self.assertEqual(uid, 65534)
        self.assertNotIn('--no-sandbox', argv)
        self.assertEqual(seen['daemon_uid'], 0, 'browserd itself stays root')
        self.assertEqual(seen['uids'], [65534], 'every process of the browser runs as nobody')
        self.assertEqual(len(seen['supervisors']), 1)
        self.assertTrue(seen['renderers'], 'no renderer seen')
        for r in seen['renderers']:
            self.assertNotIn('--no-sandbox', r)

    @unittest.skipUnless(os.geteuid() == 0, 'the root case')
    def test_browser_user_errors_are_clear_and_nothing_starts(self):
        tmp = tempfile.mkdtemp(prefix='browserd-bu-')
        try:
            def serve(*extra, env=None, as_nobody=False):
                argv = [browserd_bin(), '--db', os.path.join(tmp, 'db'), 'serve', '--api-listen', '127.0.0.1:%d' % free_port(),
                        '--cdp-listen', '127.0.0.1:%d' % free_port(), '--pool', '0'] + list(extra)
                if as_nobody:
                    argv = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] + argv
                return subprocess.run(argv, env=dict(os.environ, TMPDIR=tmp, **(env or {})), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, timeout=30)
            r = serve('--browser-user', 'no-such-user-xq')
            self.assertEqual((r.returncode, r.stdout.strip()), (2, "browserd: --browser-user: no user 'no-such-user-xq'"))
            r = serve('--browser-user', 'root')
            self.assertEqual(r.returncode, 2)
            self.assertIn('Chromium runs without its sandbox', r.stdout)
            r = serve(env={'BROWSERD_BROWSER_USER': 'no-such-user-xq'})
            self.assertEqual(r.returncode, 2, 'the environment twin is read')
            # TMPDIR that the user cannot search (mkdtemp made it 0700 and root's)
            r = serve('--browser-user', 'nobody')
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn('every directory above it (TMPDIR) must be searchable by it', r.stdout)
            os.chmod(tmp, 0o755)
            r = serve('--browser-user', 'nobody', as_nobody=True)
            self.assertEqual(r.returncode, 2, r.stdout)
            self.assertIn('is not root', r.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @unittest.skipUnless(os.geteuid() == 0, 'the root case')
    def test_as_root_chromium_runs_without_its_sandbox(self):
        uid, argv = self.run_session(as_nobody=False)
        self.assertEqual(uid, 0)
        self.assertIn('--no-sandbox', argv)


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for cls in [ManPage, EnvironmentFile, Install, Dockerfile, Notify, Unprivileged]:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite
