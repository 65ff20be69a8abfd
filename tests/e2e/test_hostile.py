"""Hostile traffic: floods, spoofed sources, 64 KiB headers, binary junk, shredded TCP streams and
orphan fragments are counted without a crash, within the configured bounds.

Every case writes its own capture (Ethernet/IPv4, pcap, with test_flood.py's writer) and runs the
exporter with one config of small limits (LIMITS, per worker, WORKERS workers). Each case checks
its counts exactly where the truth is known, that the hostile part is evicted and counted, and
that the exporter's peak resident memory (its own ru_maxrss; see sipex_testlib.run_measured) rises above a
baseline run of a small benign capture, with the same config and binary, by no more than what the
limits allow (allowance_kib()) plus a fixed margin. The numbers are printed. Memory is measured
relative to the baseline, never in absolute megabytes, so the test holds for a sanitizer build too.

Cases:
  - a flood of INVITEs with unique Call-IDs from random spoofed addresses: the peer cap holds, the
    overflow is counted as "other", the number of counter series is bounded, transactions are
    evicted, memory is flat (twice the flood, the same memory);
  - 64 KiB headers: a UDP datagram with a 60 KB header in IPv4 fragments (in order and reversed),
    the same over TCP in 1460-byte segments, a header section beyond limits.tcp_message_bytes (a
    too_large eviction, the message after it still counted), and a body too long to buffer;
  - binary junk on port 5060 over UDP and TCP, also junk that starts like "INVITE " and a good
    request line over binary headers: counted as not SIP or as parse errors (every datagram is a
    message, a parse error or not SIP), the legitimate messages among it counted exactly;
  - a 20 KB INVITE in thousands of 1 to 10 byte TCP segments, some out of order, some sent twice,
    some overlapping: counted once; and a flood of partial TCP streams, bounded and evicted;
  - orphan IPv4 fragments (first, middle and last), oversized and overlapping datagrams: bounded
    and evicted, the legitimate fragmented datagrams among them reassembled and counted;
  - a request with no Via branch, Call-ID or From tag (the transaction tracker hashes empty values).
Under AddressSanitizer the measured runs cap ASan's quarantine (see ASAN_QUARANTINE_MB).
"""
import os
import random
import re
import tempfile
import unittest

import sipex_testlib as t
from test_flood import PcapWriter, ether, ipv4, tcp, udp

WORKERS = 2
TIMEOUT = 120  # seconds per run (a sanitizer build is 3-10x slower than Release)
MAX_PEERS = 64
LIMITS = {
    "max_peers": MAX_PEERS,
    "max_series": 4096,
    "max_histograms": 512,
    "transactions": 4096,
    "dialogs": 1024,
    "tcp_streams": 1024,
    "tcp_buffer_bytes": 1 << 20,
    "tcp_message_bytes": 65536,
    "fragment_datagrams": 256,
    "fragment_buffer_bytes": 1 << 20,
    "sctp_messages": 4,
}
HOME = bytes([198, 51, 100, 1])     # home_networks: 198.51.100.0/24
CARRIER = bytes([192, 0, 2, 1])     # peers: carrier-a: 192.0.2.0/28
CONFIG = f"""home_networks: [198.51.100.0/24]
peers:
  carrier-a: [192.0.2.0/28]
limits:
""" + "".join(f"  {k}: {v}\n" for k, v in LIMITS.items())
SANITIZER = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|Sanitizer:DEADLYSIGNAL|"
                       r"SUMMARY: \w+Sanitizer")
METHODS = ("INVITE", "BYE", "REGISTER", "OPTIONS")
CODES = (100, 180, 200, 486, 503)
SIP_COUNTER_FAMILIES = ("sip_requests_total", "sip_responses_total", "sip_retransmissions_total",
                        "sip_transactions_total", "sip_transaction_timeouts_total", "sip_calls_total")
BATCH_POOL_KIB = 64 * 256  # the file reader's batch pool: 64 batches of 256 KiB
MARGIN_KIB = 8 * 1024      # allocator slack, thread stacks, libpcap's buffer, the exposition text
# AddressSanitizer keeps freed memory in a quarantine (256 MiB by default) to catch use after free:
# memory that is ASan's, not the exporter's, and that grows with every buffer the exporter recycles.
# Under ASan the measured runs cap it (use after free is still caught within the cap) and the
# allowance grows by twice the cap (the quarantine, and the chunks it returns to ASan's free lists).
ASAN_QUARANTINE_MB = 8


