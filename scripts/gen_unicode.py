#!/usr/bin/env python3
"""Generate src/nova/unicode/tables.rs: the character classes Nova's messages
and regexes depend on, for every Unicode version a supported Python has.

Nova builds its name and description regexes from unicodedata.category()
(parameter_types._build_regex_range), and jsonschema quotes values with
repr(), whose escaping follows str.isprintable(). Both come from the Unicode
database of the Python that runs Nova:

    Python 3.10  Unicode 13.0.0        Python 3.12  Unicode 15.0.0
    Python 3.11  Unicode 14.0.0        Python 3.13  Unicode 15.1.0

Both classes derive from one set per version, the "graphic" code points:
category neither C* (Cc Cf Cs Co Cn) nor Zl/Zp. Nova's printable class is the
graphic set within U+0000..U+FFFE (Zs included); str.isprintable() is the
graphic set less Zs, plus U+0020. The tables hold the 14.0 set whole and, for
each other version, the ranges where its set differs (symmetric difference),
plus Zs (the same in every version here; checked).

The databases are read from the sdists of `unicodedata2` on PyPI: each holds
the unicodedata_db.h that CPython's makeunicodedata.py writes for that
version. Reading the header needs no compiler, and the same code serves
every version (no unicodedata2 wheel builds for 13.0 on Python 3.11). The
version the running interpreter has is checked against its own unicodedata
and repr(), which proves the reader and the repr() model used below.

Usage:
    python3 scripts/gen_unicode.py                 # rewrite the tables
    python3 scripts/gen_unicode.py --check         # exit 1 if they are stale
    python3 scripts/gen_unicode.py --cross-check /path/to/python3.12 ...
        # also compare with those interpreters' own unicodedata and isprintable

The sdists are kept in $NOVA_GUARD_UCD_CACHE (default
~/.cache/nova-guard/unicodedata2), fetched with pip on first use.

The module is also imported by the differential tests, which give Nova the
category() of the Python being stood in for (`category_function`).
"""

import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'src', 'nova', 'unicode', 'tables.rs')

# Unicode version -> the unicodedata2 release whose sdist carries its tables.
SDISTS = {
    '13.0.0': '13.0.0.post2',
    '14.0.0': '14.0.0',
    '15.0.0': '15.0.0',
    '15.1.0': '15.1.0',
}
PYTHONS = {'3.10': '13.0.0', '3.11': '14.0.0', '3.12': '15.0.0',
           '3.13': '15.1.0'}
BASE = '14.0.0'
LAST_BMP = 0xFFFE  # Nova walks range(0xFFFF)
LIMIT = 0x110000


# --- reading a unicodedata_db.h ---------------------------------------------

def cache_dir():
    return os.environ.get('NOVA_GUARD_UCD_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'nova-guard', 'unicodedata2')


def sdist_path(version):
    """The unicodedata2 sdist for Unicode `version`, fetched if missing."""
    release = SDISTS[version]
    cache = cache_dir()
    pattern = os.path.join(cache, 'unicodedata2-%s.tar.gz' % release)
    found = glob.glob(pattern)
    if found:
        return found[0]
    os.makedirs(cache, exist_ok=True)
    cmd = ['-m', 'pip', 'download', '--quiet', '--no-deps',
           '--no-binary', ':all:', 'unicodedata2==%s' % release, '-d', cache]
    # The interpreter running this, else the system's (a uv-made venv has
    # no pip).
    import importlib.util
    python = sys.executable if importlib.util.find_spec('pip') else 'python3'
    subprocess.call([python] + cmd, stdout=sys.stderr)
    found = glob.glob(pattern)
    if not found:
        sys.exit('gen_unicode: could not fetch unicodedata2==%s into %s'
                 % (release, cache))
    return found[0]


def _array(text, name):
    m = re.search(r'\b%s\[\]\s*=\s*\{(.*?)\};' % re.escape(name), text, re.S)
    if not m:
        raise ValueError('no array %s' % name)
    return m.group(1)


class Database:
    """category() of one Unicode version, read from its unicodedata_db.h."""

    def __init__(self, version):
        with tarfile.open(sdist_path(version)) as tar:
            names = [n for n in tar.getnames()
                     if n.endswith('/unicodedata_db.h')]
            # 13.0.0.post2 ships a Python 2 and a Python 3 copy.
            names.sort(key=lambda n: '/py2/' in n)
            text = tar.extractfile(names[0]).read().decode('ascii')
        got = re.search(r'#define UNIDATA_VERSION "([^"]+)"', text).group(1)
        if got != version:
            raise ValueError('%s holds Unicode %s' % (names[0], got))
        self.version = version
        self.shift = int(re.search(r'#define SHIFT (\d+)', text).group(1))
        records = re.findall(r'\{\s*(\d+)\s*,',
                             _array(text, '_PyUnicode_Database_Records'))
        self.record_category = [int(r) for r in records]
        self.names = re.findall(r'"([A-Za-z]{2})"',
                                _array(text, '_PyUnicode_CategoryNames'))
        self.index1 = [int(x) for x in re.findall(r'\d+',
                                                  _array(text, 'index1'))]
        self.index2 = [int(x) for x in re.findall(r'\d+',
                                                  _array(text, 'index2'))]

    def category(self, cp):
        # unicodedata.c _getrecord_ex
        if cp >= LIMIT:
            return self.names[self.record_category[0]]
        index = self.index1[cp >> self.shift]
        index = self.index2[(index << self.shift)
                            + (cp & ((1 << self.shift) - 1))]
        return self.names[self.record_category[index]]


_DATABASES = {}


def database(version):
    if version not in _DATABASES:
        _DATABASES[version] = Database(version)
    return _DATABASES[version]


def category_function(version):
    """unicodedata.category of Unicode `version` (takes a one-char str)."""
    db = database(version)
    return lambda ch: db.category(ord(ch))


# --- the classes -------------------------------------------------------------

def graphic(cat):
    return not cat.startswith('C') and cat not in ('Zl', 'Zp')


def ranges(pred, stop=LIMIT):
    out = []
    start = None
    for cp in range(stop):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, stop - 1))
    return out


