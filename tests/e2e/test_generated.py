"""End-to-end: captures written by gen_capture, whose exact counts are known, against the exporter.

gen_capture (tests/tools/gen_capture.cpp) shares no code with the exporter. For every capture it
writes a truth file with the counts DESIGN.md section 5 prescribes and the config those counts
assume. The exporter must reproduce the truth exactly: every series, not only sums.
"""
import collections
import json
import os
import struct
import subprocess
import tempfile
import unittest

import sipex_testlib as lib

GEN = os.environ.get("SIPEX_GEN_CAPTURE") or os.path.join(lib.BUILD_DIR, "tests", "gen_capture")
SEED = 5060
# SIP datagrams per capture, by link type.
MESSAGES = {"en10mb": 4000, "sll": 1500, "sll2": 1500, "raw": 1500, "null": 1500}
METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY",
           "UPDATE", "MESSAGE", "REFER", "PUBLISH", "INFO")
DATA_DIR = os.path.join(lib.SOURCE_DIR, "tests", "data")
REQ_LABELS = ("method", "peer", "direction")
RESP_LABELS = ("code", "class", "method", "peer", "direction")


def generate(out_dir, name, *args):
    """Runs gen_capture; returns the paths of the capture, truth file and config."""
    if not os.path.exists(GEN):
        raise AssertionError(f"gen_capture not found at {GEN} (set SIPEX_GEN_CAPTURE)")
    paths = {ext: os.path.join(out_dir, f"{name}.{ext}") for ext in ("pcap", "json", "yaml")}
    subprocess.run([GEN, "--out", paths["pcap"], "--truth", paths["json"], "--config", paths["yaml"], *args],
                   check=True, capture_output=True, timeout=60)
    return paths


def load_truth(path):
    """The truth file as {"packets", "requests", "responses", "parse_errors", "skipped"}, keyed like counts()."""
    with open(path) as f:
        t = json.load(f)
    return {
        "packets": t["packets"],
        "requests": {tuple(r[k] for k in REQ_LABELS): r["count"] for r in t["requests"]},
        "responses": {tuple(r[k] for k in RESP_LABELS): r["count"] for r in t["responses"]},
        "parse_errors": t["parse_errors"],
        "skipped": t["skipped"],
    }


def counts(text):
    """The exporter's exposition text reduced to the truth file's shape plus its health counters."""
    s = lib.parse_exposition(text)
    return {
        "packets": sum(lib.sum_by(s, "sip_exporter_packets_total", "source").values()),
        "dropped": sum(lib.sum_by(s, "sip_exporter_dropped_packets_total", "source", "stage").values()),
        "requests": lib.sum_by(s, "sip_requests_total", *REQ_LABELS),
        "responses": lib.sum_by(s, "sip_responses_total", *RESP_LABELS),
        "parse_errors": lib.sum_by(s, "sip_exporter_parse_errors_total", "reason"),
        "skipped": lib.sum_by(s, "sip_exporter_skipped_packets_total", "reason"),
        "peer_overflow": sum(lib.sum_by(s, "sip_exporter_peer_overflow_total").values()),
    }


def export(paths, *extra, config=None):
    return counts(lib.metrics_for_files([paths["pcap"]], f"--config.file={config or paths['yaml']}", *extra))


def totals(series, index):
    """Series counts summed by the label at position `index` of the key."""
    acc = collections.Counter()
    for k, n in series.items():
        acc[k[index]] += n
    return dict(acc)


