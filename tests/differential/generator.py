"""Seeded generator of update-server requests.

Case ``gen-<i>`` depends only on (seed, i), so one failing case replays with
NOVA_GUARD_DIFF_SEED=<seed> NOVA_GUARD_DIFF_CASES='^gen-<i>$'.

Bodies are written by hand (not json.dumps) so that they can have duplicate
keys, any key order, any whitespace between tokens, any mix of raw UTF-8 and
\\uXXXX escapes (lone surrogates included), and numbers Python's json reads
but JSON does not have (NaN, Infinity).
"""

import random

from corpus import V2_FORMS, V21_FORMS, VERSIONS
from harness import Case

FIELDS = ['name', 'OS-DCF:diskConfig', 'accessIPv4', 'accessIPv6',
          'description', 'hostname', 'pinned_availability_zone']
EXTRA_KEYS = ['foo', 'admin_password', 'host_id', 'Name', 'NAME', 'name ',
              'accessIPv5', 'os-dcf:diskconfig', 'metadata', 'imageRef', '',
              'server', 'id', 'pinned_availability_zone ', 'description\u0000']

WHITESPACE = [' ', '\t', '\n', '\r', '\u00a0', '\u3000', '\u2028', '\u2029',
              '\u200b', '\ufeff', '\u1680', '\u2000', '\u202f', '\u205f',
              '\x0b', '\x0c', '\x85']
CONTROLS = [chr(c) for c in list(range(0, 32)) + [0x7f, 0x80, 0x9f]]
BMP = ['\u00e9', '\u00cd', '\u00f1', '\u4e2d', '\u20a1', '\ue000', '\u0378',
       '\ufffd', '\ufffe', '\uffff', '\u0661', '\u00ad', '\u0300', '\u2066',
       '\u0600', '\u1f00', '\u2603', '\u3042', '\uac00', '\u0410', '\u05d0',
       '\u0e01', '\u30fc', '\u2028']
ASTRAL = ['\U0001F600', '\U00020000', '\U0010FFFF', '\U0001D11E',
          '\U000E0001', '\U0001F1FA']
SURROGATES = ['\ud83d', '\ude00', '\ud83d\ude00', '\udbff\udfff', '\ud800']
ASCII = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
         '-_.~!@#$%^&*()[]{}<>?/|+=:;,\'"`\\')


# --- strings ---------------------------------------------------------------

def piece(rng):
    r = rng.random()
    if r < 0.55:
        return ''.join(rng.choice(ASCII) for _ in range(rng.randint(1, 8)))
    if r < 0.70:
        return rng.choice(WHITESPACE)
    if r < 0.78:
        return rng.choice(BMP)
    if r < 0.85:
        return rng.choice(ASTRAL)
    if r < 0.92:
        return rng.choice(SURROGATES)
    return rng.choice(CONTROLS)


def text(rng, clean=0.5, lo=1, hi=30):
    """A string; with probability ``clean`` a tame one."""
    r = rng.random()
    if r < clean:
        alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-'
        s = ''.join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))
        if rng.random() < 0.3:
            s += ' ' + rng.choice(['\u00e9t\u00e9', 'x', '\u4e2d\u6587', 'A'])
        return s
    if r < clean + 0.12:
        # around the 255 code point limit, sometimes multi-byte
        n = rng.choice([253, 254, 255, 255, 256, 257])
        ch = rng.choice(['x', '\u00e9', '\u4e2d', 'a'])
        s = ch * n
        if rng.random() < 0.3:
            s = s[:-1] + rng.choice(['\U0001F600', ' ', '\n'])
        return s
    if r < clean + 0.17:
        return rng.choice(['', ' ', '\n', 'a\n', ' a', 'a ', '\t', '  x  '])
    s = ''.join(piece(rng) for _ in range(rng.randint(1, 6)))
    if rng.random() < 0.1:
        s += '\n'
    return s


# --- IP addresses ------------------------------------------------------------

