"""deploy/dev/run, as a newcomer uses it: start it, then paste what it prints.
Every printed curl command must get the answer its comment promises, and the
printed `openstack` settings must make `openstack server list` and
`server set` work through nova-guard (and nova-guard's 400 reach the client);
Ctrl-C (SIGINT) must stop everything.

    dev_run.py ROOT NOVA_GUARD_BIN

Prints "ok NAME" / "FAIL NAME: why" lines. Everything listens on 127.0.0.1.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from checks import Checks, free_port

ROOT, BIN = sys.argv[1:3]
CHECKS = Checks('dev')
report = CHECKS.report


def commands(text):
    """The printed commands, continuation lines joined, each with the comment
    line above it."""
    out, comment, current = [], '', None
    for line in text.splitlines():
        stripped = line.strip()
        if current is not None:
            current += ' ' + stripped.rstrip('\\').strip()
            if not stripped.endswith('\\'):
                out.append((comment, current))
                current = None
            continue
        if stripped.startswith('#'):
            comment = stripped
        elif re.match(r'(curl|export|\S*/openstack) ', stripped):
            if stripped.endswith('\\'):
                current = stripped.rstrip('\\').strip()
            else:
                out.append((comment, stripped))
    return out


def main():
    env = {k: v for k, v in os.environ.items() if not k.startswith(('NOVA_GUARD_', 'OS_'))}
    env.update(NOVA_GUARD_BIN=BIN, NOVA_GUARD_LISTEN='127.0.0.1:%d' % free_port(),
               NOVA_DEV_SERVERS='1')
    if os.environ.get('NOVA_GUARD_DEV_VENV'):
        env['NOVA_GUARD_DEV_VENV'] = os.environ['NOVA_GUARD_DEV_VENV']
    started = time.monotonic()
    run = subprocess.Popen([os.path.join(ROOT, 'deploy', 'dev', 'run')], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    errors = []
    threading.Thread(target=lambda: errors.extend(run.stderr), daemon=True).start()
    printed = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = run.stdout.readline()
        if not line:
            break
        printed.append(line)
        if 'Ctrl-C stops both' in line:
            break
    text = ''.join(printed)
    if 'Ctrl-C stops both' not in text:
        report('deploy/dev/run starts Nova and nova-guard', ''.join(errors)[-2000:])
        run.kill()
        return 1
    report('deploy/dev/run starts Nova and nova-guard (%.0f s)' % (time.monotonic() - started))

    cmds = commands(text)
    exports = [c for _, c in cmds if c.startswith('export ')]
    report('it prints the openstack settings', None if len(exports) == 1 else exports)
    prelude = (exports[0] + '; ') if exports else ''
    for comment, cmd in cmds:
        if cmd.startswith('export '):
            continue
        r = subprocess.run(['bash', '-c', prelude + cmd], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        short = cmd if len(cmd) < 100 else cmd[:97] + '...'
        if cmd.startswith('curl'):
            status = re.search(r'^HTTP/1\.1 (\d+)', r.stdout, re.M)
            want = re.search(r'\b(\d{3})\b', comment)
            report('printed %s gets %s' % (short, want and want.group(1)),
                   None if status and want and status.group(1) == want.group(1)
                   else out[-500:])
        elif "' X'" in cmd:
            report('printed %s gets nova-guard\'s 400' % short,
                   None if r.returncode != 0 and "An invalid 'name' value" in out
                   else out[-500:])
        elif ' server list' in cmd:
            report('printed %s lists the server' % short,
                   None if r.returncode == 0 and 'ACTIVE' in out else out[-500:])
        else:
            report('printed %s works' % short, None if r.returncode == 0 else out[-500:])

    # Ctrl-C: both stop, and run exits.
    os.killpg(run.pid, signal.SIGINT)
    try:
        run.wait(40)
        report('Ctrl-C stops both')
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        report('Ctrl-C stops both', 'still running after 40 s')
    return 1 if CHECKS.failures else 0


if __name__ == '__main__':
    sys.exit(main())
