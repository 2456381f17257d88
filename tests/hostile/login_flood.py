#!/usr/bin/env python3
"""Connection-flood test for ferryd: connections that never log in lock nobody out.

Starts ferryd on a free loopback port (default budgets: 512 pre-login connections, 64 per
address, 3 s to the first Login PDU), then holds a flood open from other loopback
addresses: 1,500 idle TCP connections (no Login PDU) and 50 senders of one byte of a Login
PDU per second. Every connection ferryd closes is opened again, so the flood stays at
full strength. While it is held:
  - a real initiator (libiscsi's iscsi-inq) must log in, INQUIRE and log out within 1 s,
    three times in a row;
  - qemu-io (libiscsi) must log in, write a pattern and read it back;
  - ferryd must hold at most its pre-login budget (its fd count shows it).
After the flood ferryd's fd count must be back where it started and its RSS near it, and
its log must hold a few summary lines, not one per connection.

Prints: connections held, login times, RSS and fds before / during / after.
Usage: login_flood.py PATH/TO/ferryd
Exit: 0 passed, 1 failed, 77 skipped (a tool is missing or RLIMIT_NOFILE too low).
Python 3 standard library; loopback only; everything started is stopped by PID at exit.
"""

import atexit
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True

TARGET = "iqn.2026-11.org.ferry:demo"
IDLE = 1500
SLOW = 50
IDLE_SOURCES = ["127.0.0.%d" % i for i in range(2, 26)]  # 24 addresses, ~63 each
SLOW_SOURCES = ["127.0.0.26", "127.0.0.27"]
# How fast the flood replaces the connections ferryd closes: first hot (each new one evicts
# the oldest within milliseconds), then slow enough that connections live until the
# first-PDU deadline (3 s) closes them.
HOT_PER_S, HOT_S = 2000, 2.0
SLOW_PER_S, SLOW_S = 100, 4.5
FIRST_PDU_DEADLINE_S = 3.0
LOGIN_LIMIT_S = 1.0
# A Login PDU's first bytes (opcode 0x43: immediate Login Request, T=1, CSG 1 NSG 3), sent
# one a second: the whole 48-byte header would take 48 s.
SLOW_BYTES = bytes([0x43, 0x87, 0x00, 0x00]) + bytes(44)


def log(msg):
    print("login_flood: " + msg, flush=True)


def skip(msg):
    print("SKIPPED: " + msg, file=sys.stderr, flush=True)
    sys.exit(77)


def proc_figures(pid):
    """(RSS in KiB, open fds) of a process, from /proc."""
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid))