def frame_kinds(pcap_path):
    """Counter of Ethernet frame features in a pcap file written on a little-endian host: tag
    stacks, network protocols, and IPv4 frames with bytes after the packet (padding or FCS)."""
    with open(pcap_path, "rb") as f:
        data = f.read()
    kinds = collections.Counter()
    off = 24
    while off < len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        pos, tags = 12, []
        while frame[pos:pos + 2] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00"):
            tags.append(frame[pos:pos + 2].hex())
            pos += 4
        kinds["tags:" + "+".join(tags)] += 1
        kinds["type:" + frame[pos:pos + 2].hex()] += 1
        ip = frame[pos + 2:]
        if frame[pos:pos + 2] == b"\x08\x00" and len(ip) > struct.unpack_from(">H", ip, 2)[0]:
            kinds["trailing"] += 1
    return kinds


def parse_sip_stat(text):
    """tshark -z sip,stat output as ({code: packets}, {request-line method token: packets})."""
    codes, methods, section = {}, {}, None
    for line in text.splitlines():
        if line.startswith("* SIP Status Codes"):
            section = codes
        elif line.startswith("* List of SIP Request methods"):
            section = methods
        elif line.startswith("*"):
            section = None
        elif section is not None and line.endswith(" Packets"):
            name, _, n = line.rpartition(":")
            name = name.strip()
            key = name.split()[1] if section is codes else name
            section[key] = int(n.split()[0])
    return codes, methods


class GeneratedCaptureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="sipex-gen-")
        cls.dir = cls._tmp.name
        cls.caps = {lt: generate(cls.dir, lt, "--seed", str(SEED), "--messages", str(n), "--linktype", lt)
                    for lt, n in MESSAGES.items()}
        cls.truth = {lt: load_truth(p["json"]) for lt, p in cls.caps.items()}

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def assert_matches_truth(self, got, truth):
        self.assertEqual(got["requests"], truth["requests"])
        self.assertEqual(got["responses"], truth["responses"])
        self.assertEqual(got["parse_errors"], truth["parse_errors"])
        self.assertEqual(got["skipped"], truth["skipped"])
        self.assertEqual(got["packets"], truth["packets"])
        # Every packet handed to the process is dropped, skipped, malformed or one message.
        self.assertEqual(got["packets"] - got["dropped"],
                         sum(got["skipped"].values()) + sum(got["parse_errors"].values()) +
                         sum(got["requests"].values()) + sum(got["responses"].values()))

    # (a) Every link type: exact series.
    def check_link(self, linktype):
        self.assert_matches_truth(export(self.caps[linktype]), self.truth[linktype])

    def test_en10mb(self):
        self.check_link("en10mb")

    def test_linux_sll(self):
        self.check_link("sll")

    def test_linux_sll2(self):
        self.check_link("sll2")

    def test_raw_ip(self):
        self.check_link("raw")

    def test_bsd_null(self):
        self.check_link("null")

    def test_several_files_in_one_run(self):
        """Files of different link types in one run: each is its own source, the series add up."""
        names = ("en10mb", "sll2", "null")
        config = self.caps["en10mb"]["yaml"]  # the same for every link type
        text = lib.metrics_for_files([self.caps[n]["pcap"] for n in names], f"--config.file={config}", "--workers=2")
        got = counts(text)
        want = {"packets": sum(self.truth[n]["packets"] for n in names)}
        for part in ("requests", "responses", "parse_errors", "skipped"):
            acc = collections.Counter()
            for n in names:
                acc.update(self.truth[n][part])
            want[part] = dict(acc)
        self.assert_matches_truth(got, want)
        self.assertEqual(len(lib.sum_by(lib.parse_exposition(text), "sip_exporter_packets_total", "source")), 3)

    def test_without_home_networks(self):
        """No home_networks: the peer is always the sender and the direction unknown."""
        p = generate(self.dir, "nohome", "--seed", str(SEED + 1), "--messages", "1500", "--linktype", "sll",
                     "--no-home")
        truth = load_truth(p["json"])
        self.assertEqual({k[2] for k in truth["requests"]} | {k[4] for k in truth["responses"]}, {"unknown"})
        self.assert_matches_truth(export(p), truth)

    def test_capture_has_the_promised_variety(self):
        """The en10mb capture holds what gen_capture promises, so the exact comparisons mean something."""
        t = self.truth["en10mb"]
        sip = sum(t["requests"].values()) + sum(t["responses"].values())
        self.assertEqual(set(totals(t["requests"], 0)), set(METHODS) | {"OTHER"})
        self.assertEqual(set(totals(t["responses"], 2)), set(METHODS) | {"OTHER"})
        self.assertEqual(set(totals(t["responses"], 1)), {"1xx", "2xx", "3xx", "4xx", "5xx", "6xx"})
        self.assertTrue({"299", "499", "555", "699", "150", "503", "608"} <= set(totals(t["responses"], 0)))
        peers = set(totals(t["requests"], 1)) | set(totals(t["responses"], 3))
        self.assertGreaterEqual(len(peers), 200)
        self.assertTrue({"carrier-a", "carrier-a-core", "carrier-b"} <= peers)
        self.assertTrue(any(":" in p for p in peers), "no IPv6 peer")
        self.assertEqual(set(totals(t["requests"], 2)), {"inbound", "outbound", "unknown"})
        self.assertGreaterEqual(t["skipped"]["not_sip"], sip)
        self.assertEqual(set(t["parse_errors"]), {"bad_status_code", "bad_version", "missing_cseq", "truncated_body"})
        kinds = frame_kinds(self.caps["en10mb"]["pcap"])
        for k in ("tags:", "tags:8100", "tags:88a8+8100", "tags:9100+8100", "type:0800", "type:86dd", "type:0806",
                  "trailing"):
            self.assertGreater(kinds[k], 0, k)

    # (b) Workers split the work by flow; the merged counts do not depend on how many there are.
    def test_worker_count_does_not_change_counts(self):
        one = export(self.caps["en10mb"], "--workers=1")
        for n in (2, 3):
            got = export(self.caps["en10mb"], f"--workers={n}")
            self.assertEqual(got["requests"], one["requests"], f"--workers={n}")
            self.assertEqual(got["responses"], one["responses"], f"--workers={n}")
            self.assert_matches_truth(got, self.truth["en10mb"])

    # (c) tshark, an independent SIP implementation, agrees on well-formed messages.
    def test_tshark_agrees(self):
        tshark = lib.require_tool("tshark")
        cp = subprocess.run([tshark, "-n", "-r", self.caps["en10mb"]["pcap"], "-q", "-z", "sip,stat"],
                            capture_output=True, text=True, timeout=120, check=True)
        ts_codes, ts_methods = parse_sip_stat(cp.stdout)
        t = self.truth["en10mb"]
        errors = t["parse_errors"]
        # Malformed datagrams tshark counts although RFC 3261 says they are not messages:
        # - missing_cseq: gen_capture writes these as "SIP/2.0 200 OK" without CSeq. CSeq is
        #   mandatory in every response (RFC 3261 sections 8.2.6.2 and 20.16), and a response is
        #   matched to its transaction by the CSeq method (17.1.3), so the exporter cannot label
        #   it; tshark tallies responses by status code alone and counts a 200.
        # - truncated_body: gen_capture writes these as MESSAGE requests whose Content-Length
        #   exceeds the body. On UDP that datagram is an error (RFC 3261 section 18.3); tshark
        #   counts a MESSAGE request.
        # The other malformed datagrams tshark does not count either: a start line with SIP/3.0 or
        # with a status code of more than three digits is not SIP to it, and it leaves codes
        # outside 100..699 out of its code table.
        want_methods = collections.Counter(totals(t["requests"], 0))
        want_methods["MESSAGE"] += errors.get("truncated_body", 0)
        got_methods = collections.Counter()
        for token, n in ts_methods.items():
            got_methods[token if token in METHODS else "OTHER"] += n
        self.assertEqual(dict(got_methods), dict(want_methods))

        want_codes = collections.Counter(totals(t["responses"], 0))
        want_codes["200"] += errors.get("missing_cseq", 0)
        # tshark files codes missing from its table under "x99 ... - Others", so compare the
        # codes it lists by name exactly and every class in total.
        for code, n in ts_codes.items():
            if not code.endswith("99"):
                self.assertEqual(n, want_codes[code], f"status {code}")
        def by_class(c):
            return {k: sum(n for code, n in c.items() if code[0] == k) for k in "123456"}
        self.assertEqual(by_class(ts_codes), by_class(want_codes))

    # (d) The peer cap: beyond max_peers distinct values, messages are labelled "other".
    def check_peer_cap(self, workers):
        p = self.caps["en10mb"]
        capped = os.path.join(self.dir, "capped.yaml")
        with open(p["yaml"]) as f, open(capped, "w") as out:
            out.write(f.read() + "limits: {max_peers: 20}\n")
        got = export(p, f"--workers={workers}", config=capped)
        t = self.truth["en10mb"]
        peers = set(totals(got["requests"], 1)) | set(totals(got["responses"], 3))
        shown = peers - {"other"}
        self.assertEqual(len(shown), 20, sorted(shown))
        self.assertEqual(totals(got["requests"], 0), totals(t["requests"], 0))
        self.assertEqual(totals(got["responses"], 0), totals(t["responses"], 0))
        other = (sum(n for k, n in got["requests"].items() if k[1] == "other") +
                 sum(n for k, n in got["responses"].items() if k[3] == "other"))
        self.assertGreater(other, 0)
        self.assertEqual(other, got["peer_overflow"])
        # A value once admitted keeps its messages: every shown peer's series are its true ones.
        self.assertEqual({k: n for k, n in got["requests"].items() if k[1] != "other"},
                         {k: n for k, n in t["requests"].items() if k[1] in shown})
        self.assertEqual({k: n for k, n in got["responses"].items() if k[3] != "other"},
                         {k: n for k, n in t["responses"].items() if k[3] in shown})

    def test_peer_cap(self):
        self.check_peer_cap(1)

    def test_peer_cap_several_workers(self):
        # A worker that first meets an admitted peer after the cap was reached must still find it.
        self.check_peer_cap(3)

    # (e) Same arguments, same bytes.
    def test_generator_is_deterministic(self):
        args = ("--seed", "99", "--messages", "800", "--linktype", "en10mb")
        a = generate(self.dir, "det-a", *args)
        b = generate(self.dir, "det-b", *args)
        c = generate(self.dir, "det-c", "--seed", "100", "--messages", "800", "--linktype", "en10mb")
        for ext in ("pcap", "json", "yaml"):
            with open(a[ext], "rb") as fa, open(b[ext], "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), ext)
        with open(a["pcap"], "rb") as fa, open(c["pcap"], "rb") as fc:
            self.assertNotEqual(fa.read(), fc.read(), "the seed changes nothing")

    # The shipped demo capture: reproducible from its script, and counted as its truth says.
    def test_sample_is_reproducible(self):
        out = os.path.join(self.dir, "sample")
        os.mkdir(out)
        subprocess.run([os.path.join(DATA_DIR, "make_sample.sh"), lib.BUILD_DIR, out], check=True,
                       capture_output=True, timeout=60, env={**os.environ, "GEN_CAPTURE": GEN})
        for name in ("sample.pcap", "sample.yaml", "sample.truth.json"):
            with open(os.path.join(out, name), "rb") as fa, open(os.path.join(DATA_DIR, name), "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), f"tests/data/{name} differs from make_sample.sh output")

    def test_sample_counts(self):
        p = {"pcap": os.path.join(DATA_DIR, "sample.pcap"), "yaml": os.path.join(DATA_DIR, "sample.yaml")}
        self.assert_matches_truth(export(p), load_truth(os.path.join(DATA_DIR, "sample.truth.json")))


if __name__ == "__main__":
    lib.main()