def ipv4_text(rng):
    if rng.random() < 0.7:
        parts = [str(rng.choice([0, 1, 10, 127, 192, 255, rng.randint(0, 255)]))
                 for _ in range(4)]
    else:
        n = rng.choice([3, 4, 4, 5])
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.5:
                parts.append(str(rng.randint(0, 255)))
            elif r < 0.65:
                parts.append('0' + str(rng.randint(0, 99)))
            elif r < 0.75:
                parts.append(str(rng.randint(256, 999)))
            elif r < 0.8:
                parts.append('0x%x' % rng.randint(0, 255))
            elif r < 0.85:
                parts.append('\u0661')
            elif r < 0.9:
                parts.append('')
            else:
                parts.append(str(rng.randint(0, 255)) + rng.choice(
                    [' ', '\n', '/24', 'a']))
    s = '.'.join(parts)
    if rng.random() < 0.05:
        s = rng.choice([' ', '\t']) + s
    return s


def _addr128(rng):
    r = rng.random()
    groups = [0] * 8
    if r < 0.2:      # IPv4-mapped / compatible / NAT64
        v4 = rng.getrandbits(32) if rng.random() < 0.7 else rng.choice(
            [0, 1, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x01020304])
        groups[6], groups[7] = v4 >> 16, v4 & 0xFFFF
        kind = rng.random()
        if kind < 0.4:
            groups[5] = 0xFFFF
        elif kind < 0.5:
            groups[0], groups[1] = 0x64, 0xFF9B
        elif kind < 0.6:
            groups[4] = 0xFFFF
    elif r < 0.35:
        groups = [rng.getrandbits(16) for _ in range(8)]
    else:
        for i in range(8):
            x = rng.random()
            groups[i] = (0 if x < 0.45 else rng.randint(1, 15) if x < 0.65
                         else rng.getrandbits(16))
        if rng.random() < 0.3:
            groups[0] = rng.choice([0x2001, 0xFE80, 0xFF02, 0x0DB8, 1])
    return groups


def _render_groups(rng, groups, dotted):
    hexes = []
    case = rng.choice(['lower', 'upper', 'mixed'])
    for g in groups:
        h = '%x' % g
        if rng.random() < 0.2:
            h = h.zfill(rng.randint(len(h), 4))
        if case == 'upper' or (case == 'mixed' and rng.random() < 0.5):
            h = h.upper()
        hexes.append(h)
    tail = []
    if dotted:
        v4 = (groups[6] << 16) | groups[7]
        hexes = hexes[:6]
        tail = ['%d.%d.%d.%d' % (v4 >> 24, (v4 >> 16) & 255, (v4 >> 8) & 255,
                                 v4 & 255)]
    # compress one zero run (any run; the longest or another)
    runs = []
    i = 0
    while i < len(hexes):
        if int(hexes[i], 16) == 0:
            j = i
            while j < len(hexes) and int(hexes[j], 16) == 0:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    if runs and rng.random() < 0.75:
        a, b = rng.choice(runs)
        if rng.random() < 0.3 and b - a > 1:
            b = rng.randint(a + 1, b)
        left = ':'.join(hexes[:a])
        right = ':'.join(hexes[b:] + tail)
        return left + '::' + right
    return ':'.join(hexes + tail)


def ipv6_text(rng):
    groups = _addr128(rng)
    dotted = rng.random() < 0.25
    s = _render_groups(rng, groups, dotted)
    if rng.random() < 0.3:
        m = rng.randrange(14)
        if m == 0:
            s = s + ':1'
        elif m == 1:
            s = s.replace('::', ':::', 1) if '::' in s else s + '::1::'
        elif m == 2:
            s = '12345:' + s
        elif m == 3:
            s = s + ':'
        elif m == 4:
            s = s + '%' + rng.choice(['eth0', '1', ''])
        elif m == 5:
            s = '[' + s + ']'
        elif m == 6:
            s = s + '/' + str(rng.choice([0, 64, 128]))
        elif m == 7:
            s = rng.choice([' ', '\t']) + s
        elif m == 8:
            s = s + rng.choice([' ', '\n'])
        elif m == 9:
            s = s.replace(rng.choice('0123456789abcdef'), 'g', 1)
        elif m == 10:
            s = s + ':01.2.3.4'
        elif m == 11:
            s = ':'.join(s.split(':')[1:]) if '::' not in s else s[1:]
        elif m == 12:
            s = s.replace('1', '\u0661', 1)
        else:
            s = s + '.1'
    return s


