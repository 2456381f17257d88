#!/usr/bin/env python3
"""ferryd's sd_notify sequence, against a NOTIFY_SOCKET listener of this test's own (no
systemd needed): STATUS= while starting; READY=1 (with STATUS=) only once an initiator can log
in and the admin socket answers; WATCHDOG=1 every half WATCHDOG_USEC, and none without it;
RELOADING=1 + MONOTONIC_USEC= then READY=1 around a SIGHUP reload, a refused one included;
STOPPING=1 on SIGTERM.

Usage: notify_test.py FERRYD. Exit 0 pass, 1 fail, 77 skipped (iscsi-inq missing).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# SIGHUP reloads the configuration (RELOADING=1 ... READY=1). Set to False to skip that part on
# a ferryd whose SIGHUP does not reload.
CHECK_RELOAD = True
IQN = "iqn.2026-11.org.ferry:notify"
CONFIG = {
    "backstores": {"ram0": {"type": "ram", "size": "64M"}},
    "targets": {IQN: {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
                      "luns": [{"lun": 0, "backstore": "ram0"}]}},
}
WATCHDOG_USEC = 400000  # pings expected every 200 ms


def fail(msg, log=None):
    print("FAIL: " + msg, file=sys.stderr)
    if log and os.path.exists(log):
        with open(log) as f:
            sys.stderr.write("".join(f.readlines()[-20:]))
    sys.exit(1)


class Listener:
    """The service manager's end: a Unix datagram socket collecting (time, fields) pairs."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def poll(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key, timeout, proc=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return None
            m = self.poll(0.2)
            if m is not None and key in m:
                return m
        return None

    def count(self, key, since):
        return sum(1 for t, m in self.messages if t >= since and key in m)


def start(ferryd, work, name, env_extra):
    sock_path = os.path.join(work, name + ".notify")
    listener = Listener(sock_path)
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    env["NOTIFY_SOCKET"] = sock_path
    env.update(env_extra)
    log = os.path.join(work, name + ".log")
    admin = os.path.join(work, name + ".sock")
    config = os.path.join(work, name + ".json")
    with open(config, "w") as f:
        json.dump(CONFIG, f)
    args = [ferryd, "--config", config, "--state-dir", os.path.join(work, name),
            "--reactors", "2", "--admin-socket", admin]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, listener, log, admin, config


def admin_status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "status"}\n')
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)


def check_ready(proc, listener, log, admin):
    """READY=1 arrives, and at that moment a login works and the admin socket answers."""
    ready = listener.wait_for("READY", 60, proc)
    if ready is None:
        fail("no READY=1 within 60 s (ferryd %s)" % ("exited" if proc.poll() is not None
                                                      else "running"), log)
    if not any("STATUS" in m and "READY" not in m for _, m in listener.messages[:-1]):
        fail("no STATUS= line before READY=1: %s" % listener.messages, log)
    status = ready.get("STATUS", "")
    m = re.search(r"127\.0\.0\.1:(\d+)", status)
    if not m or admin not in status:
        fail("READY=1 without a STATUS= naming the portal and admin socket: %r" % ready, log)
    port = m.group(1)
    # Right after READY=1, with no retry: the portal must take a login and the admin socket
    # must answer.
    inq = subprocess.run(["iscsi-inq", "iscsi://127.0.0.1:%s/%s/0" % (port, IQN)],
                         capture_output=True, text=True, timeout=30)
    if inq.returncode != 0:
        fail("login right after READY=1 failed: %s%s" % (inq.stdout, inq.stderr), log)
    reply = admin_status(admin)
    if "result" not in reply:
        fail("admin socket right after READY=1: %r" % reply, log)
    print("READY=1 (%s); login and admin socket answer at once" % status)
    return port


def check_stop(proc, listener, log):
    proc.send_signal(signal.SIGTERM)
    m = listener.wait_for("STOPPING", 10)
    if m is None:
        fail("no STOPPING=1 within 10 s of SIGTERM", log)
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        fail("ferryd did not exit within 30 s of SIGTERM", log)
    if rc != 0:
        fail("ferryd exited %d after SIGTERM" % rc, log)
    print("STOPPING=1 on SIGTERM (%s), exit 0" % m.get("STATUS", ""))


def check_reload(proc, listener, log, what):
    proc.send_signal(signal.SIGHUP)
    m = listener.wait_for("RELOADING", 10, proc)
    if m is None:
        fail("no RELOADING=1 within 10 s of SIGHUP", log)
    usec = m.get("MONOTONIC_USEC", "")
    now_usec = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
    if not usec.isdigit() or abs(int(usec) - now_usec) > 20e6:
        fail("RELOADING=1 without a MONOTONIC_USEC= of now: %r" % m, log)
    ready = listener.wait_for("READY", 30, proc)
    if ready is None:
        fail("no READY=1 after the reload of %s" % what, log)
    print("SIGHUP, %s: RELOADING=1 (MONOTONIC_USEC=%s), then READY=1 (%s)"
          % (what, usec, ready.get("STATUS", "")))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if shutil.which("iscsi-inq") is None:
        print("SKIPPED: iscsi-inq is missing (apt-get install libiscsi-bin)")
        return 77
    ferryd = sys.argv[1]
    work = tempfile.mkdtemp(prefix="ferry-notify-", dir="/var/tmp")
    procs = []
    try:
        # 1. With a watchdog: the whole sequence.
        proc, listener, log, admin, config = start(ferryd, work, "wd",
                                                   {"WATCHDOG_USEC": str(WATCHDOG_USEC)})
        procs.append(proc)
        check_ready(proc, listener, log, admin)
        since = time.monotonic()
        while time.monotonic() < since + 1.5:
            listener.poll(0.1)
        pings = listener.count("WATCHDOG", since)
        if pings < 4:
            fail("%d WATCHDOG=1 in 1.5 s with WATCHDOG_USEC=%d (want one per 200 ms)"
                 % (pings, WATCHDOG_USEC), log)
        print("%d WATCHDOG=1 in 1.5 s with WATCHDOG_USEC=%d" % (pings, WATCHDOG_USEC))
        if CHECK_RELOAD:
            check_reload(proc, listener, log, "the same file")
            with open(config, "w") as f:
                f.write("{not json")
            check_reload(proc, listener, log, "a broken file (refused)")
        check_stop(proc, listener, log)

        # 2. Without WATCHDOG_USEC: no pings; WATCHDOG_PID of another process: none either.
        for name, extra in (("nowd", {}),
                            ("otherpid", {"WATCHDOG_USEC": str(WATCHDOG_USEC),
                                          "WATCHDOG_PID": str(os.getpid())})):
            proc, listener, log, admin, _ = start(ferryd, work, name, extra)
            procs.append(proc)
            check_ready(proc, listener, log, admin)
            since = time.monotonic()
            while time.monotonic() < since + 1.0:
                listener.poll(0.1)
            if listener.count("WATCHDOG", 0):
                fail("WATCHDOG=1 sent although the watchdog is not ferryd's (%s)" % extra, log)
            print("no WATCHDOG=1 with %s" % (extra or "no WATCHDOG_USEC"))
            check_stop(proc, listener, log)
        print("PASS")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