class Flood:
    """Holds IDLE idle connections and SLOW one-byte-a-second senders open from a thread,
    reopening whatever ferryd closes."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.open = 0  # connections open now (client side)
        self.opened = 0
        self.closed_by_target = 0
        self.connect_errors = 0
        self.rate = HOT_PER_S
        self.oldest_close_s = 0.0  # the age of the oldest connection ferryd closed
        self.deadline_closes = 0  # closed at about the first-PDU deadline
        self.want = []  # (kind, source) still to open
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.want = [("idle", IDLE_SOURCES[i % len(IDLE_SOURCES)]) for i in range(IDLE)]
        self.want += [("slow", SLOW_SOURCES[i % len(SLOW_SOURCES)]) for i in range(SLOW)]
        self.thread.start()

    def connect(self, kind, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((source, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.connect_errors += 1
            self.want.append((kind, source))
            return
        self.sel.register(s, selectors.EVENT_READ,
                          {"kind": kind, "source": source, "sent": 0, "t": time.monotonic()})
        self.open += 1
        self.opened += 1

    def drop(self, s, data, by_target):
        self.sel.unregister(s)
        s.close()
        self.open -= 1
        if by_target:
            self.closed_by_target += 1
            age = time.monotonic() - data["t"]
            self.oldest_close_s = max(self.oldest_close_s, age)
            self.deadline_closes += age >= FIRST_PDU_DEADLINE_S - 0.1
            self.want.append((data["kind"], data["source"]))

    def run(self):
        budget, tick, next_byte = 0.0, time.monotonic(), time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            budget = min(self.rate, budget + (now - tick) * self.rate)
            tick = now
            # The first wave goes out at once; replacements at REOPEN_PER_S.
            while self.want and (self.opened < IDLE + SLOW or budget >= 1):
                kind, source = self.want.pop()
                if self.opened >= IDLE + SLOW:
                    budget -= 1
                self.connect(kind, source)
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    gone = key.fileobj.recv(4096) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    self.drop(key.fileobj, key.data, True)
            if now >= next_byte:  # one byte a second from each slow sender
                next_byte = now + 1.0
                for key in list(self.sel.get_map().values()):
                    d = key.data
                    if d["kind"] == "slow" and d["sent"] < len(SLOW_BYTES):
                        try:
                            key.fileobj.send(SLOW_BYTES[d["sent"]:d["sent"] + 1])
                            d["sent"] += 1
                        except OSError:
                            pass
        for key in list(self.sel.get_map().values()):
            self.drop(key.fileobj, key.data, False)

    def end(self):
        self.stop.set()
        self.thread.join(timeout=10)


def start_ferryd(ferryd, work, procs):
    log_path = os.path.join(work, "ferryd.log")
    with open(log_path, "wb") as logf:
        p = subprocess.Popen(
            [ferryd, "--state-dir", os.path.join(work, "state"), "--listen", "127.0.0.1:0",
             "--lun-size", "64M"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            m = re.search(r"^ferryd: serving .* on 127\.0\.0\.1:(\d+) ", f.read(), re.M)
        if m:
            return p, int(m.group(1)), log_path
        if p.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError("ferryd did not start; see " + log_path)


def run_tool(argv, procs, timeout):
    """Runs a tool (stopped by PID if it outlives `timeout`); returns (seconds, rc, output)."""
    t = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return time.monotonic() - t, -1, out.decode(errors="replace") + " (timed out)"
    return time.monotonic() - t, p.returncode, out.decode(errors="replace")


def logins(url, procs, phase):
    for i in range(3):
        secs, rc, out = run_tool(["iscsi-inq", url], procs, 10)
        log("%s flood: iscsi-inq #%d: rc %d in %.3f s" % (phase, i + 1, rc, secs))
        if rc != 0 or "FERRY" not in out:
            raise AssertionError("iscsi-inq failed under the flood:\n" + out)
        if secs > LOGIN_LIMIT_S:
            raise AssertionError("login + INQUIRY took %.3f s (limit %.1f s)" % (
                secs, LOGIN_LIMIT_S))


def check_flood_and_initiator(pid, port, procs, figures):
    url = "iscsi://127.0.0.1:%d/%s/0" % (port, TARGET)
    flood = Flood(port)
    flood.start()
    try:
        time.sleep(HOT_S)
        figures["during"] = proc_figures(pid)
        log("hot flood: %d of its %d connections open, %d closed by ferryd and reopened "
            "(%d/s)" % (flood.open, IDLE + SLOW, flood.closed_by_target, HOT_PER_S))
        if flood.closed_by_target == 0:
            raise AssertionError("ferryd closed none of the flood's connections")
        logins(url, procs, "hot")
        flood.rate = SLOW_PER_S
        flood.oldest_close_s, flood.deadline_closes = 0.0, 0
        time.sleep(SLOW_S)
        log("slow flood: %d connections open; %d closed at the first-PDU deadline, the "
            "oldest closed at %.2f s" % (flood.open, flood.deadline_closes,
                                          flood.oldest_close_s))
        if flood.deadline_closes == 0:
            raise AssertionError("no connection was closed by the first-PDU deadline")
        # Ages are counted from connect(): a SYN that found ferryd's accept queue full is
        # sent again by TCP 1 s later, and again 2 s after that, and the deadline runs from
        # accept. Still far below the 15 s login timeout this deadline exists to undercut.
        if flood.oldest_close_s > FIRST_PDU_DEADLINE_S + 3.5:
            raise AssertionError("a connection without a Login PDU lived %.2f s" % (
                flood.oldest_close_s))
        logins(url, procs, "slow")
        secs, rc, out = run_tool(
            ["qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 256k", "-c",
             "read -P 0x5a 1M 256k", url], procs, 20)
        log("qemu-io write + read-back under the flood: rc %d in %.3f s" % (rc, secs))
        if rc != 0 or "Pattern verification failed" in out:
            raise AssertionError("I/O under the flood failed:\n" + out)
        rss, fds = proc_figures(pid)
        figures["during"] = (max(figures["during"][0], rss), max(figures["during"][1], fds))
        # Pre-login budget 512 plus the few sessions, the listener and the state files.
        if fds > figures["before"][1] + 512 + 16:
            raise AssertionError("ferryd holds %d fds under the flood: above its budget" % fds)
        log("flood: %d connections opened in all, %d closed by ferryd, %d connect errors" % (
            flood.opened, flood.closed_by_target, flood.connect_errors))
    finally:
        flood.end()


def settle(pid, before_fds, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rss, fds = proc_figures(pid)
        if fds <= before_fds:
            return rss, fds
        time.sleep(0.1)
    return proc_figures(pid)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ferryd = sys.argv[1]
    if not os.access(ferryd, os.X_OK):
        skip("ferryd is missing: " + ferryd)
    for tool in ("iscsi-inq", "qemu-io"):
        if shutil.which(tool) is None:
            skip(tool + " is missing (scripts/install-deps installs libiscsi-bin, qemu-utils)")
    need = IDLE + SLOW + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            skip("RLIMIT_NOFILE hard limit %d is below the %d descriptors the flood needs" % (
                hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    work = tempfile.mkdtemp(prefix="ferry-flood-", dir="/var/tmp")
    procs = []

    def cleanup():
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.environ.get("FLOOD_KEEP_LOG"):
            shutil.copy(os.path.join(work, "ferryd.log"), os.environ["FLOOD_KEEP_LOG"])
        shutil.rmtree(work, ignore_errors=True)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    started = time.monotonic()
    ferryd_proc, port, log_path = start_ferryd(ferryd, work, procs)
    pid = ferryd_proc.pid
    url = "iscsi://127.0.0.1:%d/%s/0" % (port, TARGET)
    figures = {}
    try:
        # One login first, so that what a session allocates once is in the baseline.
        secs, rc, out = run_tool(["iscsi-inq", url], procs, 10)
        if rc != 0:
            raise AssertionError("iscsi-inq failed before the flood:\n" + out)
        log("iscsi-inq before the flood: %.3f s" % secs)
        time.sleep(0.3)
        figures["before"] = proc_figures(pid)
        check_flood_and_initiator(pid, port, procs, figures)
        figures["after"] = settle(pid, figures["before"][1], 8)
        for k in ("before", "during", "after"):
            log("ferryd %-6s RSS %6.1f MiB, %4d fds" % (k, figures[k][0] / 1024, figures[k][1]))
        if ferryd_proc.poll() is not None:
            raise AssertionError("ferryd died (exit %s)" % ferryd_proc.returncode)
        if figures["after"][1] > figures["before"][1]:
            raise AssertionError("fds not back: %d before, %d after" % (
                figures["before"][1], figures["after"][1]))
        if figures["after"][0] > figures["before"][0] + 32 * 1024:
            raise AssertionError("RSS not back near where it started")
        with open(log_path, errors="replace") as f:
            text = f.read()
        drops = len(re.findall(r"dropped \d+ connections that had not logged in", text))
        lines = text.count("\n")
        log("ferryd log: %d lines, %d of them drop summaries" % (lines, drops))
        if drops == 0:
            raise AssertionError("no drop summary in the log")
        if lines > 60:
            raise AssertionError("ferryd logged %d lines for the flood" % lines)
        ferryd_proc.send_signal(signal.SIGTERM)
        if ferryd_proc.wait(timeout=10) != 0:
            raise AssertionError("ferryd did not stop cleanly")
    except AssertionError as e:
        log("FAIL: %s" % e)
        try:
            with open(log_path, errors="replace") as f:
                print("".join(f.readlines()[-20:]), file=sys.stderr)
        except OSError:
            pass
        return 1
    log("passed in %.1f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
