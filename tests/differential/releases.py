"""The real Nova of every supported release, for test_releases.py.

Each release runs from its own venv (deploy/dev/setup-release-venv.sh, pins
in deploy/dev/releases/<release>.lock; 2026.2 is the development venv) on
CPython 3.11, and stands in for the release's usual Python (3.10 for 2024.1,
3.12 later) with nova_api.py --python: Nova's printable class is then built
from that Python's Unicode database (deploy/dev/python_stand_in.py). nova-guard
in front of it is configured with NOVA_GUARD_NOVA_RELEASE and
NOVA_GUARD_NOVA_PYTHON.

What the stand-in cannot give Nova is the other interpreter's repr(): its
messages escape characters as Python 3.11 does. So where the running
interpreter and the Python stood in for disagree on str.isprintable() of a
code point, both answers are compared with that code point's repr() escapes
(\\xNN, \\uNNNN, \\UNNNNNNNN) written as the character itself (text_filter).
Everything else in the answers is compared as it is.

NOVA_GUARD_DIFF_RELEASES chooses what runs: space-separated RELEASE or
RELEASE:PYTHON (default: every release on its usual Python).
"""

import dataclasses
import json
import os
import re
import subprocess
import sys

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NOVA_API = os.path.join(ROOT, 'deploy', 'dev', 'nova_api.py')
SETUP = os.path.join(ROOT, 'deploy', 'dev', 'setup-release-venv.sh')

# release: (maximum microversion, usual Python), as nova::Release says.
RELEASES = {
    '2024.1': ('2.96', '3.10'),
    '2025.1': ('2.100', '3.12'),
    '2025.2': ('2.100', '3.12'),
    '2026.1': ('2.103', '3.12'),
    '2026.2': ('2.104', '3.12'),
}


def selected():
    """[(release, python)] to run."""
    raw = os.environ.get('NOVA_GUARD_DIFF_RELEASES')
    if raw is None:
        return [(r, py) for r, (_, py) in RELEASES.items()]
    out = []
    for item in raw.split():
        release, _, python = item.partition(':')
        if release not in RELEASES:
            raise ValueError('NOVA_GUARD_DIFF_RELEASES: unknown release %r '
                             '(one of %s)' % (release, ', '.join(RELEASES)))
        out.append((release, python or RELEASES[release][1]))
    return out


def vnum(v):
    a, b = v.split('.')
    return (int(a), int(b))


def venv(release):
    """The release's venv, made or checked by setup-release-venv.sh."""
    out = subprocess.run([SETUP, release], stdout=subprocess.PIPE,
                         text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def start_nova(venv_dir, python, log_path):
    """nova_api.py from `venv_dir`, standing in for `python`.

    -> (process, the NOVA_READY dict)."""
    return harness.start_nova(
        [os.path.join(venv_dir, 'bin', 'python'), NOVA_API, '--port', '0',
         '--servers', '4', '--python', python], log_path)


def start_guard(binary, nova_port, release, python, log_path):
    """nova-guard for `release` on `python` in front of Nova -> (proc, port)."""
    return harness.start_guard(binary, nova_port, log_path, {
        'NOVA_GUARD_MAX_MICROVERSION': None,
        'NOVA_GUARD_NOVA_RELEASE': release,
        'NOVA_GUARD_NOVA_PYTHON': python,
    })


# --- the characters the Pythons disagree on --------------------------------

# Assigned (graphic) from Unicode 14.0 (Python 3.11): in the BMP, so in
# Nova's printable class from then on, and beyond it (repr() only).
NEW_IN_14 = [0x061D, 0x0870, 0x08CC, 0x1AC2, 0x2E5D, 0xA7F3, 0xFD4C,
             0x10570, 0x1FAE7]
# From 15.0 (Python 3.12): the only two in the BMP, and two beyond.
NEW_IN_15 = [0x0CF3, 0x0ECE, 0x10EFD, 0x3151B]
# From 15.1 (Python 3.13).
NEW_IN_15_1 = [0x2FFC, 0x2FFF, 0x31EF, 0x2EBF0]
# Unassigned in every version here; printable in every version.
CONTROLS = [0x0378, 0x00E9]


def unicode_cases():
    """Update cases with each of those characters where Nova judges or
    quotes a string: accepted or refused as a name or description, quoted by
    repr() in a pattern, format or extra-key message."""
    cases = []
    for cp in NEW_IN_14 + NEW_IN_15 + NEW_IN_15_1 + CONTROLS:
        c = chr(cp)
        bodies = [
            ('name', 'v2', {'name': 'a' + c}),
            ('name-alone', '2.1', {'name': c}),
            ('name-space', '2.1', {'name': c + ' x'}),
            ('description', '2.19', {'description': 'x' + c}),
            ('description-tab', '2.19', {'description': c + '\t'}),
            ('hostname', '2.94', {'hostname': c}),
            ('ipv4', '2.1', {'accessIPv4': c}),
            ('key', '2.1', {c: 1}),
        ]
        for i, (what, version, server) in enumerate(bodies):
            body = json.dumps({'server': server},
                              ensure_ascii=bool(i % 2)).encode()
            cases.append(harness.Case(
                id='unicode-%04X-%s' % (cp, what), group='unicode',
                body=body, version=version))
    return cases


# --- repr() of the Python stood in for ------------------------------------

def _printable_differences(running, target):
    """Code points whose str.isprintable() differs between two Unicode
    versions (CPython's rule on their categories)."""
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    try:
        import gen_unicode
    finally:
        sys.path.pop(0)
    a, b = gen_unicode.database(running), gen_unicode.database(target)

    def printable(db, cp):
        cat = db.category(cp)
        return cp == 0x20 or not (cat.startswith('C')
                                  or cat in ('Zl', 'Zp', 'Zs'))
    return {cp for cp in range(0x110000)
            if printable(a, cp) != printable(b, cp)}


_ESCAPE = re.compile(r'\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))')


def text_filter(running, target):
    """A harness text_filter for Nova answers made with the repr() of Unicode
    `running` where nova-guard writes that of `target`; None if the same."""
    if running == target:
        return None
    differ = _printable_differences(running, target)

    def unescape(text):
        def one(m):
            cp = int(next(g for g in m.groups() if g), 16)
            return chr(cp) if cp in differ else m.group(0)
        return _ESCAPE.sub(one, text)

    def walk(v):
        if isinstance(v, str):
            return unescape(v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    def apply(resp):
        if not resp.body.startswith(b'{'):
            return resp
        try:
            value = json.loads(resp.body)
        except ValueError:
            return resp
        body = json.dumps(walk(value)).encode()
        return dataclasses.replace(resp, body=body)

    apply.differ = differ
    return apply
