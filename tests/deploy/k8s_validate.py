"""Validate every manifest under deploy/kubernetes/ offline, against the
Kubernetes OpenAPI-derived JSON schemas shipped by kubernetes-validate
(strict: unknown fields are errors), for the oldest and newest Kubernetes
versions the examples support; then check what the schemas cannot: the
sidecar really takes the service port, probes have one handler, names are
unique, the nova-guard environment is one nova-guard accepts.

    k8s_validate.py ROOT NOVA_GUARD_BIN

Prints one "ok NAME" or "FAIL NAME: why" line per check; exit 1 on a failure.
"""

import copy
import os
import shutil
import subprocess
import tempfile
import sys

import kubernetes_validate
import yaml
from checks import Checks

# preStop `sleep` (the image has no shell) is in Kubernetes 1.30 and later.
VERSIONS = ['1.30', kubernetes_validate.utils.latest_version()]

ROOT = sys.argv[1]
BIN = sys.argv[2]
K8S = os.path.join(ROOT, 'deploy', 'kubernetes')
FIXTURE = os.path.join(ROOT, 'tests', 'deploy', 'fixtures', 'nova-api-osapi.yaml')

CHECKS = Checks()
report = CHECKS.report


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load(path):
    docs = load_all(path)
    assert len(docs) == 1, path
    return docs[0]


def validate(name, doc):
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = '.'.join(str(p) for p in e.caught.absolute_path)
            report('%s (k8s %s)' % (name, version),
                   '%s: %s' % (path, e.caught.message))
        except Exception as e:  # schema not found, bad document
            report('%s (k8s %s)' % (name, version), repr(e))
        else:
            report('%s (k8s %s)' % (name, version))


# --- strategic merge patch, as kubectl/kustomize apply it ------------------

MERGE_KEYS = {
    'containers': 'name', 'initContainers': 'name', 'volumes': 'name',
    'env': 'name', 'volumeMounts': 'mountPath', 'ports': 'containerPort',
}


def smp(base, patch, key=None):
    if isinstance(patch, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp(out[k], v, k)
            else:
                out[k] = strip_directives(v)
        return out
    if isinstance(patch, list) and isinstance(base, list) and key in MERGE_KEYS:
        if any(isinstance(e, dict) and e.get('$patch') == 'replace' for e in patch):
            return strip_directives([e for e in patch if '$patch' not in e])
        mk = MERGE_KEYS[key]
        out = copy.deepcopy(base)
        for e in patch:
            for i, b in enumerate(out):
                if b.get(mk) == e.get(mk):
                    out[i] = smp(b, e)
                    break
            else:
                out.append(strip_directives(e))
        return out
    return strip_directives(patch)


def strip_directives(v):
    # `$patch` directives go, and so do nulls: a null deletes a field, and
    # where there is none there is nothing to delete.
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items()
                if not k.startswith('$') and x is not None}
    if isinstance(v, list):
        return [strip_directives(x) for x in v]
    return v


# --- checks the schemas cannot make ----------------------------------------

def pod_checks(name, deployment):
    spec = deployment['spec']['template']['spec']
    containers = spec['containers']
    problems = []
    names = [c['name'] for c in containers + spec.get('initContainers', [])]
    if len(names) != len(set(names)):
        problems.append('duplicate container names %s' % names)
    port_names, port_numbers = [], []
    for c in containers:
        for p in c.get('ports', []):
            port_names.append(p.get('name'))
            port_numbers.append(p['containerPort'])
        for probe in ('livenessProbe', 'readinessProbe', 'startupProbe'):
            if probe in c:
                handlers = [h for h in ('exec', 'httpGet', 'tcpSocket', 'grpc')
                            if h in c[probe]]
                if len(handlers) != 1:
                    problems.append('%s %s has handlers %s' % (c['name'], probe, handlers))
                port = c[probe].get('httpGet', {}).get('port')
                if isinstance(port, str) and port not in [
                        p.get('name') for p in c.get('ports', [])]:
                    problems.append('%s %s names unknown port %s' % (c['name'], probe, port))
    dup = {n for n in port_names if n and port_names.count(n) > 1}
    if dup:
        problems.append('duplicate port names %s' % sorted(dup))
    dup = {n for n in port_numbers if port_numbers.count(n) > 1}
    if dup:
        problems.append('port declared twice %s' % sorted(dup))
    report('%s: pod consistency' % name, '; '.join(problems) or None)