class Classes:
    def __init__(self, version):
        db = database(version)
        cats = [db.category(cp) for cp in range(LIMIT)]
        self.version = version
        self.cats = cats
        self.graphic = [graphic(c) for c in cats]
        self.zs = [c == 'Zs' for c in cats]

    def nova_printable(self, cp):
        return cp <= LAST_BMP and self.graphic[cp]

    def py_printable(self, cp):
        # CPython makeunicodedata.py: PRINTABLE_MASK unless the category is
        # Cc, Cf, Cs, Co, Cn, Zl, Zp or Zs, except for U+0020.
        return cp == 0x20 or (self.graphic[cp] and not self.zs[cp])


def description_regex(cls):
    """Nova's valid_description_regex, built as _build_regex_range() does."""
    regex = ''
    in_range = False
    last = None
    last_added = None
    c = None
    for i in range(LAST_BMP + 1):
        c = chr(i)
        if cls.nova_printable(i):
            if not in_range:
                regex += re.escape(c)
                last_added = c
            in_range = True
        else:
            if in_range and last != last_added:
                regex += '-' + re.escape(last)
            in_range = False
        last = c
    if in_range:
        regex += '-' + re.escape(c)
    return '^[%s]*$' % regex


def py_repr(s, printable):
    """CPython's unicode_repr with `printable` as str.isprintable()."""
    quote = '"' if ("'" in s and '"' not in s) else "'"
    out = [quote]
    for ch in s:
        cp = ord(ch)
        if ch == quote or ch == '\\':
            out.append('\\' + ch)
        elif ch == '\t':
            out.append('\\t')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\r':
            out.append('\\r')
        elif cp < 0x20 or cp == 0x7F:
            out.append('\\x%02x' % cp)
        elif cp < 0x7F or printable(cp):
            out.append(ch)
        elif cp <= 0xFF:
            out.append('\\x%02x' % cp)
        elif cp <= 0xFFFF:
            out.append('\\u%04x' % cp)
        else:
            out.append('\\U%08x' % cp)
    out.append(quote)
    return ''.join(out)


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


# --- checks and output ---------------------------------------------------------

def self_check(classes):
    """The running interpreter's version: the reader must agree with its
    unicodedata, and the repr() model with its repr()."""
    version = unicodedata.unidata_version
    cls = classes.get(version)
    if cls is None:
        return 'no check against this interpreter (Unicode %s)' % version
    for cp in range(LIMIT):
        if cls.cats[cp] != unicodedata.category(chr(cp)):
            sys.exit('gen_unicode: U+%04X is %s in the sdist, %s here'
                     % (cp, cls.cats[cp], unicodedata.category(chr(cp))))
        if cls.py_printable(cp) != chr(cp).isprintable():
            sys.exit('gen_unicode: isprintable(U+%04X) model is wrong' % cp)
    regex = description_regex(cls)
    if py_repr(regex, cls.py_printable) != repr(regex):
        sys.exit('gen_unicode: the repr() model differs from repr()')
    sample = ''.join(chr(cp) for cp in range(0, LIMIT, 97)) + '\'"\\'
    if py_repr(sample, cls.py_printable) != repr(sample):
        sys.exit('gen_unicode: the repr() model differs from repr()')
    return 'checked against Python %s (Unicode %s)' % (
        sys.version.split()[0], version)


