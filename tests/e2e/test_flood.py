"""Memory stays bounded under a flood of half-open TCP flows and orphan IP fragments.

The test writes its own capture: FLOWS half-open TCP connections to port 5060 (a SYN, then one
segment holding the start of a SIP message that never ends) and FRAGMENTS orphan IPv4 first
fragments (their datagrams never complete), from random addresses, with legitimate SIP
interleaved: UDP requests and responses, and a long-lived TCP connection whose messages are each
split across two segments. With small reassembly limits in the config, the exporter must
  - count the legitimate messages exactly,
  - count the evictions the flood forces (tcp table_full, ip table_full/memory),
  - keep its peak resident memory within the configured bounds above an idle baseline, and flat:
    a flood four times larger must not raise it by more than a few megabytes.
Peak memory is the exporter's own ru_maxrss (sipex_testlib.run_measured).
"""
import os
import random
import struct
import tempfile
import unittest

import sipex_testlib as t

FLOWS = 200_000
FRAGMENTS = 200_000
WORKERS = 2
LIMITS = {
    "transactions": 8192,
    "tcp_streams": 4096,
    "tcp_buffer_bytes": 2 << 20,
    "fragment_datagrams": 1024,
    "fragment_buffer_bytes": 1 << 20,
}
LEGIT_EVERY = 50  # flood packets between two legitimate ones


def ipv4(src, dst, proto, payload, ident=0, frag=0):
    total = 20 + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, frag, 64, proto, 0, src, dst) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0) + payload


def ether(ip):
    return b"\x00\x01\x02\x03\x04\x05\x00\x01\x02\x03\x04\x06\x08\x00" + ip


