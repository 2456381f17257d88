#!/usr/bin/env python3
"""What one hostile session can make ferryd hold: the CmdSN window and write buffers.

Starts ferryd on a free loopback port, logs in with the raw initiator of hostile_pdus.py and
sends 200 WRITE(10) commands of 32 MiB each (the largest transfer ferryd takes) and 40
immediate ones, and never sends their data. ferryd must hold at most 64 of the first (the
CmdSN window closes: MaxCmdSN stops at ExpCmdSN - 1, later commands are ignored) and 16 of
the second (the rest get Reject, Immediate Command Reject), and its RSS must not grow by the
2.5 GiB those commands claim: a write buffer's pages are touched only as data arrives.

Prints: commands held, MaxCmdSN, RSS before / with the commands held / after logout.
Usage: window_bounds.py PATH/TO/ferryd
Exit: 0 passed, 1 failed, 77 ferryd is missing.
"""

import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_pdus as h  # noqa: E402

WRITES = 200
IMMEDIATE = 40
WINDOW = 64
IMMEDIATE_EXTRA = 16
BLOCKS = 65535  # WRITE(10): 65,535 blocks of 512 bytes, just under 32 MiB


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def drain(c, seconds):
    """Every PDU the target sends within `seconds`."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            got.append(c.recv(timeout=max(0.05, end - time.monotonic())))
        except h.Silence:
            break
    return got


def hold_commands(ctx, c):
    bs = 512
    for i in range(WRITES):
        hdr, _ = c.scsi_cmd_hdr(h.cdb_write10(i * 8, BLOCKS), 0, write=True, edtl=BLOCKS * bs)
        c.send(hdr)
    got = drain(c, 1.5)
    r2ts = [p for p in got if p.op == h.OP_R2T]
    maxcmdsn = max((p.maxcmdsn for p in got), default=None)
    expcmdsn = max((p.expcmdsn for p in got), default=None)
    h.log("%d WRITEs of 32 MiB without data: %d R2Ts, ExpCmdSN %s, MaxCmdSN %s" % (
        WRITES, len(r2ts), expcmdsn, maxcmdsn))
    if len(r2ts) != WINDOW:
        raise AssertionError("want an R2T for each of the %d commands of the window" % WINDOW)
    if maxcmdsn is None or (maxcmdsn + 1) & 0xFFFFFFFF != expcmdsn:
        raise AssertionError("the window did not close (MaxCmdSN %s, ExpCmdSN %s)" % (
            maxcmdsn, expcmdsn))
    for i in range(IMMEDIATE):
        hdr, _ = c.scsi_cmd_hdr(h.cdb_write10(i * 8, BLOCKS), 0, write=True, edtl=BLOCKS * bs,
                                immediate=True)
        c.send(hdr)
    got = drain(c, 1.5)
    rejects = [p for p in got if p.op == h.OP_REJECT and p.hdr[2] == 0x06]
    r2ts = [p for p in got if p.op == h.OP_R2T]
    h.log("%d immediate WRITEs: %d R2Ts, %d Immediate Command Rejects" % (
        IMMEDIATE, len(r2ts), len(rejects)))
    if len(r2ts) != IMMEDIATE_EXTRA or len(rejects) != IMMEDIATE - IMMEDIATE_EXTRA:
        raise AssertionError("want %d immediate commands held and the rest rejected" % (
            IMMEDIATE_EXTRA))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not os.access(sys.argv[1], os.X_OK):
        print("SKIPPED: ferryd is missing: " + sys.argv[1], file=sys.stderr)
        return 77
    work = h.tempfile.mkdtemp(prefix="ferry-window-", dir="/var/tmp")
    ctx = h.Ctx(sys.argv[1], work)

    def cleanup():
        if ctx.proc is not None and ctx.proc.poll() is None:
            ctx.proc.kill()
            ctx.proc.wait()
        h.shutil.rmtree(work, ignore_errors=True)
    h.atexit.register(cleanup)
    if not h.start_ferryd(ctx):
        print("FAIL: ferryd did not start", file=sys.stderr)
        return 1
    pid = ctx.proc.pid
    try:
        c = h.Conn(ctx.port, "window")
        c.login(h.GOOD_OP_KEYS)
        time.sleep(0.2)
        before = rss_kib(pid)
        hold_commands(ctx, c)
        held = rss_kib(pid)
        c.close()
        time.sleep(0.5)
        after = rss_kib(pid)
        h.log("ferryd RSS: %.1f MiB before, %.1f MiB with %d commands of 32 MiB held, %.1f MiB "
              "after" % (before / 1024, held / 1024, WINDOW + IMMEDIATE_EXTRA, after / 1024))
        if held - before > 64 * 1024:
            raise AssertionError("RSS grew by %.1f MiB for commands that sent no data" % (
                (held - before) / 1024))
        c2 = h.Conn(ctx.port, "after")
        c2.login(h.GOOD_OP_KEYS)
        st, _, _ = c2.command(h.CDB_TUR, 0)
        if st not in (h.GOOD, h.CHECK_CONDITION):
            raise AssertionError("a new session is not served (status %#x)" % st)
        c2.logout()
    except (AssertionError, h.Dropped, h.Silence) as e:
        print("FAIL: %s" % e, file=sys.stderr)
        print("\n".join(h.tail_log(ctx)), file=sys.stderr)
        return 1
    h.log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
