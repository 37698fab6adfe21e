"""docs/operations.md is true to the code where no Rust test holds it: the
exit codes are documented; the deployment examples keep what the guide says
of the load balancer in front; every file the guide links to exists.

    docs_check.py ROOT NOVA_GUARD_BIN
"""

import os
import re
import sys
from checks import Checks

ROOT, BIN = sys.argv[1:3]
DOC_PATH = os.path.join(ROOT, 'docs', 'operations.md')
DOC = open(DOC_PATH).read()
FLAT = ' '.join(DOC.split())  # a phrase may be wrapped over lines
CHECKS = Checks('docs')


def report(name, missing):
    CHECKS.report(name, 'missing %s' % ', '.join(sorted(missing)) if missing else None)


def code(name):
    return '`%s`' % name in DOC


# The configuration, log, error and metric tables and the log table's `rule`
# row are held to the code by Rust tests (src/config/tests.rs, tests/docs.rs).
# Here: the exit codes.
report('exit codes 0, 1, 2', {c for c in ('| 0 |', '| 1 |', '| 2 |') if c not in DOC})

# The examples keep what the guide says about the load balancer in front.
def seconds(text):
    m = re.fullmatch(r'(\d+)(ms|s|m|h)', text.strip())
    return int(m.group(1)) * {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600}[m.group(2)]


def read(*parts):
    return open(os.path.join(ROOT, *parts)).read()


haproxy_cfg = read('deploy', 'haproxy', 'haproxy.cfg')
server_timeout = seconds(re.search(r'^\s*timeout server (\S+)', haproxy_cfg, re.M).group(1))
env_file = read('deploy', 'systemd', 'nova-guard.env')
upstream_timeout = seconds(re.search(r'^NOVA_GUARD_UPSTREAM_TIMEOUT=(\S+)', env_file,
                                     re.M).group(1))
report('NOVA_GUARD_UPSTREAM_TIMEOUT of the host example (%ss) below haproxy.cfg\'s '
       'timeout server (%ss)' % (upstream_timeout, server_timeout),
       set() if upstream_timeout < server_timeout else {'a shorter upstream timeout'})
examples = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(ROOT, 'deploy'))
            for f in fs if '.venv' not in d]
wide = set()
for path in examples:
    for m in re.finditer(r'TRUSTED_PROXIES[=\s"]+(?:value:\s*)?"?([0-9./,:a-f]+)',
                         open(path, errors='replace').read()):
        for cidr in m.group(1).split(','):
            if '/' in cidr and int(cidr.rsplit('/', 1)[1]) < 16:
                wide.add('%s in %s' % (cidr, os.path.relpath(path, ROOT)))
report('no example trusts a range wider than /16 in NOVA_GUARD_TRUSTED_PROXIES', wide)

# Links to files of the repository.
links = re.findall(r'\]\((\.\./[^)#]+)', DOC)
report('every linked file exists (%d)' % len(links),
       {link for link in links
        if link != '../BENCHMARKS.md'
        and not os.path.exists(os.path.normpath(os.path.join(ROOT, 'docs', link)))})
if not os.path.exists(os.path.join(ROOT, 'BENCHMARKS.md')):
    print('note docs: BENCHMARKS.md is not in this tree')

sys.exit(1 if CHECKS.failures else 0)