# --- values by field ----------------------------------------------------------

def wrong_type(rng):
    return rng.choice([
        ('raw', '0'), ('raw', '1'), ('raw', '-1'), ('raw', '1.0'),
        ('raw', '1E2'), ('raw', '-0.0'), ('raw', '1e400'), ('raw', 'NaN'),
        ('raw', 'Infinity'), ('raw', '-Infinity'), ('raw', 'true'),
        ('raw', 'false'), ('raw', 'null'), ('raw', '[]'), ('raw', '{}'),
        ('raw', '["a", 1]'), ('raw', '{"a": null}'), ('raw', '12345678901234567890'),
        ('raw', '[{"b": [true, 2.5]}]')])


def hostname_text(rng):
    r = rng.random()
    if r < 0.6:
        alphabet = 'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-' + (
            '._' if rng.random() < 0.4 else '')
        n = rng.choice([1, 2, 3, 8, 20, 62, 63, 64, 65, 254, 255, 256])
        return ''.join(rng.choice(alphabet) for _ in range(n))
    if r < 0.8:
        return rng.choice(['-ab', 'ab-', 'a', 'ab', 'a.b', 'a_b', '.', '',
                           'ab\n', '\n', 'my-host.example.com', 'A1'])
    return text(rng, clean=0.3)


def field_value(rng, field):
    """('str', python str) or ('raw', JSON text)."""
    if rng.random() < 0.1:
        return wrong_type(rng)
    if field == 'name':
        return 'str', text(rng, clean=0.55)
    if field == 'OS-DCF:diskConfig':
        return 'str', rng.choice(['AUTO', 'MANUAL', 'AUTO', 'MANUAL', 'auto',
                                  'Manual', '', 'AUTO ', ' MANUAL', 'NONE'])
    if field == 'accessIPv4':
        return 'str', (ipv4_text(rng) if rng.random() < 0.9
                       else text(rng, clean=0.2))
    if field == 'accessIPv6':
        return 'str', (ipv6_text(rng) if rng.random() < 0.9
                       else text(rng, clean=0.2))
    if field == 'description':
        if rng.random() < 0.15:
            return 'raw', 'null'
        return 'str', text(rng, clean=0.5, lo=0)
    if field == 'hostname':
        return 'str', hostname_text(rng)
    if field == 'pinned_availability_zone':
        r = rng.random()
        if r < 0.35:
            return 'raw', 'null'
        if r < 0.6:
            return 'str', 'nova'
        if r < 0.75:
            return 'str', rng.choice(['', 'other', 'NOVA', 'nova '])
        return 'str', text(rng, clean=0.5)
    raise ValueError(field)


# --- serialising -------------------------------------------------------------

def ws(rng):
    r = rng.random()
    if r < 0.6:
        return ''
    if r < 0.85:
        return ' '
    return ''.join(rng.choice(' \t\n\r') for _ in range(rng.randint(1, 4)))


INVALID_UTF8_MARK = '\U0010FFFE'   # replaced by invalid UTF-8 in encode_body
INVALID_UTF8 = [b'\xff', b'\xc0\xaf', b'\xed\xa0\x80', b'\xe2\x82', b'\x80',
                b'\xf4\x90\x80\x80', b'\xfe']


