"""Live transaction KPIs: SIPp scenarios with scripted delays, silence and retransmitted 503s, on loopback.

A running sip_exporter captures `lo` while three SIPp UAC/UAS pairs run at the same time, each pair on
its own loopback address (so the `peer` label, named by a peer map, tells the scenarios apart):
  delays   127.0.0.2  built-in `-sn uac` / sipp/uas_delays.xml: INVITE, 100 at once, 180 after 360 ms,
                      200 after 1100 ms more, ACK, BYE, 200
  silent   127.0.0.3  sipp/uac_silent.xml / sipp/uas_silent.xml: INVITE never answered; SIPp retransmits
                      it (Timer A) at 0.5, 1.5 and 3.5 s and gives up at 5.5 s
  503      127.0.0.4  sipp/uac_503_retrans.xml / sipp/uas_503_retrans.xml: INVITE retransmitted at 0.5 and
                      1.5 s, 503 after 2.5 s, retransmitted at +0.5 and +1.5 s until the ACK at +2.5 s
The exporter's config shortens Timer B/F to TIMER_B seconds, and a small UDP sender keeps packets
flowing on every scenario's address (timeouts are evaluated on packet time), until the last scrape.

Expected figures come from SIPp itself (-trace_counts, -trace_stat, -trace_msg, cross-checked as in
test_live_sipp.py) and from the scripted delays:
  - every delay lands in the right sip_response_latency_seconds bucket (exact bucket counts);
  - every unanswered INVITE is one sip_transaction_timeouts_total and one failed call;
  - the retransmitted 503s make one sip_transactions_total each; the copies are response
    retransmissions; request and response retransmissions equal SIPp's own retransmission counts.
`promtool check metrics` must say nothing about the last scrape.

The only skips: an exporter that may not open a raw capture on `lo` (no CAP_NET_RAW), or a missing
sipp or promtool outside CI.
"""
import collections
import math
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import sipex_testlib
from sipex_testlib import parse_exposition, require_tool, sum_by
import test_live_sipp as live  # SippRun, SIPp record readers, scrape(), udp_ports_bound()

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(HERE, "sipp")

TIMER_B = 5          # limits.transaction_timeout_seconds given to the exporter (Timer B/F)
SIPP_TIMEOUT = 60    # SIPp's own global timeout (s), and our bound for waiting on SIPp
SETTLE_TIMEOUT = 20  # how long after SIPp the scrape may take to show every message and timeout (s)
KEEPALIVE_PORT = 15199
KEEPALIVE_PERIOD = 0.1

# Scripted delays (s) of uas_delays.xml and uas_503_retrans.xml; each latency sits well inside a
# bucket (the buckets are 0.001 * 2^k s): 0.36 s in (0.256, 0.512], 1.46 s in (1.024, 2.048],
# 2.5 s in (2.048, 4.096].
P_RINGING = 0.360
P_ANSWER = 1.100
P_REJECT = 2.500


class Scenario:
    def __init__(self, name, ip, uas_args, uac_args, uas_port, uac_port, calls, uac_rc):
        self.name, self.ip, self.uas_args, self.uac_args = name, ip, uas_args, uac_args
        self.uas_port, self.uac_port, self.calls = uas_port, uac_port, calls
        self.uac_rc = uac_rc  # SIPp exits 1 when any call failed: the silent UAC's calls all do
        self.peer = f"kpi-{name}"


SCENARIOS = [
    Scenario("delays", "127.0.0.2", ["-sf", os.path.join(SCENARIO_DIR, "uas_delays.xml")], ["-sn", "uac"],
             15160, 15161, calls=5, uac_rc=0),
    Scenario("silent", "127.0.0.3", ["-sf", os.path.join(SCENARIO_DIR, "uas_silent.xml")],
             ["-sf", os.path.join(SCENARIO_DIR, "uac_silent.xml")], 15170, 15171, calls=3, uac_rc=1),
    Scenario("503", "127.0.0.4", ["-sf", os.path.join(SCENARIO_DIR, "uas_503_retrans.xml")],
             ["-sf", os.path.join(SCENARIO_DIR, "uac_503_retrans.xml")], 15180, 15181, calls=3, uac_rc=0),
]
BY_NAME = {s.name: s for s in SCENARIOS}
SIP_PORTS = sorted([p for s in SCENARIOS for p in (s.uas_port, s.uac_port)] + [KEEPALIVE_PORT])

