#!/usr/bin/env python3
# The container runtime's stand-in for the CNI benchmark (test/bench/cni.ts): runs inside the node's
# network namespace, starts each `tabby` invocation with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK),
# as Go's os/exec in containerd; a Node.js spawn forks its whole process and blocks its event loop for
# ~4 ms), feeds the netconf on stdin, and on the child's exit hands the pod's address to the pinger at
# once. Times are CLOCK_MONOTONIC ns taken here — spawn, exit seen (pidfd), ping answered (the pinger's
# receive time) — so the benchmark's own event loop cannot delay an observation.
#   stdin  (JSON lines)  {"op":"run","id":N,"argv":[…],"env":{…},"stdin":"…","ping":true}
#                        {"op":"pinger","argv":[…]}   (re)start the pinger (pinger.py) with this argv
#   stdout (JSON lines)  {"id":N,"code":…,"stdout":…,"stderr":…,"spawn":ns,"exit":ns,"ping":ns|null,"cpuMs":…}
#                        {"pinger":pid} once a pinger runs
import json, os, select, subprocess, sys, time

pinger = None
pbuf = b''
waiting = {}  # ip -> result waiting for its ping
running = {}  # pidfd -> run
outputs = {}  # a running child's stdout/stderr fd -> [fd, bytes so far]
inbuf = b''


def emit(o):
    sys.stdout.write(json.dumps(o) + '\n')
    sys.stdout.flush()


def start(req):
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    acts = [(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1), (os.POSIX_SPAWN_DUP2, w_err, 2)]
    t0 = time.monotonic_ns()
    pid = os.posix_spawn(req['argv'][0], req['argv'], req['env'], file_actions=acts)
    for fd in (r_in, w_out, w_err):
        os.close(fd)
    data = req.get('stdin', '').encode()
    try:
        os.write(w_in, data)  # a netconf fits the pipe's buffer
    except BrokenPipeError:
        pass
    os.close(w_in)
    run = {'id': req['id'], 'pid': pid, 'spawn': t0, 'out': [r_out, b''], 'err': [r_err, b''], 'ping': req.get('ping', False)}
    running[os.pidfd_open(pid)] = run
    outputs[r_out] = run['out']
    outputs[r_err] = run['err']


def drain(slot):
    outputs.pop(slot[0], None)
    while True:
        chunk = os.read(slot[0], 65536)
        if not chunk:
            break
        slot[1] += chunk
    os.close(slot[0])


def finish(pfd):
    run = running.pop(pfd)
    t1 = time.monotonic_ns()
    os.close(pfd)
    drain(run['out'])
    drain(run['err'])
    _, status, ru = os.wait4(run['pid'], 0)
    res = {
        'id': run['id'],
        'code': os.waitstatus_to_exitcode(status),
        'stdout': run['out'][1].decode(errors='replace'),
        'stderr': run['err'][1].decode(errors='replace'),
        'spawn': run['spawn'],
        'exit': t1,
        'ping': None,
        'cpuMs': (ru.ru_utime + ru.ru_stime) * 1000,
    }
    ip = ''
    if run['ping'] and res['code'] == 0:
        try:
            ip = json.loads(res['stdout'])['ips'][0]['address'].split('/')[0]
        except (ValueError, KeyError, IndexError):
            ip = ''
    if ip and pinger:
        waiting[ip] = res
        pinger.stdin.write(('%s\n' % ip).encode())
        pinger.stdin.flush()
    else:
        emit(res)


def on_pinger_line(line):
    parts = line.decode().split()
    if len(parts) < 2 or parts[1] not in waiting:
        return
    res = waiting.pop(parts[1])
    res['ping'] = int(parts[2]) if parts[0] == 'ok' and len(parts) > 2 else None
    emit(res)


stdin = sys.stdin.buffer.raw
while True:
    fds = [stdin] + list(running) + list(outputs) + ([pinger.stdout] if pinger else [])
    r, _, _ = select.select(fds, [], [])
    for f in r:
        if f is stdin:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                if pinger:
                    pinger.kill()
                sys.exit(0)
            inbuf += chunk
            while b'\n' in inbuf:
                line, inbuf = inbuf.split(b'\n', 1)
                req = json.loads(line)
                if req['op'] == 'run':
                    start(req)
                elif req['op'] == 'pinger':
                    if pinger:
                        pinger.kill()
                        pinger.wait()
                    pinger = subprocess.Popen(req['argv'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                    pbuf = b''
                    emit({'pinger': pinger.pid})
        elif pinger and f is pinger.stdout:
            chunk = os.read(pinger.stdout.fileno(), 65536)
            pbuf += chunk
            while b'\n' in pbuf:
                line, pbuf = pbuf.split(b'\n', 1)
                on_pinger_line(line)
        elif f in running:
            finish(f)
        elif f in outputs:  # read while the child runs, so a full pipe never stalls it
            slot = outputs[f]
            chunk = os.read(f, 65536)
            if chunk:
                slot[1] += chunk
            else:
                outputs.pop(f)  # closed early: drain() reads the EOF again and closes it
