#!/usr/bin/env python3
"""Hostile-initiator test for ferryd (RFC 7143).

Starts ferryd on a free loopback port, writes a known pattern to LUN 0 (RAM) and LUN 1
(file) through a well-behaved session, then sends malformed and hostile PDUs, each case on
its own connection. Every case expects a Reject (RFC 7143 11.17) or a dropped connection
(or, where the RFC says so, a Login reject or silence), that ferryd keeps serving a
bystander session, and that no data changes. At the end a fresh session must log in, TEST
UNIT READY must be GOOD, the pattern must read back unchanged, and SIGTERM must stop ferryd
cleanly ("ferryd: stopped").

Usage: hostile_pdus.py PATH/TO/ferryd
Exit: 0 every case passed, 1 a case failed, 77 ferryd is missing (skipped).
Python 3 standard library only; loopback only; temporary files under /var/tmp.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TARGET = "iqn.2026-11.org.ferry:demo"
INITIATOR = "iqn.2026-11.org.ferry:hostile-test"
IO_TIMEOUT = 3.0  # seconds to wait for any one answer
REGION_BLOCKS = 512  # the LBAs of each LUN that carry the known pattern
HOSTILE_BYTE = 0xEE  # what hostile writes carry (never part of the pattern)
RESERVED_TAG = 0xFFFFFFFF

# Opcodes (RFC 7143 11.2.1.2).
OP_NOP_OUT, OP_SCSI_CMD, OP_TMF, OP_LOGIN, OP_TEXT, OP_DATA_OUT, OP_LOGOUT = 0, 1, 2, 3, 4, 5, 6
OP_NOP_IN, OP_SCSI_RSP, OP_LOGIN_RSP, OP_DATA_IN, OP_LOGOUT_RSP, OP_R2T, OP_REJECT = (
    0x20, 0x21, 0x23, 0x25, 0x26, 0x31, 0x3F)

OPCODE_NAMES = {
    0x00: "NOP-Out", 0x01: "SCSI Command", 0x02: "Task Management Request",
    0x03: "Login Request", 0x04: "Text Request", 0x05: "SCSI Data-Out",
    0x06: "Logout Request", 0x10: "SNACK Request", 0x20: "NOP-In", 0x21: "SCSI Response",
    0x22: "Task Management Response", 0x23: "Login Response", 0x24: "Text Response",
    0x25: "SCSI Data-In", 0x26: "Logout Response", 0x31: "R2T", 0x32: "Asynchronous Message",
    0x3F: "Reject",
}

# RFC 7143 11.17.1.
REJECT_REASONS = {
    0x02: "Data Digest Error", 0x03: "SNACK Reject", 0x04: "Protocol Error",
    0x05: "Command not supported", 0x06: "Immediate Command Reject", 0x07: "Task in progress",
    0x08: "Invalid Data ACK", 0x09: "Invalid PDU field", 0x0A: "Long Operation Reject",
    0x0B: "Deprecated (Negotiation Reset)", 0x0C: "Waiting for Logout",
}

# SCSI.
GOOD, CHECK_CONDITION = 0x00, 0x02


def log(msg=""):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------
# A small iSCSI initiator.


class Dropped(Exception):
    """The target closed (or reset) the connection."""


class Silence(Exception):
    """Nothing arrived within the timeout."""


class Pdu:
    def __init__(self, hdr, ahs, data):
        self.hdr = hdr
        self.ahs = ahs
        self.data = data

    op = property(lambda self: self.hdr[0] & 0x3F)
    flags = property(lambda self: self.hdr[1])
    itt = property(lambda self: struct.unpack_from(">I", self.hdr, 16)[0])
    ttt = property(lambda self: struct.unpack_from(">I", self.hdr, 20)[0])
    statsn = property(lambda self: struct.unpack_from(">I", self.hdr, 24)[0])
    expcmdsn = property(lambda self: struct.unpack_from(">I", self.hdr, 28)[0])
    maxcmdsn = property(lambda self: struct.unpack_from(">I", self.hdr, 32)[0])

    def u32(self, off):
        return struct.unpack_from(">I", self.hdr, off)[0]

    def describe(self):
        name = OPCODE_NAMES.get(self.op, "opcode %#x" % self.op)
        if self.op == OP_REJECT:
            r = self.hdr[2]
            return "Reject %#04x (%s)" % (r, REJECT_REASONS.get(r, "?"))
        if self.op == OP_LOGIN_RSP:
            return "Login Response status %02x%02x, T=%d C=%d, %d data bytes" % (
                self.hdr[36], self.hdr[37], self.flags >> 7, (self.flags >> 6) & 1,
                len(self.data))
        if self.op == OP_SCSI_RSP:
            return "SCSI Response ITT %#x status %#04x" % (self.itt, self.hdr[3])
        if self.op == OP_DATA_IN and self.flags & 1:
            return "Data-In with status ITT %#x status %#04x" % (self.itt, self.hdr[3])
        if self.op == OP_R2T:
            return "R2T ITT %#x TTT %#x offset %d length %d" % (
                self.itt, self.ttt, self.u32(40), self.u32(44))
        return "%s ITT %#x" % (name, self.itt)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC32C (Castagnoli) as iSCSI digests use it (RFC 7143 13.1), 4 bytes little-endian."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return struct.pack("<I", c ^ 0xFFFFFFFF)


def lun_field(lun):
    # Single-level LUN, peripheral device addressing (SAM-5 4.7.7.2).
    return struct.pack(">HHHH", lun & 0xFF, 0, 0, 0)


def bhs(op, flags=0, immediate=False, ahs_words=0, dsl=0, lun=0, itt=0, b2=0, b3=0,
        w20=0, w24=0, w28=0, w32=0, w36=0, w40=0, w44=0, cdb=None):
    """A 48-byte Basic Header Segment (RFC 7143 11.2.1). `dsl` is taken as given (24 bits)
    so that hostile lengths can be sent; cdb, when given, fills bytes 32..47."""
    h = bytearray(48)
    h[0] = (op & 0x3F) | (0x40 if immediate else 0)
    h[1] = flags & 0xFF
    h[2] = b2 & 0xFF
    h[3] = b3 & 0xFF
    h[4] = ahs_words & 0xFF
    h[5:8] = struct.pack(">I", dsl & 0xFFFFFF)[1:]
    h[8:16] = lun_field(lun) if isinstance(lun, int) else lun
    struct.pack_into(">IIII", h, 16, itt & 0xFFFFFFFF, w20 & 0xFFFFFFFF, w24 & 0xFFFFFFFF,
                     w28 & 0xFFFFFFFF)
    if cdb is not None:
        h[32:48] = cdb.ljust(16, b"\0")
    else:
        struct.pack_into(">IIII", h, 32, w32 & 0xFFFFFFFF, w36 & 0xFFFFFFFF, w40 & 0xFFFFFFFF,
                         w44 & 0xFFFFFFFF)
    return bytes(h)


def text_keys(pairs):
    return b"".join(("%s=%s" % kv).encode() + b"\0" for kv in pairs)


def parse_keys(data):
    out = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def cdb_read10(lba, blocks):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def cdb_write10(lba, blocks):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


CDB_TUR = bytes(6)
CDB_READ_CAPACITY10 = bytes([0x25]) + bytes(9)

# Operational keys of the hostile sessions: small bursts so that a write of 8 KiB needs two
# R2Ts, immediate data, no unsolicited Data-Out.
HOSTILE_OP_KEYS = [
    ("HeaderDigest", "None"), ("DataDigest", "None"), ("MaxRecvDataSegmentLength", "8192"),
    ("ImmediateData", "Yes"), ("InitialR2T", "Yes"), ("FirstBurstLength", "4096"),
    ("MaxBurstLength", "4096"),
]
# And of the well-behaved sessions.
GOOD_OP_KEYS = [
    ("HeaderDigest", "None"), ("DataDigest", "None"), ("MaxRecvDataSegmentLength", "262144"),
    ("ImmediateData", "Yes"), ("InitialR2T", "Yes"), ("FirstBurstLength", "65536"),
    ("MaxBurstLength", "262144"),
]

_isid_counter = [0]


class Conn:
    """One TCP connection to the target, with the sequence numbers of its session."""

    def __init__(self, port, label):
        self.label = label
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port = self.sock.getsockname()[1]
        _isid_counter[0] += 1
        self.isid = bytes([0x80, 0x46, 0x65, 0x72]) + struct.pack(">H", _isid_counter[0])
        self.itt = 0x1000
        self.cmdsn = 1
        self.expstatsn = 0
        self.t_expcmdsn = None  # the target's ExpCmdSN, from its latest PDU
        self.tsih = 0
        self.params = {}  # the target's answers at login
        self.dropped = False
        self.hd = False  # header and data digests, once the login negotiated them
        self.dd = False
        self.corrupt_next_data_digest = False

    def next_itt(self):
        self.itt += 1
        return self.itt

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # Raw I/O.
    def send_raw(self, b):
        try:
            self.sock.sendall(b)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.dropped = True
            raise Dropped(str(e))

    def send(self, hdr, data=b"", ahs=b""):
        pad = b"\0" * ((-len(data)) % 4)
        hdig = crc32c(hdr + ahs) if self.hd else b""
        ddig = b""
        if self.dd and data:
            ddig = crc32c(data + pad)
            if self.corrupt_next_data_digest:
                ddig = bytes(b ^ 0xFF for b in ddig)
                self.corrupt_next_data_digest = False
        self.send_raw(hdr + ahs + hdig + data + pad + ddig)

    def _recv_exact(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Silence()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise Silence()
            except (ConnectionResetError, ConnectionAbortedError) as e:
                self.dropped = True
                raise Dropped(str(e))
            if not chunk:
                self.dropped = True
                raise Dropped("EOF")
            buf += chunk
        return bytes(buf)

    def recv(self, timeout=IO_TIMEOUT):
        """The next PDU from the target. Answers NOP-In pings on its own (RFC 7143 11.19)."""
        deadline = time.monotonic() + timeout
        while True:
            hdr = self._recv_exact(48, deadline)
            ahs_len = hdr[4] * 4
            dsl = struct.unpack(">I", b"\0" + hdr[5:8])[0]
            hd = 4 if self.hd else 0
            dd = 4 if self.dd and dsl else 0
            total = ahs_len + hd + dsl + ((-dsl) % 4) + dd
            rest = self._recv_exact(total, deadline + 10) if total else b""
            if hd and rest[ahs_len:ahs_len + 4] != crc32c(hdr + rest[:ahs_len]):
                raise AssertionError("bad header digest from the target")
            body = rest[ahs_len + hd:total - dd]
            if dd and rest[total - 4:] != crc32c(body):
                raise AssertionError("bad data digest from the target")
            p = Pdu(hdr, rest[:ahs_len], body[:dsl])
            if p.op in (OP_NOP_IN, OP_SCSI_RSP, OP_LOGIN_RSP, OP_LOGOUT_RSP, OP_REJECT, 0x22,
                        0x24) or (p.op == OP_DATA_IN and p.flags & 1):
                self.expstatsn = (p.statsn + 1) & 0xFFFFFFFF
            if p.op != OP_LOGIN_RSP or p.expcmdsn:
                self.t_expcmdsn = p.expcmdsn
            if p.op == OP_NOP_IN and p.itt == RESERVED_TAG and p.ttt != RESERVED_TAG:
                self.send(bhs(OP_NOP_OUT, 0x80, immediate=True, itt=RESERVED_TAG, w20=p.ttt,
                              w24=self.cmdsn, w28=self.expstatsn))
                continue
            return p

    def drain(self, timeout=0.3):
        """PDUs that arrive within `timeout`, and whether the connection then dropped."""
        pdus = []
        try:
            while True:
                pdus.append(self.recv(timeout))
        except Silence:
            return pdus, False
        except Dropped:
            return pdus, True

    # Login (RFC 7143 6.3, 11.12).
    def login_pdu(self, csg, nsg, transit, text, cont=False, itt=0x10, dsl=None):
        flags = (0x80 if transit else 0) | (0x40 if cont else 0) | (csg << 2) | (nsg if transit
                                                                                 else 0)
        h = bhs(OP_LOGIN, flags, immediate=True, dsl=len(text) if dsl is None else dsl,
                lun=self.isid + struct.pack(">H", self.tsih), itt=itt, w20=0,
                w24=self.cmdsn, w28=self.expstatsn)
        self.send(h, text)

    def login(self, op_keys=HOSTILE_OP_KEYS):
        """A whole normal-session login; raises AssertionError when refused."""
        sec = [("InitiatorName", INITIATOR), ("SessionType", "Normal"), ("TargetName", TARGET),
               ("AuthMethod", "None")]
        self.login_pdu(0, 1, True, text_keys(sec))
        r = self.recv()
        self._check_login(r, 1)
        self.params.update(parse_keys(r.data))
        self.login_pdu(1, 3, True, text_keys(op_keys))
        r = self.recv()
        self._check_login(r, 3)
        self.params.update(parse_keys(r.data))
        self.tsih = struct.unpack_from(">H", r.hdr, 14)[0]
        self.t_expcmdsn = r.expcmdsn
        self.cmdsn = r.expcmdsn
        # Digests apply from the first PDU after the last login response (RFC 7143 13.1).
        self.hd = self.params.get("HeaderDigest") == "CRC32C"
        self.dd = self.params.get("DataDigest") == "CRC32C"

    @staticmethod
    def _check_login(r, want_nsg):
        if r.op != OP_LOGIN_RSP:
            raise AssertionError("login: got %s" % r.describe())
        if r.hdr[36] != 0:
            raise AssertionError("login refused: %s" % r.describe())
        if not r.flags & 0x80 or (r.flags & 3) != want_nsg:
            raise AssertionError("login did not move to stage %d: %s" % (want_nsg,
                                                                         r.describe()))

    def target_mrdsl(self):
        return int(self.params.get("MaxRecvDataSegmentLength", "8192"))

    def fbl(self):
        return int(self.params.get("FirstBurstLength", "65536"))

    def mbl(self):
        return int(self.params.get("MaxBurstLength", "262144"))

    # Full feature phase.
    def scsi_cmd_hdr(self, cdb, lun=0, read=False, write=False, edtl=0, dsl=0, final=True,
                     itt=None, cmdsn=None, immediate=False, ahs_words=0):
        flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 1
        if itt is None:
            itt = self.next_itt()
        if cmdsn is None:
            cmdsn = self.cmdsn
            if not immediate:
                self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        return bhs(OP_SCSI_CMD, flags, immediate=immediate, ahs_words=ahs_words, dsl=dsl,
                   lun=lun, itt=itt, w20=edtl, w24=cmdsn, w28=self.expstatsn, cdb=cdb), itt

    def data_out(self, itt, ttt, offset, data, datasn, final, lun=0):
        h = bhs(OP_DATA_OUT, 0x80 if final else 0, dsl=len(data), lun=lun, itt=itt, w20=ttt,
                w28=self.expstatsn, w36=datasn, w40=offset)
        self.send(h, data)

    def ping(self, data=b"ping"):
        """An immediate NOP-Out; True when the matching NOP-In comes back."""
        itt = self.next_itt()
        self.send(bhs(OP_NOP_OUT, 0x80, immediate=True, dsl=len(data), itt=itt,
                      w20=RESERVED_TAG, w24=self.cmdsn, w28=self.expstatsn), data)
        while True:
            p = self.recv()
            if p.op == OP_NOP_IN and p.itt == itt:
                return p.data == data
            # anything else (a late response of a hostile case) is ignored here

    def logout(self):
        itt = self.next_itt()
        self.send(bhs(OP_LOGOUT, 0x80, immediate=True, itt=itt, w24=self.cmdsn,
                      w28=self.expstatsn))
        try:
            while self.recv().op != OP_LOGOUT_RSP:
                pass
        except (Dropped, Silence):
            pass
        self.close()

    def command(self, cdb, lun=0, read_len=0, write_data=None, timeout=IO_TIMEOUT * 3):
        """A well-behaved command: immediate data up to FirstBurstLength, then Data-Out for
        every R2T. Returns (status, data_in, sense)."""
        write_data = write_data or b""
        imm = write_data[:min(self.fbl(), self.target_mrdsl())]
        h, itt = self.scsi_cmd_hdr(cdb, lun, read=read_len > 0, write=bool(write_data),
                                   edtl=read_len or len(write_data), dsl=len(imm))
        self.send(h, imm)
        buf = bytearray(read_len)
        chunk = min(self.target_mrdsl(), 65536)
        while True:
            p = self.recv(timeout)
            if p.itt != itt:
                continue
            if p.op == OP_R2T:
                off, length = p.u32(40), p.u32(44)
                sn = 0
                while length > 0:
                    n = min(chunk, length)
                    self.data_out(itt, p.ttt, off, write_data[off:off + n], sn, n == length, lun)
                    off, length, sn = off + n, length - n, sn + 1
            elif p.op == OP_DATA_IN:
                off = p.u32(40)
                buf[off:off + len(p.data)] = p.data
                if p.flags & 1:
                    return p.hdr[3], bytes(buf), b""
            elif p.op == OP_SCSI_RSP:
                sense = p.data[2:2 + struct.unpack(">H", p.data[:2])[0]] if len(p.data) >= 2 \
                    else b""
                return p.hdr[3], bytes(buf), sense
            elif p.op == OP_REJECT:
                raise AssertionError("command rejected: %s" % p.describe())


def wait_reply(c, timeout=IO_TIMEOUT):
    """Reads until a Reject arrives, the connection drops or nothing comes for `timeout`.
    Returns (outcome, reject_pdu, other_pdus): outcome is 'reject', 'drop' or 'silence'.
    After a Reject it looks briefly whether the connection drops too ('reject+drop')."""
    others = []
    while True:
        try:
            p = c.recv(timeout)
        except Dropped:
            return "drop", None, others
        except Silence:
            return "silence", None, others
        if p.op == OP_REJECT:
            more, dropped = c.drain(0.3)
            others += more
            return ("reject+drop" if dropped else "reject"), p, others
        others.append(p)


def outcome_text(outcome, rej, others):
    s = {"drop": "connection dropped", "silence": "no answer within %.0f s" % IO_TIMEOUT,
         "reject": "", "reject+drop": ""}[outcome]
    if rej is not None:
        s = rej.describe() + (", then the connection dropped" if outcome == "reject+drop"
                              else "")
    if others:
        s += " (also got: %s)" % "; ".join(p.describe() for p in others[:4])
    return s


def rejected_or_dropped(outcome):
    return outcome in ("drop", "reject", "reject+drop")


# --------------------------------------------------------------------------------------
# ferryd and the test cases.


class Ctx:
    def __init__(self, ferryd, work):
        self.ferryd = ferryd
        self.work = work
        self.proc = None
        self.port = None
        self.log_path = os.path.join(work, "ferryd.log")
        self.bs = 512
        self.bystander = None
        self.ports = []  # local ports of the current case's connections
        self.case = None  # the running case's name
        self.regions = []  # (lun, lba, blocks, case) each case aims hostile writes at

    def conn(self, label):
        c = Conn(self.port, label)
        self.ports.append(c.local_port)
        return c

    def logged_in(self, label, op_keys=HOSTILE_OP_KEYS):
        c = self.conn(label)
        c.login(op_keys)
        return c

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def log_lines_for(self, ports):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        keys = ["127.0.0.1:%d" % p for p in ports]
        return [ln for ln in lines if any(k + ")" in ln or k + ":" in ln or k + " " in ln or
                                          ln.endswith(k) for k in keys)]


def pattern_block(lun, lba, bs):
    unit = ("FERRY-PATTERN LUN%d LBA%06d |" % (lun, lba)).encode()
    return (unit * (bs // len(unit) + 1))[:bs]


def pattern(lun, lba, blocks, bs):
    return b"".join(pattern_block(lun, lba + i, bs) for i in range(blocks))


def check_region(ctx, lun, lba, blocks):
    """'' when LBAs [lba, lba+blocks) of `lun` still hold the pattern, else what changed."""
    if ctx.case and not any(r[:3] == (lun, lba, blocks) for r in ctx.regions):
        ctx.regions.append((lun, lba, blocks, ctx.case))
    st, data, sense = ctx.bystander.command(cdb_read10(lba, blocks), lun,
                                            read_len=blocks * ctx.bs)
    if st != GOOD:
        return "reading LUN %d LBA %d+%d back failed: status %#x sense %s" % (
            lun, lba, blocks, st, sense.hex())
    kinds = {}  # what each changed block holds now -> its LBAs
    for i in range(blocks):
        blk = data[i * ctx.bs:(i + 1) * ctx.bs]
        if blk == pattern_block(lun, lba + i, ctx.bs):
            continue
        kind = "the hostile bytes" if blk.count(HOSTILE_BYTE) == len(blk) else \
            "zeros (never sent)" if blk.count(0) == len(blk) else "other bytes"
        kinds.setdefault(kind, []).append(lba + i)
    if not kinds:
        return ""
    parts = []
    for kind, lbas in kinds.items():
        owners = sorted({n for (l, a, b, n) in ctx.regions if l == lun and
                         any(a <= x < a + b for x in lbas)})
        parts.append("LBA %s now hold %s%s" % (
            ranges(lbas), kind, " [%s]" % ", ".join(owners) if owners else ""))
    return "DATA CHANGED on LUN %d: %s" % (lun, "; ".join(parts))


def ranges(nums):
    out, start, prev = [], None, None
    for n in nums:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append("%d-%d" % (start, prev) if prev > start else str(start))
            start = prev = n
    if start is not None:
        out.append("%d-%d" % (start, prev) if prev > start else str(start))
    return ",".join(out)


def hostile(n):
    return bytes([HOSTILE_BYTE]) * n


CASES = []


def case(name, rfc):
    def deco(fn):
        CASES.append((name, rfc, fn))
        return fn
    return deco


def expect_reject_or_drop(outcome, rej, others, what):
    if rejected_or_dropped(outcome):
        return True, outcome_text(outcome, rej, others)
    return False, "%s: expected a Reject or a dropped connection, got %s" % (
        what, outcome_text(outcome, rej, others))


def still_serves(c):
    """After a Reject that kept the connection: the session must still answer a ping."""
    try:
        return c.ping()
    except (Dropped, Silence):
        return False


# --- Full feature phase: opcodes and lengths -------------------------------------------


@case("ffp_unknown_opcode", "RFC 7143 11.17.1: an unsupported opcode earns Reject 0x05")
def _(ctx):
    c = ctx.logged_in("unknown-opcode")
    c.send(bhs(0x0F, 0x80, itt=c.next_itt(), w24=c.cmdsn, w28=c.expstatsn))
    o, rej, others = wait_reply(c)
    ok, text = expect_reject_or_drop(o, rej, others, "opcode 0x0f")
    if ok and o == "reject" and not still_serves(c):
        ok, text = False, text + "; the session stopped answering after the Reject"
    c.close()
    return ok, text


@case("ffp_target_opcode", "RFC 7143 11.2.1.2: 0x20-0x3f are target opcodes")
def _(ctx):
    c = ctx.logged_in("target-opcode")
    c.send(bhs(OP_SCSI_RSP, 0x80, itt=c.next_itt(), w24=c.cmdsn, w28=c.expstatsn))
    o, rej, others = wait_reply(c)
    c.close()
    return expect_reject_or_drop(o, rej, others, "a SCSI Response sent by the initiator")


@case("dsl_above_mrdsl", "RFC 7143 13.12: a data segment above MaxRecvDataSegmentLength")
def _(ctx):
    c = ctx.logged_in("dsl-above-mrdsl")
    n = c.target_mrdsl() + 4
    # The header only: a target that waits for the data is as wrong as one that reads it.
    c.send(bhs(OP_NOP_OUT, 0x80, immediate=True, dsl=n, itt=c.next_itt(), w20=RESERVED_TAG,
               w24=c.cmdsn, w28=c.expstatsn))
    o, rej, others = wait_reply(c)
    c.close()
    return expect_reject_or_drop(o, rej, others, "NOP-Out with DataSegmentLength %d "
                                 "(target declared %d)" % (n, c.target_mrdsl()))


@case("dsl_max_on_write", "RFC 7143 13.12: DataSegmentLength 0xffffff on a WRITE")
def _(ctx):
    c = ctx.logged_in("dsl-max")
    h, _itt = c.scsi_cmd_hdr(cdb_write10(300, 1), 0, write=True, edtl=ctx.bs, dsl=0xFFFFFF)
    c.send(h, hostile(4096))
    o, rej, others = wait_reply(c)
    c.close()
    ok, text = expect_reject_or_drop(o, rej, others, "WRITE with DataSegmentLength 0xffffff")
    bad = check_region(ctx, 0, 300, 1)
    return ok and not bad, text + ("; " + bad if bad else "")


@case("ahs_past_end", "RFC 7143 11.2.1.4: TotalAHSLength 255 words, 16 bytes sent, then EOF")
def _(ctx):
    c = ctx.logged_in("ahs-past-end")
    h, _itt = c.scsi_cmd_hdr(CDB_TUR, 0, ahs_words=255)
    c.send_raw(h + struct.pack(">HBB", 13, 0x01, 0) + bytes(12))
    c.sock.shutdown(socket.SHUT_WR)
    o, rej, others = wait_reply(c)
    c.close()
    executed = [p for p in others if p.op in (OP_SCSI_RSP, OP_DATA_IN)]
    if executed:
        return False, "the command executed although its AHS never arrived: " + \
            outcome_text(o, rej, others)
    return expect_reject_or_drop(o, rej, others, "AHS cut short by EOF")


@case("ahs_bogus_length", "RFC 7143 11.2.2: an AHS whose AHSLength exceeds TotalAHSLength")
def _(ctx):
    c = ctx.logged_in("ahs-bogus")
    h, _itt = c.scsi_cmd_hdr(CDB_TUR, 0, ahs_words=1)
    # One AHS word whose own header claims 0xffff bytes of extended CDB.
    c.send(h, ahs=struct.pack(">HBB", 0xFFFF, 0x01, 0))
    o, rej, others = wait_reply(c)
    ok, text = expect_reject_or_drop(o, rej, others, "AHSLength 0xffff inside a 4-byte AHS")
    if ok and o == "reject" and not still_serves(c):
        ok, text = False, text + "; the session stopped answering after the Reject"
    c.close()
    return ok, text


@case("ahs_on_nop_out", "RFC 7143 11.18: NOP-Out has no AHS")
def _(ctx):
    c = ctx.logged_in("ahs-nop")
    c.send(bhs(OP_NOP_OUT, 0x80, immediate=True, ahs_words=2, itt=c.next_itt(),
               w20=RESERVED_TAG, w24=c.cmdsn, w28=c.expstatsn), ahs=bytes(8))
    o, rej, others = wait_reply(c)
    c.close()
    return expect_reject_or_drop(o, rej, others, "NOP-Out with 8 bytes of AHS")


@case("tmf_with_data", "RFC 7143 11.5: a Task Management request has no data segment")
def _(ctx):
    c = ctx.logged_in("tmf-data")
    c.send(bhs(OP_TMF, 0x80 | 1, immediate=True, dsl=64, itt=c.next_itt(), w20=0x1234,
               w24=c.cmdsn, w28=c.expstatsn), hostile(64))
    o, rej, others = wait_reply(c)
    c.close()
    return expect_reject_or_drop(o, rej, others, "ABORT TASK with 64 data bytes")


# --- Login phase ---------------------------------------------------------------------------

LOGIN_RFC = ("RFC 7143 6.3: a PDU other than a Login Request before login starts: terminate; "
             "once it started: Login reject 'invalid during login' (0x020b), then disconnect")


def login_answer(c, timeout=IO_TIMEOUT):
    """Everything the target sends until it drops or falls silent: (pdus, dropped)."""
    pdus = []
    try:
        while True:
            p = c.recv(timeout)
            pdus.append(p)
            if p.op == OP_LOGIN_RSP and p.hdr[36] != 0:
                more, dropped = c.drain(1.0)
                return pdus + more, dropped
    except Silence:
        return pdus, False
    except Dropped:
        return pdus, True


def describe_all(pdus, dropped):
    if len(pdus) > 5:
        s = "; ".join(p.describe() for p in pdus[:2]) + "; ... (%d PDUs in all) ...; " % (
            len(pdus)) + "; ".join(p.describe() for p in pdus[-2:])
    else:
        s = "; ".join(p.describe() for p in pdus) or "nothing"
    return s + (", then the connection dropped" if dropped else ", connection still open")


def refused(pdus):
    return [p for p in pdus if p.op == OP_LOGIN_RSP and p.hdr[36] != 0]


@case("login_ffp_opcode_first", LOGIN_RFC)
def _(ctx):
    c = ctx.conn("ffp-op-first")
    h, _itt = c.scsi_cmd_hdr(CDB_TUR, 0)
    c.send(h)
    pdus, dropped = login_answer(c)
    c.close()
    text = "SCSI Command as the first PDU: " + describe_all(pdus, dropped)
    executed = [p for p in pdus if p.op in (OP_SCSI_RSP, OP_DATA_IN)]
    return dropped and not executed, text


def start_login(c, transit=True):
    """The first (security stage) Login Request; returns the target's answer."""
    sec = [("InitiatorName", INITIATOR), ("SessionType", "Normal"), ("TargetName", TARGET),
           ("AuthMethod", "None")]
    c.login_pdu(0, 1, transit, text_keys(sec))
    return c.recv()


