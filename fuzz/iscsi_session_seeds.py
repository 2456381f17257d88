#!/usr/bin/env python3
"""Seeds of the iscsi_session fuzz target (fuzz/iscsi_session_fuzz.cc documents the input
format): short initiator programs that log in, run SCSI commands (INQUIRY, READ, WRITE with
R2T, EXTENDED COPY), task management, NOP, SendTargets, logout, with digests and with broken
sequence numbers. Each is written to fuzz/corpus/iscsi_session/ under the SHA-1 of its bytes.

Rerun after changing the input format:  python3 fuzz/iscsi_session_seeds.py
"""
import hashlib
import os
import sys

# Setup byte (the automatic login's offer).
HEADER_DIGEST, DATA_DIGEST, INITIAL_R2T_NO, IMMEDIATE_DATA_NO = 0x01, 0x02, 0x04, 0x08
SMALL_BURSTS, OUTSTANDING_R2T_4, MRDSL_512 = 0x10, 0x20, 0x40
# Command flags.
R, W, MANUAL_R2T = 0x01, 0x02, 0x80


def be(n, v):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, 'big')


def op(kind, imm=False, mess=None, nopump=False, bit7=False):
    b = kind | (0x10 if imm else 0) | (0x20 if mess else 0) | (0x40 if nopump else 0)
    b |= 0x80 if bit7 else 0
    out = bytes([b])
    if mess:
        out += bytes([mess[0]]) + be(4, mess[1])
    return out


def login(mode=0, keys=b'', **kw):
    return op(0, **kw) + bytes([mode, len(keys)]) + keys


def cmd(cdb, flags=0, lun=0, edtl=0, data=b'', **kw):
    return op(1, **kw) + bytes([flags, lun, len(cdb)]) + cdb + be(3, edtl) + be(2, len(data)) + data


def data_out(flags=0, n=0, **kw):
    return op(2, **kw) + bytes([flags]) + be(3, n)


def tmf(function, lun=0, task=0, **kw):
    return op(3, imm=True, **kw) + bytes([function, lun, task])


def nop(n=0, **kw):
    return op(4, **kw) + be(2, n)


def text(flags=0, t=b'', **kw):
    return op(5, **kw) + bytes([flags, len(t)]) + t


def logout(reason=0, **kw):
    return op(6, **kw) + bytes([reason])


def raw(b, **kw):
    return op(7, **kw) + be(2, len(b)) + b


def connection(flags=0):
    return op(8) + bytes([flags])


def rw10(opcode, lba, blocks):
    return bytes([opcode, 0]) + be(4, lba) + bytes([0]) + be(2, blocks) + bytes([0])


INQUIRY = bytes([0x12, 0, 0, 0, 96, 0])
TUR = bytes(6)
REPORT_LUNS = bytes([0xa0, 0, 0, 0, 0, 0]) + be(4, 4096) + bytes(2)
READ_CAPACITY16 = bytes([0x9e, 0x10]) + bytes(8) + be(4, 32) + bytes(2)


def cscd(lun, block_size=512):
    """E4h identification descriptor naming LUN `lun` by its NAA (0x60 0..0 lun)."""
    d = bytearray(32)
    d[0], d[4], d[5], d[7] = 0xe4, 0x01, 0x03, 16
    d[8] = 0x60
    d[23] = lun
    d[29:32] = be(3, block_size)
    return bytes(d)


def segment_b2b(src, dst, blocks, src_lba, dst_lba):
    return bytes([0x02, 0]) + be(2, 0x18) + be(2, src) + be(2, dst) + bytes(2) + be(2, blocks) + \
        be(8, src_lba) + be(8, dst_lba)


def xcopy_lid1(src_lun, dst_lun, blocks, list_id=1):
    cscds = cscd(src_lun) + cscd(dst_lun)
    seg = segment_b2b(0, 1, blocks, 0, 64)
    params = bytes([list_id, 0]) + be(2, len(cscds)) + bytes(4) + be(4, len(seg)) + bytes(4)
    params += cscds + seg
    cdb = bytes([0x83, 0x00]) + bytes(8) + be(4, len(params)) + bytes(2)
    return cmd(cdb, W, src_lun, len(params), params)


def populate_token(lun, blocks):
    params = be(2, 14 + 16) + bytes([0, 0]) + be(4, 0) + be(4, 0) + bytes(2) + be(2, 16)
    params += be(8, 0) + be(4, blocks) + bytes(4)
    cdb = bytes([0x83, 0x10]) + bytes(4) + be(4, 7) + be(4, len(params)) + bytes([0, 0])
    return cmd(cdb, W, lun, len(params), params)


def receive_rod_token_info(lun):
    cdb = bytes([0x84, 0x07]) + be(4, 7) + bytes(4) + be(4, 1024) + bytes([0, 0])
    return cmd(cdb, R, lun, 1024)


