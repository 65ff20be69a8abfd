"""The command-line contract (DESIGN section 3): exit codes, one-line errors, --metrics.out."""
import os
import shutil
import tempfile
import unittest

import sipex_testlib as t

AAA = "irontec_sngrep__tests_aaa.pcap"


def one_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return len(lines) == 1


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def corpus(self, name=AAA):
        return os.path.join(t.shared_path("corpus"), name)

    def test_bad_flag_is_exit_2_with_one_line(self):
        for args in (["--capture.file=x.pcap", "--no-such-flag"], [], ["--capture.file=x", "--workers=zero"],
                     ["--capture.file=x", "--capture.interface=lo"], ["--capture.file=x", "--sip.ports=99999"]):
            cp = t.run_exporter(args, check=False)
            self.assertEqual(cp.returncode, 2, args)
            self.assertTrue(one_line(cp.stderr), cp.stderr)
            self.assertIn("--help", cp.stderr)
            self.assertEqual(cp.stdout, "")

    def test_missing_file_is_exit_1_with_one_line(self):
        cp = t.run_exporter(["--capture.file=/nonexistent/x.pcap", "--metrics.out=-"], check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertTrue(one_line(cp.stderr), cp.stderr)
        self.assertIn("/nonexistent/x.pcap", cp.stderr)
        self.assertEqual(cp.stdout, "", "nothing is printed when no file could be opened")

    def test_corrupt_file_is_exit_1_with_one_line(self):
        junk = os.path.join(self.tmp, "junk.pcap")
        with open(junk, "wb") as f:
            f.write(b"this is not a capture file at all" * 10)
        cp = t.run_exporter([f"--capture.file={junk}", "--metrics.out=-"], check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertTrue(one_line(cp.stderr), cp.stderr)
        self.assertIn(junk, cp.stderr)

    def test_truncated_file_counts_its_valid_part_and_exits_1(self):
        src = self.corpus()
        with open(src, "rb") as f:
            data = f.read()
        cut = os.path.join(self.tmp, "cut.pcap")
        with open(cut, "wb") as f:
            f.write(data[: len(data) * 2 // 3])
        cp = t.run_exporter([f"--capture.file={cut}", "--metrics.out=-"], check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertTrue(one_line(cp.stderr), cp.stderr)
        self.assertIn("cut.pcap", cp.stderr)
        s = t.parse_exposition(cp.stdout)
        total = sum(t.sum_by(s, "sip_requests_total", "method").values())
        full = t.parse_exposition(t.metrics_for_files([src]))
        self.assertGreater(total, 0, "the packets before the break are counted")
        self.assertLess(total, sum(t.sum_by(full, "sip_requests_total", "method").values()))

    def test_bad_config_is_exit_1_naming_the_line(self):
        cfg = os.path.join(self.tmp, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("home_networks: [10.0.0.0/8]\npeers:\n  a: [10.0.0.300/32]\n")
        cp = t.run_exporter([f"--capture.file={self.corpus()}", f"--config.file={cfg}", "--metrics.out=-"], check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertTrue(one_line(cp.stderr), cp.stderr)
        self.assertIn("bad.yaml:3:", cp.stderr)

    def test_unwritable_metrics_out_is_exit_1(self):
        cp = t.run_exporter([f"--capture.file={self.corpus()}", "--metrics.out=/nonexistent/dir/m.prom"], check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertTrue(one_line(cp.stderr), cp.stderr)

    def test_a_failed_metrics_write_is_exit_1(self):
        # /dev/full opens but every write fails: the text is written in pieces, and a failure in
        # any of them (or in the last flush) must still be reported.
        cp = t.run_exporter([f"--capture.file={self.corpus()}", "--metrics.out=/dev/full"], check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertTrue(one_line(cp.stderr), cp.stderr)
        self.assertIn("write failed", cp.stderr)

    def test_metrics_out_file_equals_stdout(self):
        out = os.path.join(self.tmp, "m.prom")
        t.run_exporter([f"--capture.file={self.corpus()}", f"--metrics.out={out}"])
        with open(out) as f:
            self.assertEqual(f.read(), t.metrics_for_files([self.corpus()]))

    def test_help_lists_every_flag_and_version_exits_0(self):
        cp = t.run_exporter(["--help"])
        for flag in ("--capture.interface", "--capture.file", "--capture.threads", "--capture.bpf-filter",
                     "--capture.buffer-size", "--capture.snaplen", "--sip.ports", "--workers", "--config.file",
                     "--web.listen-address", "--web.telemetry-path", "--metrics.out"):
            self.assertIn(flag, cp.stdout)
        cp = t.run_exporter(["--version"])
        self.assertIn("sip_exporter", cp.stdout)

    def test_every_kernel_gives_the_same_exposition(self):
        files = [self.corpus(), self.corpus("MichalCab_ISA__sip.pcap.pcapng"),
                 self.corpus("sipcapture_heplify__example_pcap_sip_ipv6_udp.pcap")]
        texts = {}
        for k in ("scalar", "sse42", "avx2"):
            text = t.metrics_for_files(files, env={"SIPEX_KERNEL": k})
            s = t.parse_exposition(text)
            kernel = [l["kernel"] for n, l, v in s if n == "sip_exporter_scan_kernel_info"]
            if kernel != [k]:
                continue  # this CPU lacks the kernel; the exporter fell back
            texts[k] = text.replace(f'kernel="{k}"', 'kernel=""')
        self.assertIn("scalar", texts)
        self.assertEqual(len(set(texts.values())), 1, f"kernels disagree: {sorted(texts)}")

    def test_unknown_kernel_name_is_reported_and_falls_back(self):
        cp = t.run_exporter([f"--capture.file={self.corpus()}", "--metrics.out=-"], env={"SIPEX_KERNEL": "neon"})
        self.assertIn("SIPEX_KERNEL", cp.stderr)


if __name__ == "__main__":
    t.main()