def expect_invalid_during_login(c, what):
    pdus, dropped = login_answer(c)
    text = "%s: %s" % (what, describe_all(pdus, dropped))
    good = [p for p in pdus if p.op == OP_LOGIN_RSP and p.hdr[36] == 0x02 and
            p.hdr[37] == 0x0B]
    executed = [p for p in pdus if p.op in (OP_SCSI_RSP, OP_DATA_IN)]
    if executed:
        return False, text + " -- the command EXECUTED during login"
    if not dropped:
        return False, text + " -- expected the connection to be dropped"
    if not good:
        return False, text + " -- expected a Login Response with status 0x020b " \
            "('invalid during login') before the drop"
    return True, text


@case("login_ffp_opcode_midlogin", LOGIN_RFC)
def _(ctx):
    c = ctx.conn("ffp-op-midlogin")
    r = start_login(c)
    if r.op != OP_LOGIN_RSP or r.hdr[36] != 0:
        return False, "the first login PDU was refused: " + r.describe()
    h, _itt = c.scsi_cmd_hdr(CDB_TUR, 0)
    c.send(h)
    ok, text = expect_invalid_during_login(c, "TEST UNIT READY in the operational stage")
    c.close()
    return ok, text


@case("login_unknown_opcode_midlogin", LOGIN_RFC)
def _(ctx):
    c = ctx.conn("unknown-op-midlogin")
    r = start_login(c, transit=False)
    if r.op != OP_LOGIN_RSP or r.hdr[36] != 0:
        return False, "the first login PDU was refused: " + r.describe()
    c.send(bhs(0x0F, 0x80, itt=c.next_itt(), w24=c.cmdsn, w28=c.expstatsn))
    ok, text = expect_invalid_during_login(c, "opcode 0x0f in the security stage")
    c.close()
    return ok, text


