"""End-to-end: SIP over every transport a SPAN port carries, against an exact truth.

`gen_capture --profile transports` (tests/tools/gen_capture.cpp, which shares no code with the
exporter) writes one Ethernet capture in which SIP travels over TCP (split at every byte offset,
several messages to a segment, one message over many, retransmitted, out of order, CRLF
keep-alives, FIN/RST, connection reuse, sequence wrap), IPv4 and IPv6 fragments in any order,
GRE (with and without inner Ethernet), PPTP GRE/PPP, ERSPAN II and III, VXLAN, IP-in-IP (4in4,
6in4, 4in6), MPLS, PPPoE, GTP-U, SCTP (RFC 4168) and WebSocket (RFC 7118). Its truth file counts
every SIP message once, with peer and direction from the innermost addresses, and says how many
messages each construct carries ("by_construct"). gen_capture's comment block "The transports
profile" says what each construct holds and what the exporter must make of it.

The exporter must reproduce the truth exactly (every request and response series), with no parse
error and no packet filed as unsupported, with one worker and with three; and again for each
construct alone (`--only NAME`), so that a failure names the construct. tshark, an independent
decoder, checks the captures themselves: its per-method and per-code totals equal the truth's,
except for the constructs listed in TSHARK_BLIND, which tshark 4.0 cannot frame (reasons there).

This module is not registered in tests/CMakeLists.txt until the exporter decodes these transports.
"""
import collections
import json
import os
import struct
import subprocess
import tempfile
import unittest

import sipex_testlib as lib
from test_generated import METHODS, counts, generate, load_truth, parse_sip_stat, totals

SEED = 4168

# Every construct of the profile, in gen_capture's order (kConstructs).
CONSTRUCTS = (
    "udp_plain", "tcp_split_every_offset", "tcp_multi_per_segment", "tcp_content_length_forms",
    "tcp_one_across_many", "tcp_retransmission", "tcp_out_of_order", "tcp_keepalive", "tcp_keepalive_prefix",
    "tcp_close_and_reuse", "tcp_seq_wrap", "ipv4_frag_in_order", "ipv4_frag_reverse", "ipv4_frag_shuffled",
    "ipv6_frag_in_order", "ipv6_frag_reverse", "ipv6_frag_shuffled", "gre", "gre_eth", "pptp_gre", "erspan2",
    "erspan3", "vxlan", "ipip_4in4", "ipip_6in4", "ipip_4in6", "mpls", "pppoe", "gtpu", "sctp", "websocket")

# Constructs whose SIP tshark 4.0.17 does not frame as RFC 3261 requires; left out of the tshark
# comparison (only them). Both are TCP-only: tshark finds where a message ends on TCP with its
# generic HTTP-style code, which
TSHARK_BLIND = {
    # ... reads Content-Length only when spelled in full with the colon right after the name and
    # the value on the same line. The compact form "l: 12", "Content-Length : 12" (LWS before the
    # colon, RFC 3261 HCOLON) and a value folded onto the next line are not found: tshark then
    # takes the message to end with the segment, swallows or truncates the messages after it in
    # that segment and loses the rest of the stream.
    "tcp_content_length_forms": "compact, LWS-before-colon and folded Content-Length on TCP",
    # ... expects a start line at the start of the data: CRLFs before a message in the same
    # segment (which RFC 3261 section 7.5 says to ignore on stream transports) make it give up on
    # that segment, and it loses the message and what follows it in the stream. (CRLF keep-alives
    # in segments of their own, or after a message, it handles: tcp_keepalive is compared.)
    "tcp_keepalive_prefix": "CRLF keep-alive before a message in the same TCP segment",
}

# tshark options for the comparison. tshark does not reassemble TCP segments that arrive before
# the segments preceding them unless told to (the preference is off by default); with it off it
# loses every message of tcp_out_of_order and some of tcp_split_every_offset and
# tcp_one_across_many, whose receiver ACKs and holes look like loss to it.
TSHARK_OPTS = ("-o", "tcp.reassemble_out_of_order:TRUE")

# Protocols tshark must find in the whole capture (its protocol hierarchy), so that the exact
# comparisons cover every transport the profile promises.
PROTOCOLS = {"tcp", "sctp", "websocket", "http", "gre", "erspan", "ppp", "vxlan", "mpls", "pppoes", "gtp",
             "ipv6", "vlan", "sip"}