CROSS = r'''
import hashlib, sys, unicodedata
h = hashlib.sha256()
for cp in range(0x110000):
    c = chr(cp)
    h.update(('%s%d' % (unicodedata.category(c), c.isprintable())).encode())
print(unicodedata.unidata_version, h.hexdigest())
'''


def cross_check(python, classes):
    out = subprocess.check_output([python, '-c', CROSS], text=True).split()
    version, digest = out[0], out[1]
    cls = classes.get(version)
    if cls is None:
        sys.exit('gen_unicode: %s has Unicode %s, not generated' % (python,
                                                                   version))
    h = hashlib.sha256()
    for cp in range(LIMIT):
        h.update(('%s%d' % (cls.cats[cp], cls.py_printable(cp))).encode())
    if h.hexdigest() != digest:
        sys.exit('gen_unicode: %s (Unicode %s) disagrees with the tables'
                 % (python, version))
    print('gen_unicode: %s agrees (Unicode %s)' % (python, version),
          file=sys.stderr)


def rust_ranges(name, doc, rs):
    lines = ['', '/// %s' % doc,
             'pub(super) static %s: &[(u32, u32)] = &[' % name]
    lines += ['    (0x%04X, 0x%04X),' % r for r in rs]
    lines.append('];')
    return lines


def render(classes):
    base = classes[BASE]
    zs = ranges(lambda cp: base.zs[cp])
    for v, cls in classes.items():
        if ranges(lambda cp: cls.zs[cp]) != zs:
            sys.exit('gen_unicode: Zs differs in Unicode %s; the tables '
                     'assume one Zs for every version' % v)
    graphic_base = ranges(lambda cp: base.graphic[cp])
    lines = [
        '// @generated by scripts/gen_unicode.py: do not edit by hand.',
        '// From the unicodedata_db.h (CPython\'s makeunicodedata.py output) '
        'of the',
        '// unicodedata2 sdists %s.'
        % ', '.join(SDISTS[v] for v in sorted(classes)),
    ]
    lines += rust_ranges(
        'ZS', 'Category Zs, the same in every version generated.', zs)
    lines += rust_ranges(
        'GRAPHIC_BASE', 'Unicode %s: category neither C* nor Zl/Zp.' % BASE,
        graphic_base)
    expected = []
    for v in sorted(classes):
        cls = classes[v]
        if v != BASE:
            delta = ranges(lambda cp: cls.graphic[cp] != base.graphic[cp])
            lines += rust_ranges(
                'DELTA_%s' % '_'.join(v.split('.')[:2]),
                'Unicode %s: where its graphic set differs from %s\'s.'
                % (v, BASE), delta)
        regex_repr = py_repr(description_regex(cls), cls.py_printable)
        expected.append((
            v,
            sum(1 for cp in range(LAST_BMP + 1) if cls.nova_printable(cp)),
            sum(1 for cp in range(LIMIT) if cls.py_printable(cp)),
            len(regex_repr),
            fnv1a64(regex_repr.encode('utf-8')),
        ))
    lines += [
        '',
        '/// Test vectors per version: Nova\'s printable class size, '
        'str.isprintable()',
        '/// size, and the length (code points) and FNV-1a 64 hash (UTF-8) '
        'of repr()',
        '/// of Nova\'s description regex.',
        '#[cfg(test)]',
        'pub(super) static EXPECTED: [(&str, u32, u32, usize, u64); %d] = ['
        % len(expected),
    ]
    lines += ['    ("%s", %d, %d, %d, 0x%016x),' % e for e in expected]
    lines += ['];', '']
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--check', action='store_true',
                    help='fail if the committed tables differ')
    ap.add_argument('--cross-check', nargs='*', default=[], metavar='PYTHON',
                    help='also compare with these interpreters')
    args = ap.parse_args(argv)
    classes = {v: Classes(v) for v in sorted(SDISTS)}
    note = self_check(classes)
    for python in args.cross_check:
        cross_check(python, classes)
    text = render(classes)
    if args.check:
        try:
            with open(OUT, encoding='utf-8') as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print('%s is stale; rerun scripts/gen_unicode.py' % OUT,
                  file=sys.stderr)
            return 1
        print('gen_unicode: tables up to date (%s)' % note, file=sys.stderr)
        return 0
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w', encoding='utf-8') as f:
        f.write(text)
    print('gen_unicode: wrote %s (%s)' % (OUT, note), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