@case("login_dsl_above_8192", "RFC 7143 13.12: 8192 bytes is the limit until it is negotiated")
def _(ctx):
    c = ctx.conn("login-dsl")
    c.login_pdu(0, 1, True, b"", dsl=1 << 20)  # header only
    pdus, dropped = login_answer(c)
    c.close()
    text = "Login Request with DataSegmentLength 1 MiB: " + describe_all(pdus, dropped)
    return dropped or bool(refused(pdus)), text


def send_login_text(c, text, csg=0, nsg=1, chunk=8192):
    """`text` across as many C=1 Login Requests as needed, the last with T=1. Returns the
    answers: (pdus, dropped, pdus_sent)."""
    pdus = []
    pieces = [text[i:i + chunk] for i in range(0, len(text), chunk)] or [b""]
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        try:
            c.login_pdu(csg, nsg, last, piece, cont=not last)
            p = c.recv()
        except Dropped:
            return pdus, True, i + 1
        except Silence:
            return pdus, False, i + 1
        pdus.append(p)
        if p.op != OP_LOGIN_RSP or p.hdr[36] != 0:
            more, dropped = c.drain(1.0)
            return pdus + more, dropped, i + 1
    more, dropped = c.drain(0.3)
    return pdus + more, dropped, len(pieces)