def asan_build():
    """True when SIPEX_BINARY is built with AddressSanitizer."""
    try:
        with open(t.BINARY, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def allowance_kib():
    """Resident memory the limits allow above a baseline that barely used them, in KiB: per worker the
    reassembly buffers, generously sized table entries for streams, datagrams, transactions, dialogs,
    series and histograms, and SCTP messages of 64 KiB; plus the batch pool and the peer registry."""
    per_worker = (LIMITS["tcp_buffer_bytes"] + LIMITS["fragment_buffer_bytes"] + 256 * LIMITS["tcp_streams"] +
                  1024 * LIMITS["fragment_datagrams"] + 256 * LIMITS["transactions"] + 256 * LIMITS["dialogs"] +
                  64 * LIMITS["max_series"] + 512 * LIMITS["max_histograms"] + 65536 * LIMITS["sctp_messages"])
    return WORKERS * per_worker // 1024 + BATCH_POOL_KIB + 256 * LIMITS["max_peers"] // 1024


# ---- packets ----

def addr(rnd):
    """A random unicast IPv4 address outside the home network and the named peer's."""
    while True:
        a = bytes([rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)])
        if a[:3] not in (HOME[:3], CARRIER[:3]) and a[0] != 127:
            return a


def request(method, n, transport="UDP", extra="", body=b""):
    return (f"{method} sip:+4930{n}@example.com SIP/2.0\r\nVia: SIP/2.0/{transport} 192.0.2.1;branch=z9hG4bKh{n}\r\n"
            f"From: <sip:a@example.com>;tag=f{n}\r\nTo: <sip:b@example.com>\r\nCall-ID: hostile{n}\r\n"
            f"CSeq: 1 {method}\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


def response(code, method, n, transport="UDP", extra=""):
    return (f"SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/{transport} 192.0.2.1;branch=z9hG4bKh{n}\r\n"
            f"From: <sip:a@example.com>;tag=f{n}\r\nTo: <sip:b@example.com>;tag=t{n}\r\nCall-ID: hostile{n}\r\n"
            f"CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def padding_headers(size):
    """Header lines of about `size` bytes in all."""
    lines, n, i = [], 0, 0
    while n < size:
        line = f"X-Pad-{i:05d}: " + "p" * 90 + "\r\n"
        lines.append(line)
        n += len(line)
        i += 1
    return "".join(lines)


def fragments(src, dst, ident, datagram, size=1480, order=None):
    """IPv4 fragments (protocol UDP) of an IP payload, `size` bytes each (a multiple of 8)."""
    parts = []
    for off in range(0, len(datagram), size):
        more = 0x2000 if off + size < len(datagram) else 0
        parts.append(ipv4(src, dst, 17, datagram[off:off + size], ident=ident, frag=more | (off // 8)))
    if order == "reversed":
        parts.reverse()
    return parts


class Truth:
    """Legitimate messages written, by (kind, method or code)."""

    def __init__(self):
        self.counts = {}

    def add(self, kind, key, n=1):
        self.counts[(kind, str(key))] = self.counts.get((kind, str(key)), 0) + n


class Tcp:
    """One direction of a TCP connection: its segments, written in order unless told otherwise."""

    def __init__(self, w, src, dst, sport, dport=5060, isn=1000):
        self.w, self.src, self.dst, self.sport, self.dport = w, src, dst, sport, dport
        self.seq = isn
        w.write(ether(ipv4(src, dst, 6, tcp(sport, dport, isn - 1, 0x02))))

    def frame(self, seq, payload):
        return ether(ipv4(self.src, self.dst, 6, tcp(self.sport, self.dport, seq & 0xFFFFFFFF, 0x18, payload)))

    def send(self, data, size=1460):
        for off in range(0, len(data), size):
            self.w.write(self.frame(self.seq + off, data[off:off + size]))
        self.seq += len(data)


# ---- captures ----

def write_benign(path, seed=0):
    """The baseline: a little of everything, nothing hostile."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    conn = Tcp(w, CARRIER, HOME, 40000)
    for n in range(2000):
        method = rnd.choice(METHODS)
        w.write(ether(ipv4(CARRIER, HOME, 17, udp(5060, 5060, request(method, n)))))
        w.write(ether(ipv4(HOME, CARRIER, 17, udp(5060, 5060, response(rnd.choice(CODES), method, n)))))
        if n % 4 == 0:
            conn.send(request(method, 100000 + n, "TCP"), size=200)
        if n % 40 == 0:
            dg = udp(5060, 5060, request("OPTIONS", 200000 + n, extra=padding_headers(3000)))
            for f in fragments(CARRIER, HOME, n, dg):
                w.write(ether(f))
    w.close()


def write_spoofed_invite_flood(path, n, seed):
    """n INVITEs with unique Call-IDs from random sources to the home network; between every 50 of
    them a legitimate request from carrier-a and its response. Returns the legitimate truth."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = Truth()
    for i in range(n):
        src = addr(rnd)
        msg = (f"INVITE sip:+4930{i}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKs{i}x{seed}\r\n"
               f"From: <sip:a@x>;tag={i}\r\nTo: <sip:b@y>\r\nCall-ID: spoof{i}-{seed}\r\nCSeq: 1 INVITE\r\n"
               f"Content-Length: 0\r\n\r\n").encode()
        w.write(ether(ipv4(src, HOME, 17, udp(5060, 5060, msg), ident=i & 0xFFFF)))
        if i % 50 == 0:
            method = rnd.choice(METHODS)
            code = rnd.choice(CODES)
            w.write(ether(ipv4(CARRIER, HOME, 17, udp(5060, 5060, request(method, i)))))
            w.write(ether(ipv4(HOME, CARRIER, 17, udp(5060, 5060, response(code, method, i)))))
            truth.add("req", method)
            truth.add("resp", code)
    w.close()
    return truth


def write_big_headers(path):
    w = PcapWriter(path)
    truth = Truth()
    # UDP: a 60 KB header section in one datagram, so in 41 IPv4 fragments; in order, then reversed.
    big = padding_headers(60000)
    dg = udp(5060, 5060, request("INVITE", 1, extra=big))
    assert 60000 < len(dg) <= 65515
    for f in fragments(CARRIER, HOME, 101, dg):
        w.write(ether(f))
    truth.add("req", "INVITE")
    dg = udp(5060, 5060, response(200, "INVITE", 1, extra=big))
    for f in fragments(HOME, CARRIER, 102, dg, order="reversed"):
        w.write(ether(f))
    truth.add("resp", 200)
    # TCP: the same header section across 1460-byte segments, then a normal message.
    c1 = Tcp(w, CARRIER, HOME, 41000)
    msg = request("INVITE", 2, "TCP", extra=big)
    assert len(msg) < LIMITS["tcp_message_bytes"]
    c1.send(msg)
    c1.send(request("BYE", 2, "TCP"))
    truth.add("req", "INVITE")
    truth.add("req", "BYE")
    # A header section longer than tcp_message_bytes: given up (too_large), and the message after it
    # on the same connection is still counted.
    c2 = Tcp(w, CARRIER, HOME, 41001)
    c2.send(request("INVITE", 3, "TCP", extra=padding_headers(LIMITS["tcp_message_bytes"] + 16000)))
    c2.send(request("OPTIONS", 3, "TCP"))
    truth.add("req", "OPTIONS")
    # A body too long to buffer: counted from its headers, the body streamed past.
    c3 = Tcp(w, CARRIER, HOME, 41002)
    c3.send(request("INVITE", 4, "TCP", extra="Content-Type: application/octet-stream\r\n",
                    body=b"b" * (LIMITS["tcp_message_bytes"] + 40000)))
    c3.send(request("ACK", 4, "TCP"))
    truth.add("req", "INVITE")
    truth.add("req", "ACK")
    w.close()
    return truth


def junk(rnd, n):
    """Random bytes that do not start like TLS, HTTP or a SIP token, without SIP/2.0 in them."""
    b = bytearray(rnd.getrandbits(8) for _ in range(n))
    if b:
        b[0] = rnd.choice([0x00, 0x01, 0x80, 0xff, 0x7f])
    return bytes(b).replace(b"SIP/", b"sip/")


def write_junk_udp(path, seed=5):
    """Junk datagrams to port 5060 among legitimate requests and responses."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = Truth()
    kinds = {"junk": 0, "invite_junk": 0, "message_junk": 0}
    for i in range(8000):
        r = rnd.random()
        src = addr(rnd)
        if r < 0.5:  # random bytes
            w.write(ether(ipv4(src, HOME, 17, udp(rnd.randrange(1024, 65536), 5060, junk(rnd, rnd.randrange(1, 1400))))))
            kinds["junk"] += 1
        elif r < 0.65:  # "INVITE " and then garbage
            payload = b"INVITE " + junk(rnd, rnd.randrange(0, 600))
            w.write(ether(ipv4(src, HOME, 17, udp(5060, 5060, payload))))
            kinds["invite_junk"] += 1
        elif r < 0.75:  # a good request line, binary headers
            payload = b"MESSAGE sip:x@example.com SIP/2.0\r\n" + junk(rnd, rnd.randrange(1, 600))
            w.write(ether(ipv4(src, HOME, 17, udp(5060, 5060, payload))))
            kinds["message_junk"] += 1
        else:
            method, code = rnd.choice(METHODS), rnd.choice(CODES)
            w.write(ether(ipv4(CARRIER, HOME, 17, udp(5060, 5060, request(method, i)))))
            w.write(ether(ipv4(HOME, CARRIER, 17, udp(5060, 5060, response(code, method, i)))))
            truth.add("req", method)
            truth.add("resp", code)
    w.close()
    return truth, kinds


def write_junk_tcp(path, seed=6):
    """TCP connections to port 5060 carrying junk only, and one whose legitimate messages each follow
    junk (random, or "INVITE " and garbage) ending in a line end: a start line is found at a line start."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = Truth()
    mixed = Tcp(w, CARRIER, HOME, 42000)
    conns, junk_bytes = 0, 0
    for i in range(3000):
        if rnd.random() < 0.5:
            c = Tcp(w, addr(rnd), HOME, rnd.randrange(1024, 65536), isn=rnd.randrange(1, 1 << 31))
            data = junk(rnd, rnd.randrange(100, 4000))
            c.send(data, size=rnd.randrange(100, 1461))
            conns += 1
            junk_bytes += len(data)
        else:
            garbage = rnd.choice([junk(rnd, rnd.randrange(1, 300)), b"INVITE " + junk(rnd, rnd.randrange(0, 300))])
            method = rnd.choice(METHODS)
            mixed.send(garbage + b"\r\n" + request(method, i, "TCP"), size=rnd.randrange(50, 1461))
            truth.add("req", method)
    w.close()
    return truth, conns, junk_bytes


def write_shredded(path, seed=11):
    """A 20 KB INVITE and its 200 in 1-10 byte TCP segments, some swapped, repeated or overlapping;
    then a BYE; then every segment of the INVITE again."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = Truth()
    stats = {"swapped": 0, "repeated": 0, "overlapping": 0, "segments": 0}
    body = ("v=0\r\n" + "a=x-filler:" + "s" * 60 + "\r\n") * 260
    invite = request("INVITE", 7, "TCP", extra="Content-Type: application/sdp\r\n" + padding_headers(1000),
                     body=body.encode())
    assert 19000 < len(invite) < 22000
    conns = [(Tcp(w, CARRIER, HOME, 43000, isn=5000), invite),
             (Tcp(w, HOME, CARRIER, 5060, dport=43000, isn=9000), response(200, "INVITE", 7, "TCP"))]
    sent = []
    for c, msg in conns:
        pieces, off = [], 0
        while off < len(msg):
            n = rnd.randrange(1, 11)
            pieces.append((c.seq + off, msg[off:off + n]))
            off += n
        frames = []
        i = 0
        while i < len(pieces):
            if i + 1 < len(pieces) and rnd.random() < 0.05:  # the later one first
                frames += [c.frame(*pieces[i + 1]), c.frame(*pieces[i])]
                stats["swapped"] += 1
                i += 2
                continue
            frames.append(c.frame(*pieces[i]))
            if i > 0 and rnd.random() < 0.05:  # an earlier segment again
                frames.append(c.frame(*pieces[rnd.randrange(max(0, i - 20), i)]))
                stats["repeated"] += 1
            if i > 2 and rnd.random() < 0.02:  # overlapping old and new bytes
                s0, p0 = pieces[i - 2]
                s1, p1 = pieces[i - 1]
                frames.append(c.frame(s0, p0 + p1 + pieces[i][1]))
                stats["overlapping"] += 1
            i += 1
        for f in frames:
            w.write(f)
        stats["segments"] += len(frames)
        c.seq += len(msg)
        sent.append((c, pieces))
    conns[0][0].send(request("BYE", 7, "TCP"))
    stats["segments"] += 1
    for seq, p in sent[0][1]:  # the whole INVITE again: nothing new
        w.write(sent[0][0].frame(seq, p))
    stats["segments"] += len(sent[0][1])
    stats["repeated"] += len(sent[0][1])
    truth.add("req", "INVITE")
    truth.add("req", "BYE")
    truth.add("resp", 200)
    w.close()
    return truth, stats


def write_partial_stream_flood(path, streams, seed):
    """`streams` TCP connections from random sources, each the first 1.5 KB of a message in 3 to 6
    segments, never finished; among them a connection whose messages come whole, each in 3 segments."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = Truth()
    legit = Tcp(w, CARRIER, HOME, 44000)
    head = request("INVITE", 0, "TCP", extra=padding_headers(1500))[:1500]
    for i in range(streams):
        c = Tcp(w, addr(rnd), HOME, rnd.randrange(1024, 65536), isn=rnd.randrange(1, 1 << 31))
        c.send(head, size=len(head) // rnd.randrange(3, 7) + 1)
        if i % 20 == 0:
            method = rnd.choice(METHODS)
            msg = request(method, i, "TCP")
            legit.send(msg, size=len(msg) // 3 + 1)
            truth.add("req", method)
    w.close()
    return truth


def write_fragment_flood(path, orphans, seed):
    """Orphan first, middle and last fragments, datagrams past 65535 bytes and overlapping ones from
    random sources; among them legitimate SIP datagrams in 3 fragments, in random order."""
    rnd = random.Random(seed)
    w = PcapWriter(path)
    truth = Truth()
    kinds = {"first": 0, "middle": 0, "last": 0, "too_large": 0, "overlap": 0}
    filler = udp(5060, 5060, b"INVITE sip:x SIP/2.0\r\n" + b"f" * 1500)[:1200]
    for i in range(orphans):
        src, ident = addr(rnd), rnd.randrange(65536)
        r = rnd.random()
        if r < 0.6:
            w.write(ether(ipv4(src, HOME, 17, filler, ident=ident, frag=0x2000)))
            kinds["first"] += 1
        elif r < 0.75:
            w.write(ether(ipv4(src, HOME, 17, filler, ident=ident, frag=0x2000 | rnd.randrange(1, 8000))))
            kinds["middle"] += 1
        elif r < 0.85:
            w.write(ether(ipv4(src, HOME, 17, filler[:rnd.randrange(8, 1200)], ident=ident, frag=rnd.randrange(1, 8000))))
            kinds["last"] += 1
        elif r < 0.92:  # a fragment ending past 65535 bytes
            w.write(ether(ipv4(src, HOME, 17, filler[:800], ident=ident, frag=0x2000)))
            w.write(ether(ipv4(src, HOME, 17, filler[:800], ident=ident, frag=8150)))
            kinds["too_large"] += 1
        else:  # two fragments sharing bytes, but not equal
            w.write(ether(ipv4(src, HOME, 17, filler[:800], ident=ident, frag=0x2000)))
            w.write(ether(ipv4(src, HOME, 17, filler[:800], ident=ident, frag=0x2000 | 50)))
            kinds["overlap"] += 1
        if i % 25 == 0:
            method = rnd.choice(METHODS)
            dg = udp(5060, 5060, request(method, i, extra=padding_headers(2000)))
            parts = fragments(CARRIER, HOME, i & 0xFFFF, dg, size=1000)
            rnd.shuffle(parts)
            for p in parts:
                w.write(ether(p))
            truth.add("req", method)
    w.close()
    return truth, kinds


# ---- running ----

def run_measured(args, env=None):
    """sipex_testlib.run_measured with this module's per-run timeout."""
    return t.run_measured(args, timeout=TIMEOUT, env=env)


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.config = os.path.join(cls.dir, "limits.yaml")
        with open(cls.config, "w") as f:
            f.write(CONFIG)
        cls.benign = os.path.join(cls.dir, "benign.pcap")
        write_benign(cls.benign)
        cls.baseline_kib = None
        cls.env = dict(os.environ)
        cls.sanitizer_kib = 0
        if asan_build():
            opts = cls.env.get("ASAN_OPTIONS", "")
            cls.env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + f"quarantine_size_mb={ASAN_QUARANTINE_MB}"
            cls.sanitizer_kib = 2 * ASAN_QUARANTINE_MB * 1024

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_capture(self, path):
        """(samples, peak RSS KiB) of a run on `path`; fails on a hang, a crash, a sanitizer report or
        exit code other than 0."""
        out, err, rc, peak, hung = run_measured([f"--capture.file={path}", f"--config.file={self.config}",
                                                 f"--workers={WORKERS}", "--metrics.out=-"], env=self.env)
        what = f"{os.path.basename(path)}: exit {rc}, stderr {err.strip()[:4000]!r}"
        self.assertFalse(hung, f"hung for {TIMEOUT} s: {what}")
        self.assertIsNone(SANITIZER.search(err), f"sanitizer report: {what}")
        self.assertEqual(rc, 0, what)
        return t.parse_exposition(out), peak

    def baseline(self):
        if HostileTest.baseline_kib is None:
            s, peak = self.run_capture(self.benign)
            self.assertGreater(t.total(s, "sip_requests_total"), 2000)
            HostileTest.baseline_kib = peak
        return HostileTest.baseline_kib

    def assert_memory_bounded(self, name, peak):
        base = self.baseline()
        allowance = allowance_kib()
        total = allowance + MARGIN_KIB + self.sanitizer_kib
        print(f"\n{name}: peak RSS {peak} KiB, baseline {base} KiB, growth {peak - base} KiB, allowed {total} KiB "
              f"(limits {allowance} + margin {MARGIN_KIB} + sanitizer {self.sanitizer_kib})", flush=True)
        self.assertLessEqual(peak - base, total, f"{name}: memory beyond the configured bounds")

    def assert_legit(self, s, truth, exact_keys=None):
        got = {("req", k): v for k, v in t.sum_by(s, "sip_requests_total", "method").items()}
        got.update({("resp", k): v for k, v in t.sum_by(s, "sip_responses_total", "code").items()})
        if exact_keys is not None:
            got = {k: v for k, v in got.items() if k in exact_keys}
        self.assertEqual(got, truth.counts)

    def assert_accounted(self, s):
        packets = t.total(s, "sip_exporter_packets_total")
        skipped = t.sum_by(s, "sip_exporter_skipped_packets_total", "reason")
        decoded = t.sum_by(s, "sip_exporter_decoded_packets_total", "path")
        self.assertEqual(t.total(s, "sip_exporter_dropped_packets_total"), 0)
        self.assertEqual(packets, sum(skipped.values()) - skipped.get("not_sip", 0) + sum(decoded.values()))

    def assert_reassembly_within_limits(self, s):
        entries = t.sum_by(s, "sip_exporter_reassembly_entries", "kind")
        held = t.sum_by(s, "sip_exporter_reassembly_buffered_bytes", "kind")
        self.assertLessEqual(entries.get("tcp", 0), WORKERS * LIMITS["tcp_streams"])
        self.assertLessEqual(entries.get("ip", 0), WORKERS * LIMITS["fragment_datagrams"])
        self.assertLessEqual(held.get("tcp", 0), WORKERS * LIMITS["tcp_buffer_bytes"])
        self.assertLessEqual(held.get("ip", 0), WORKERS * LIMITS["fragment_buffer_bytes"])
        self.assertLessEqual(t.total(s, "sip_exporter_transactions_active"), WORKERS * LIMITS["transactions"])
        self.assertLessEqual(t.total(s, "sip_exporter_dialogs_active"), WORKERS * LIMITS["dialogs"])

    # ---- the cases ----

    def test_spoofed_unique_call_id_flood(self):
        runs = {}
        for n in (100_000, 200_000):
            path = os.path.join(self.dir, f"spoofed{n}.pcap")
            truth = write_spoofed_invite_flood(path, n, seed=n)
            s, peak = self.run_capture(path)
            runs[n] = peak
            self.assert_memory_bounded(f"{n} spoofed INVITEs", peak)
            self.assert_accounted(s)
            self.assert_reassembly_within_limits(s)
            # The legitimate peer's own traffic is exact; the flood is all INVITEs.
            legit = {}
            for (method, peer, direction), v in t.sum_by(s, "sip_requests_total", "method", "peer", "direction").items():
                if peer == "carrier-a":
                    self.assertEqual(direction, "inbound")
                    legit[("req", method)] = v
            for (code, peer, direction), v in t.sum_by(s, "sip_responses_total", "code", "peer", "direction").items():
                self.assertEqual((peer, direction), ("carrier-a", "outbound"))
                legit[("resp", code)] = v
            self.assertEqual(legit, truth.counts)
            flood = sum(v for (m, p), v in t.sum_by(s, "sip_requests_total", "method", "peer").items() if p != "carrier-a")
            self.assertEqual(flood, n)
            # The peer cap: max_peers values, named ones included, and "other".
            self.assertLessEqual(t.total(s, "sip_exporter_peers"), MAX_PEERS + 1)
            self.assertGreaterEqual(t.total(s, "sip_exporter_peers"), MAX_PEERS, "the flood fills the peer table")
            peers = set(t.sum_by(s, "sip_requests_total", "peer"))
            self.assertLessEqual(len(peers), MAX_PEERS + 1)
            self.assertIn("other", peers)
            other = (t.sum_by(s, "sip_requests_total", "peer").get("other", 0) +
                     t.sum_by(s, "sip_responses_total", "peer").get("other", 0))
            self.assertEqual(t.total(s, "sip_exporter_peer_overflow_total"), other)
            self.assertGreaterEqual(other, n - MAX_PEERS)
            # The counter series are bounded by the label values that can occur, not by the flood:
            # per (peer, direction) each method's requests, responses by code, retransmissions of two
            # kinds, transactions by code (or none: a timeout), timeouts, and six call outcomes.
            self.assertEqual(t.total(s, "sip_exporter_series_overflow_total"), 0)
            series = sum(1 for name, _, _ in s if name in SIP_COUNTER_FAMILIES)
            bound = (MAX_PEERS + 1) * 3 * (len(METHODS) * (1 + len(CODES) + 2 + len(CODES) + 1 + 1) + 6)
            self.assertLessEqual(series, min(bound, WORKERS * LIMITS["max_series"]))
            # Never answered: the transaction table stays at its bound and the rest is evicted.
            self.assertGreaterEqual(t.total(s, "sip_exporter_transactions_evicted_total"),
                                    n - WORKERS * LIMITS["transactions"])
            print(f"{n} spoofed INVITEs: {t.total(s, 'sip_exporter_peers')} peers, {series} series "
                  f"(bound {bound}), {other} messages as other, "
                  f"{t.total(s, 'sip_exporter_transactions_evicted_total')} transactions evicted", flush=True)
        self.assertLessEqual(runs[200_000] - runs[100_000], 4 * 1024, f"memory grows with the flood: {runs}")

    def test_64k_headers(self):
        path = os.path.join(self.dir, "big_headers.pcap")
        truth = write_big_headers(path)
        s, peak = self.run_capture(path)
        self.assert_memory_bounded("64 KiB headers", peak)
        self.assert_legit(s, truth)
        self.assertEqual(t.total(s, "sip_exporter_ip_datagrams_reassembled_total"), 2)
        ev = t.sum_by(s, "sip_exporter_reassembly_evictions_total", "kind", "reason")
        self.assertEqual(ev, {("tcp", "too_large"): 1})
        self.assertEqual(t.sum_by(s, "sip_exporter_parse_errors_total", "reason"), {})
        self.assert_accounted(s)

    def test_binary_junk_over_udp(self):
        path = os.path.join(self.dir, "junk_udp.pcap")
        truth, kinds = write_junk_udp(path)
        s, peak = self.run_capture(path)
        self.assert_memory_bounded("binary junk over UDP", peak)
        # The legitimate messages are exact. MESSAGE is only sent as junk: a good request line over
        # binary header lines may count, never more often than it was sent.
        requests = t.sum_by(s, "sip_requests_total", "method")
        message = requests.get("MESSAGE", 0)
        self.assertLessEqual(message, kinds["message_junk"])
        self.assert_legit(s, truth, exact_keys=set(truth.counts) | {("req", m) for m in requests if m != "MESSAGE"} |
                          {("resp", c) for c in t.sum_by(s, "sip_responses_total", "code")})
        self.assert_accounted(s)
        # Every datagram is a message, a parse error or not SIP.
        skipped = t.sum_by(s, "sip_exporter_skipped_packets_total", "reason")
        errors = t.sum_by(s, "sip_exporter_parse_errors_total", "reason")
        decoded = t.sum_by(s, "sip_exporter_decoded_packets_total", "path")
        self.assertEqual(decoded, {"udp": sum(truth.counts.values()) + sum(kinds.values())})
        self.assertEqual(decoded["udp"], sum(truth.counts.values()) + message + sum(errors.values()) +
                         skipped.get("not_sip", 0))
        self.assertGreaterEqual(skipped.get("not_sip", 0), kinds["junk"] * 9 // 10)
        self.assertGreaterEqual(errors.get("bad_start_line", 0), kinds["invite_junk"])
        print(f"junk over UDP: {kinds}; MESSAGE counted {message}, not_sip {skipped.get('not_sip', 0)}, "
              f"parse errors {errors}", flush=True)

    def test_binary_junk_over_tcp(self):
        path = os.path.join(self.dir, "junk_tcp.pcap")
        truth, conns, junk_bytes = write_junk_tcp(path)
        s, peak = self.run_capture(path)
        self.assert_memory_bounded("binary junk over TCP", peak)
        self.assert_legit(s, truth)
        self.assert_accounted(s)
        self.assert_reassembly_within_limits(s)
        stream = t.sum_by(s, "sip_exporter_stream_bytes_total", "result")
        # Junk-only connections: all their bytes are not SIP, bar a partial line each may keep.
        self.assertGreaterEqual(stream.get("not_sip", 0), junk_bytes - 1024 * conns)
        self.assertEqual(t.total(s, "sip_exporter_tls_connections_total"), 0)
        self.assertEqual(t.total(s, "sip_exporter_websocket_connections_total"), 0)
        print(f"junk over TCP: {conns} junk connections, {junk_bytes} bytes; stream bytes {stream}, "
              f"parse errors {t.sum_by(s, 'sip_exporter_parse_errors_total', 'reason')}", flush=True)

    def test_request_without_via_call_id_or_tags(self):
        # The smallest of the junk above that the transaction tracker must take: a request whose
        # Via branch, Call-ID and From tag are all absent (empty views). Hashing an empty view
        # must not hand memcpy a null pointer (UBSan: "null pointer passed as argument 2").
        path = os.path.join(self.dir, "bare.pcap")
        w = PcapWriter(path)
        for msg in (b"MESSAGE sip:x@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n",
                    b"SIP/2.0 200 OK\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"):
            w.write(ether(ipv4(CARRIER, HOME, 17, udp(5060, 5060, msg))))
        w.close()
        s, _ = self.run_capture(path)
        self.assertEqual(t.sum_by(s, "sip_requests_total", "method"), {"MESSAGE": 1})
        self.assertEqual(t.sum_by(s, "sip_responses_total", "code"), {"200": 1})

    def test_message_in_thousands_of_tcp_segments(self):
        path = os.path.join(self.dir, "shredded.pcap")
        truth, st = write_shredded(path)
        s, peak = self.run_capture(path)
        self.assert_memory_bounded("shredded TCP message", peak)
        self.assert_legit(s, truth)
        self.assertEqual(t.total(s, "sip_retransmissions_total"), 0)
        seg = t.sum_by(s, "sip_exporter_tcp_segments_total", "result")
        self.assertGreater(st["segments"], 3000)
        self.assertEqual(sum(seg.values()), st["segments"] + 2)  # and the two SYNs
        self.assertGreaterEqual(seg.get("retransmission", 0), st["repeated"])
        self.assertGreaterEqual(seg.get("out_of_order", 0), st["swapped"])
        self.assertEqual(t.sum_by(s, "sip_exporter_reassembly_evictions_total", "kind", "reason"), {})
        self.assertEqual(t.sum_by(s, "sip_exporter_stream_bytes_total", "result").get("lost", 0), 0)
        print(f"shredded: {st}; segments {seg}", flush=True)

    def test_partial_tcp_stream_flood(self):
        runs = {}
        for n in (20_000, 40_000):
            path = os.path.join(self.dir, f"partial{n}.pcap")
            truth = write_partial_stream_flood(path, n, seed=n)
            s, peak = self.run_capture(path)
            runs[n] = peak
            self.assert_memory_bounded(f"{n} partial TCP streams", peak)
            self.assert_legit(s, truth)
            self.assert_accounted(s)
            self.assert_reassembly_within_limits(s)
            ev = t.sum_by(s, "sip_exporter_reassembly_evictions_total", "kind", "reason")
            self.assertGreaterEqual(ev.get(("tcp", "table_full"), 0), n - WORKERS * LIMITS["tcp_streams"])
            # 1024 streams of 1.5 KB each do not fit in 1 MiB: buffers were given up for memory too.
            self.assertGreater(ev.get(("tcp", "memory"), 0), 0)
            print(f"{n} partial streams: evictions {ev}", flush=True)
        self.assertLessEqual(runs[40_000] - runs[20_000], 4 * 1024, f"memory grows with the flood: {runs}")

    def test_orphan_fragment_flood(self):
        runs = {}
        for n in (50_000, 100_000):
            path = os.path.join(self.dir, f"fragments{n}.pcap")
            truth, kinds = write_fragment_flood(path, n, seed=n)
            s, peak = self.run_capture(path)
            runs[n] = peak
            self.assert_memory_bounded(f"{n} orphan fragments", peak)
            self.assert_legit(s, truth)
            self.assert_accounted(s)
            self.assert_reassembly_within_limits(s)
            self.assertEqual(t.total(s, "sip_exporter_ip_datagrams_reassembled_total"), sum(truth.counts.values()))
            ev = t.sum_by(s, "sip_exporter_reassembly_evictions_total", "kind", "reason")
            ip = {r: v for (k, r), v in ev.items() if k == "ip"}
            self.assertGreaterEqual(sum(ip.values()), n - WORKERS * LIMITS["fragment_datagrams"])
            self.assertGreaterEqual(ip.get("too_large", 0), kinds["too_large"])
            self.assertGreaterEqual(ip.get("overlap", 0), kinds["overlap"])
            print(f"{n} orphan fragments {kinds}: evictions {ip}", flush=True)
        self.assertLessEqual(runs[100_000] - runs[50_000], 4 * 1024, f"memory grows with the flood: {runs}")


if __name__ == "__main__":
    t.main()
