#!/usr/bin/env python3
"""Target B changed by `ferryctl config reload` while its initiators are logged in.

Usage: reload_sessions.py PORT FERRYCTL SOCKET CONFIG WORKDIR. CONFIG is ferryd's file:
this script rewrites it (make_config) and reloads after each change, and checks what the
sessions of target B see (SPC-4 6.33 unit attentions, RFC 7143 11.9.1 logout requests):
  LUN added             REPORTED LUNS DATA HAS CHANGED (06h/3Fh/0Eh), REPORT LUNS follows
  write protection on   INQUIRY DATA HAS CHANGED (06h/3Fh/03h)
  ACL drops i2          i2 is asked to log out (Async Message, event 1) and loses its LUNs;
                        i1 goes on without a unit attention
  CHAP required         sessions without CHAP are logged out; a CHAP login works
  CHAP secret changed   the CHAP session is logged out; the new secret logs in
  a file with errors    refused with every error and its JSON path; nothing changes
  target removed        its session is logged out
Target A (served by the same ferryd, with I/O running on it from the caller) is in every
file unchanged. Uses the raw initiator of tests/hostile/hostile_pdus.py."""
import hashlib
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))
import hostile_pdus as h  # noqa: E402

TARGET_A = "iqn.2026-11.org.ferry:a"
TARGET_B = "iqn.2026-11.org.ferry:b"
I1 = "iqn.2026-11.org.ferry:i1"
I2 = "iqn.2026-11.org.ferry:i2"
REPORT_LUNS = bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])
UA_REPORTED_LUNS = (6, 0x3F, 0x0E)
UA_INQUIRY = (6, 0x3F, 0x03)


def make_config(work, b_luns=None, b_acl=None, b_chap=False, with_b=True, extra=None):
    """ferryd's file: target A (unchanged in every version) and target B as asked."""
    c = {
        "nop_interval_s": 5,
        "auth_groups": {"g": {"user": "b-user", "secret_file": os.path.join(work, "secret")}},
        "backstores": {"a0": {"type": "ram", "size": "64M"},
                       "b0": {"type": "ram", "size": "16M"},
                       "b1": {"type": "ram", "size": "8M"}},
        "targets": {
            TARGET_A: {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
                       "luns": [{"lun": 0, "backstore": "a0"}]},
        },
    }
    if with_b:
        b = {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
             "luns": b_luns or [{"lun": 0, "backstore": "b0"}],
             "acls": [{"initiators": b_acl or [I1, I2]}]}
        if b_chap:
            b["auth_group"] = "g"
        c["targets"][TARGET_B] = b
    if extra:
        extra(c)
    return c


class Session(h.Conn):
    def __init__(self, port, initiator, chap=None):
        super().__init__(port, initiator)
        self.initiator = initiator
        self.login_as(initiator, TARGET_B, chap)

    def login_as(self, initiator, target, chap):
        """A normal-session login; `chap` = (user, secret): CHAP with MD5 (RFC 7143 12.1.3)."""
        sec = [("InitiatorName", initiator), ("SessionType", "Normal"), ("TargetName", target),
               ("AuthMethod", "CHAP" if chap else "None")]
        if chap:
            self.login_pdu(0, 1, False, h.text_keys(sec))
            r = self.recv()
            assert r.op == h.OP_LOGIN_RSP and r.hdr[36] == 0, "login: %s" % r.describe()
            self.login_pdu(0, 1, False, h.text_keys([("CHAP_A", "5")]))
            r = self.recv()
            assert r.hdr[36] == 0, "CHAP_A refused: %s" % r.describe()
            keys = h.parse_keys(r.data)
            ident = int(keys["CHAP_I"])
            challenge = bytes.fromhex(keys["CHAP_C"][2:])
            resp = hashlib.md5(bytes([ident]) + chap[1].encode() + challenge).hexdigest()
            self.login_pdu(0, 1, True, h.text_keys([("CHAP_N", chap[0]),
                                                    ("CHAP_R", "0x" + resp)]))
        else:
            self.login_pdu(0, 1, True, h.text_keys(sec))
        r = self.recv()
        self._check_login(r, 1)
        self.login_pdu(1, 3, True, h.text_keys(h.GOOD_OP_KEYS))
        r = self.recv()
        self._check_login(r, 3)
        self.params.update(h.parse_keys(r.data))
        self.tsih = struct.unpack_from(">H", r.hdr, 14)[0]
        self.cmdsn = r.expcmdsn

    def unit_attentions(self, lun):
        """TEST UNIT READY until GOOD: the unit attentions reported on the way."""
        seen = []
        for _ in range(8):
            st, _, sense = self.command(h.CDB_TUR, lun)
            if st == h.GOOD:
                return seen
            assert st == h.CHECK_CONDITION, "TUR status %#x" % st
            seen.append((sense[2] & 0x0F, sense[12], sense[13]))
            assert seen[-1][0] == 6, "not a unit attention: %s" % sense.hex()
        raise AssertionError("unit attentions do not end: %s" % seen)

    def report_luns(self):
        st, data, sense = self.command(REPORT_LUNS, 0, read_len=4096)
        assert st == h.GOOD, "REPORT LUNS: %#x %s" % (st, sense.hex())
        n = struct.unpack(">I", data[:4])[0] // 8
        return sorted(struct.unpack(">H", data[8 + 8 * i:10 + 8 * i])[0] for i in range(n))

    def expect_logged_out(self, why):
        """A logout request (Async Message, AsyncEvent 1) or the connection closed."""
        pdus, dropped = self.drain(3.5)
        asked = any(p.op == 0x32 and p.hdr[36] == 1 for p in pdus)
        assert asked or dropped, "%s: %s still logged in (%s)" % (why, self.initiator,
                                                                  [p.describe() for p in pdus])
        self.close()