SEC_KEYS = [("InitiatorName", INITIATOR), ("SessionType", "Normal"), ("TargetName", TARGET),
            ("AuthMethod", "None")]


@case("login_key_flood", "brief: thousands of keys -> refused or dropped; RFC 7143 13.12: "
      "login PDUs carry at most 8192 data bytes (longer text goes out with C=1)")
def _(ctx):
    c = ctx.conn("key-flood")
    keys = SEC_KEYS + [("X-org.ferry.hostile.k%05d" % i, "1") for i in range(2000)]
    text = text_keys(keys)
    rss0 = ctx.rss_kib()
    pdus, dropped, sent = send_login_text(c, text)
    rss1 = ctx.rss_kib()
    c.close()
    big = [p for p in pdus if len(p.data) > 8192]
    desc = "%d keys (%d bytes) in %d Login PDUs: %s; ferryd RSS %+d KiB" % (
        len(keys), len(text), sent, describe_all(pdus, dropped), rss1 - rss0)
    if big:
        return False, desc + " -- a Login Response carried %d data bytes in one PDU " \
            "(above the 8192 of RFC 7143 13.12 during login)" % len(big[0].data)
    if refused(pdus) or dropped:
        return True, desc
    return False, desc + " -- the login was accepted"


@case("login_text_over_64k", "brief: > 64 KiB of login text across C=1 PDUs -> refused")
def _(ctx):
    c = ctx.conn("text-64k")
    keys = SEC_KEYS + [("X-org.ferry.hostile.v%04d" % i, "v" * 200) for i in range(360)]
    text = text_keys(keys)  # about 80 KiB
    rss0 = ctx.rss_kib()
    pdus, dropped, sent = send_login_text(c, text)
    rss1 = ctx.rss_kib()
    c.close()
    desc = "%d bytes of text offered, %d Login PDUs sent: %s; ferryd RSS %+d KiB" % (
        len(text), sent, describe_all(pdus, dropped), rss1 - rss0)
    if refused(pdus) or dropped:
        return True, desc
    return False, desc + " -- expected a refusal once the text passed 64 KiB"