LOGIN = login()
LOGOUT = logout()
SEEDS = {
    'login-logout': bytes([0]) + LOGIN + LOGOUT,
    'login-two-stages': bytes([0]) + login(1) + LOGOUT,
    'login-operational-only-split': bytes([0]) + login(2 | 0x04) + LOGOUT,
    'inquiry-read-write': bytes([0]) + LOGIN + cmd(INQUIRY, R, 0, 96) + cmd(TUR) +
    cmd(REPORT_LUNS, R, 0, 4096) + cmd(READ_CAPACITY16, R, 0, 32) +
    cmd(rw10(0x2a, 0, 16), W, 0, 8192, b'written by the seed') +
    cmd(rw10(0x28, 0, 16), R, 0, 8192) + LOGOUT,
    'write-r2t': bytes([0]) + LOGIN + cmd(rw10(0x2a, 8, 256), W, 0, 131072) +
    cmd(rw10(0x28, 8, 256), R, 0, 131072) + LOGOUT,
    'write-r2t-small-bursts':
    bytes([IMMEDIATE_DATA_NO | SMALL_BURSTS | OUTSTANDING_R2T_4 | MRDSL_512]) + LOGIN +
    cmd(rw10(0x2a, 0, 64), W, 0, 32768) + cmd(rw10(0x28, 0, 64), R, 0, 32768) + LOGOUT,
    'write-unsolicited': bytes([INITIAL_R2T_NO]) + LOGIN +
    cmd(rw10(0x2a, 0, 512), W, 0, 262144) + LOGOUT,
    'write-manual-data-out': bytes([IMMEDIATE_DATA_NO]) + LOGIN +
    cmd(rw10(0x2a, 0, 32), W | MANUAL_R2T, 0, 16384) + data_out(0x02, 4096) + data_out() +
    LOGOUT,
    'write-protected-luns': bytes([0]) + LOGIN + cmd(rw10(0x2a, 0, 8), W, 1, 4096) +
    cmd(rw10(0x2a, 0, 8), W, 2, 4096) + cmd(rw10(0x28, 0, 8), R, 1, 4096) + LOGOUT,
    'write-4k-lun': bytes([0]) + LOGIN + cmd(rw10(0x2a, 1, 2), W, 3, 8192) +
    cmd(rw10(0x28, 1, 2), R, 3, 8192) + LOGOUT,
    'extended-copy': bytes([0]) + LOGIN + xcopy_lid1(1, 0, 16) + xcopy_lid1(0, 2, 16, 2) +
    cmd(rw10(0x28, 64, 16), R, 0, 8192) + LOGOUT,
    'populate-token': bytes([0]) + LOGIN + populate_token(1, 8) + receive_rod_token_info(1) +
    LOGOUT,
    'abort-task': bytes([IMMEDIATE_DATA_NO]) + LOGIN +
    cmd(rw10(0x2a, 0, 32), W | MANUAL_R2T, 0, 16384) + tmf(1) + LOGOUT,
    'lun-reset': bytes([IMMEDIATE_DATA_NO]) + LOGIN +
    cmd(rw10(0x2a, 0, 32), W | MANUAL_R2T, 0, 16384) + tmf(5, 0) + tmf(2, 0) + tmf(6) + LOGOUT,
    'nop': bytes([0]) + LOGIN + nop(100) + nop(0, imm=True) + LOGOUT,
    # A ping larger than the initiator's MaxRecvDataSegmentLength: the echo is cut to it.
    'nop-above-mrdsl': bytes([MRDSL_512]) + LOGIN + nop(4096) + LOGOUT,
    'send-targets-discovery': bytes([0]) + login(0x08) + text() + LOGOUT,
    'send-targets-normal': bytes([0]) + LOGIN + text() + text(1, b'SendTargets=\x00') + LOGOUT,
    'bad-cmdsn': bytes([0]) + LOGIN + cmd(TUR, mess=(0, 1000)) + cmd(TUR, mess=(0x08, 5)) +
    cmd(TUR) + LOGOUT,
    'digests': bytes([HEADER_DIGEST | DATA_DIGEST]) + LOGIN + cmd(INQUIRY, R, 0, 96) +
    cmd(rw10(0x2a, 0, 256), W, 0, 131072) + cmd(rw10(0x28, 0, 256), R, 0, 131072) +
    nop(64) + LOGOUT,
    'bad-data-digest': bytes([HEADER_DIGEST | DATA_DIGEST]) + LOGIN +
    cmd(rw10(0x2a, 0, 1), W, 0, 512, mess=(0x20, 0)) + LOGOUT,
    'reinstate': bytes([0]) + LOGIN + cmd(TUR) + connection(0) + LOGIN + cmd(TUR) + LOGOUT,
    'two-nexuses': bytes([IMMEDIATE_DATA_NO]) + LOGIN +
    cmd(rw10(0x2a, 0, 32), W | MANUAL_R2T, 0, 16384) + connection(1) + LOGIN + tmf(5, 0) +
    connection(0) + LOGOUT,
    'snack-raw': bytes([0]) + LOGIN + raw(bytes([0x10, 0x80]) + bytes(46)) + LOGOUT,
    'pipelined': bytes([0]) + login(nopump=True) + cmd(INQUIRY, R, 0, 96, nopump=True) +
    cmd(TUR, nopump=True) + LOGOUT,
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'iscsi_session')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        sha = hashlib.sha1(data).hexdigest()
        with open(os.path.join(out, sha), 'wb') as f:
            f.write(data)
        print(f'{sha}  {name} ({len(data)} bytes)', file=sys.stderr)


if __name__ == '__main__':
    main()
