"""Corrupted captures: every capture in ../shared/corpus, mutated many ways, is read without a crash
or a hang, and the valid part of a broken file is still counted.

For each corpus file the test writes mutated copies into a temporary directory:
  - `editcap -E 0.01` and `-E 0.05`, each with two fixed seeds (packet bytes changed at random, the
    file structure intact), the four copies read in one run: exit 0, every record of every copy
    handed over, and every packet accounted for (the identity of test_corpus.py: packets =
    skipped - skipped{not_sip} + decoded; and, when all is UDP, udp = messages + errors + not_sip);
  - truncations: inside the file header (nothing counted), inside the record (block) header right
    after the first frame tshark decodes as SIP, and inside the packet data of the middle record:
    exit 1 with one line on stderr naming the file, the counts equal to those of the same records
    cut cleanly at a record boundary (per method, code, peer and direction), at most the full
    file's, and not zero once the first SIP frame is kept;
  - a tiny snap length (1 or 64) in the pcap file header;
  - bogus lengths in the middle record of each pcap file (two of: caplen above the snap length with
    the bytes there, caplen past the end of the file, caplen 0, a huge caplen, a huge wire length in
    every record); corrupted pcapng block lengths (three of: below the minimum, huge, odd, 4 more,
    4 less, past the end of the file; and a huge interface description block), also on two pcap
    files converted to pcapng: exit 0 or 1, counts at most the full file's, and where libpcap must
    stop at the record, the counts of the records before it.
Every run has a timeout (a hang is a failure), must not die by a signal or print a sanitizer report
("ERROR: AddressSanitizer", "runtime error:", ...), and what it prints must be valid exposition
text. Runs go in parallel: each is mostly start-up.
"""
import concurrent.futures
import math
import os
import re
import struct
import subprocess
import tempfile
import unittest

import sipex_testlib as t

TIMEOUT = 30  # seconds per run; an ASan build is 3-10x slower than Release and still far below
SEEDS = (1, 7)
PROBABILITIES = ("0.01", "0.05")
# Runs at once. A sanitizer build spends its start-up in the kernel (shadow memory): more runs than
# CPUs only contend.
PARALLEL = max(2, os.cpu_count() or 1)
SANITIZER = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|Sanitizer:DEADLYSIGNAL|"
                       r"SUMMARY: \w+Sanitizer")
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
PCAPNG_PACKET_BLOCKS = {2, 3, 6}  # obsolete Packet, Simple Packet, Enhanced Packet
MAX_SNAPLEN = 262144  # libpcap's largest valid caplen for Ethernet-like link types


# ---- capture structure ----

class Capture:
    """A capture file's bytes and the byte ranges of its records (pcap) or blocks (pcapng). `name` is
    the corpus file whose full counts it is compared with; `tag` names its mutated copies."""

    def __init__(self, path, name=None):
        self.path = path
        self.name = name or os.path.basename(path)
        self.tag = os.path.basename(path)
        with open(path, "rb") as f:
            self.data = f.read()
        magic = self.data[:4]
        if magic in PCAP_MAGICS:
            self.kind, self.endian, self.header_len = "pcap", PCAP_MAGICS[magic], 24
            self.blocks = []  # (offset, length, is_packet)
            off = 24
            while off + 16 <= len(self.data):
                caplen = struct.unpack_from(self.endian + "I", self.data, off + 8)[0]
                self.blocks.append((off, 16 + caplen, True))
                off += 16 + caplen
            assert off == len(self.data), f"{path}: records do not end at the end of the file"
        elif magic == b"\x0a\x0d\x0d\x0a":
            self.kind = "pcapng"
            self.endian = "<" if self.data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            self.blocks = []
            off = 0
            while off + 12 <= len(self.data):
                btype, blen = struct.unpack_from(self.endian + "II", self.data, off)
                self.blocks.append((off, blen, btype in PCAPNG_PACKET_BLOCKS))
                off += blen
            assert off == len(self.data), f"{path}: blocks do not end at the end of the file"
            self.header_len = self.blocks[0][1]  # the section header block
        else:
            raise AssertionError(f"{path}: neither pcap nor pcapng")
        self.packets = [(o, n) for o, n, p in self.blocks if p]

    def prefix_end(self, k):
        """Byte offset just after the k-th packet record (k = 0: after the headers before the first)."""
        if k == 0:
            return self.packets[0][0] if self.packets else len(self.data)
        o, n = self.packets[k - 1]
        return o + n