@case("login_duplicate_key_one_pdu", "RFC 7143 6.2: a key offered twice in a login -> Login "
      "reject (initiator error)")
def _(ctx):
    c = ctx.conn("dup-key-1")
    keys = SEC_KEYS + [("MaxBurstLength", "4096"), ("MaxBurstLength", "262144")]
    pdus, dropped, _n = send_login_text(c, text_keys(keys))
    c.close()
    text = "MaxBurstLength twice in one Login Request: " + describe_all(pdus, dropped)
    return bool(refused(pdus)) or dropped, text


@case("login_duplicate_key_two_pdus", "RFC 7143 6.2: a key offered twice in a login -> Login "
      "reject (initiator error)")
def _(ctx):
    c = ctx.conn("dup-key-2")
    r = start_login(c)
    if r.op != OP_LOGIN_RSP or r.hdr[36] != 0:
        return False, "the first login PDU was refused: " + r.describe()
    c.login_pdu(1, 1, False, text_keys([("MaxBurstLength", "4096")]))
    r1 = c.recv()
    c.login_pdu(1, 3, True, text_keys([("MaxBurstLength", "262144")]))
    pdus, dropped = login_answer(c)
    c.close()
    text = "MaxBurstLength in two operational-stage PDUs: %s; then %s" % (
        r1.describe(), describe_all(pdus, dropped))
    return bool(refused(pdus)) or dropped, text


def junk_case(ctx, label, text, what):
    c = ctx.conn(label)
    pdus, dropped, _n = send_login_text(c, text)
    c.close()
    desc = "%s: %s" % (what, describe_all(pdus, dropped))
    return bool(refused(pdus)) or dropped, desc


@case("login_junk_no_equals", "RFC 7143 6.1: text is key=value pairs, each NUL-terminated")
def _(ctx):
    return junk_case(ctx, "junk-eq", text_keys(SEC_KEYS) + b"this-is-no-key-value-pair\0",
                     "a key without '='")


@case("login_junk_no_nul", "RFC 7143 6.1: every key=value pair ends with a NUL")
def _(ctx):
    return junk_case(ctx, "junk-nul", text_keys(SEC_KEYS)[:-1], "text without its final NUL")


@case("login_junk_binary", "RFC 7143 6.1: keys are printable text")
def _(ctx):
    junk = bytes((i * 97 + 13) & 0xFF for i in range(600)) + b"\0"
    return junk_case(ctx, "junk-bin", junk, "600 bytes of binary junk")


# --- CmdSN --------------------------------------------------------------------------------

CMDSN_RFC = ("RFC 7143 4.2.2.1: a non-immediate command outside [ExpCmdSN, MaxCmdSN] MUST be "
             "silently ignored")