def guard(deployment):
    for c in deployment['spec']['template']['spec']['containers']:
        if c['name'] == 'nova-guard':
            return c
    raise AssertionError('no nova-guard container')


def env_of(container):
    return {e['name']: e.get('value', '') for e in container.get('env', [])}


def known_variables():
    out = subprocess.run([BIN, '--help'], capture_output=True, text=True, check=True).stdout
    return {w for line in out.splitlines() for w in line.split()[:1]
            if w.startswith('NOVA_GUARD_')}


KNOWN = known_variables()


def env_check(name, container):
    env = env_of(container)
    unknown = sorted(set(env) - KNOWN)
    clean = {k: v for k, v in os.environ.items() if not k.startswith('NOVA_GUARD_')}
    clean.update({k: v for k, v in env.items() if k in KNOWN})
    r = subprocess.run([BIN, '--check-config'], env=clean, capture_output=True, text=True)
    if r.returncode != 0:
        report('%s: environment passes --check-config' % name, r.stderr.strip())
    else:
        report('%s: environment passes --check-config' % name)
    for var in unknown:
        # A variable of a newer nova-guard than the one under test.
        print('note %s: %s is not known to this nova-guard build' % (name, var))
    return env


def admin_port_check(name, container, env):
    admin = env.get('NOVA_GUARD_ADMIN_LISTEN', '')
    port = int(admin.rsplit(':', 1)[1]) if ':' in admin else None
    declared = {p.get('name'): p['containerPort'] for p in container.get('ports', [])}
    probes = [container.get(p, {}).get('httpGet', {}) for p in
              ('livenessProbe', 'readinessProbe', 'startupProbe')]
    problems = []
    if port is None or declared.get('guard-admin') != port:
        problems.append('guard-admin port %s != NOVA_GUARD_ADMIN_LISTEN %r'
                        % (declared.get('guard-admin'), admin))
    for h in probes:
        if h.get('port') != 'guard-admin':
            problems.append('probe not on the admin port: %s' % h)
    paths = sorted(h.get('path') for h in probes)
    if paths != ['/healthz', '/healthz', '/readyz']:
        problems.append('probe paths %s' % paths)
    report('%s: probes on the admin port' % name, '; '.join(problems) or None)


def self_test():
    """The validation is not vacuous: an unknown field and a wrong type fail."""
    doc = load(os.path.join(K8S, 'gateway', 'deployment.yaml'))
    c = doc['spec']['template']['spec']['containers'][0]
    for bad, why in ((('portz', 1), 'unknown field'), (('ports', 'n-api'), 'wrong type')):
        broken = copy.deepcopy(doc)
        broken['spec']['template']['spec']['containers'][0] = dict(c, **dict([bad]))
        try:
            kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
        except kubernetes_validate.ValidationError:
            report('schema validation refuses a %s' % why)
        else:
            report('schema validation refuses a %s' % why, 'it was accepted')


def grace_check(name, deployment, container, env):
    """preStop pause + nova-guard's drain fit in the pod's grace period."""
    spec = deployment['spec']['template']['spec']
    period = spec.get('terminationGracePeriodSeconds', 30)
    pause = container.get('lifecycle', {}).get('preStop', {}).get('sleep', {}).get('seconds', 0)
    grace = env.get('NOVA_GUARD_SHUTDOWN_GRACE', '30s')
    drain = int(grace[:-2]) / 1000 if grace.endswith('ms') else int(grace[:-1]) * {
        's': 1, 'm': 60, 'h': 3600}[grace[-1]]
    report('%s: preStop %ss + drain %s fit in terminationGracePeriodSeconds %s'
           % (name, pause, grace, period),
           None if pause + drain < period else 'they do not')


