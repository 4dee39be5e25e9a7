#!/usr/bin/env python3
"""A fake Chromium for bench/write_bench.py: browserd starts it as --chromium (through its
supervisor, CDP on fds 3 and 4 as with --remote-debugging-pipe). It answers every command at
once, gives browserd's observer one page target ("T1", session "pg1"), and turns each
`Bench.navigate {"url": U}` of the client into a main-frame commit of U in that page
(Page.frameNavigated), so that every such command is a navigation browserd records: the
session's record changes and is saved. Only for benchmarks of browserd's own write path."""
import json
import os
import sys

IN, OUT = 3, 4
PAGE = 'pg1'


def send(obj):
    data = json.dumps(obj, separators=(',', ':')).encode() + b'\0'
    while data:
        n = os.write(OUT, data)
        data = data[n:]


def handle(msg):
    m = json.loads(msg)
    if 'id' not in m:
        return
    method, sid = m.get('method', ''), m.get('sessionId')
    reply = {'id': m['id'], 'result': {}}
    if sid:
        reply['sessionId'] = sid
    if method == 'Target.attachToBrowserTarget':
        reply['result'] = {'sessionId': 'obs'}
    elif method == 'Browser.getVersion':
        reply['result'] = {'protocolVersion': '1.3', 'product': 'HeadlessChrome/156.0.0.0'}
    elif method == 'Page.getNavigationHistory':
        reply['result'] = {'currentIndex': 0, 'entries': [{'id': 1, 'url': 'about:blank'}]}
    send(reply)
    if method == 'Target.setAutoAttach' and sid == 'obs':
        send({'method': 'Target.attachedToTarget', 'sessionId': 'obs',
              'params': {'sessionId': PAGE, 'targetInfo': {'targetId': 'T1', 'type': 'page', 'url': 'about:blank'},
                         'waitingForDebugger': False}})
    elif method == 'Bench.navigate':
        url = m.get('params', {}).get('url', 'https://site.example/')
        send({'method': 'Page.frameNavigated', 'sessionId': PAGE,
              'params': {'frame': {'id': 'T1', 'loaderId': 'L', 'url': url}, 'type': 'Navigation'}})


def main():
    buf = b''
    while True:
        chunk = os.read(IN, 65536)
        if not chunk:
            return 0
        buf += chunk
        while True:
            i = buf.find(b'\0')
            if i < 0:
                break
            msg, buf = buf[:i], buf[i + 1:]
            if msg:
                handle(msg)


if __name__ == '__main__':
    sys.exit(main())