# The first frame tshark 4.0.17 decodes as a well-formed SIP message in each corpus file, from
#   tshark -n -r FILE -Y 'sip.CSeq.method && !_ws.malformed && !icmp && !icmpv6' -T fields -e frame.number
# (with -d tcp.port==6060,sip for the file that needs it, see ../shared/corpus/README.md); None: no
# SIP at all. Kept here because tshark takes a second per file; a file not listed is asked live.
FIRST_SIP_FRAME = {
    "MichalCab_ISA__sip.pcap.pcapng": 4,
    "OISF_suricata-verify__tests_sip-body-frames_public-cloudshark-sip-s0.pcap": 1,
    "OISF_suricata-verify__tests_sip-body-large_sip-body-large.pcap": 9,
    "OISF_suricata-verify__tests_sip-compact-form_sip_compact_form.pcap": 1,
    "OISF_suricata-verify__tests_sip-tcp-pattern-matching_sip.pcap": 4,
    "aboutsip_pkts__pkts-core_src_test_resources_io_pkts_fragmented_tcp_sip.pcap": 8,
    "aboutsip_pkts__pkts-core_src_test_resources_io_pkts_fragmented_udp_sip.pcap": 2,
    "aboutsip_pkts__pkts-core_src_test_resources_io_pkts_sipp.pcap": 1,
    "aboutsip_pkts__pkts-core_src_test_resources_io_pkts_sipp_sll.pcap": 1,
    "aboutsip_pkts__pkts-examples_src_main_resources_io_pkts_examples_cancel.pcap": 1,
    "aboutsip_pkts__pkts-streams_src_test_resources_io_pkts_streams_sip_rtp.pcap": 1,
    "irontec_sngrep__tests_aaa.pcap": 19,
    "irontec_sngrep__tests_ipip.pcap": 1,
    "irontec_sngrep__tests_ipv6frag.pcap": 2,
    "irontec_sngrep__tlssaved.pcap": None,
    "ntop_nDPI__tests_cfgs_default_pcap_gre.pcapng": 1,
    "ntop_nDPI__tests_cfgs_default_pcap_http_on_sip_port.pcap": None,
    "ntop_nDPI__tests_cfgs_default_pcap_sip_hello.pcapng": 9,
    "ntop_nDPI__tests_cfgs_default_pcap_webex.pcap": 409,
    "seladb_PcapPlusPlus__Tests_Packet++Test_PacketExamples_sip_non_default_port.pcap": 1,
    "seladb_PcapPlusPlus__Tests_Packet++Test_PacketExamples_sip_not_sdp.pcap": 1,
    "seladb_PcapPlusPlus__Tests_Packet++Test_PacketExamples_sip_reqs.pcap": 1,
    "seladb_PcapPlusPlus__Tests_Packet++Test_PacketExamples_sip_resp.pcap": 1,
    "sipcapture_heplify__example_pcap_erspan_sip_ipv4_udp.pcapng": 1,
    "sipcapture_heplify__example_pcap_rtp_rtcp_sip_ipv4_udp.pcap": 1,
    "sipcapture_heplify__example_pcap_sip_ipv4_tcp.pcap": 3,
    "sipcapture_heplify__example_pcap_sip_ipv4_tcp_fragmented.pcap": 2,
    "sipcapture_heplify__example_pcap_sip_ipv4_tcp_retrans.pcap": 28,
    "sipcapture_heplify__example_pcap_sip_ipv6_udp.pcap": 1,
    "sipcapture_heplify__example_pcap_sip_sctp.pcap": 2,
    "sipcapture_heplify__example_pcap_sip_tcp_websocket.pcap": 1,
    "sipcapture_heplify__src_decoder_testdata_ipip0.pcap": 1,
}