def read_frames(path):
    """The frames of a pcap file written on a little-endian host, as a list of bytes."""
    with open(path, "rb") as f:
        data = f.read()
    frames, off = [], 24
    while off < len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return frames


def tshark_totals(path):
    """tshark's sip,stat of `path`: ({method label: n}, {code: n})."""
    tshark = lib.require_tool("tshark")
    cp = subprocess.run([tshark, "-n", "-r", path, *TSHARK_OPTS, "-q", "-z", "sip,stat"],
                        capture_output=True, text=True, timeout=300, check=True)
    codes, methods = parse_sip_stat(cp.stdout)
    labels = collections.Counter()
    for token, n in methods.items():
        labels[token if token in METHODS else "OTHER"] += n
    return labels, collections.Counter(codes)


def series_diff(got, want):
    """{series: (got, want)} for every series whose counts differ."""
    return {k: (got.get(k, 0), want.get(k, 0)) for k in sorted(set(got) | set(want)) if got.get(k, 0) != want.get(k, 0)}


def truth_totals(truth):
    return collections.Counter(totals(truth["requests"], 0)), collections.Counter(totals(truth["responses"], 0))


def by_class(codes):
    return {k: sum(n for code, n in codes.items() if code[0] == k) for k in "123456"}


class TransportsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="sipex-transports-")
        cls.dir = cls._tmp.name
        cls.whole = generate(cls.dir, "transports", "--profile", "transports", "--seed", str(SEED))
        cls.truth = load_truth(cls.whole["json"])
        with open(cls.whole["json"]) as f:
            cls.by_construct = json.load(f)["by_construct"]
        cls.parts, cls.part_truth = {}, {}
        for name in CONSTRUCTS:
            cls.parts[name] = generate(cls.dir, name, "--profile", "transports", "--seed", str(SEED), "--only", name)
            cls.part_truth[name] = load_truth(cls.parts[name]["json"])

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def assert_matches_truth(self, got, truth, what):
        for part in ("requests", "responses"):
            self.assertEqual(series_diff(got[part], truth[part]), {},
                             f"{what}: {part} that differ, as series: (exporter, truth)")
        # Nothing in these captures is malformed, and every transport in them is one to decode.
        self.assertEqual(got["parse_errors"], {}, f"{what}: parse errors")
        self.assertEqual({r: n for r, n in got["skipped"].items() if "unsupported" in r}, {},
                         f"{what}: packets filed as unsupported")
        self.assertEqual(got["packets"], truth["packets"], f"{what}: packets")
        self.assertEqual(got["dropped"], 0, f"{what}: dropped packets")

    def export(self, paths, workers):
        return counts(lib.metrics_for_files([paths["pcap"]], f"--config.file={paths['yaml']}", f"--workers={workers}"))

    # The whole capture: every series exact, whatever the number of workers (flows stay together).
    def test_whole_capture_one_worker(self):
        self.assert_matches_truth(self.export(self.whole, 1), self.truth, "whole capture, 1 worker")

    def test_whole_capture_three_workers(self):
        self.assert_matches_truth(self.export(self.whole, 3), self.truth, "whole capture, 3 workers")

    # One case per construct (added below as test_construct_<name>), so that a failure names it.
    def check_construct(self, name):
        self.assert_matches_truth(self.export(self.parts[name], 1), self.part_truth[name], name)

    # The generator keeps its promises, so that the comparisons above mean something.
    def test_capture_has_the_promised_variety(self):
        self.assertEqual(tuple(self.by_construct), CONSTRUCTS)
        for name, n in self.by_construct.items():
            self.assertGreater(n, 0, name)
        t = self.truth
        self.assertEqual(sum(self.by_construct.values()), sum(t["requests"].values()) + sum(t["responses"].values()))
        self.assertGreater(self.by_construct["tcp_split_every_offset"], 2 * 300)  # an INVITE of 300+ bytes, every cut
        self.assertEqual(set(totals(t["requests"], 0)), set(METHODS) | {"OTHER"})
        self.assertEqual(set(totals(t["responses"], 1)), {"1xx", "2xx", "3xx", "4xx", "5xx", "6xx"})
        peers = set(totals(t["requests"], 1)) | set(totals(t["responses"], 3))
        self.assertTrue({"carrier-a", "carrier-a-core", "carrier-b"} <= peers)
        self.assertTrue(any(":" in p for p in peers), "no IPv6 peer")
        self.assertFalse(any(p.startswith(("172.31.", "2001:db8:7000:")) for p in peers), "a tunnel endpoint is a peer")
        self.assertEqual(set(totals(t["requests"], 2)), {"inbound", "outbound", "unknown"})
        self.assertEqual(t["parse_errors"], {})

    def test_constructs_add_up_to_the_whole(self):
        """--only NAME writes exactly NAME's frames of the whole capture, and its share of the truth."""
        whole = collections.Counter(read_frames(self.whole["pcap"]))
        parts = collections.Counter()
        want = {"requests": collections.Counter(), "responses": collections.Counter()}
        for name in CONSTRUCTS:
            parts.update(read_frames(self.parts[name]["pcap"]))
            for part in want:
                want[part].update(self.part_truth[name][part])
            with open(self.parts[name]["json"]) as f:
                self.assertEqual(json.load(f)["by_construct"], {name: self.by_construct[name]})
        self.assertEqual(parts, whole)
        self.assertEqual(dict(want["requests"]), self.truth["requests"])
        self.assertEqual(dict(want["responses"]), self.truth["responses"])
        self.assertEqual(sum(p["packets"] for p in self.part_truth.values()), self.truth["packets"])

    def test_generator_is_deterministic(self):
        again = generate(self.dir, "again", "--profile", "transports", "--seed", str(SEED))
        other = generate(self.dir, "other", "--profile", "transports", "--seed", str(SEED + 1))
        for ext in ("pcap", "json", "yaml"):
            with open(self.whole[ext], "rb") as fa, open(again[ext], "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), ext)
        with open(self.whole["pcap"], "rb") as fa, open(other["pcap"], "rb") as fc:
            self.assertNotEqual(fa.read(), fc.read(), "the seed changes nothing")

    # tshark, an independent decoder, agrees with the truth on the captures themselves.
    def assert_tshark_agrees(self, got, want, what):
        got_methods, got_codes = got
        want_methods, want_codes = want
        nonzero = lambda c: {k: n for k, n in c.items() if n}  # noqa: E731 (keeps negative counts)
        self.assertEqual(nonzero(got_methods), nonzero(want_methods), f"{what}: requests by method")
        # tshark files codes missing from its table under "x99 ... - Others": compare the codes it
        # lists by name exactly and every class in total.
        for code, n in got_codes.items():
            if not code.endswith("99"):
                self.assertEqual(n, want_codes[code], f"{what}: status {code}")
        self.assertEqual(by_class(got_codes), by_class(want_codes), f"{what}: responses by class")

    def test_tshark_agrees_on_the_whole_capture(self):
        """Whole capture minus the TSHARK_BLIND constructs (tshark's counts on each of them alone
        are subtracted from its counts on the whole, their truth from the truth)."""
        got_m, got_c = tshark_totals(self.whole["pcap"])
        want_m, want_c = truth_totals(self.truth)
        for name in TSHARK_BLIND:
            blind_m, blind_c = tshark_totals(self.parts[name]["pcap"])
            part_m, part_c = truth_totals(self.part_truth[name])
            got_m.subtract(blind_m)
            got_c.subtract(blind_c)
            want_m.subtract(part_m)
            want_c.subtract(part_c)
        self.assert_tshark_agrees((got_m, got_c), (want_m, want_c), "whole capture")

    def test_tshark_agrees_on_each_construct(self):
        for name in CONSTRUCTS:
            if name in TSHARK_BLIND:
                continue
            with self.subTest(construct=name):
                self.assert_tshark_agrees(tshark_totals(self.parts[name]["pcap"]),
                                          truth_totals(self.part_truth[name]), name)

    def test_tshark_decodes_every_transport(self):
        tshark = lib.require_tool("tshark")
        cp = subprocess.run([tshark, "-n", "-r", self.whole["pcap"], *TSHARK_OPTS, "-q", "-z", "io,phs"],
                            capture_output=True, text=True, timeout=300, check=True)
        seen = {line.split()[0] for line in cp.stdout.splitlines() if "frames:" in line}
        self.assertEqual(PROTOCOLS - seen, set())


def _construct_test(name):
    def test(self):
        self.check_construct(name)
    test.__doc__ = f"Only {name}: exact series, no parse error, nothing unsupported."
    return test


for _name in CONSTRUCTS:
    setattr(TransportsTest, f"test_construct_{_name}", _construct_test(_name))


if __name__ == "__main__":
    lib.main()
