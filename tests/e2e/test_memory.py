"""Issue target: resident memory with 1M open transactions and 20k series stays within 150 MB.

One million INVITEs with unique Call-IDs and branches, from 20,000 peers, none answered and all
within Timer B of each other (20 us apart), so every one is an open transaction at the end of the
file; 20,000 peers give 20,000 series of sip_requests_total. Peak RSS is the exporter's own (sipex_testlib.run_measured).
"""
import os
import struct
import tempfile
import unittest

import sipex_testlib as t

TRANSACTIONS = 1_000_000
PEERS = 20_000
LIMIT_KIB = 150 * 1024


def write_capture(path):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        eth = b"\x00\x01\x02\x03\x04\x05\x00\x01\x02\x03\x04\x06\x08\x00"
        dst = bytes([198, 51, 100, 1])
        out = []
        for i in range(TRANSACTIONS):
            peer = i % PEERS
            src = bytes([10, 1 + peer // 65536, (peer >> 8) & 255, peer & 255])
            sip = (f"INVITE sip:+4930{i}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKm{i}\r\n"
                   f"From: <sip:a@x>;tag={i}\r\nTo: <sip:b@y>\r\nCall-ID: mem{i}\r\nCSeq: 1 INVITE\r\n"
                   f"Content-Length: 0\r\n\r\n").encode()
            udp = struct.pack("!HHHH", 5060, 5060, 8 + len(sip), 0) + sip
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, dst) + udp
            frame = eth + ip
            usec = 20 * i
            out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
            if len(out) == 10000:
                f.write(b"".join(out))
                out = []
        f.write(b"".join(out))


class MemoryTest(unittest.TestCase):
    def test_one_million_open_transactions_and_20k_series_fit_in_150_mb(self):
        with tempfile.TemporaryDirectory() as d:
            cap = os.path.join(d, "open.pcap")
            write_capture(cap)
            cfg = os.path.join(d, "limits.yaml")
            with open(cfg, "w") as f:
                f.write(f"limits:\n  max_peers: {PEERS}\n  transactions: {TRANSACTIONS + 50_000}\n")
            out, err, rc, peak, hung = t.run_measured([f"--capture.file={cap}", f"--config.file={cfg}",
                                                       "--workers=1", "--metrics.out=-"], timeout=240)
            self.assertFalse(hung, "sip_exporter hung")
            self.assertEqual(rc, 0, err)
            s = t.parse_exposition(out)
        self.assertEqual(t.total(s, "sip_exporter_transactions_active"), TRANSACTIONS)
        self.assertEqual(t.total(s, "sip_exporter_transactions_evicted_total"), 0)
        series = sum(1 for n, _, v in s if n == "sip_requests_total")
        self.assertEqual(series, PEERS)
        print(f"peak RSS {peak / 1024:.1f} MiB with {TRANSACTIONS} open transactions and {series} series")
        self.assertLessEqual(peak, LIMIT_KIB)


if __name__ == "__main__":
    t.main()