class Run:
    def __init__(self, port, ferryctl, sock, config, work):
        self.port, self.ferryctl, self.sock, self.config, self.work = (port, ferryctl, sock,
                                                                       config, work)

    def reload(self, c, expect_ok=True):
        with open(self.config, "w") as f:
            json.dump(c, f, indent=2)
        r = subprocess.run([self.ferryctl, "--socket", self.sock, "config", "reload"],
                           capture_output=True, text=True)
        if expect_ok:
            assert r.returncode == 0, "reload failed: %s%s" % (r.stdout, r.stderr)
        return r


def ok(msg):
    print("ok: " + msg, flush=True)


def main():
    port, ferryctl, sock, config, work = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                          sys.argv[4], sys.argv[5])
    run = Run(port, ferryctl, sock, config, work)
    s1, s2 = Session(port, I1), Session(port, I2)
    for s in (s1, s2):
        s.unit_attentions(0)  # the first command's POWER ON OCCURRED
        assert s.report_luns() == [0]

    luns2 = [{"lun": 0, "backstore": "b0"}, {"lun": 1, "backstore": "b1"}]
    run.reload(make_config(work, b_luns=luns2))
    assert UA_REPORTED_LUNS in s1.unit_attentions(0), "no REPORTED LUNS DATA HAS CHANGED"
    assert s1.report_luns() == [0, 1]
    ok("LUN added by reload: REPORTED LUNS DATA HAS CHANGED, REPORT LUNS [0, 1]")

    luns3 = [{"lun": 0, "backstore": "b0", "write_protect": True},
             {"lun": 1, "backstore": "b1"}]
    run.reload(make_config(work, b_luns=luns3))
    uas = s1.unit_attentions(0)
    assert UA_INQUIRY in uas and UA_REPORTED_LUNS not in uas, "UAs %s" % uas
    ok("write protection on by reload: INQUIRY DATA HAS CHANGED only")

    run.reload(make_config(work, b_luns=luns3, b_acl=[I1]))
    s2.expect_logged_out("ACL without i2")
    assert s1.unit_attentions(0) == [], "i1's view did not change: no unit attention"
    ok("ACL no longer admits i2: i2 asked to log out; i1 goes on")
    try:
        Session(port, I2)
        raise AssertionError("i2 logged in again")
    except AssertionError as e:
        assert "refused" in str(e), str(e)

    run.reload(make_config(work, b_luns=luns3, b_acl=[I1], b_chap=True))
    s1.expect_logged_out("CHAP now required")
    s1 = Session(port, I1, chap=("b-user", open(os.path.join(work, "secret")).read().strip()))
    ok("CHAP required by reload: the session without CHAP logged out, a CHAP login works")

    old = open(os.path.join(work, "secret")).read().strip()
    with open(os.path.join(work, "secret"), "w") as f:
        f.write("another-secret-17\n")
    run.reload(make_config(work, b_luns=luns3, b_acl=[I1], b_chap=True))
    s1.expect_logged_out("CHAP secret changed")
    try:
        Session(port, I1, chap=("b-user", old))
        raise AssertionError("the old secret still logs in")
    except (AssertionError, h.Dropped) as e:
        assert "old secret" not in str(e), str(e)
    s1 = Session(port, I1, chap=("b-user", "another-secret-17"))
    s1.unit_attentions(0)
    ok("CHAP secret changed: the session logged out, the new secret logs in, the old does not")

    before = subprocess.run([ferryctl, "--socket", sock, "luns", "--json"], capture_output=True,
                            text=True, check=True).stdout

    def broken(c):
        c["nop_timeout_s"] = 0
        c["backstores"]["b2"] = {"type": "nope"}
        c["targets"][TARGET_B]["luns"].append({"lun": 5, "backstore": "missing"})
        c["targets"][TARGET_A]["acls"] = [{"initiators": ["not an iqn"]}]
    r = run.reload(make_config(work, b_luns=luns3 + [{"lun": 2, "backstore": "b2"}], b_acl=[I1],
                               b_chap=True, extra=broken), expect_ok=False)
    assert r.returncode != 0, "a broken file was applied"
    for path in ("$.nop_timeout_s: ", "$.backstores.b2.type: ",
                 '$.targets["%s"].luns[3].backstore: ' % TARGET_B,
                 '$.targets["%s"].acls[0].initiators[0]: ' % TARGET_A):
        assert path in r.stderr, "%s not reported:\n%s" % (path, r.stderr)
    assert "4 errors" in r.stderr, r.stderr
    after = subprocess.run([ferryctl, "--socket", sock, "luns", "--json"], capture_output=True,
                           text=True, check=True).stdout
    assert before == after, "a refused reload changed the LUNs"
    assert s1.unit_attentions(0) == [] and s1.report_luns() == [0, 1]
    ok("a file with 4 errors: all reported with their JSON paths, nothing changed:\n" +
       r.stderr.strip())

    run.reload(make_config(work, with_b=False))
    s1.expect_logged_out("target removed")
    ok("target B removed by reload: its session logged out")


if __name__ == "__main__":
    main()