CONFIG = "peers:\n" + "".join(f"  {s.peer}: [{s.ip}/32]\n" for s in SCENARIOS) + \
    f"limits: {{transaction_timeout_seconds: {TIMER_B}}}\n"

log = live.log


# ---------------------------------------------------------------- SIPp's records

class Sipp(live.SippRun):
    def wait_rc(self, timeout, want_rc):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"SIPp {self.label} did not finish within {timeout} s: {' '.join(self.cmd)}\n"
                                 f"{self.output()[-3000:]}")
        if rc != want_rc:
            raise AssertionError(f"SIPp {self.label} exited {rc}, expected {want_rc}: {' '.join(self.cmd)}\n"
                                 f"{self.output()[-3000:]}")

    def records(self, successful, failed, recv_timeouts=0):
        """SIPp's own figures after checking them against each other: (steps, statistics, sent Counter,
        received Counter). `recv_timeouts` recv-step timeouts are expected (the silent UAC's)."""
        steps = live.read_counts(self._file("*_counts.csv"))
        stats = live._csv_last_row(self._file(f"*_{self.proc.pid}_.csv"))
        msgs = live.read_message_log(self._file("*_messages.log"))
        where = f"SIPp {self.label}"
        if any(s["unexp"] for s in steps):
            raise AssertionError(f"{where}: unexpected messages: {steps}")
        if sum(s["timeout"] for s in steps) != recv_timeouts:
            raise AssertionError(f"{where}: expected {recv_timeouts} step timeouts: {steps}")
        for col, want in (("SuccessfulCall(C)", successful), ("FailedCall(C)", failed),
                          ("FailedTimeoutOnRecv(C)", recv_timeouts), ("OutOfCallMsgs(C)", 0),
                          ("DeadCallMsgs(C)", 0), ("AutoAnswered(C)", 0)):
            if int(stats[col]) != want:
                raise AssertionError(f"{where}: statistics say {col}={stats[col]}, expected {want}")
        sent = collections.Counter(k for d, k in msgs if d == "sent")
        recv = collections.Counter(k for d, k in msgs if d == "received")
        for kind, log_counter in (("send", sent), ("recv", recv)):
            by_steps = collections.Counter()
            for s in steps:
                if s["kind"] == kind:
                    by_steps[s["name"]] += s["first"] + s["retrans"]
            by_log = collections.Counter()
            for key, n in log_counter.items():
                by_log[live._name(key)] += n
            if +by_steps != +by_log:
                raise AssertionError(f"{where}: -trace_counts ({kind}) {dict(by_steps)} disagrees with "
                                     f"-trace_msg {dict(by_log)}")
        retrans = sum(s["retrans"] for s in steps if s["kind"] == "send")
        if retrans != int(stats["Retransmissions(C)"]):
            raise AssertionError(f"{where}: retransmissions in counts ({retrans}) != statistics "
                                 f"({stats['Retransmissions(C)']})")
        return steps, stats, sent, recv


def sent_retransmissions(steps):
    """{(kind, method): copies} that one SIPp process retransmitted, from its -trace_counts steps.
    A send step named by a method is a request; one named by a code is a response to the request of
    the nearest recv step before it (true of the scenarios used here)."""
    out = collections.Counter()
    answering = None
    for s in steps:
        is_request = not s["name"].isdigit()
        if s["kind"] == "recv" and is_request:
            answering = s["name"]
        if s["kind"] == "send" and s["retrans"]:
            if is_request:
                out[("request", s["name"])] += s["retrans"]
            else:
                if answering is None:
                    raise AssertionError(f"response step {s} answers no received request")
                out[("response", answering)] += s["retrans"]
    return out


def step(steps, kind, name):
    found = [s for s in steps if s["kind"] == kind and s["name"] == name]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} step {name!r} in {steps}")
    return found[0]


# ---------------------------------------------------------------- the exporter's figures

def histogram(samples, peer, method, stage, name="sip_response_latency_seconds"):
    """({le: cumulative count}, count, sum) of one histogram series (zeros when it is absent)."""
    buckets, count, total = {}, 0, 0.0
    for n, l, v in samples:
        if l.get("peer") != peer or l.get("method") != method or l.get("stage") != stage:
            continue
        if n == name + "_bucket":
            buckets[float(l["le"])] = buckets.get(float(l["le"]), 0) + int(v)
        elif n == name + "_count":
            count += int(v)
        elif n == name + "_sum":
            total += v
    return buckets, count, total


