"""Every capture in ../shared/corpus against tshark's counts (../shared/corpus/expected).

For each file, sip_exporter --capture.file=F --metrics.out=- must give the same request count per
method (methods outside the 14 folded into OTHER) and response count per code as tshark's
`-z sip,stat`, whatever the transport: UDP, TCP (reassembled, framed by Content-Length), IP
fragments, tunnels (GRE, ERSPAN, IP-in-IP, PPPoE), SCTP and WebSocket. Where the two differ, the
difference must be argued from RFC 3261 below; today there is none. Two files hold no SIP at all,
and tshark agrees: irontec_sngrep__tlssaved.pcap is TLS (counted as such), and
ntop_nDPI__tests_cfgs_default_pcap_http_on_sip_port.pcap is HTTP on port 5060.
"""
import json
import os
import unittest

import sipex_testlib as t

METHODS = {"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY",
           "UPDATE", "MESSAGE", "REFER", "PUBLISH", "INFO"}


def fold(requests):
    out = {}
    for m, n in requests.items():
        k = m if m in METHODS else "OTHER"
        out[k] = out.get(k, 0) + n
    return out


def corpus_files():
    d = t.shared_path("corpus")
    return sorted(f for f in os.listdir(d) if f.endswith((".pcap", ".pcapng")))