class PcapWriter:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.usec = 0

    def write(self, frame):
        self.usec += 5  # 200k packets a second of capture time: no reassembly timeout fires
        self.f.write(struct.pack("<IIII", self.usec // 1_000_000, self.usec % 1_000_000, len(frame), len(frame)))
        self.f.write(frame)

    def close(self):
        self.f.close()


def sip_request(method, n):
    return (f"{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{n}\r\n"
            f"Call-ID: legit{n}\r\nCSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n").encode()


def sip_response(code, method, n):
    return (f"SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{n}\r\n"
            f"Call-ID: legit{n}\r\nCSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n").encode()


def write_flood(path, flows, fragments, seed):
    """Writes the flood capture; returns the legitimate truth {("req", method) or ("resp", code): n}."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = {}
    legit_src, legit_dst = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 1])
    tcp_seq = 1000
    w.write(ether(ipv4(legit_src, legit_dst, 6, tcp(40000, 5060, tcp_seq - 1, 0x02))))
    partial = b"INVITE sip:victim@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKflood\r\nCall-ID: "
    orphan = udp(5060, 5060, b"INVITE sip:x SIP/2.0\r\n" + b"a" * 1400)[:1208]  # first 1208 bytes of a larger datagram
    n = 0
    flood_left = {"tcp": flows, "frag": fragments}
    while flood_left["tcp"] or flood_left["frag"]:
        for _ in range(LEGIT_EVERY):
            kind = rnd.choice([k for k, v in flood_left.items() if v])
            src = bytes([rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)])
            if kind == "tcp":
                sport = rnd.randrange(1024, 65535)
                isn = rnd.randrange(1 << 32)
                w.write(ether(ipv4(src, legit_dst, 6, tcp(sport, 5060, isn, 0x02))))
                w.write(ether(ipv4(src, legit_dst, 6, tcp(sport, 5060, (isn + 1) & 0xFFFFFFFF, 0x18, partial))))
            else:
                w.write(ether(ipv4(src, legit_dst, 17, orphan, ident=rnd.randrange(65536), frag=0x2000)))
            flood_left[kind] -= 1
            if not flood_left["tcp"] and not flood_left["frag"]:
                break
        n += 1
        method = rnd.choice(["INVITE", "BYE", "REGISTER", "OPTIONS"])
        if n % 2:  # UDP, a request and its response
            w.write(ether(ipv4(legit_src, legit_dst, 17, udp(5060, 5060, sip_request(method, n)))))
            code = rnd.choice([100, 180, 200, 486, 503])
            w.write(ether(ipv4(legit_dst, legit_src, 17, udp(5060, 5060, sip_response(code, method, n)))))
            truth[("resp", str(code))] = truth.get(("resp", str(code)), 0) + 1
        else:  # the long-lived TCP connection, each message split across two segments
            msg = sip_request(method, n)
            cut = rnd.randrange(1, len(msg))
            for part in (msg[:cut], msg[cut:]):
                w.write(ether(ipv4(legit_src, legit_dst, 6, tcp(40000, 5060, tcp_seq, 0x18, part))))
                tcp_seq += len(part)
        truth[("req", method)] = truth.get(("req", method), 0) + 1
    w.close()
    return truth


def write_invite_flood(path, n, seed):
    """n INVITEs with unique Call-IDs and branches from random sources, never answered."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    dst = bytes([198, 51, 100, 1])
    for i in range(n):
        src = bytes([rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)])
        msg = (f"INVITE sip:+4930{i}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKf{i}x{seed}\r\n"
               f"From: <sip:a@x>;tag={i}\r\nTo: <sip:b@y>\r\nCall-ID: flood{i}-{seed}\r\nCSeq: 1 INVITE\r\n"
               f"Content-Length: 0\r\n\r\n").encode()
        w.write(ether(ipv4(src, dst, 17, udp(5060, 5060, msg), ident=i & 0xFFFF)))
    w.close()


def run_measured(args):
    """Runs sip_exporter; returns (stdout, its own peak resident set in KiB)."""
    out, err, rc, peak, hung = t.run_measured(args, timeout=300)
    if hung or rc != 0:
        raise AssertionError(f"sip_exporter {'hung' if hung else f'exited {rc}'}: {err}")
    return out, peak


class FloodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.config = os.path.join(d, "limits.yaml")
        with open(cls.config, "w") as f:
            f.write("limits:\n" + "".join(f"  {k}: {v}\n" for k, v in LIMITS.items()))
        cls.small = os.path.join(d, "small.pcap")
        cls.small_truth = write_flood(cls.small, 1000, 1000, seed=1)
        cls.flood = os.path.join(d, "flood.pcap")
        cls.truth = write_flood(cls.flood, FLOWS, FRAGMENTS, seed=2)
        cls.big = os.path.join(d, "big.pcap")
        write_flood(cls.big, 4 * FLOWS, 4 * FRAGMENTS, seed=3)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_capture(self, path):
        text, peak = run_measured([f"--capture.file={path}", f"--config.file={self.config}",
                                   f"--workers={WORKERS}", "--metrics.out=-"])
        return t.parse_exposition(text), peak

    def legit_counts(self, s):
        got = {("req", k): v for k, v in t.sum_by(s, "sip_requests_total", "method").items()}
        got.update({("resp", k): v for k, v in t.sum_by(s, "sip_responses_total", "code").items()})
        return got

    def test_flood_is_evicted_and_counted_while_legitimate_traffic_counts_exactly(self):
        s, _ = self.run_capture(self.flood)
        self.assertEqual(self.legit_counts(s), self.truth)
        ev = t.sum_by(s, "sip_exporter_reassembly_evictions_total", "kind", "reason")
        self.assertGreaterEqual(ev.get(("tcp", "table_full"), 0), FLOWS - WORKERS * LIMITS["tcp_streams"])
        ip_evicted = sum(v for (kind, _), v in ev.items() if kind == "ip")
        self.assertGreaterEqual(ip_evicted, FRAGMENTS - WORKERS * LIMITS["fragment_datagrams"])
        entries = t.sum_by(s, "sip_exporter_reassembly_entries", "kind")
        self.assertLessEqual(entries.get("tcp", 0), WORKERS * LIMITS["tcp_streams"])
        self.assertLessEqual(entries.get("ip", 0), WORKERS * LIMITS["fragment_datagrams"])
        held = t.sum_by(s, "sip_exporter_reassembly_buffered_bytes", "kind")
        self.assertLessEqual(held.get("tcp", 0), WORKERS * LIMITS["tcp_buffer_bytes"])
        self.assertLessEqual(held.get("ip", 0), WORKERS * LIMITS["fragment_buffer_bytes"])

    def test_unique_call_id_flood_keeps_the_transaction_table_at_its_bound(self):
        d = self.tmp.name
        runs = {}
        for n in (100_000, 400_000):
            path = os.path.join(d, f"invites{n}.pcap")
            write_invite_flood(path, n, seed=n)
            s, peak = self.run_capture(path)
            runs[n] = peak
            self.assertEqual(t.sum_by(s, "sip_requests_total", "method"), {"INVITE": n})
            self.assertLessEqual(t.total(s, "sip_exporter_transactions_active"), WORKERS * LIMITS["transactions"])
            self.assertGreaterEqual(t.total(s, "sip_exporter_transactions_evicted_total"),
                                    n - WORKERS * LIMITS["transactions"])
        print(f"peak RSS with unique Call-IDs: {runs}")
        self.assertLessEqual(runs[400_000] - runs[100_000], 8 * 1024, "memory grows with the flood")

    def test_peak_memory_is_bounded_and_flat(self):
        _, base = self.run_capture(self.small)
        _, flood = self.run_capture(self.flood)
        _, big = self.run_capture(self.big)
        # What the limits allow: per worker the reassembly buffers and stream slots (under 256 bytes
        # each), plus the batch pool, which a small file barely touches and a large one fills
        # (64 batches of 256 KiB by default).
        allowance_kib = WORKERS * (LIMITS["tcp_buffer_bytes"] + LIMITS["fragment_buffer_bytes"] +
                                   256 * LIMITS["tcp_streams"]) // 1024 + 64 * 256
        print(f"peak RSS: baseline {base} KiB, flood {flood} KiB, 4x flood {big} KiB, allowance {allowance_kib} KiB")
        self.assertLessEqual(flood - base, allowance_kib + 4 * 1024)
        self.assertLessEqual(big - flood, 8 * 1024, "memory grows with the flood")


if __name__ == "__main__":
    t.main()