def enc_string(rng, s, escape_all=False):
    out = ['"']
    if rng.random() < 0.004:
        s = s + INVALID_UTF8_MARK
    p_escape = 1.0 if escape_all else rng.choice([0.0, 0.0, 0.0, 0.05, 0.3])
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == '\\':
            out.append('\\\\')
        elif 0xD800 <= o <= 0xDFFF:
            out.append('\\u%04x' % o if rng.random() < 0.5 else '\\u%04X' % o)
        elif o < 0x20:
            if rng.random() < 0.02:
                out.append(ch)                   # raw: malformed JSON
            else:
                short = {'\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b',
                         '\f': '\\f'}.get(ch)
                out.append(short if short and rng.random() < 0.7
                           else '\\u%04x' % o)
        elif rng.random() < p_escape:
            if o > 0xFFFF:
                v = o - 0x10000
                out.append('\\u%04x\\u%04x' % (0xD800 + (v >> 10),
                                               0xDC00 + (v & 0x3FF)))
            elif ch == '/' and rng.random() < 0.5:
                out.append('\\/')
            else:
                out.append('\\u%04x' % o)
        else:
            out.append(ch)
    out.append('"')
    return ''.join(out)


def enc_value(rng, value):
    kind, v = value
    return enc_string(rng, v) if kind == 'str' else v


def enc_object(rng, items):
    """items: [(key str, JSON text)] in the order to write them."""
    if not items:
        return '{' + ws(rng) + '}'
    parts = []
    for k, v in items:
        key = enc_string(rng, k, escape_all=rng.random() < 0.03)
        parts.append(ws(rng) + key + ws(rng) + ':' + ws(rng) + v + ws(rng))
    return '{' + ','.join(parts) + '}'


def server_object(rng, version):
    n_fields = rng.choice([0, 1, 1, 1, 2, 2, 3, 4])
    if version == 'v2' or rng.random() < 0.5:
        pool = FIELDS[:4] * 3 + FIELDS[4:]
    else:
        pool = FIELDS
    keys = []
    for _ in range(n_fields):
        k = rng.choice(pool)
        if k not in keys:
            keys.append(k)
    items = [(k, enc_value(rng, field_value(rng, k))) for k in keys]
    if rng.random() < 0.08:
        items.append((rng.choice(EXTRA_KEYS), enc_value(
            rng, ('str', text(rng)) if rng.random() < 0.7 else wrong_type(rng))))
    if items and rng.random() < 0.07:
        # a duplicate key: Python keeps the last one
        k = rng.choice([k for k, _ in items])
        kf = k if k in FIELDS else 'name'
        items.append((k, enc_value(rng, field_value(rng, kf))))
    rng.shuffle(items)
    return enc_object(rng, items)


def body_text(rng, version):
    r = rng.random()
    if r < 0.03:
        return enc_value(rng, wrong_type(rng))
    if r < 0.05:
        return enc_object(rng, [(rng.choice(EXTRA_KEYS[:4]),
                                 server_object(rng, version))])
    if r < 0.08:
        return enc_object(rng, [('server', enc_value(rng, wrong_type(rng)))])
    items = [('server', server_object(rng, version))]
    if rng.random() < 0.04:
        items.append((rng.choice(EXTRA_KEYS[:4]), enc_value(
            rng, wrong_type(rng))))
    if rng.random() < 0.03:
        items.append(('server', server_object(rng, version)))
    rng.shuffle(items)
    return ws(rng) + enc_object(rng, items) + ws(rng)


def encode_body(rng, text):
    # lone surrogates were written as escapes, so this cannot fail
    data = text.encode('utf-8')
    mark = INVALID_UTF8_MARK.encode('utf-8')
    while mark in data:
        data = data.replace(mark, rng.choice(INVALID_UTF8), 1)
    return data


def gen_case(seed, i):
    rng = random.Random('%s:%d' % (seed, i))
    if rng.random() < 0.08:
        version = '2.%d' % rng.randint(1, 104)
    else:
        version = rng.choice(VERSIONS)
    forms = V2_FORMS if version == 'v2' else V21_FORMS
    form, hdr = rng.choice(forms)
    body = encode_body(rng, body_text(rng, version))
    return Case('gen-%d' % i, group='b', body=body, version=version,
                url_form=form, header_form=hdr)


def generated_cases(seed, count):
    return [gen_case(seed, i) for i in range(count)]