class CorpusTest(unittest.TestCase):
    def run_file(self, name):
        path = os.path.join(t.shared_path("corpus"), name)
        with open(os.path.join(t.shared_path("corpus", "expected"), name + ".json")) as f:
            expected = json.load(f)
        samples = t.parse_exposition(t.metrics_for_files([path]))
        return expected, samples

    def test_counts_match_tshark(self):
        files = corpus_files()
        self.assertGreater(len(files), 20)
        for name in files:
            with self.subTest(file=name):
                expected, s = self.run_file(name)
                self.assertEqual(t.sum_by(s, "sip_requests_total", "method"), fold(expected["requests"]))
                self.assertEqual(t.sum_by(s, "sip_responses_total", "code"), dict(expected["responses"]))

    def test_every_packet_is_accounted_for(self):
        # Each packet a worker receives is skipped for a reason or decoded down a path (not_sip is
        # a decoded UDP payload, so it is not counted twice); a UDP payload is a message, a parse
        # error or not SIP. Files are read losslessly.
        for name in corpus_files():
            with self.subTest(file=name):
                _, s = self.run_file(name)
                packets = sum(t.sum_by(s, "sip_exporter_packets_total", "source").values())
                dropped = sum(t.sum_by(s, "sip_exporter_dropped_packets_total", "stage").values())
                skipped = t.sum_by(s, "sip_exporter_skipped_packets_total", "reason")
                decoded = t.sum_by(s, "sip_exporter_decoded_packets_total", "path")
                self.assertGreater(packets, 0)
                self.assertEqual(dropped, 0)
                self.assertEqual(packets, sum(skipped.values()) - skipped.get("not_sip", 0) + sum(decoded.values()))
                if set(decoded) <= {"udp"}:
                    errors = sum(t.sum_by(s, "sip_exporter_parse_errors_total", "reason").values())
                    messages = sum(t.sum_by(s, "sip_requests_total", "method").values()) + \
                        sum(t.sum_by(s, "sip_responses_total", "code").values())
                    self.assertEqual(decoded.get("udp", 0), messages + errors + skipped.get("not_sip", 0))

    def test_tls_and_http_are_named_not_counted(self):
        _, s = self.run_file("irontec_sngrep__tlssaved.pcap")
        self.assertEqual(t.total(s, "sip_exporter_tls_connections_total"), 2)
        self.assertGreater(t.sum_by(s, "sip_exporter_stream_bytes_total", "result").get("tls", 0), 0)
        _, s = self.run_file("ntop_nDPI__tests_cfgs_default_pcap_http_on_sip_port.pcap")
        self.assertGreater(t.sum_by(s, "sip_exporter_stream_bytes_total", "result").get("not_sip", 0), 0)
        self.assertEqual(t.sum_by(s, "sip_exporter_parse_errors_total", "reason"), {})

    def test_transports_are_decoded(self):
        cases = {
            "sipcapture_heplify__example_pcap_sip_tcp_websocket.pcap": ("sip_exporter_websocket_connections_total", None),
            "irontec_sngrep__tests_ipv6frag.pcap": ("sip_exporter_ip_datagrams_reassembled_total", None),
            "sipcapture_heplify__example_pcap_sip_sctp.pcap": ("sip_exporter_sctp_data_chunks_total", None),
            "sipcapture_heplify__example_pcap_erspan_sip_ipv4_udp.pcapng": ("sip_exporter_decoded_packets_total", "udp"),
        }
        for name, (metric, label) in cases.items():
            with self.subTest(file=name):
                _, s = self.run_file(name)
                value = t.sum_by(s, metric, "path").get(label, 0) if label else t.total(s, metric)
                self.assertGreater(value, 0)

    # Where our retransmission count differs from tshark's `resent`, by how much and why.
    RESENT_ARGUED = {
        # Frames 249-272: ten copies of one CANCEL at 0.5, 1, 2, 4, 4, ... s (RFC 3261 17.1.2.2,
        # Timer E capped at T2). tshark keeps one transaction per Call-ID and direction, so a CANCEL
        # (same CSeq number as its INVITE) is never compared with the CANCEL before it.
        "irontec_sngrep__tests_aaa.pcap": (10, {("request", "CANCEL"): 10, ("request", "INVITE"): 4}),
        # tshark only flags resends on UDP. Over WebSocket the UAS repeats a 183 twice, byte for byte,
        # and the proxy relays both copies: four retransmitted responses (reliable provisionals are
        # retransmitted on any transport until PRACKed, RFC 3262 section 3).
        "sipcapture_heplify__example_pcap_sip_tcp_websocket.pcap": (4, {("response", "INVITE"): 4}),
        # Also TCP: one 180 Ringing sent twice, identical, a second apart (frames 175 and 180).
        "sipcapture_heplify__example_pcap_sip_ipv4_tcp_fragmented.pcap": (1, {("response", "INVITE"): 1}),
    }

    def test_retransmissions_match_tshark_resent(self):
        for name in corpus_files():
            with self.subTest(file=name):
                expected, s = self.run_file(name)
                ours = t.sum_by(s, "sip_retransmissions_total", "kind", "method")
                extra, breakdown = self.RESENT_ARGUED.get(name, (0, None))
                self.assertEqual(sum(ours.values()), expected["resent"] + extra)
                if breakdown is not None:
                    self.assertEqual(ours, breakdown)

    def test_truncated_datagram_is_a_parse_error_like_tshark(self):
        # sip_reqs.pcap frame 4 is a BYE whose datagram ends inside a header name ("Content-Lengt"):
        # RFC 3261 section 7 ends every header line with CRLF, so the message was cut. tshark marks
        # the frame malformed and leaves it out of sip,stat; we count a truncated_headers error.
        _, s = self.run_file("seladb_PcapPlusPlus__Tests_Packet++Test_PacketExamples_sip_reqs.pcap")
        self.assertEqual(t.sum_by(s, "sip_exporter_parse_errors_total", "reason"), {"truncated_headers": 1})
        self.assertNotIn("BYE", t.sum_by(s, "sip_requests_total", "method"))

    def test_more_workers_same_counts(self):
        for name in ["irontec_sngrep__tests_aaa.pcap", "ntop_nDPI__tests_cfgs_default_pcap_webex.pcap"]:
            path = os.path.join(t.shared_path("corpus"), name)
            one = t.parse_exposition(t.metrics_for_files([path], "--workers=1"))
            three = t.parse_exposition(t.metrics_for_files([path], "--workers=3"))
            for metric in ("sip_requests_total", "sip_responses_total"):
                self.assertEqual(t.sum_by(one, metric, "method", "code", "peer", "direction"),
                                 t.sum_by(three, metric, "method", "code", "peer", "direction"))

    def test_several_files_in_one_run_add_up(self):
        names = ["irontec_sngrep__tests_aaa.pcap", "aboutsip_pkts__pkts-core_src_test_resources_io_pkts_sipp_sll.pcap",
                 "MichalCab_ISA__sip.pcap.pcapng"]
        d = t.shared_path("corpus")
        s = t.parse_exposition(t.metrics_for_files([os.path.join(d, n) for n in names]))
        want_req, want_resp = {}, {}
        for n in names:
            with open(os.path.join(d, "expected", n + ".json")) as f:
                e = json.load(f)
            for k, v in fold(e["requests"]).items():
                want_req[k] = want_req.get(k, 0) + v
            for k, v in e["responses"].items():
                want_resp[k] = want_resp.get(k, 0) + v
        self.assertEqual(t.sum_by(s, "sip_requests_total", "method"), want_req)
        self.assertEqual(t.sum_by(s, "sip_responses_total", "code"), want_resp)
        self.assertEqual(len(t.sum_by(s, "sip_exporter_packets_total", "source")), 3)


if __name__ == "__main__":
    t.main()