def first_sip_frame(path):
    """1-based number of the first frame tshark decodes as a well-formed SIP message, or None."""
    name = os.path.basename(path)
    if name in FIRST_SIP_FRAME:
        return FIRST_SIP_FRAME[name]
    tshark = t.require_tool("tshark")
    cp = subprocess.run([tshark, "-n", "-r", path, "-Y", "sip.CSeq.method && !_ws.malformed && !icmp && !icmpv6",
                         "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, timeout=120)
    frames = [int(x) for x in cp.stdout.split()]
    return frames[0] if frames else None


# ---- running the exporter ----

class Run:
    def __init__(self, path, returncode, stdout, stderr, hung=False):
        self.path, self.returncode, self.stdout, self.stderr, self.hung = path, returncode, stdout, stderr, hung
        self.samples = None

    def describe(self):
        err = self.stderr.strip()
        if len(err) > 4000:
            err = err[:4000] + "..."
        return f"{os.path.basename(self.path)}: exit {self.returncode}, stderr: {err!r}"


def run_one(paths):
    """One run over one capture file, or several read in order (a tuple)."""
    paths = paths if isinstance(paths, tuple) else (paths,)
    path = paths[0]
    args = [t.BINARY, *(f"--capture.file={p}" for p in paths), "--metrics.out=-"]
    try:
        cp = subprocess.run(args, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return Run(path, None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace"),
                   hung=True)
    return Run(path, cp.returncode, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace"))


def run_all(paths):
    """{path (or tuple of paths): Run}, run in parallel."""
    if not t.BINARY:
        raise AssertionError("SIPEX_BINARY is not set")
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
        return dict(zip(paths, ex.map(run_one, paths)))


def check_exposition(test, text, what):
    """Valid exposition: every sample parses, belongs to a declared family, and is a number; counters >= 0."""
    samples = t.parse_exposition(text)
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
    for name, labels, value in samples:
        family = name if name in types else re.sub(r"_(bucket|sum|count)$", "", name)
        test.assertIn(family, types, f"{what}: sample {name} has no # TYPE line")
        test.assertFalse(math.isnan(value), f"{what}: {name}{labels} is NaN")
        if types[family] in ("counter", "histogram", "summary"):
            test.assertGreaterEqual(value, 0, f"{what}: {name}{labels} is negative")
    return samples


def check_sane(test, run, *, exits=(0, 1)):
    """No hang, no signal, no sanitizer report, an allowed exit code, one stderr line on exit 1,
    valid exposition. Sets run.samples (empty when nothing was printed)."""
    what = run.describe()
    test.assertFalse(run.hung, f"hung for more than {TIMEOUT} s: {what}")
    test.assertIsNone(SANITIZER.search(run.stderr), f"sanitizer report: {what}")
    test.assertGreaterEqual(run.returncode, 0, f"killed by signal {-run.returncode}: {what}")
    test.assertIn(run.returncode, exits, what)
    if run.returncode == 1:
        lines = [l for l in run.stderr.splitlines() if l.strip()]
        test.assertEqual(len(lines), 1, f"exit 1 must come with one stderr line: {what}")
        test.assertIn(os.path.basename(run.path), lines[0], f"the error names the file: {what}")
    run.samples = check_exposition(test, run.stdout, what) if run.stdout.strip() else []
    return run.samples


def counts(samples):
    """Messages by kind and label set, for comparisons between runs of different files."""
    out = {}
    for (m, p, d), v in t.sum_by(samples, "sip_requests_total", "method", "peer", "direction").items():
        out[("req", m, "", p, d)] = v
    for (c, m, p, d), v in t.sum_by(samples, "sip_responses_total", "code", "method", "peer", "direction").items():
        out[("resp", m, c, p, d)] = v
    return out


def by_method_and_code(samples):
    out = {("req", k): v for k, v in t.sum_by(samples, "sip_requests_total", "method").items()}
    out.update({("resp", k): v for k, v in t.sum_by(samples, "sip_responses_total", "code").items()})
    return out


def assert_at_most(test, got, full, what):
    for k, v in got.items():
        test.assertLessEqual(v, full.get(k, 0), f"{what}: more {k} than in the whole file")


def check_accounting(test, s, what):
    """The packet accounting identity of test_corpus.py, and the UDP one when all is UDP."""
    packets = sum(t.sum_by(s, "sip_exporter_packets_total", "source").values())
    dropped = sum(t.sum_by(s, "sip_exporter_dropped_packets_total", "stage").values())
    skipped = t.sum_by(s, "sip_exporter_skipped_packets_total", "reason")
    decoded = t.sum_by(s, "sip_exporter_decoded_packets_total", "path")
    test.assertEqual(dropped, 0, what)
    test.assertEqual(packets, sum(skipped.values()) - skipped.get("not_sip", 0) + sum(decoded.values()),
                     f"{what}: packets {packets}, skipped {skipped}, decoded {decoded}")
    if set(decoded) <= {"udp"}:
        errors = sum(t.sum_by(s, "sip_exporter_parse_errors_total", "reason").values())
        messages = sum(by_method_and_code(s).values())
        test.assertEqual(decoded.get("udp", 0), messages + errors + skipped.get("not_sip", 0),
                         f"{what}: udp {decoded.get('udp', 0)} = messages {messages} + errors {errors} + not_sip")


class CorruptedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = t.shared_path("corpus")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.captures = [Capture(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith((".pcap", ".pcapng"))]
        full = run_all([c.path for c in cls.captures])
        cls.full = {}
        for c in cls.captures:
            r = full[c.path]
            if r.returncode != 0 or r.hung:
                raise AssertionError(f"the unmodified file fails: {r.describe()}")
            cls.full[c.name] = t.parse_exposition(r.stdout)
        cls.prefix_runs = {}  # (capture tag, k) -> Run of the file cut cleanly after k packets

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def write(self, capture, tag, data):
        path = os.path.join(self.dir, f"{tag}--{capture.tag}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_with_prefixes(self, jobs):
        """Runs every job path (values: (capture, ..., k or None)) and the clean prefix cut after k
        packets of each capture that has not been run yet; returns {path: Run}."""
        need = {}
        for c, *_, k in jobs.values():
            if k is not None and (c.tag, k) not in self.prefix_runs:
                need[self.write(c, f"prefix{k}", c.data[:c.prefix_end(k)])] = (c.tag, k)
        runs = run_all(list(jobs) + list(need))
        for path, key in need.items():
            self.prefix_runs[key] = runs[path]
        return runs

    def assert_prefix_counted(self, s, c, k):
        p = check_sane(self, self.prefix_runs[(c.tag, k)], exits=(0,))
        self.assertEqual(counts(s), counts(p), f"the {k} whole packets before the break are counted exactly")

    # ---- editcap -E ----

    def test_editcap_byte_errors_keep_every_packet_accounted_for(self):
        # The mutated copies of one corpus file are read in one run (several --capture.file), which
        # the accounting identity covers as well as one file. Each copy must be handed over whole.
        editcap = t.require_tool("editcap")
        groups, commands = {}, []
        for c in self.captures:
            outs = []
            for prob in PROBABILITIES:
                for seed in SEEDS:
                    out = os.path.join(self.dir, f"E{prob}-s{seed}--{c.tag}")
                    commands.append([editcap, "-E", prob, "--seed", str(seed), "-F", c.kind, c.path, out])
                    outs.append(out)
            groups[tuple(outs)] = c
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
            for cp in ex.map(lambda cmd: subprocess.run(cmd, capture_output=True, text=True, timeout=120), commands):
                self.assertEqual(cp.returncode, 0, f"{cp.args}: {cp.stderr}")
        runs = run_all(list(groups))
        for outs, c in groups.items():
            with self.subTest(file=c.tag):
                s = check_sane(self, runs[outs], exits=(0,))
                check_accounting(self, s, f"editcap -E copies of {c.tag}")
                packets = t.sum_by(s, "sip_exporter_packets_total", "source")
                self.assertEqual(packets, {o: len(c.packets) for o in outs if c.packets},
                                 "every record of every copy is handed to the workers")

    # ---- truncations ----

    def test_truncated_files_count_their_valid_part(self):
        # Per file: a cut inside the file header; a cut inside the record (block) header after the
        # first SIP frame; a cut inside the packet data of the middle record.
        jobs = {}  # path -> (capture, where, k): the first k packets are whole, the file breaks after them
        for i, c in enumerate(self.captures):
            cut = (10, c.header_len - 1)[i % 2]
            jobs[self.write(c, f"cut{cut}", c.data[:cut])] = (c, "file header", None)
            n = len(c.packets)
            first = first_sip_frame(c.path)
            if n == 0:
                continue
            k1 = min(first, n - 1) if first is not None else n - 1
            off, length = c.packets[k1]
            jobs[self.write(c, f"rechdr{k1}", c.data[:off + 7])] = (c, "record header", k1)
            k2 = n // 2
            off, length = c.packets[k2]
            jobs[self.write(c, f"recdata{k2}", c.data[:off + length // 2 + 4])] = (c, "packet data", k2)
        runs = self.run_with_prefixes(jobs)
        for path, (c, where, k) in jobs.items():
            with self.subTest(file=os.path.basename(path)):
                s = check_sane(self, runs[path], exits=(1,))
                if k is None:
                    self.assertEqual(counts(s), {}, "a file that cannot be opened counts nothing")
                    continue
                self.assert_prefix_counted(s, c, k)
                self.assertEqual(t.total(s, "sip_exporter_packets_total"), k)
                assert_at_most(self, by_method_and_code(s), by_method_and_code(self.full[c.name]), path)
                first = first_sip_frame(c.path)
                if first is not None and k >= first:
                    self.assertGreater(sum(counts(s).values()), 0, f"frame {first} is SIP and among the {k} kept")

    # ---- a wrong snap length ----

    def test_tiny_snaplen_in_the_file_header(self):
        jobs = {}
        for i, c in enumerate(x for x in self.captures if x.kind == "pcap"):
            snaplen = (1, 64)[i % 2]
            data = bytearray(c.data)
            struct.pack_into(c.endian + "I", data, 16, snaplen)
            jobs[self.write(c, f"snaplen{snaplen}", bytes(data))] = c
        runs = run_all(list(jobs))
        for path, c in jobs.items():
            with self.subTest(file=os.path.basename(path)):
                s = check_sane(self, runs[path])
                assert_at_most(self, by_method_and_code(s), by_method_and_code(self.full[c.name]), path)

    # ---- bogus record lengths ----

    def test_bogus_record_lengths(self):
        # Each pcap file gets two of the five mutations of its middle record, in turn, so that every
        # mutation meets several files and link types.
        jobs = {}  # path -> (capture, exits, prefix k or None)
        pcaps = [c for c in self.captures if c.kind == "pcap" and c.packets]
        for i, c in enumerate(pcaps):
            k = len(c.packets) // 2
            off, length = c.packets[k]
            e = c.endian
            caplen = length - 16
            body = c.data[off + 16:off + length]
            snaplen = struct.unpack_from(e + "I", c.data, 16)[0]
            past = min(MAX_SNAPLEN, len(c.data) - off)
            big = min(MAX_SNAPLEN, snaplen + 100)
            huge_len = bytearray(c.data)
            for o, _ in c.packets:
                struct.pack_into(e + "I", huge_len, o + 12, 0xFFFFFFFF)
            mutations = [
                # Larger than the file's snap length (valid for libpcap), the bytes really there.
                ("caplen_over_snaplen", big, big, body + bytes(max(0, big - caplen)), (0, 1), None),
                # Past the end of the file: the record cannot be read whole.
                ("caplen_past_eof", past, past, None, (1,), k),
                # Zero: the packet's bytes are then read as the next record header.
                ("caplen0", 0, caplen, body, (0, 1), None),
                # More than any snap length.
                ("caplen_huge", 0xFFFFFFF0, 0xFFFFFFF0, body, (1,), k),
                # A huge wire length in every record: each packet claims to have been cut short.
                ("len_huge", None, None, bytes(huge_len), (0,), None),
            ]
            if snaplen >= MAX_SNAPLEN:
                mutations.pop(0)
            for j in (i, i + 1):
                tag, hdr_caplen, hdr_len, payload, exits, prefix = mutations[j % len(mutations)]
                if hdr_caplen is None:
                    data = payload
                elif payload is None:
                    data = c.data[:off + 8] + struct.pack(e + "II", hdr_caplen, hdr_len) + c.data[off + 16:]
                else:
                    data = c.data[:off + 8] + struct.pack(e + "II", hdr_caplen, hdr_len) + payload + c.data[off + length:]
                jobs[self.write(c, tag, data)] = (c, exits, prefix)
        self.assertGreaterEqual(len({os.path.basename(p).split("--")[0] for p in jobs}), 5, "every mutation is tried")
        runs = self.run_with_prefixes(jobs)
        for path, (c, exits, k) in jobs.items():
            with self.subTest(file=os.path.basename(path)):
                s = check_sane(self, runs[path], exits=exits)
                assert_at_most(self, by_method_and_code(s), by_method_and_code(self.full[c.name]), path)
                if k is not None:
                    self.assert_prefix_counted(s, c, k)

    # ---- pcapng block lengths ----

    def test_pcapng_corrupted_block_length(self):
        editcap = t.require_tool("editcap")
        captures = [c for c in self.captures if c.kind == "pcapng"]
        # Also two pcap files converted to pcapng, for more link types.
        for name in ("irontec_sngrep__tests_aaa.pcap", "sipcapture_heplify__example_pcap_sip_ipv4_tcp.pcap"):
            src = os.path.join(t.shared_path("corpus"), name)
            out = os.path.join(self.dir, f"ng--{name}ng")
            subprocess.run([editcap, "-F", "pcapng", src, out], check=True, capture_output=True, timeout=120)
            captures.append(Capture(out, name))  # compared with the full counts of the original
        self.assertGreaterEqual(len(captures), 3)
        jobs = {}  # path -> (capture, exits, prefix k or None)
        for i, c in enumerate(captures):
            k = len(c.packets) // 2
            off, length = c.packets[k]
            mutations = [  # the length field of the middle packet block, in turn four of these per file
                ("blen8", 8, (1,), k),                     # below the minimum block size
                ("blen_huge", 0xFFFFFFF0, (1,), k),        # above any block size libpcap accepts
                ("blen_odd", length + 1, (0, 1), None),    # not a multiple of 4
                ("blen_plus4", length + 4, (0, 1), None),  # the trailer and the next block misread
                ("blen_minus4", length - 4, (0, 1), None),
                ("blen_past_eof", len(c.data) - off + 64, (1,), k),
            ]
            for j in range(i, i + 3):
                tag, value, exits, prefix = mutations[j % len(mutations)]
                data = bytearray(c.data)
                struct.pack_into(c.endian + "I", data, off + 4, value)
                jobs[self.write(c, tag, bytes(data))] = (c, exits, prefix)
            # The interface description block's length: the file's packets have no interface.
            idb = next(o for o, n, p in c.blocks if struct.unpack_from(c.endian + "I", c.data, o)[0] == 1)
            data = bytearray(c.data)
            struct.pack_into(c.endian + "I", data, idb + 4, 0xFFFFFFF0)
            jobs[self.write(c, "idb_huge", bytes(data))] = (c, (1,), None)
        self.assertGreaterEqual(len({os.path.basename(p).split("--")[0] for p in jobs}), 7, "every mutation is tried")
        runs = self.run_with_prefixes(jobs)
        for path, (c, exits, k) in jobs.items():
            with self.subTest(file=os.path.basename(path)):
                s = check_sane(self, runs[path], exits=exits)
                assert_at_most(self, by_method_and_code(s), by_method_and_code(self.full[c.name]), path)
                if k is not None:
                    self.assert_prefix_counted(s, c, k)


if __name__ == "__main__":
    t.main()