def duration(value):
    return int(value[:-2]) / 1000 if value.endswith('ms') else int(value[:-1]) * {
        's': 1, 'm': 60, 'h': 3600}[value[-1]]


def mebibytes(quantity):
    units = {'Ki': 1 / 1024, 'Mi': 1, 'Gi': 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def memory_check(name, container, env):
    """The memory limit covers NOVA_GUARD_MAX_CONNECTIONS at the worst case
    docs/operations.md ("Sizing") gives: 30 MiB, plus per connection its
    largest head and body, a 32 KiB read buffer of Nova's answer and 16 KiB
    of answer waiting to be written."""
    conns = int(env.get('NOVA_GUARD_MAX_CONNECTIONS', '1024'))
    per = (int(env.get('NOVA_GUARD_MAX_HEADER_BYTES', '65536'))
           + int(env.get('NOVA_GUARD_MAX_BODY_BYTES', '114688')) + 32768 + 16384) / 2**20
    worst = 30 + conns * per
    limit = mebibytes(container['resources']['limits']['memory'])
    report('%s: memory limit %.0f MiB covers %d connections at the worst (%.0f MiB)'
           % (name, limit, conns, worst), None if worst <= limit else 'it does not')


def ordering_check(name, deployment, guard_container, env):
    """nova-osapi's preStop waits for nova-guard to be gone: on nova-guard's
    admin port, for longer than nova-guard's preStop and drain, and within
    the grace period (rollout.py runs it)."""
    spec = deployment['spec']['template']['spec']
    period = spec.get('terminationGracePeriodSeconds', 30)
    osapi = [x for x in spec['containers'] if x['name'] == 'nova-osapi'][0]
    command = osapi.get('lifecycle', {}).get('preStop', {}).get('exec', {}).get('command', [])
    pause = guard_container.get('lifecycle', {}).get('preStop', {}).get('sleep', {}).get(
        'seconds', 0)
    drain = duration(env.get('NOVA_GUARD_SHUTDOWN_GRACE', '30s'))
    admin = env.get('NOVA_GUARD_ADMIN_LISTEN', '')
    problems = []
    if len(command) != 5 or command[:2] != ['python3', '-c']:
        problems.append('not the waiting hook: %s' % command)
    else:
        if command[3] != '127.0.0.1:%s' % admin.rsplit(':', 1)[-1]:
            problems.append('waits on %s, admin listener is %s' % (command[3], admin))
        bound = float(command[4])
        if not pause + drain < bound < period:
            problems.append('wait bound %ss not between preStop %ss + drain %ss and the '
                            'grace period %ss' % (bound, pause, drain, period))
    report('%s: nova-osapi stops only after nova-guard (preStop waits on the admin port, '
           'bounded within terminationGracePeriodSeconds %s)' % (name, period),
           '; '.join(problems) or None)


def kustomize_check(sidecar_dir, expected):
    """post-render.sh, run as Helm runs it, with kubectl's own kustomize."""
    if shutil.which('kubectl') is None:
        print('note sidecar: no kubectl here; post-render.sh is checked through the '
              'strategic-merge rules above only')
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, 'sidecar')
        shutil.copytree(sidecar_dir, d)
        with open(FIXTURE) as f:
            r = subprocess.run([os.path.join(d, 'post-render.sh')], stdin=f,
                               capture_output=True, text=True, timeout=120)
        left = os.path.exists(os.path.join(d, 'all.yaml'))
    if r.returncode != 0:
        report('sidecar: post-render.sh (kubectl kustomize)', r.stderr.strip()[-500:])
        return
    out = [d for d in yaml.safe_load_all(r.stdout) if d]

    def by_name(d):  # kustomize puts added containers first: order is not meaning
        d = copy.deepcopy(d)
        d['spec']['template']['spec']['containers'].sort(key=lambda c: c['name'])
        return d
    report('sidecar: post-render.sh gives the patched Deployment (kubectl kustomize)',
           None if len(out) == 1 and by_name(out[0]) == by_name(expected)
           else 'kustomize and the expected merge differ')
    report('sidecar: post-render.sh leaves nothing behind', 'all.yaml left' if left else None)


