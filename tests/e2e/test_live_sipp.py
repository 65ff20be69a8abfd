"""Live capture end to end: SIPp calls on loopback, counted by a running sip_exporter.

The exporter captures `lo` while three SIPp UAC/UAS pairs place calls on their own ports:
  basic  built-in `-sn uac` / `-sn uas`: INVITE, 180, 200, ACK, BYE, 200
  503    sipp/uac_503.xml / sipp/uas_503.xml: INVITE, 100, 503, ACK
  486    sipp/uac_486.xml / sipp/uas_486.xml: INVITE, 180, 486, ACK
The expected figures are SIPp's own: every SIPp process writes its per-step counts (-trace_counts,
retransmissions included), its statistics (-trace_stat) and every message it sent or received
(-trace_msg). The test checks those records against each other (counts against the message log,
each UAC's sent messages against its UAS's received ones and back), then requires /metrics to hold
exactly the messages SIPp put on the wire: per method for requests, per (code, CSeq method) for
responses. It also lints the scrape with `promtool check metrics` and checks that SIGTERM ends the
exporter with 0 and writes --metrics.out equal, byte for byte, to the last scrape, which is served
the same gzip'd (Accept-Encoding: gzip, as Prometheus asks) as plain.

The only skip is an exporter that may not open a raw capture on `lo` (no CAP_NET_RAW), besides a
missing sipp or promtool outside CI.
"""
import collections
import glob
import gzip
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import sipex_testlib
from sipex_testlib import parse_exposition, require_tool, sum_by

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(HERE, "sipp")
LOCAL_IP = "127.0.0.1"
CALLS = 20          # calls per pair
RATE = 10           # calls per second
SIPP_TIMEOUT = 60   # SIPp's own global timeout (s), and our bound for waiting on SIPp
COUNT_TIMEOUT = 15  # how long the scrape may take to show every message (s)

# name, UAS scenario, UAC scenario, UAS port, UAC port, nominal messages per call without
# retransmissions: {("req", method) | ("resp", code, cseq method): count}
PAIRS = [
    ("basic", ["-sn", "uas"], ["-sn", "uac"], 15060, 15061,
     {("req", "INVITE"): 1, ("req", "ACK"): 1, ("req", "BYE"): 1,
      ("resp", "180", "INVITE"): 1, ("resp", "200", "INVITE"): 1, ("resp", "200", "BYE"): 1}),
    ("503", ["-sf", os.path.join(SCENARIO_DIR, "uas_503.xml")], ["-sf", os.path.join(SCENARIO_DIR, "uac_503.xml")],
     15070, 15071,
     {("req", "INVITE"): 1, ("req", "ACK"): 1, ("resp", "100", "INVITE"): 1, ("resp", "503", "INVITE"): 1}),
    ("486", ["-sf", os.path.join(SCENARIO_DIR, "uas_486.xml")], ["-sf", os.path.join(SCENARIO_DIR, "uac_486.xml")],
     15080, 15081,
     {("req", "INVITE"): 1, ("req", "ACK"): 1, ("resp", "180", "INVITE"): 1, ("resp", "486", "INVITE"): 1}),
]
SIP_PORTS = sorted(p for pair in PAIRS for p in (pair[3], pair[4]))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- SIPp's records