def cmdsn_case(ctx, label, delta, lba):
    c = ctx.logged_in(label)
    exp = c.t_expcmdsn
    data = hostile(4096)
    h, itt = c.scsi_cmd_hdr(cdb_write10(lba, len(data) // ctx.bs), 0, write=True,
                            edtl=len(data), dsl=len(data), cmdsn=(exp + delta) & 0xFFFFFFFF)
    c.send(h, data)
    o, rej, others = wait_reply(c, timeout=1.5)
    answered = [p for p in others if p.itt == itt and p.op in (OP_SCSI_RSP, OP_R2T)]
    alive = o in ("silence", "reject") and still_serves(c)
    after = c.t_expcmdsn
    c.close()
    time.sleep(0.2)
    bad = check_region(ctx, 0, lba, len(data) // ctx.bs)
    text = "WRITE with CmdSN ExpCmdSN%+d: %s; ExpCmdSN %d before, %s after" % (
        delta, outcome_text(o, rej, others) if o != "silence" else "ignored (no answer)",
        exp, after if alive else "?")
    if answered:
        return False, text + " -- the command was EXECUTED"
    if bad:
        return False, text + "; " + bad
    if alive and after != exp:
        return False, text + " -- ExpCmdSN moved: the command was accepted"
    return True, text


@case("cmdsn_far_ahead", CMDSN_RFC)
def _(ctx):
    return cmdsn_case(ctx, "cmdsn-ahead", 0x40000000, 16)


@case("cmdsn_behind", CMDSN_RFC)
def _(ctx):
    return cmdsn_case(ctx, "cmdsn-behind", -3, 32)


# --- Data-Out -------------------------------------------------------------------------------


def start_write(c, ctx, lun, lba, blocks, edtl=None, imm=b"", itt=None):
    """A WRITE(10) without unsolicited Data-Out; returns (itt, first R2T or None, others)."""
    edtl = blocks * ctx.bs if edtl is None else edtl
    h, itt = c.scsi_cmd_hdr(cdb_write10(lba, blocks), lun, write=True, edtl=edtl, dsl=len(imm),
                            itt=itt)
    c.send(h, imm)
    others = []
    while True:
        p = c.recv()
        if p.op == OP_R2T and p.itt == itt:
            return itt, p, others
        others.append(p)
        if p.op in (OP_SCSI_RSP, OP_REJECT):
            return itt, None, others


def data_case_result(ctx, ok, text, lun, lba, blocks):
    time.sleep(0.2)
    bad = check_region(ctx, lun, lba, blocks)
    if bad:
        return False, text + "; " + bad
    return ok, text


@case("dataout_unknown_itt", "RFC 7143 11.17.1 note 2: invalid task fields earn Reject 0x09")
def _(ctx):
    c = ctx.logged_in("dataout-itt")
    c.data_out(0x7E7E7E7E, 0x1234, 0, hostile(ctx.bs), 0, True)
    o, rej, others = wait_reply(c)
    ok, text = expect_reject_or_drop(o, rej, others, "Data-Out for ITT 0x7e7e7e7e (no task)")
    if ok and o == "reject" and not still_serves(c):
        ok, text = False, text + "; the session stopped answering after the Reject"
    c.close()
    return ok, text


@case("dataout_wrong_ttt", "RFC 7143 11.7.4: the TTT of a solicited Data-Out is the R2T's")
def _(ctx):
    lba = 48
    c = ctx.logged_in("dataout-ttt")
    itt, r2t, others = start_write(c, ctx, 0, lba, 8)
    if r2t is None:
        c.close()
        return False, "no R2T for an 8-block WRITE: " + "; ".join(p.describe() for p in others)
    c.data_out(itt, r2t.ttt ^ 0x5A5A, 0, hostile(4096), 0, True)
    o, rej, others = wait_reply(c)
    c.close()
    ok, text = expect_reject_or_drop(o, rej, others, "Data-Out with TTT %#x (R2T gave %#x)" % (
        r2t.ttt ^ 0x5A5A, r2t.ttt))
    return data_case_result(ctx, ok, text, 0, lba, 8)


@case("dataout_beyond_edtl", "RFC 7143 11.7.5: Buffer Offset + length stay within the "
      "expected data transfer length")
def _(ctx):
    lba = 64
    c = ctx.logged_in("dataout-beyond")
    # The CDB asks for 2 blocks, EDTL for 1: only 1 may be written.
    itt, r2t, others = start_write(c, ctx, 0, lba, 2, edtl=ctx.bs)
    if r2t is None:
        c.close()
        return False, "no R2T: " + "; ".join(p.describe() for p in others)
    c.data_out(itt, r2t.ttt, 0, hostile(2 * ctx.bs), 0, True)
    o, rej, others = wait_reply(c)
    c.close()
    ok, text = expect_reject_or_drop(o, rej, others, "Data-Out of %d bytes for EDTL %d" % (
        2 * ctx.bs, ctx.bs))
    return data_case_result(ctx, ok, text, 0, lba, 2)


@case("dataout_wholly_beyond_edtl", "RFC 7143 11.7.5: Buffer Offset + length stay within the "
      "expected data transfer length")
def _(ctx):
    lba = 80
    c = ctx.logged_in("dataout-past")
    itt, r2t, others = start_write(c, ctx, 0, lba, 1)
    if r2t is None:
        c.close()
        return False, "no R2T: " + "; ".join(p.describe() for p in others)
    c.data_out(itt, r2t.ttt, ctx.bs, hostile(ctx.bs), 0, True)
    o, rej, others = wait_reply(c)
    c.close()
    ok, text = expect_reject_or_drop(o, rej, others, "Data-Out at offset %d for EDTL %d" % (
        ctx.bs, ctx.bs))
    return data_case_result(ctx, ok, text, 0, lba, 2)


@case("immediate_above_first_burst", "RFC 7143 13.14: immediate data <= FirstBurstLength")
def _(ctx):
    lba = 96
    c = ctx.logged_in("imm-fbl")
    n = 2 * c.fbl()
    h, itt = c.scsi_cmd_hdr(cdb_write10(lba, n // ctx.bs), 0, write=True, edtl=n, dsl=n)
    c.send(h, hostile(n))
    o, rej, others = wait_reply(c)
    c.close()
    ok, text = expect_reject_or_drop(o, rej, others, "%d bytes of immediate data with "
                                     "FirstBurstLength %d" % (n, c.fbl()))
    return data_case_result(ctx, ok, text, 0, lba, n // ctx.bs)


@case("immediate_above_edtl", "RFC 7143 11.3.4: data beyond the expected transfer length")
def _(ctx):
    lba = 128
    c = ctx.logged_in("imm-edtl")
    h, itt = c.scsi_cmd_hdr(cdb_write10(lba, 2), 0, write=True, edtl=ctx.bs, dsl=2 * ctx.bs)
    c.send(h, hostile(2 * ctx.bs))
    o, rej, others = wait_reply(c)
    c.close()
    ok, text = expect_reject_or_drop(o, rej, others, "%d bytes of immediate data, EDTL %d" % (
        2 * ctx.bs, ctx.bs))
    return data_case_result(ctx, ok, text, 0, lba, 2)


@case("r2t_offset_outside_burst", "RFC 7143 11.8 + 13.19/13.20 (DataPDUInOrder, "
      "DataSequenceInOrder = Yes): solicited data lies inside the R2T's burst")
def _(ctx):
    lun, lba, blocks = 1, 160, 8192 // ctx.bs
    c = ctx.logged_in("r2t-outside")
    itt, r2t, others = start_write(c, ctx, lun, lba, blocks)
    if r2t is None:
        c.close()
        return False, "no R2T: " + "; ".join(p.describe() for p in others)
    off, length = r2t.u32(40), r2t.u32(44)
    bad_off = off + length
    c.data_out(itt, r2t.ttt, bad_off, hostile(length), 0, True, lun)
    o, rej, others = wait_reply(c)
    what = "R2T asked for [%d, %d); Data-Out sent [%d, %d)" % (off, off + length, bad_off,
                                                              bad_off + length)
    ok, text = expect_reject_or_drop(o, rej, others, what)
    if not ok:
        # Show what accepting it costs: answer the next R2T as asked.
        nxt = [p for p in others if p.op == OP_R2T and p.itt == itt]
        if nxt:
            p = nxt[0]
            c.data_out(itt, p.ttt, p.u32(40), hostile(p.u32(44)), 0, True, lun)
            o2, rej2, others2 = wait_reply(c)
            done = [q for q in others2 if q.itt == itt and q.op in (OP_SCSI_RSP, OP_DATA_IN)]
            if done:
                text += "; after answering the next R2T the WRITE completed with status " \
                    "%#04x although bytes [%d, %d) were never sent" % (done[0].hdr[3], off,
                                                                       off + length)
    c.close()
    return data_case_result(ctx, ok, text, lun, lba, blocks)


@case("dataout_overlap", "RFC 7143 13.19: DataPDUInOrder=Yes forbids overlays")
def _(ctx):
    lun, lba, blocks = 1, 192, 4096 // ctx.bs
    c = ctx.logged_in("overlap")
    itt, r2t, others = start_write(c, ctx, lun, lba, blocks)
    if r2t is None:
        c.close()
        return False, "no R2T: " + "; ".join(p.describe() for p in others)
    half = r2t.u32(44) // 2
    c.data_out(itt, r2t.ttt, 0, hostile(half), 0, False, lun)
    c.data_out(itt, r2t.ttt, 0, hostile(half), 1, True, lun)  # offset 0 again
    o, rej, others = wait_reply(c)
    c.close()
    done = [p for p in others if p.itt == itt and p.op in (OP_SCSI_RSP, OP_DATA_IN)]
    ok, text = expect_reject_or_drop(o, rej, others, "two Data-Out of %d bytes both at offset "
                                     "0 for a %d-byte burst" % (half, 2 * half))
    if done:
        ok = False
        text += " -- the WRITE completed with status %#04x although bytes [%d, %d) were " \
            "never sent" % (done[0].hdr[3], half, 2 * half)
    return data_case_result(ctx, ok, text, lun, lba, blocks)


@case("duplicate_itt", "RFC 7143 11.2.1.8: an ITT identifies one task session-wide; "
      "11.17.1: Reject 0x07 'Task in progress' / 0x09")
def _(ctx):
    lba = 224
    c = ctx.logged_in("dup-itt")
    itt, r2t, others = start_write(c, ctx, 0, lba, 8)
    if r2t is None:
        c.close()
        return False, "no R2T: " + "; ".join(p.describe() for p in others)
    h, _ = c.scsi_cmd_hdr(cdb_write10(lba + 16, 8), 0, write=True, edtl=4096, dsl=4096, itt=itt)
    c.send(h, hostile(4096))
    o, rej, others = wait_reply(c)
    c.close()
    done = [p for p in others if p.itt == itt and p.op in (OP_SCSI_RSP, OP_DATA_IN)]
    ok, text = expect_reject_or_drop(o, rej, others, "a second WRITE with the ITT %#x of a "
                                     "WRITE waiting for data" % itt)
    if done:
        ok = False
        text += " -- the second WRITE EXECUTED (status %#04x); the first task was silently " \
            "dropped" % done[0].hdr[3]
    time.sleep(0.2)
    bad = check_region(ctx, 0, lba, 24)
    return (ok and not bad), text + ("; " + bad if bad else "")


def hwm_kib(ctx):
    try:
        with open("/proc/%d/status" % ctx.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@case("huge_edtl_read_memory", "hostile: a 1-block READ with EDTL 256 MiB must not cost 256 "
      "MiB of target memory (RFC 7143 11.4.5: the difference is an underflow residual)")
def _(ctx):
    c = ctx.logged_in("huge-edtl-read")
    hwm0 = hwm_kib(ctx)
    h, itt = c.scsi_cmd_hdr(cdb_read10(0, 1), 0, read=True, edtl=256 << 20)
    c.send(h)
    got = []
    try:
        while True:
            p = c.recv()
            got.append(p)
            if p.itt == itt and (p.op == OP_SCSI_RSP or (p.op == OP_DATA_IN and p.flags & 1)):
                break
    except (Dropped, Silence):
        pass
    hwm1 = hwm_kib(ctx)
    c.close()
    grew = (hwm1 - hwm0) // 1024
    text = "READ(10) of 1 block with EDTL 256 MiB: %s; ferryd peak RSS (VmHWM) grew by %d " \
        "MiB" % ("; ".join(p.describe() for p in got[-2:]) or "nothing", grew)
    if grew >= 64:
        return False, text + " -- memory follows the initiator's EDTL, not the CDB"
    return True, text


@case("huge_edtl_write_memory", "hostile: a 1-block WRITE with EDTL 256 MiB must not cost 256 MiB "
      "of target memory (SAM-5: only the CDB's transfer length moves; the rest is residual)")
def _(ctx):
    lba = 256
    c = ctx.logged_in("huge-edtl")
    rss0 = ctx.rss_kib()
    itt, r2t, others = start_write(c, ctx, 0, lba, 1, edtl=256 << 20)
    time.sleep(0.2)
    rss1 = ctx.rss_kib()
    c.close()
    grew = (rss1 - rss0) // 1024
    text = "WRITE(10) of 1 block with EDTL 256 MiB: %s; ferryd RSS grew by %d MiB " \
        "while the command waited for data" % (
            r2t.describe() if r2t else "; ".join(p.describe() for p in others) or "nothing",
            grew)
    return data_case_result(ctx, grew < 64, text + (
        " -- memory follows the initiator's EDTL, not the CDB" if grew >= 64 else ""),
        0, lba, 1)


# --- Truncation -----------------------------------------------------------------------------


@case("truncated_bhs_before_login", "RFC 7143 11.2: a BHS is 48 bytes")
def _(ctx):
    c = ctx.conn("trunc-login")
    h = bhs(OP_LOGIN, 0x81, immediate=True, lun=c.isid + b"\0\0", itt=1)
    c.send_raw(h[:24])
    c.close()
    time.sleep(0.2)
    return ctx.alive(), "24 of 48 BHS bytes, then close"


@case("truncated_bhs_full_feature", "RFC 7143 11.2: a BHS is 48 bytes")
def _(ctx):
    lba = 272
    c = ctx.logged_in("trunc-ffp")
    h, _itt = c.scsi_cmd_hdr(cdb_write10(lba, 1), 0, write=True, edtl=ctx.bs, dsl=ctx.bs)
    c.send_raw(h[:24])
    c.close()
    return data_case_result(ctx, ctx.alive(), "24 of the 48 bytes of a WRITE, then close", 0,
                            lba, 1)


DIGEST_OP_KEYS = [(k, "CRC32C" if k in ("HeaderDigest", "DataDigest") else v)
                  for k, v in GOOD_OP_KEYS]


@case("digests_roundtrip", "RFC 7143 13.1: CRC32C header and data digests on every PDU")
def _(ctx):
    lba = 300
    c = ctx.conn("digests")
    c.login(DIGEST_OP_KEYS)
    if not (c.hd and c.dd):
        return False, "digests not negotiated: %s" % c.params
    data = pattern(0, lba, 8, ctx.bs)  # 8 blocks: immediate data, and R2T + Data-Out
    st, _, sense = c.command(cdb_write10(lba, 8), 0, write_data=data)
    if st != 0:
        return False, "WRITE with digests: status %d sense %s" % (st, sense.hex())
    st, got, _ = c.command(cdb_read10(lba, 8), 0, read_len=len(data))
    ok = st == 0 and got == data and c.ping(b"digest-ping")
    return ok, "WRITE and READ of 8 blocks with header and data digests: %s" % (
        "data intact" if ok else "status %d, data %s" % (st, "same" if got == data else "differs"))


@case("bad_data_digest", "RFC 7143 7.8: a data digest error discards the PDU (Reject 0x02); "
      "nothing is written")
def _(ctx):
    lba = 320
    c = ctx.conn("bad-digest")
    c.login(DIGEST_OP_KEYS)
    h, _itt = c.scsi_cmd_hdr(cdb_write10(lba, 1), 0, write=True, edtl=ctx.bs, dsl=ctx.bs)
    c.corrupt_next_data_digest = True
    c.send(h, b"\xee" * ctx.bs)
    outcome, rej, others = wait_reply(c)
    ok, text = expect_reject_or_drop(outcome, rej, others, "bad data digest")
    if ok and rej is not None and rej.hdr[2] != 0x02:
        ok, text = False, "Reject reason %#x, want 0x02 (data digest error)" % rej.hdr[2]
    return data_case_result(ctx, ok, text, 0, lba, 1)


@case("session_reinstatement", "RFC 7143 6.3.5: a login with a live session's ISID "
      "reinstates it: the old connection closes, the new one works")
def _(ctx):
    old = ctx.logged_in("reinstate-old")
    new = ctx.conn("reinstate-new")
    new.isid = old.isid
    new.login()
    try:
        old.recv(timeout=3)
        closed = False
    except Dropped:
        closed = True
    except Silence:
        closed = False
    works = still_serves(new)
    return closed and works, "old session %s; new session %s" % (
        "closed" if closed else "still open", "answers" if works else "does not answer")


# --------------------------------------------------------------------------------------
# Driver.


def start_ferryd(ctx):
    logf = open(ctx.log_path, "wb")
    ctx.proc = subprocess.Popen(
        [ctx.ferryd, "--state-dir", os.path.join(ctx.work, "state"), "--listen", "127.0.0.1:0",
         "--lun-size", "64M", "--log-level", "debug"],
        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(ctx.log_path, errors="replace") as f:
            m = re.search(r"^ferryd: serving .* on 127\.0\.0\.1:(\d+) ", f.read(), re.M)
        if m:
            ctx.port = int(m.group(1))
            return True
        if ctx.proc.poll() is not None:
            break
        time.sleep(0.1)
    return False


def tail_log(ctx, n=30):
    try:
        with open(ctx.log_path, errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


def setup_pattern(ctx):
    c = ctx.bystander
    st, data, sense = c.command(CDB_READ_CAPACITY10, 0, read_len=8)
    if st != GOOD:  # a unit attention first, maybe
        st, data, sense = c.command(CDB_READ_CAPACITY10, 0, read_len=8)
    if st != GOOD:
        raise AssertionError("READ CAPACITY failed: status %#x sense %s" % (st, sense.hex()))
    ctx.bs = struct.unpack(">I", data[4:8])[0]
    step = 65536 // ctx.bs
    for lun in (0, 1):
        for lba in range(0, REGION_BLOCKS, step):
            st, _d, sense = c.command(cdb_write10(lba, step), lun,
                                      write_data=pattern(lun, lba, step, ctx.bs))
            if st != GOOD:
                raise AssertionError("pattern write LUN %d LBA %d: status %#x sense %s" % (
                    lun, lba, st, sense.hex()))
        bad = check_region(ctx, lun, 0, REGION_BLOCKS)
        if bad:
            raise AssertionError("pattern did not read back: " + bad)


def run(ferryd):
    work = tempfile.mkdtemp(prefix="ferry-hostile-", dir="/var/tmp")
    ctx = Ctx(ferryd, work)

    def cleanup():
        if ctx.proc is not None and ctx.proc.poll() is None:
            ctx.proc.kill()
            ctx.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    if not start_ferryd(ctx):
        log("FAIL: ferryd did not start")
        log("\n".join(tail_log(ctx)))
        return 1
    log("ferryd (pid %d) serving on 127.0.0.1:%d; log %s" % (ctx.proc.pid, ctx.port,
                                                            ctx.log_path))

    failures = []
    try:
        ctx.bystander = Conn(ctx.port, "bystander")
        ctx.bystander.login(GOOD_OP_KEYS)
        setup_pattern(ctx)
    except (AssertionError, Dropped, Silence, OSError) as e:
        log("FAIL setup: the well-behaved session could not write the pattern: %r" % (e,))
        log("\n".join(tail_log(ctx)))
        return 1
    log("pattern written: LUN 0 and LUN 1, LBAs 0..%d, block size %d" % (REGION_BLOCKS - 1,
                                                                        ctx.bs))

    for name, rfc, fn in CASES:
        ctx.ports = []
        ctx.case = name
        t0 = time.monotonic()
        try:
            ok, text = fn(ctx)
        except (AssertionError, Dropped, Silence, OSError) as e:
            ok, text = False, "the case broke off: %s: %s" % (type(e).__name__, e)
        # ferryd must be alive and still serving the bystander session.
        if not ctx.alive():
            ok, text = False, text + " -- FERRYD DIED (exit %s)" % ctx.proc.returncode
        else:
            try:
                if not ctx.bystander.ping():
                    raise Silence()
            except (Dropped, Silence, OSError):
                ok, text = False, text + " -- the bystander session is no longer served"
        log("%s %s (%.1f s): %s" % ("PASS" if ok else "FAIL", name, time.monotonic() - t0,
                                     text))
        if not ok:
            log("     RFC: %s" % rfc)
            lines = ctx.log_lines_for(ctx.ports)
            log("     ferryd log for this case (%s):" % ", ".join(
                "127.0.0.1:%d" % p for p in ctx.ports))
            for ln in lines[-12:] or ["(no line names these connections)"]:
                log("       | " + ln)
            failures.append(name)
        if not ctx.alive():
            log("ferryd died; stopping. Last log lines:")
            log("\n".join(tail_log(ctx)))
            return 1

    # A fresh session, TEST UNIT READY, the whole pattern.
    ctx.case = None
    name = "final_fresh_session"
    try:
        fresh = Conn(ctx.port, "fresh")
        ctx.ports = [fresh.local_port]
        fresh.login(GOOD_OP_KEYS)
        st, _d, sense = fresh.command(CDB_TUR, 0)
        if st != GOOD:
            st, _d, sense = fresh.command(CDB_TUR, 0)  # after a unit attention
        bad = [check_region(ctx, lun, 0, REGION_BLOCKS) for lun in (0, 1)]
        bad = "; ".join(b for b in bad if b)
        ok = st == GOOD and not bad
        text = "login OK, TEST UNIT READY status %#04x%s; pattern %s" % (
            st, " sense " + sense.hex() if sense else "", bad or "unchanged on LUN 0 and 1")
        fresh.logout()
        ctx.bystander.logout()
    except (AssertionError, Dropped, Silence, OSError) as e:
        ok, text = False, "%s: %s" % (type(e).__name__, e)
    log("%s %s: %s" % ("PASS" if ok else "FAIL", name, text))
    if not ok:
        failures.append(name)

    # A clean stop.
    name = "final_sigterm"
    ctx.proc.send_signal(signal.SIGTERM)
    try:
        rc = ctx.proc.wait(timeout=15)
        with open(ctx.log_path, errors="replace") as f:
            stopped = re.search(r"^ferryd: stopped", f.read(), re.M)
        ok = rc == 0 and bool(stopped)
        text = "exit status %d, %s" % (rc, "'ferryd: stopped' printed" if stopped
                                        else "no 'ferryd: stopped' line")
    except subprocess.TimeoutExpired:
        ok, text = False, "ferryd did not exit within 15 s of SIGTERM"
    log("%s %s: %s" % ("PASS" if ok else "FAIL", name, text))
    if not ok:
        failures.append(name)
        log("\n".join(tail_log(ctx, 15)))

    total = len(CASES) + 2
    log("\n%d of %d checks passed" % (total - len(failures), total))
    if failures:
        log("failed: " + ", ".join(failures))
        return 1
    return 0


def main():
    if len(sys.argv) != 2:
        print("usage: hostile_pdus.py PATH/TO/ferryd", file=sys.stderr)
        return 77
    ferryd = os.path.abspath(sys.argv[1])
    if not (os.path.isfile(ferryd) and os.access(ferryd, os.X_OK)):
        print("SKIPPED: ferryd not found or not executable at %s (build the ferryd target)" %
              ferryd)
        return 77
    return run(ferryd)


if __name__ == "__main__":
    sys.exit(main())
