# Licensed under the Apache License, Version 2.0.
"""Let Nova build its printable class from another Python's Unicode database.

Nova's name and description rules (nova/api/validation/parameter_types.py)
are built at import time from ``unicodedata.category()``, the only function
of the module it calls, so they follow the Unicode database of the Python
that runs Nova: 13.0 on 3.10, 14.0 on 3.11, 15.0 on 3.12, 15.1 on 3.13.
``stand_in('3.12')``, called before Nova is imported, replaces
``category()`` for the whole process by Unicode 15.0's, read by
``scripts/gen_unicode.py`` from the unicodedata2 sdist of that version (the
same source as nova-guard's tables; the generator checks that source
against real interpreters). Everything else in the module stays the
running interpreter's.

What this cannot stand in for, because it is compiled into the interpreter:
``repr()`` and ``str.isprintable()`` (jsonschema's messages escape
characters as the running Python does), ``str.strip()``/``isspace()``
(Nova strips names with it; White_Space has not changed from 13.0 to 15.1),
and any behaviour of that Python version other than its Unicode database.
"""

import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def stand_in(python):
    """Give this process the category() of Python `python` ('3.10' ...).

    Returns (unicode_version, 'native' | 'stand-in').
    """
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    try:
        import gen_unicode
    finally:
        sys.path.pop(0)
    import unicodedata as real
    if python not in gen_unicode.PYTHONS:
        raise ValueError('unknown Python %r (one of %s)'
                         % (python, ', '.join(sorted(gen_unicode.PYTHONS))))
    version = gen_unicode.PYTHONS[python]
    if real.unidata_version == version:
        return version, 'native'
    if 'nova.api.validation.parameter_types' in sys.modules:
        raise RuntimeError('Nova is already imported: too late to stand in')
    shim = types.ModuleType('unicodedata', real.__doc__)
    shim.__dict__.update({k: v for k, v in vars(real).items()
                          if not k.startswith('__')})
    shim.category = gen_unicode.category_function(version)
    shim.unidata_version = version
    sys.modules['unicodedata'] = shim
    return version, 'stand-in'


def check():
    """Nova's parameter_types saw the module stand_in() put in place."""
    from nova.api.validation import parameter_types
    if parameter_types.unicodedata is not sys.modules['unicodedata']:
        raise RuntimeError('Nova imported another unicodedata')