def _csv_last_row(path):
    """{column: value} of the header and the last data row of a SIPp ';'-separated CSV file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if len(lines) < 2:
        raise AssertionError(f"{path}: no data row")
    header, last = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(header, last))


_COUNT_COL = re.compile(r"^(\d+)_(.+)_(Sent|Recv|Retrans|Timeout|Unexp|Sessions)$")


def read_counts(path):
    """Scenario steps from a -trace_counts file: list of dicts (index, name, kind, first, retrans,
    timeout, unexp); kind is 'send', 'recv' or 'other' (pause, ...)."""
    steps = {}
    for col, val in _csv_last_row(path).items():
        m = _COUNT_COL.match(col)
        if not m:
            continue
        s = steps.setdefault(int(m.group(1)), {"index": int(m.group(1)), "name": m.group(2), "kind": "other",
                                              "first": 0, "retrans": 0, "timeout": 0, "unexp": 0})
        v = int(val)
        field = m.group(3)
        if field in ("Sent", "Recv"):
            s["kind"] = "send" if field == "Sent" else "recv"
            s["first"] = v
        elif field == "Retrans":
            s["retrans"] = v
        elif field == "Timeout":
            s["timeout"] = v
        elif field == "Unexp":
            s["unexp"] = v
    return [steps[i] for i in sorted(steps)]


_LOG_SEP = re.compile(r"^-{20,} .*$", re.M)
_LOG_HEAD = re.compile(r"^\s*(UDP|TCP|TLS|SCTP) message (sent|received)\b")
_CSEQ = re.compile(r"^CSeq[ \t]*:[ \t]*\d+[ \t]+(\S+)", re.M | re.I)


def read_message_log(path):
    """Every message in a -trace_msg log: list of (direction 'sent'/'received', key), where key is
    ('req', method) or ('resp', code, cseq method)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for chunk in _LOG_SEP.split(text):
        chunk = chunk.lstrip("\r\n")
        m = _LOG_HEAD.match(chunk)
        if not m:
            if chunk.strip():
                raise AssertionError(f"{path}: unexpected entry {chunk[:200]!r}")
            continue
        body = chunk.split("\n", 1)[1].lstrip("\r\n") if "\n" in chunk else ""
        headers = re.split(r"\r?\n\r?\n", body, maxsplit=1)[0]
        start = headers.split("\n", 1)[0].strip()
        cseq = _CSEQ.search(headers)
        parts = start.split()
        if start.startswith("SIP/2.0 ") and len(parts) >= 2:
            if not cseq:
                raise AssertionError(f"{path}: response without CSeq: {headers!r}")
            key = ("resp", parts[1], cseq.group(1))
        elif len(parts) == 3 and parts[2] == "SIP/2.0":
            key = ("req", parts[0])
        else:
            raise AssertionError(f"{path}: unparsable start line {start!r}")
        out.append((m.group(2), key))
    return out


def _name(key):
    """The name SIPp's counts give a message: the method of a request, the code of a response."""
    return key[1]


def _fmt(counter):
    def k(key):
        return f"{key[1]}" if key[0] == "req" else f"{key[1]} ({key[2]})"
    return ", ".join(f"{k(key)}={n}" for key, n in sorted(counter.items()))


class SippRun:
    """One SIPp process in the foreground, in its own directory so its trace files are its own."""

    def __init__(self, label, workdir, args):
        self.label = label
        self.dir = os.path.join(workdir, label)
        os.makedirs(self.dir)
        self.cmd = [require_tool("sipp"), *args]
        self.out = open(os.path.join(self.dir, "stdout.txt"), "w")
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT)

    def output(self):
        self.out.flush()
        with open(os.path.join(self.dir, "stdout.txt"), errors="replace") as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"SIPp {self.label} did not finish within {timeout} s: {' '.join(self.cmd)}\n"
                                 f"{self.output()[-3000:]}")
        if rc != 0:
            raise AssertionError(f"SIPp {self.label} exited {rc} (0 = every call succeeded): {' '.join(self.cmd)}\n"
                                 f"{self.output()[-3000:]}")

    def _file(self, pattern):
        files = glob.glob(os.path.join(self.dir, pattern))
        if len(files) != 1:
            raise AssertionError(f"SIPp {self.label}: expected one {pattern} in {self.dir}, found {files}")
        return files[0]

    def records(self, calls):
        """(sent Counter, received Counter, retransmissions sent) from SIPp's files, after checking that its
        per-step counts, its statistics and its message log agree with each other."""
        steps = read_counts(self._file("*_counts.csv"))
        stats = _csv_last_row(self._file(f"*_{self.proc.pid}_.csv"))
        msgs = read_message_log(self._file("*_messages.log"))
        where = f"SIPp {self.label}"
        for s in steps:
            if s["unexp"] or s["timeout"]:
                raise AssertionError(f"{where}: step {s} saw unexpected messages or timeouts")
        for col, want in (("SuccessfulCall(C)", calls), ("FailedCall(C)", 0), ("OutOfCallMsgs(C)", 0),
                          ("DeadCallMsgs(C)", 0), ("AutoAnswered(C)", 0)):
            got = int(stats[col])
            if got != want:
                raise AssertionError(f"{where}: statistics say {col}={got}, expected {want}")
        sent = collections.Counter(k for d, k in msgs if d == "sent")
        recv = collections.Counter(k for d, k in msgs if d == "received")
        for kind, log_counter in (("send", sent), ("recv", recv)):
            by_steps = collections.Counter()
            for s in steps:
                if s["kind"] == kind:
                    by_steps[s["name"]] += s["first"] + s["retrans"]
            by_log = collections.Counter()
            for key, n in log_counter.items():
                by_log[_name(key)] += n
            if +by_steps != +by_log:
                raise AssertionError(f"{where}: -trace_counts ({kind}) {dict(by_steps)} disagrees with "
                                     f"-trace_msg {dict(by_log)}")
        retrans = sum(s["retrans"] for s in steps if s["kind"] == "send")
        if retrans != int(stats["Retransmissions(C)"]):
            raise AssertionError(f"{where}: retransmissions in counts ({retrans}) != statistics "
                                 f"({stats['Retransmissions(C)']})")
        return sent, recv, retrans


