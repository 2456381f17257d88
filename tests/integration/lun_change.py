#!/usr/bin/env python3
"""Run-time LUN changes seen by a logged-in session (SPC-4 6.33, SAM-5 5.14).

Usage: lun_change.py PORT FERRYCTL SOCKET. Logs in to iqn.2026-11.org.ferry:acl as
iqn.2026-11.org.ferry:good (its ACL maps target LUN 3 as 0 and 4 as 1), then with
`ferryctl lun remove` / `lun add` takes LUN 4 away and back: each change must reach the
open session as a unit attention REPORTED LUNS DATA HAS CHANGED (06h/3Fh/0Eh), and REPORT
LUNS must follow. Uses the raw initiator of tests/hostile/hostile_pdus.py."""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))
import hostile_pdus as h  # noqa: E402

h.INITIATOR = "iqn.2026-11.org.ferry:good"
h.TARGET = "iqn.2026-11.org.ferry:acl"
REPORT_LUNS = bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])


def report_luns(c):
    st, data, sense = c.command(REPORT_LUNS, 0, read_len=4096)
    if st != h.GOOD:
        st, data, sense = c.command(REPORT_LUNS, 0, read_len=4096)
    assert st == h.GOOD, "REPORT LUNS: status %#x sense %s" % (st, sense.hex())
    n = struct.unpack(">I", data[:4])[0] // 8
    return sorted(struct.unpack(">H", data[8 + 8 * i:10 + 8 * i])[0] for i in range(n))


def expect_ua(c, lun):
    st, _, sense = c.command(h.CDB_TUR, lun)
    assert st == h.CHECK_CONDITION, "no unit attention after the change (status %#x)" % st
    key, asc = sense[2] & 0x0F, sense[12:14]
    assert key == 6 and asc == b"\x3f\x0e", "sense %s, want 06/3F0E" % sense.hex()
    st, _, _ = c.command(h.CDB_TUR, lun)
    assert st == h.GOOD, "the unit attention is reported once, then GOOD (got %#x)" % st


def main():
    port, ferryctl, sock = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    c = h.Conn(port, "lun-change")
    c.login(h.GOOD_OP_KEYS)
    assert report_luns(c) == [0, 1], "before: %s" % report_luns(c)

    def ctl(*args):
        subprocess.run([ferryctl, "--socket", sock, "lun", *args], check=True)

    ctl("remove", h.TARGET, "4")
    expect_ua(c, 0)
    assert report_luns(c) == [0], "after remove: %s" % report_luns(c)
    ctl("add", h.TARGET, "4", "r2")
    expect_ua(c, 0)
    assert report_luns(c) == [0, 1], "after add: %s" % report_luns(c)
    st, _, _ = c.command(h.CDB_TUR, 1)
    assert st in (h.GOOD, h.CHECK_CONDITION), "LUN 1 is back"
    c.logout()
    print("ok: LUN removed and added while a session was open: REPORTED LUNS DATA HAS CHANGED, "
          "REPORT LUNS follows")


if __name__ == "__main__":
    main()