def main():
    self_test()
    # (b) the gateway
    gw = os.path.join(K8S, 'gateway')
    kustomization = load(os.path.join(gw, 'kustomization.yaml'))
    listed = sorted(kustomization['resources'])
    present = sorted(f for f in os.listdir(gw) if f.endswith('.yaml') and f != 'kustomization.yaml')
    report('gateway: kustomization lists every manifest',
           None if listed == present else '%s != %s' % (listed, present))
    if shutil.which('kubectl'):
        r = subprocess.run(['kubectl', 'kustomize', gw], capture_output=True, text=True,
                           timeout=120)
        built = [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []
        files = [d for f in listed for d in load_all(os.path.join(gw, f))]
        key = lambda d: (d['kind'], d['metadata']['name'])  # noqa: E731
        report('gateway: kubectl kustomize builds the same objects',
               None if r.returncode == 0 and sorted(built, key=key) == sorted(files, key=key)
               else (r.stderr.strip()[-300:] or 'they differ'))
    kinds = {}
    for f in listed:
        for doc in load_all(os.path.join(gw, f)):
            kinds.setdefault(doc['kind'], []).append(doc)
            validate('gateway/%s %s/%s' % (f, doc['kind'], doc['metadata']['name']), doc)
    want = {'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler',
            'NetworkPolicy'}
    report('gateway: has %s' % ', '.join(sorted(want)),
           None if want <= set(kinds) else 'missing %s' % sorted(want - set(kinds)))
    dep = kinds['Deployment'][0]
    pod_checks('gateway', dep)
    c = guard(dep)
    env = env_check('gateway', c)
    admin_port_check('gateway', c, env)
    grace_check('gateway', dep, c, env)
    memory_check('gateway', c, env)
    res = c.get('resources', {})
    report('gateway: requests and limits set',
           None if {'cpu', 'memory'} <= set(res.get('requests', {}))
           and {'cpu', 'memory'} <= set(res.get('limits', {})) else res)
    sel = dep['spec']['selector']['matchLabels']
    for kind in ('Service', 'PodDisruptionBudget', 'NetworkPolicy'):
        doc = kinds[kind][0]
        s = doc['spec'].get('selector') or doc['spec'].get('podSelector')
        s = s.get('matchLabels', s)
        report('gateway: %s selects the Deployment\'s pods' % kind,
               None if s == sel else '%s != %s' % (s, sel))
    hpa = kinds['HorizontalPodAutoscaler'][0]['spec']['scaleTargetRef']
    report('gateway: HPA scales the Deployment',
           None if hpa['name'] == dep['metadata']['name'] else hpa)
    svc = kinds['Service'][0]['spec']['ports'][0]
    declared = {p['name']: p['containerPort'] for p in c['ports']}
    report('gateway: Service targets nova-guard\'s listener',
           None if declared.get(svc['targetPort']) == int(env['NOVA_GUARD_LISTEN'].rsplit(':', 1)[1])
           else svc)
    sc = c.get('securityContext', {})
    pod_sc = dep['spec']['template']['spec'].get('securityContext', {})
    report('gateway: non-root, read-only, no capabilities',
           None if pod_sc.get('runAsNonRoot') and sc.get('readOnlyRootFilesystem')
           and sc.get('allowPrivilegeEscalation') is False
           and sc.get('capabilities', {}).get('drop') == ['ALL'] else sc)

    # (a) the sidecar, through the post-renderer's patch (older charts)
    sd = os.path.join(K8S, 'sidecar')
    base = load(FIXTURE)
    validate('fixture nova-api-osapi', base)
    patch = load(os.path.join(sd, 'nova-api-osapi-patch.yaml'))
    patched = smp(base, patch)
    validate('sidecar patch applied to nova-api-osapi', patched)
    kustomize_check(sd, patched)
    pod_checks('sidecar patch', patched)
    c = guard(patched)
    env = env_check('sidecar patch', c)
    admin_port_check('sidecar patch', c, env)
    grace_check('sidecar patch', patched, c, env)
    memory_check('sidecar patch', c, env)
    ordering_check('sidecar patch', patched, c, env)
    chart_hook = [x for x in base['spec']['template']['spec']['containers']
                  if x['name'] == 'nova-osapi'][0]['lifecycle']['preStop']['exec']['command']
    report('fixture: nova-osapi has the chart\'s preStop (/tmp/nova-api.sh stop)',
           None if chart_hook == ['/tmp/nova-api.sh', 'stop'] else chart_hook)
    osapi = [x for x in patched['spec']['template']['spec']['containers']
             if x['name'] == 'nova-osapi'][0]
    listen_port = int(env['NOVA_GUARD_LISTEN'].rsplit(':', 1)[1])
    n_api = [p for x in patched['spec']['template']['spec']['containers']
             for p in x.get('ports', []) if p.get('name') == 'n-api']
    report('sidecar patch: nova-guard holds the service port n-api (8774)',
           None if listen_port == 8774 and n_api == [
               p for p in c['ports'] if p.get('name') == 'n-api'] and len(n_api) == 1
           else n_api)
    uwsgi = load(os.path.join(sd, 'values-uwsgi-loopback.yaml'))
    sock = uwsgi['conf']['nova_api_uwsgi']['uwsgi']['http-socket']
    report('sidecar patch: nova-api on loopback, where nova-guard forwards',
           None if sock.startswith('127.0.0.1:')
           and env['NOVA_GUARD_UPSTREAM'] == 'http://%s' % sock else (sock, env['NOVA_GUARD_UPSTREAM']))
    probe_ports = [osapi[p]['exec']['command'][2] for p in ('livenessProbe', 'readinessProbe')]
    report('sidecar patch: nova-osapi probed on loopback',
           None if all('http://%s/' % sock in p for p in probe_ports) else probe_ports)

    # (a) the sidecar, through the chart's own pod.extraContainers (newer charts)
    values = load(os.path.join(sd, 'values-nova-guard.yaml'))
    extra = values['pod']['extraContainers']['nova_osapi']
    rendered = copy.deepcopy(base)
    spec = rendered['spec']['template']['spec']
    spec['containers'].extend(copy.deepcopy(extra))  # as the template's range does
    spec['terminationGracePeriodSeconds'] = (
        values['pod']['lifecycle']['termination_grace_period']['osapi']['timeout'])
    for x in spec['containers']:
        if x['name'] == 'nova-osapi':  # probes disabled by the values
            x.pop('livenessProbe', None)
            x.pop('readinessProbe', None)
    validate('sidecar values rendered into nova-api-osapi', rendered)
    pod_checks('sidecar values', rendered)
    c2 = guard(rendered)
    env2 = env_check('sidecar values', c2)
    admin_port_check('sidecar values', c2, env2)
    grace_check('sidecar values', rendered, c2, env2)
    a, b = dict(c), dict(c2)
    a.pop('ports'), b.pop('ports')
    report('sidecar: values and patch run the same nova-guard container',
           None if a == b else 'they differ')
    report('sidecar values: same uwsgi socket as the patch',
           None if values['conf'] == uwsgi['conf'] else values['conf'])
    # ...with post-render.sh added for the rollout order (the chart has no
    # value for nova-osapi's preStop).
    both = smp(rendered, patch)
    validate('sidecar values + post-render.sh patch', both)
    pod_checks('sidecar values + patch', both)
    ordering_check('sidecar values + patch', both, guard(both), env_of(guard(both)))
    probes = values['pod']['probes']['api-osapi']['default']
    report('sidecar values: the chart\'s nova-osapi probes are disabled',
           None if not probes['liveness']['enabled'] and not probes['readiness']['enabled']
           else probes)

    return 1 if CHECKS.failures else 0


if __name__ == '__main__':
    sys.exit(main())