def in_bucket(buckets, lo, hi):
    """Observations with lo < value <= hi, from cumulative buckets whose bounds include hi and lo (or
    lo == 0)."""
    def at(le):
        if le == 0:
            return 0
        for k, v in buckets.items():
            if math.isclose(k, le, rel_tol=1e-9):
                return v
        raise AssertionError(f"no bucket le={le} in {sorted(buckets)}")
    return at(hi) - at(lo)


def messages_by_peer(samples):
    c = collections.Counter()
    for (m, peer), n in sum_by(samples, "sip_requests_total", "method", "peer").items():
        c[(peer, "req", m)] = n
    for (code, m, peer), n in sum_by(samples, "sip_responses_total", "code", "method", "peer").items():
        c[(peer, "resp", code, m)] = n
    return c


def kpis(samples):
    """The transaction-layer families, for stability comparisons."""
    return {name: sum_by(samples, name, *labels) for name, labels in (
        ("sip_transactions_total", ("method", "code", "peer")),
        ("sip_retransmissions_total", ("kind", "method", "peer")),
        ("sip_transaction_timeouts_total", ("method", "peer")),
        ("sip_calls_total", ("outcome", "peer")),
        ("sip_response_latency_seconds_count", ("method", "stage", "peer")),
    )}


def summary(samples):
    """The figures the checks compare, for the log."""
    lines = ["exporter's figures (last scrape):"]
    for s in SCENARIOS:
        for method, stage in (("INVITE", "first_response"), ("INVITE", "ringing"), ("INVITE", "final"),
                              ("BYE", "final")):
            b, count, total = histogram(samples, s.peer, method, stage)
            if not count:
                continue
            per_bucket, below, lo = [], 0, 0.0
            for le, n in sorted(b.items()):
                if n > below:
                    per_bucket.append(f"({lo:g}, {le:g}]: {n - below}")
                below, lo = n, le
            lines.append(f"  {s.name:6} {method:6} {stage:14} count={count} mean={total / count:.3f} s "
                         + ", ".join(per_bucket))
    for name, figures in kpis(samples).items():
        if not name.endswith("_count"):
            lines.append(f"  {name}: {figures}")
    return "\n".join(lines)


class Keepalive(threading.Thread):
    """Sends a CRLF keep-alive (RFC 5626) on each scenario's address to itself every KEEPALIVE_PERIOD s,
    so the exporter's worker for that address pair keeps seeing packets and evaluating its timers."""

    def __init__(self, ips):
        super().__init__(daemon=True)
        self.stop_event = threading.Event()
        self.socks = []
        for ip in ips:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, KEEPALIVE_PORT))
            s.setblocking(False)
            self.socks.append((s, (ip, KEEPALIVE_PORT)))
        self.sent = 0

    def run(self):
        while not self.stop_event.is_set():
            for s, addr in self.socks:
                s.sendto(b"\r\n\r\n", addr)
                self.sent += 1
                try:
                    while True:
                        s.recv(64)
                except BlockingIOError:
                    pass
            self.stop_event.wait(KEEPALIVE_PERIOD)

    def stop(self):
        self.stop_event.set()
        if self.is_alive():
            self.join(5)
        for s, _ in self.socks:
            s.close()


# ---------------------------------------------------------------- the test