# ---------------------------------------------------------------- helpers

def udp_ports_bound():
    """Local UDP ports that have a socket bound, from /proc/net/udp{,6}."""
    ports = set()
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    local = line.split()[1]
                    ports.add(int(local.rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def scrape(port, gzipped=False):
    """The exposition text of /metrics; with gzipped, asked for and checked to be gzip-encoded."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Accept-Encoding": "gzip"} if gzipped else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            raise AssertionError(f"/metrics answered HTTP {r.status}")
        body = r.read()
        encoding = r.headers.get("Content-Encoding")
        if encoding != ("gzip" if gzipped else None):
            raise AssertionError(f"/metrics answered Content-Encoding {encoding!r} (gzipped={gzipped})")
        return (gzip.decompress(body) if gzipped else body).decode("utf-8")


def exporter_totals(text):
    samples = parse_exposition(text)
    req = sum_by(samples, "sip_requests_total", "method")
    resp = sum_by(samples, "sip_responses_total", "code", "method")
    c = collections.Counter()
    for m, n in req.items():
        c[("req", m)] = n
    for (code, m), n in resp.items():
        c[("resp", code, m)] = n
    return c


def health(text, expected):
    """One line on the exporter's own counters, to tell capture loss from messages stuck on the way."""
    samples = parse_exposition(text)
    return (f"\nSIPp put {sum(expected.values())} messages on the wire; the exporter reports packets "
            f"{sum_by(samples, 'sip_exporter_packets_total', 'source')}, dropped "
            f"{sum_by(samples, 'sip_exporter_dropped_packets_total', 'source', 'stage')}, parse errors "
            f"{sum_by(samples, 'sip_exporter_parse_errors_total', 'reason')}, skipped "
            f"{sum_by(samples, 'sip_exporter_skipped_packets_total', 'reason')}")


# ---------------------------------------------------------------- the test

class LiveSippTest(sipex_testlib.LiveRunTest):
    """One live run (setUpClass) and several checks on what it produced."""

    @classmethod
    def _run(cls):
        promtool = require_tool("promtool")
        require_tool("sipp")
        if not sipex_testlib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        t0 = time.monotonic()
        busy = sorted(set(SIP_PORTS) & udp_ports_bound())
        if busy:
            raise AssertionError(f"UDP ports {busy} are already in use on this host; the live test needs "
                                 f"{SIP_PORTS} free")
        tmp = tempfile.TemporaryDirectory(prefix="sipex-live-")
        sipps = []
        exporter = None
        exporter_err = None
        try:
            work = tmp.name
            metrics_out = os.path.join(work, "metrics.out")
            err_path = os.path.join(work, "exporter.stderr")
            exporter_err = open(err_path, "w")
            cmd = [sipex_testlib.BINARY, "--capture.interface=lo", "--sip.ports=" + ",".join(map(str, SIP_PORTS)),
                   "--web.listen-address=127.0.0.1:0", f"--metrics.out={metrics_out}"]
            exporter = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=exporter_err)

            # 1. Wait for "serving /metrics on port N"; a permission error is the one allowed skip.
            port = sipex_testlib.wait_listening(exporter, err_path, cmd, "the live SIPp test", "raw capture on lo")

            # 2. The UAS side first, each one listening before its UAC starts.
            common = ["-i", LOCAL_IP, "-m", str(CALLS), "-nostdin", "-trace_counts", "-trace_stat", "-trace_msg",
                      "-timeout", f"{SIPP_TIMEOUT}s"]
            uas = []
            for name, uas_args, _, uas_port, _, _ in PAIRS:
                uas.append(SippRun(f"uas-{name}", work, [*uas_args, *common, "-p", str(uas_port)]))
                sipps.append(uas[-1])
            deadline = time.monotonic() + 10
            for run, pair in zip(uas, PAIRS):
                while pair[3] not in udp_ports_bound():
                    if run.proc.poll() is not None:
                        raise AssertionError(f"SIPp {run.label} exited {run.proc.returncode} before binding "
                                             f"port {pair[3]}:\n{run.output()[-3000:]}")
                    if time.monotonic() > deadline:
                        raise AssertionError(f"SIPp {run.label} did not bind UDP port {pair[3]} within 10 s")
                    time.sleep(0.05)

            # 3. The UACs, concurrently; each exits after CALLS calls, then its UAS does.
            uac = []
            for name, _, uac_args, uas_port, uac_port, _ in PAIRS:
                uac.append(SippRun(f"uac-{name}", work, [*uac_args, f"{LOCAL_IP}:{uas_port}", *common,
                                                         "-p", str(uac_port), "-r", str(RATE)]))
                sipps.append(uac[-1])
            for run in uac + uas:
                run.wait(SIPP_TIMEOUT + 10)
            sipp_seconds = time.monotonic() - t0

            # 4. SIPp's own figures, checked for consistency; what went on the wire is what each side sent.
            expected = collections.Counter()
            nominal = collections.Counter()
            retrans_total = 0
            table = []
            for run_uas, run_uac, pair in zip(uas, uac, PAIRS):
                s_sent, s_recv, s_rt = run_uas.records(CALLS)
                c_sent, c_recv, c_rt = run_uac.records(CALLS)
                if +c_sent != +s_recv or +s_sent != +c_recv:
                    raise AssertionError(f"pair {pair[0]}: what one SIPp sent differs from what the other "
                                         f"received: UAC sent {_fmt(c_sent)} / UAS received {_fmt(s_recv)}; "
                                         f"UAS sent {_fmt(s_sent)} / UAC received {_fmt(c_recv)}")
                expected += c_sent + s_sent
                retrans_total += s_rt + c_rt
                for key, n in pair[5].items():
                    nominal[key] += n * CALLS
                table.append(f"  {pair[0]:5}  UAC sent: {_fmt(c_sent)}\n         UAS sent: {_fmt(s_sent)}"
                             f"\n         retransmissions: {s_rt + c_rt}")
            log("SIPp's own counts (-trace_counts, cross-checked with -trace_msg and the peer):\n" + "\n".join(table))
            cls.expected = expected
            cls.nominal = nominal
            cls.retrans_total = retrans_total

            # 5. Poll /metrics until the exporter shows every message, then make sure nothing more arrives.
            deadline = time.monotonic() + COUNT_TIMEOUT
            text = scrape(port)
            while exporter_totals(text) != expected and time.monotonic() < deadline:
                if exporter.poll() is not None:
                    raise AssertionError(f"sip_exporter exited {exporter.returncode} during the run")
                time.sleep(0.1)
                text = scrape(port)
            time.sleep(0.5)  # > the ~150 ms from capture to counters
            cls.scrape_text = scrape(port)
            cls.stable = exporter_totals(cls.scrape_text) == exporter_totals(text)
            cls.first_match_text = text

            # 6. promtool's lint of the exposition as served.
            cls.promtool = subprocess.run([promtool, "check", "metrics"], input=cls.scrape_text,
                                          capture_output=True, text=True, timeout=60)

            # 7. The last scrapes (plain and gzip'd) right before SIGTERM, then a clean shutdown
            # writing --metrics.out.
            cls.last_scrape = scrape(port)
            cls.last_scrape_gzip = scrape(port, gzipped=True)
            exporter.send_signal(signal.SIGTERM)
            try:
                cls.exit_code = exporter.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.exit_code = None
            exporter_err.flush()
            with open(err_path, errors="replace") as f:
                cls.exporter_stderr = f.read()
            cls.metrics_out = None
            if os.path.exists(metrics_out):
                with open(metrics_out, encoding="utf-8") as f:
                    cls.metrics_out = f.read()
            cls.runtime = time.monotonic() - t0
            log(f"live run: SIPp finished after {sipp_seconds:.1f} s, whole run {cls.runtime:.1f} s")
        finally:
            for run in sipps:
                run.kill()
            if exporter is not None and exporter.poll() is None:
                exporter.kill()
                exporter.wait()
            if exporter_err is not None:
                exporter_err.close()
            tmp.cleanup()

    # -- SIPp's figures themselves

    def test_sipp_counts_match_scenarios(self):
        """Sanity: SIPp's counts are the scenarios' nominal messages plus the retransmissions SIPp reports."""
        self.assertEqual(sum(self.expected.values()), sum(self.nominal.values()) + self.retrans_total)
        if self.retrans_total == 0:
            self.assertEqual(+self.expected, +self.nominal)

    # -- the exporter against SIPp

    def test_requests_equal_sipp_counts(self):
        samples = parse_exposition(self.scrape_text)
        got = sum_by(samples, "sip_requests_total", "method")
        want = {k[1]: n for k, n in self.expected.items() if k[0] == "req"}
        self.assertEqual(got, want, "sip_requests_total by method != SIPp's count of requests sent"
                         + health(self.scrape_text, self.expected))

    def test_responses_equal_sipp_counts(self):
        samples = parse_exposition(self.scrape_text)
        got = sum_by(samples, "sip_responses_total", "code", "method")
        want = {(k[1], k[2]): n for k, n in self.expected.items() if k[0] == "resp"}
        self.assertEqual(got, want, "sip_responses_total by (code, CSeq method) != SIPp's count of responses sent"
                         + health(self.scrape_text, self.expected))

    def test_counts_stable_after_match(self):
        self.assertTrue(self.stable, "the counts kept changing after they matched SIPp's:\n"
                        f"{exporter_totals(self.first_match_text)}\nthen\n{exporter_totals(self.scrape_text)}")

    def test_labels(self):
        """No config: the peer is the sender (127.0.0.1), direction unknown; class follows code."""
        samples = parse_exposition(self.scrape_text)
        seen = 0
        for name, labels, value in samples:
            if name not in ("sip_requests_total", "sip_responses_total") or value == 0:
                continue
            seen += 1
            self.assertEqual(labels.get("peer"), LOCAL_IP, f"{name}{labels}")
            self.assertEqual(labels.get("direction"), "unknown", f"{name}{labels}")
            if name == "sip_responses_total":
                self.assertEqual(labels.get("class"), labels["code"][0] + "xx", f"{name}{labels}")
        self.assertGreater(seen, 0)

    def test_every_packet_captured_once_without_loss(self):
        samples = parse_exposition(self.scrape_text)
        total = sum(self.expected.values())
        self.assertEqual(sum_by(samples, "sip_exporter_packets_total", "source"), {"lo": total},
                         "every SIP datagram on lo is one packet handed to the process")
        self.assertEqual(sum_by(samples, "sip_exporter_dropped_packets_total", "source", "stage"), {})
        self.assertEqual(sum_by(samples, "sip_exporter_parse_errors_total", "reason"), {})

    # -- exposition format and shutdown

    def test_promtool_check_metrics_is_silent(self):
        p = self.promtool
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""),
                         "promtool check metrics must report nothing on the scraped text")

    def test_sigterm_exits_zero(self):
        self.assertEqual(self.exit_code, 0, f"exit code after SIGTERM; stderr:\n{self.exporter_stderr}")
        self.assertNotIn("error", self.exporter_stderr.lower())

    def test_metrics_out_equals_last_scrape(self):
        self.assertIsNotNone(self.metrics_out, "--metrics.out was not written")
        self.assertIn("sip_requests_total", self.metrics_out)
        self.assertEqual(self.metrics_out, self.last_scrape, "--metrics.out must equal the last /metrics exactly")

    def test_gzip_scrape_equals_plain_scrape(self):
        self.assertEqual(self.last_scrape_gzip, self.last_scrape,
                         "/metrics with Accept-Encoding: gzip must decompress to the plain text")


if __name__ == "__main__":
    sipex_testlib.main()
