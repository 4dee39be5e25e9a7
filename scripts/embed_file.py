#!/usr/bin/env python3
"""Turns a file into a C header holding its bytes, for the build (meson's custom_target).

    scripts/embed_file.py INPUT OUTPUT NAME [--json]

OUTPUT gets `static const unsigned char NAME[]` (the bytes of INPUT, exactly, with no NUL
added) and `#define NAME_LEN` (their number). With --json the build fails unless INPUT is one
valid JSON document (strict: no NaN or Infinity, no duplicate keys), so a broken file never
reaches the binary."""
import json
import os
import sys


def reject_duplicates(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise ValueError('duplicate key %r' % k)
        seen.add(k)
    return dict(pairs)


def reject_constant(name):
    raise ValueError('%s is not JSON' % name)


def main(argv):
    args = [a for a in argv[1:] if a != '--json']
    if len(args) != 3:
        sys.exit(__doc__)
    src, out, name = args
    if not name.isidentifier():
        sys.exit('embed_file: %r is not a C identifier' % name)
    with open(src, 'rb') as f:
        data = f.read()
    if '--json' in argv:
        try:
            json.loads(data.decode('utf-8'), object_pairs_hook=reject_duplicates, parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            sys.exit('embed_file: %s is not valid JSON: %s' % (src, e))
    lines = ['/* Generated from %s by scripts/embed_file.py: do not edit. */' % os.path.basename(src),
             '#define %s_LEN %du' % (name.upper(), len(data)),
             'static const unsigned char %s[%d] = {' % (name, max(len(data), 1))]
    for i in range(0, len(data), 16):
        lines.append('    ' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',')
    if not data:
        lines.append('    0')
    lines.append('};')
    tmp = out + '.tmp'
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(tmp, out)


if __name__ == '__main__':
    main(sys.argv)