class LiveKpiTest(sipex_testlib.LiveRunTest):
    """One live run (setUpClass) and several checks on what it produced."""

    @classmethod
    def _start_exporter(cls, work, err_path, exporter_err):
        cfg = os.path.join(work, "config.yml")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        cmd = [sipex_testlib.BINARY, "--capture.interface=lo", "--sip.ports=" + ",".join(map(str, SIP_PORTS)),
               "--web.listen-address=127.0.0.1:0", f"--config.file={cfg}"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=exporter_err)
        return proc, sipex_testlib.wait_listening(proc, err_path, cmd, "the live KPI test", "raw capture on lo")

    @classmethod
    def _run(cls):
        promtool = require_tool("promtool")
        require_tool("sipp")
        if not sipex_testlib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        t0 = time.monotonic()
        busy = sorted(set(SIP_PORTS) & live.udp_ports_bound())
        if busy:
            raise AssertionError(f"UDP ports {busy} are already in use on this host; the test needs {SIP_PORTS} free")
        tmp = tempfile.TemporaryDirectory(prefix="sipex-kpis-")
        sipps = []
        exporter = exporter_err = keepalive = None
        try:
            work = tmp.name
            err_path = os.path.join(work, "exporter.stderr")
            exporter_err = open(err_path, "w")
            exporter, port = cls._start_exporter(work, err_path, exporter_err)
            keepalive = Keepalive([s.ip for s in SCENARIOS])
            keepalive.start()

            # 1. The UAS side first, each one listening before its UAC starts.
            def common(s):
                return ["-i", s.ip, "-m", str(s.calls), "-nostdin", "-trace_counts", "-trace_stat", "-trace_msg",
                        "-timeout", f"{SIPP_TIMEOUT}s"]
            uas = {}
            for s in SCENARIOS:
                uas[s.name] = Sipp(f"uas-{s.name}", work, [*s.uas_args, *common(s), "-p", str(s.uas_port)])
                sipps.append(uas[s.name])
            deadline = time.monotonic() + 10
            for s in SCENARIOS:
                while s.uas_port not in live.udp_ports_bound():
                    run = uas[s.name]
                    if run.proc.poll() is not None:
                        raise AssertionError(f"SIPp {run.label} exited {run.proc.returncode} before binding "
                                             f"port {s.uas_port}:\n{run.output()[-3000:]}")
                    if time.monotonic() > deadline:
                        raise AssertionError(f"SIPp {run.label} did not bind UDP port {s.uas_port} within 10 s")
                    time.sleep(0.05)

            # 2. The UACs, concurrently; each exits after its calls, then its UAS does.
            uac = {}
            for s in SCENARIOS:
                uac[s.name] = Sipp(f"uac-{s.name}", work, [*s.uac_args, f"{s.ip}:{s.uas_port}", *common(s),
                                                           "-p", str(s.uac_port), "-r", "5"])
                sipps.append(uac[s.name])
            for s in SCENARIOS:
                uac[s.name].wait_rc(SIPP_TIMEOUT + 10, s.uac_rc)
            for s in SCENARIOS:
                uas[s.name].wait_rc(SIPP_TIMEOUT + 10, 0)
            sipp_seconds = time.monotonic() - t0

            # 3. SIPp's own figures, checked for consistency: what each side sent the other received.
            expected_msgs = collections.Counter()
            expected_retrans = collections.Counter()
            cls.sipp = {}
            table = []
            for s in SCENARIOS:
                silent = s.name == "silent"
                c_steps, c_stats, c_sent, c_recv = uac[s.name].records(
                    successful=0 if silent else s.calls, failed=s.calls if silent else 0,
                    recv_timeouts=s.calls if silent else 0)
                s_steps, s_stats, s_sent, s_recv = uas[s.name].records(successful=s.calls, failed=0)
                if +c_sent != +s_recv or +s_sent != +c_recv:
                    raise AssertionError(f"{s.name}: what one SIPp sent differs from what the other received: "
                                         f"UAC sent {live._fmt(c_sent)} / UAS received {live._fmt(s_recv)}; "
                                         f"UAS sent {live._fmt(s_sent)} / UAC received {live._fmt(c_recv)}")
                for key, n in (c_sent + s_sent).items():
                    expected_msgs[(s.peer, *key)] += n
                rt = sent_retransmissions(c_steps) + sent_retransmissions(s_steps)
                for (kind, method), n in rt.items():
                    expected_retrans[(kind, method, s.peer)] += n
                cls.sipp[s.name] = {"uac_steps": c_steps, "uas_steps": s_steps, "retrans": rt,
                                    "uac_stats": c_stats, "uas_stats": s_stats}
                table.append(f"  {s.name:6}  UAC sent: {live._fmt(c_sent)}\n          UAS sent: {live._fmt(s_sent)}"
                             f"\n          retransmissions: {dict(rt)}")
            log("SIPp's own counts (-trace_counts, cross-checked with -trace_msg and the peer):\n" + "\n".join(table))
            cls.expected_msgs = expected_msgs
            cls.expected_retrans = expected_retrans

            # 4. Poll /metrics until every message and every timeout is there; the keep-alives go on.
            n_silent = BY_NAME["silent"].calls
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while True:
                text = live.scrape(port)
                samples = parse_exposition(text)
                timeouts = sum_by(samples, "sip_transaction_timeouts_total", "method", "peer")
                done = (messages_by_peer(samples) == expected_msgs
                        and timeouts.get(("INVITE", BY_NAME["silent"].peer), 0) >= n_silent)
                if done or time.monotonic() > deadline:
                    break
                if exporter.poll() is not None:
                    raise AssertionError(f"sip_exporter exited {exporter.returncode} during the run")
                time.sleep(0.2)
            cls.settled = done
            cls.first_match = kpis(samples)
            time.sleep(1.5)  # > one expiry period of packet time: a late extra timeout would show
            cls.scrape_text = live.scrape(port)
            cls.samples = parse_exposition(cls.scrape_text)
            log(summary(cls.samples))
            cls.promtool = subprocess.run([promtool, "check", "metrics"], input=cls.scrape_text,
                                          capture_output=True, text=True, timeout=60)
            cls.keepalives = keepalive.sent
            keepalive.stop()
            exporter.send_signal(signal.SIGTERM)
            try:
                cls.exit_code = exporter.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.exit_code = None
            exporter_err.flush()
            with open(err_path, errors="replace") as f:
                cls.exporter_stderr = f.read()
            cls.runtime = time.monotonic() - t0
            log(f"live KPI run: SIPp finished after {sipp_seconds:.1f} s, whole run {cls.runtime:.1f} s, "
                f"{cls.keepalives} keep-alives sent")
        finally:
            if keepalive is not None:
                keepalive.stop()
            for run in sipps:
                run.kill()
            if exporter is not None and exporter.poll() is None:
                exporter.kill()
                exporter.wait()
            if exporter_err is not None:
                exporter_err.close()
            tmp.cleanup()

    # -- helpers

    def health(self):
        s = self.samples
        return (f"\nexporter: packets {sum_by(s, 'sip_exporter_packets_total', 'source')}, dropped "
                f"{sum_by(s, 'sip_exporter_dropped_packets_total', 'source', 'stage')}, parse errors "
                f"{sum_by(s, 'sip_exporter_parse_errors_total', 'reason')}, KPIs {kpis(s)}")

    def latency_in(self, scenario, stage, lo, hi):
        """Asserts that all of a scenario's INVITE latencies of `stage` are in (lo, hi]."""
        sc = BY_NAME[scenario]
        buckets, count, total = histogram(self.samples, sc.peer, "INVITE", stage)
        self.assertEqual(count, sc.calls, f"{scenario}: sip_response_latency_seconds_count{{stage={stage!r}}} "
                         f"!= calls; buckets {buckets}" + self.health())
        self.assertEqual(in_bucket(buckets, lo, hi), sc.calls,
                         f"{scenario}: {stage} latencies outside ({lo}, {hi}]: buckets {buckets}, "
                         f"sum {total:.3f} s over {count}")
        return total / count

    # -- SIPp did what the scenarios script

    def test_sipp_ran_as_scripted(self):
        """Preconditions of the checks below, from SIPp's own counts: the silent INVITEs and the late
        503's INVITEs were retransmitted, and the 503s themselves were, at least once per call."""
        silent, rej = self.sipp["silent"], self.sipp["503"]
        n_s, n_r = BY_NAME["silent"].calls, BY_NAME["503"].calls
        self.assertGreaterEqual(silent["retrans"][("request", "INVITE")], n_s)
        self.assertEqual(step(silent["uac_steps"], "recv", "100")["timeout"], n_s)
        self.assertEqual(step(silent["uas_steps"], "recv", "INVITE")["first"], n_s)
        self.assertGreaterEqual(rej["retrans"][("request", "INVITE")], 2 * n_r,
                                "the 503 scenario must make the UAC retransmit each INVITE at least twice")
        self.assertGreaterEqual(rej["retrans"][("response", "INVITE")], n_r,
                                "the 503 scenario must make the UAS retransmit each 503 at least once")
        self.assertEqual(step(rej["uas_steps"], "send", "503")["first"], n_r)

    # -- the exporter against SIPp

    def test_every_message_seen(self):
        self.assertTrue(self.settled, "the scrape never showed every message and timeout within "
                        f"{SETTLE_TIMEOUT} s" + self.health())
        self.assertEqual(messages_by_peer(self.samples), self.expected_msgs,
                         "sip_requests_total / sip_responses_total by peer != SIPp's messages" + self.health())

    def test_first_response_latency(self):
        """The 100 Trying goes out at once: every first_response latency is below 128 ms."""
        self.latency_in("delays", "first_response", 0.0, 0.128)

    def test_ringing_latency_bucket(self):
        """180 after a 360 ms pause: post-dial delay in (0.256, 0.512], and no shorter than the pause."""
        mean = self.latency_in("delays", "ringing", 0.256, 0.512)
        self.assertGreaterEqual(mean, P_RINGING - 0.005)

    def test_final_latency_bucket(self):
        """200 after 360 + 1100 ms: final latency in (1.024, 2.048]."""
        mean = self.latency_in("delays", "final", 1.024, 2.048)
        self.assertGreaterEqual(mean, P_RINGING + P_ANSWER - 0.005)

    def test_503_final_latency_bucket(self):
        """503 after 2500 ms, measured from the FIRST INVITE, not a retransmission: in (2.048, 4.096]."""
        mean = self.latency_in("503", "final", 2.048, 4.096)
        self.assertGreaterEqual(mean, P_REJECT - 0.005)

    def test_no_other_latencies(self):
        got = sum_by(self.samples, "sip_response_latency_seconds_count", "method", "stage", "peer")
        d, r = BY_NAME["delays"], BY_NAME["503"]
        want = {("INVITE", "first_response", d.peer): d.calls, ("INVITE", "ringing", d.peer): d.calls,
                ("INVITE", "final", d.peer): d.calls, ("BYE", "final", d.peer): d.calls,
                ("INVITE", "final", r.peer): r.calls}
        self.assertEqual(got, want, "latency observations: none for the silent INVITEs, none from the 503's "
                         "retransmissions")

    def test_unanswered_invites_time_out(self):
        s = BY_NAME["silent"]
        got = sum_by(self.samples, "sip_transaction_timeouts_total", "method", "peer")
        self.assertEqual(got, {("INVITE", s.peer): s.calls},
                         "each unanswered INVITE is one timeout, and nothing else times out" + self.health())

    def test_calls_by_outcome(self):
        got = sum_by(self.samples, "sip_calls_total", "outcome", "peer")
        want = {("answered", BY_NAME["delays"].peer): BY_NAME["delays"].calls,
                ("failed", BY_NAME["silent"].peer): BY_NAME["silent"].calls,
                ("failed", BY_NAME["503"].peer): BY_NAME["503"].calls}
        self.assertEqual(got, want, "answered calls, timed-out calls and 503s (failed)" + self.health())

    def test_transactions_once_despite_retransmissions(self):
        d, r = BY_NAME["delays"], BY_NAME["503"]
        got = sum_by(self.samples, "sip_transactions_total", "method", "code", "peer")
        want = {("INVITE", "200", d.peer): d.calls, ("BYE", "200", d.peer): d.calls,
                ("INVITE", "503", r.peer): r.calls}
        self.assertEqual(got, want, "one transaction per INVITE/BYE, by its first final response" + self.health())
        copies = sum_by(self.samples, "sip_responses_total", "code", "peer").get(("503", r.peer), 0)
        self.assertEqual(copies, r.calls + self.sipp["503"]["retrans"][("response", "INVITE")],
                         "every 503 copy is still a message in sip_responses_total")

    def test_retransmissions_equal_sipp(self):
        got = sum_by(self.samples, "sip_retransmissions_total", "kind", "method", "peer")
        self.assertEqual(got, dict(+self.expected_retrans),
                         "sip_retransmissions_total by (kind, method, peer) != SIPp's retransmissions" + self.health())

    def test_labels(self):
        """Every transaction-layer series is labelled with a mapped peer name and direction unknown."""
        names = {s.peer for s in SCENARIOS}
        seen = 0
        for name, labels, value in self.samples:
            if not name.startswith(("sip_transactions_total", "sip_retransmissions_total",
                                    "sip_transaction_timeouts_total", "sip_calls_total",
                                    "sip_response_latency_seconds")) or value == 0:
                continue
            seen += 1
            self.assertIn(labels.get("peer"), names, f"{name}{labels}")
            self.assertEqual(labels.get("direction"), "unknown", f"{name}{labels}")
        self.assertGreater(seen, 0)

    def test_stable_after_settling(self):
        self.assertEqual(kpis(self.samples), self.first_match,
                         "the transaction figures changed after they had settled (1.5 s of keep-alives later)")

    def test_no_loss_no_parse_errors(self):
        self.assertEqual(sum_by(self.samples, "sip_exporter_dropped_packets_total", "source", "stage"), {})
        self.assertEqual(sum_by(self.samples, "sip_exporter_parse_errors_total", "reason"), {})

    # -- exposition format and shutdown

    def test_promtool_check_metrics_is_silent(self):
        p = self.promtool
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""),
                         "promtool check metrics must report nothing on the scraped text")

    def test_sigterm_exits_zero(self):
        self.assertEqual(self.exit_code, 0, f"exit code after SIGTERM; stderr:\n{self.exporter_stderr}")

    def test_runtime(self):
        self.assertLess(self.runtime, 90, "the live KPI test must stay under 90 s")


if __name__ == "__main__":
    sipex_testlib.main()
