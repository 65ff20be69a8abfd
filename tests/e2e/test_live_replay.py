"""Live capture end to end with PACKET_FANOUT: a generated capture replayed through a veth pair.

gen_capture writes a capture whose exact counts are known (see test_generated.py). This test
replays it with tcpreplay into one end of a veth pair whose other end lives in a network namespace
of its own, where sip_exporter captures it live with --capture.threads=N (N > 1 joins the threads'
sockets in one PACKET_FANOUT group, hash + defrag) and --workers=2. The live counts must be the
truth exactly, series by series, for --capture.threads=1 and 2:
  - sip_requests_total per (method, peer, direction), sip_responses_total per (code, class,
    method, peer, direction), parse errors and skipped packets per reason, all equal to the truth;
  - sip_exporter_packets_total{source=<veth>}, summed over the capture threads, equal to the
    frames tcpreplay sent and to the frames the veth received (every frame handed over exactly
    once: with two sockets and no fanout group every frame would arrive twice);
  - no drops at any stage, SIGTERM ends the exporter with 0.
These runs replay at a fixed, moderate rate (RATE_PPS). A third run replays at --topspeed with two
capture threads and only checks what must hold under any loss: no series above the truth, the
exporter's books balanced, and the exact truth whenever nothing was lost; it logs what happened.

The link is quiet apart from the replay: no addresses, IPv6 disabled on both ends (no ND, RS or
MLD), the MTU raised above the largest frame. The filter must admit every frame of the capture
(ARP, IPv4, IPv6, tagged or not). Beware libpcap's `vlan` keyword: it shifts the offsets of
everything after it, so `ip or ip6 or vlan or arp` tests untagged ARP frames at the wrong offset
and drops them; `vlan` has to come last.

The only skip is a host where creating the namespace or the veth pair, or a raw capture, is not
permitted (not root, no CAP_NET_ADMIN / CAP_NET_RAW), besides a missing tcpreplay or ip outside CI.
"""
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import sipex_testlib as lib
import test_generated as gen

SEED = 5075
MESSAGES = 4000        # SIP datagrams in the capture (about 12 000 frames with RTP, ARP, keep-alives)
RATE_PPS = 20000       # the paced replays: about 0.6 s, far below what one capture thread handles
MTU = 9000             # the capture's largest frames (SIP with bodies) exceed 1500 bytes
BPF_FILTER = "arp or ip or ip6 or vlan"  # `vlan` last: it shifts the offsets of what follows it
SETTLE_TIMEOUT = 20    # s for the counts to reach the replayed figures
# (name, --capture.threads, tcpreplay rate option, exact): exact runs must reproduce the truth.
RUNS = (("threads1", 1, f"--pps={RATE_PPS}", True),
        ("threads2", 2, f"--pps={RATE_PPS}", True),
        ("topspeed", 2, "--topspeed", False))
DROP_STAGES = ("interface", "kernel", "pool", "queue")
NOT_PERMITTED = lib.NOT_PERMITTED
log = lib.log


def skip_loudly(what, cmd, detail):
    lib.skip_loudly("the live replay test", what, cmd, detail)


def run(cmd, what=None, timeout=60):
    return lib.run_or_skip(cmd, "the live replay test", what, timeout)


def max_frame_len(pcap_path):
    """Largest caplen in a classic pcap file written on a little-endian host."""
    with open(pcap_path, "rb") as f:
        data = f.read()
    off, biggest = 24, 0
    while off < len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        biggest = max(biggest, caplen)
        off += 16 + caplen
    return biggest


def parse_tcpreplay(out):
    """tcpreplay's own summary: frames sent, frames that failed, seconds, rate text."""
    def num(pattern):
        m = re.search(pattern, out)
        if not m:
            raise AssertionError(f"no {pattern!r} in tcpreplay's output:\n{out}")
        return m.group(1)
    return {
        "sent": int(num(r"Successful packets:\s+(\d+)")),
        "failed": int(num(r"Failed packets:\s+(\d+)")),
        "seconds": float(num(r"Actual: \d+ packets \(\d+ bytes\) sent in ([\d.]+) seconds")),
        "rated": num(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+ pps)"),
    }


def figures(text):
    """Exposition text reduced to the truth file's shape plus the exporter's health counters."""
    c = gen.counts(text)
    s = lib.parse_exposition(text)
    c["dropped_by_stage"] = lib.sum_by(s, "sip_exporter_dropped_packets_total", "stage")
    c["sources"] = lib.sum_by(s, "sip_exporter_packets_total", "source")
    c["accounted"] = (sum(c["requests"].values()) + sum(c["responses"].values()) +
                      sum(c["parse_errors"].values()) + sum(c["skipped"].values()))
    # Pool and queue drops happen after a packet was counted; kernel and interface drops before.
    c["after_capture_drops"] = sum(n for st, n in c["dropped_by_stage"].items() if st in ("pool", "queue"))
    return c


def balanced(c):
    """Every packet the exporter took is a message, a parse error, a skip or a counted drop."""
    return c["accounted"] == c["packets"] - c["after_capture_drops"]


class Namespace(lib.VethNamespace):
    def __init__(self):
        super().__init__("replay", "the live replay test", MTU)

    def rx_packets(self):
        cp = run(["ip", "-n", self.name, "-s", "-j", "link", "show", self.inner])
        return json.loads(cp.stdout)[0]["stats64"]["rx"]["packets"]

    def ifindex(self):
        cp = run(["ip", "-n", self.name, "-j", "link", "show", self.inner])
        return json.loads(cp.stdout)[0]["ifindex"]

    def packet_sockets(self, pid):
        """Packet sockets of process pid bound to the inner veth end (from /proc/net/packet in the namespace)."""
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
        idx = str(self.ifindex())
        lines = run(self.exec("cat", "/proc/net/packet")).stdout.splitlines()[1:]
        return sum(1 for line in lines if len(line.split()) >= 9 and line.split()[4] == idx
                   and line.split()[8] in inodes)


class LiveReplayTest(lib.LiveRunTest):
    """The live runs happen once (setUpClass); the tests check what they produced."""

    maxDiff = 20000

    @classmethod
    def _run(cls):
        lib.require_tool("ip")
        cls.tcpreplay = lib.require_tool("tcpreplay")
        if not lib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        t0 = time.monotonic()
        tmp = tempfile.TemporaryDirectory(prefix="sipex-replay-")
        ns = Namespace()
        try:
            cls.dir = tmp.name
            cls.cap = gen.generate(cls.dir, "replay", "--seed", str(SEED), "--messages", str(MESSAGES),
                                   "--linktype", "en10mb")
            cls.truth = gen.load_truth(cls.cap["json"])
            cls.kinds = gen.frame_kinds(cls.cap["pcap"])
            biggest = max_frame_len(cls.cap["pcap"])
            if biggest > MTU + 14:
                raise AssertionError(f"the capture has a {biggest}-byte frame; raise MTU ({MTU})")
            ns.create()
            cls.ns = ns
            cls.results = {}
            for name, threads, rate, _ in RUNS:
                cls.results[name] = cls._one_run(ns, name, threads, rate)
            cls.runtime = time.monotonic() - t0
            log(f"live replay: {len(RUNS)} runs in {cls.runtime:.1f} s")
        finally:
            ns.destroy()
            tmp.cleanup()

    @classmethod
    def _one_run(cls, ns, name, threads, rate):
        """One exporter in the namespace, one replay; returns what the test checks."""
        res = {"threads": threads, "rate": rate}
        metrics_out = os.path.join(cls.dir, f"{name}.metrics")
        err_path = os.path.join(cls.dir, f"{name}.stderr")
        cmd = ns.exec(lib.BINARY, f"--capture.interface={ns.inner}", f"--capture.threads={threads}", "--workers=2",
                      f"--capture.bpf-filter={BPF_FILTER}", f"--metrics.out={metrics_out}",
                      "--web.listen-address=127.0.0.1:0", f"--config.file={cls.cap['yaml']}")
        exporter = None
        with open(err_path, "w") as err_file:
            try:
                # `ip netns exec` execs the program: the pid is the exporter's own.
                exporter = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_file)
                port = cls._wait_listening(exporter, err_path, cmd)
                res["sockets"] = ns.packet_sockets(exporter.pid)
                rx_before = ns.rx_packets()
                t_replay = time.monotonic()
                cp = run([cls.tcpreplay, "-i", ns.outer, rate, cls.cap["pcap"]], timeout=120)
                res["replay"] = parse_tcpreplay(cp.stdout)
                res["replay_wall"] = time.monotonic() - t_replay
                res["rx"] = ns.rx_packets() - rx_before
                res["scrape"] = cls._settle(ns, port, exporter, res["replay"]["sent"])
                res["settle"] = time.monotonic() - t_replay - res["replay_wall"]
                exporter.send_signal(signal.SIGTERM)
                try:
                    res["exit_code"] = exporter.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    res["exit_code"] = None
            finally:
                if exporter is not None and exporter.poll() is None:
                    exporter.kill()
                    exporter.wait()
        with open(err_path, errors="replace") as f:
            res["stderr"] = f.read()
        res["metrics_out"] = None
        if os.path.exists(metrics_out):
            with open(metrics_out, encoding="utf-8") as f:
                res["metrics_out"] = f.read()
        res["got"] = figures(res["metrics_out"] or "")
        g, r = res["got"], res["replay"]
        log(f"live replay {name}: --capture.threads={threads} --workers=2, tcpreplay {rate}: sent {r['sent']} "
            f"frames (failed {r['failed']}) in {r['seconds']:.3f} s ({r['rated']}); veth received {res['rx']}; "
            f"exporter: packets {g['sources']}, dropped {g['dropped_by_stage']}, "
            f"{sum(g['requests'].values())} requests, {sum(g['responses'].values())} responses; "
            f"settled {res['settle']:.2f} s after the replay; exit {res['exit_code']}")
        return res

    @staticmethod
    def _wait_listening(exporter, err_path, cmd):
        return lib.wait_listening(exporter, err_path, cmd, "the live replay test", "raw capture on the veth")

    @staticmethod
    def _settle(ns, port, exporter, sent):
        """Scrapes until the exporter has taken and processed every replayed frame, or, when frames
        were lost, until its figures stop moving; returns the last scrape."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        prev, since = None, time.monotonic()
        while True:
            if exporter.poll() is not None:
                raise AssertionError(f"sip_exporter exited {exporter.returncode} during the replay")
            text = ns.scrape(port)
            c = figures(text)
            key = (c["packets"], c["accounted"], c["dropped"])
            if key != prev:
                prev, since = key, time.monotonic()
            lost_before = c["dropped"] - c["after_capture_drops"]  # kernel, interface: never counted as packets
            if balanced(c) and (c["packets"] + lost_before >= sent or time.monotonic() - since >= 1.5):
                break
            if time.monotonic() > deadline:
                break  # the assertions report what is missing
            time.sleep(0.1)
        time.sleep(0.3)  # > one capture timeout: nothing more may arrive
        return ns.scrape(port)

    # ------------------------------------------------------------ the exact runs

    def check_exact(self, name):
        res = self.results[name]
        got, truth, r = res["got"], self.truth, res["replay"]
        where = (f"[{name}: --capture.threads={res['threads']} --workers=2, tcpreplay {res['rate']}; "
                 f"exporter packets {got['sources']}, dropped {got['dropped_by_stage']}, veth received {res['rx']}]")
        self.assertEqual(res["exit_code"], 0, f"exit code after SIGTERM {where}\n{res['stderr']}")
        self.assertNotIn("error", res["stderr"].lower(), where)
        self.assertIsNotNone(res["metrics_out"], f"--metrics.out was not written {where}")
        # The replay itself: every frame sent, and received by the other end, exactly once.
        self.assertEqual((r["sent"], r["failed"]), (truth["packets"], 0), f"tcpreplay {where}")
        self.assertEqual(res["rx"], r["sent"], f"frames the veth received != frames sent {where}")
        # One socket per capture thread, all on the inner end.
        self.assertEqual(res["sockets"], res["threads"], f"packet sockets of the exporter {where}")
        # No loss anywhere, every frame handed to the process once (fanout, not duplication).
        self.assertEqual(got["dropped"], 0, f"sip_exporter_dropped_packets_total {where}")
        self.assertEqual(got["sources"], {self.ns.inner: r["sent"]}, f"sip_exporter_packets_total {where}")
        # The truth, series by series.
        self.assertEqual(got["requests"], truth["requests"], f"sip_requests_total {where}")
        self.assertEqual(got["responses"], truth["responses"], f"sip_responses_total {where}")
        self.assertEqual(got["parse_errors"], truth["parse_errors"], f"parse errors {where}")
        self.assertEqual(got["skipped"], truth["skipped"], f"skipped packets {where}")
        self.assertTrue(balanced(got), f"packets not accounted for {where}")
        # The last scrape before SIGTERM already showed the final figures.
        last = figures(res["scrape"])
        self.assertEqual((last["requests"], last["responses"], last["packets"]),
                         (got["requests"], got["responses"], got["packets"]),
                         f"the figures changed between the settled scrape and --metrics.out {where}")

    def test_one_capture_thread_two_workers_exact(self):
        self.check_exact("threads1")

    def test_two_capture_threads_fanout_two_workers_exact(self):
        self.check_exact("threads2")

    def test_truth_has_variety(self):
        """The exact comparisons mean something: many series, several ports, tags, IPv6, ARP."""
        t = self.truth
        self.assertGreaterEqual(sum(t["requests"].values()) + sum(t["responses"].values()), 3500)
        self.assertGreaterEqual(len(t["requests"]) + len(t["responses"]), 500)
        self.assertGreater(t["skipped"].get("not_ip", 0), 0)
        self.assertGreater(sum(t["parse_errors"].values()), 0)
        kinds = self.kinds
        for k in ("tags:", "tags:8100", "tags:88a8+8100", "tags:9100+8100", "type:0800", "type:86dd", "type:0806"):
            self.assertGreater(kinds[k], 0, k)

    # ------------------------------------------------------------ top speed

    def test_topspeed_never_overcounts(self):
        """At --topspeed frames may be lost; what is counted must still be true, and exact when
        nothing was lost."""
        res = self.results["topspeed"]
        got, truth, r = res["got"], self.truth, res["replay"]
        where = (f"[topspeed: tcpreplay sent {r['sent']} at {r['rated']}; exporter packets {got['sources']}, "
                 f"dropped {got['dropped_by_stage']}, veth received {res['rx']}]")
        self.assertEqual(res["exit_code"], 0, f"exit code after SIGTERM {where}\n{res['stderr']}")
        self.assertEqual(res["sockets"], 2, where)
        self.assertTrue(balanced(got), f"packets not accounted for {where}")
        self.assertLessEqual(got["packets"], r["sent"], f"more packets than frames sent {where}")
        for part in ("requests", "responses", "parse_errors", "skipped"):
            extra = {k: n for k, n in got[part].items() if n > truth[part].get(k, 0)}
            self.assertEqual(extra, {}, f"{part} above the truth {where}")
        if got["dropped"] == 0 and got["packets"] == r["sent"]:
            for part in ("requests", "responses", "parse_errors", "skipped"):
                self.assertEqual(got[part], truth[part], f"{part}: nothing lost, so exact {where}")
        else:
            log(f"live replay topspeed: frames were lost {where}")


if __name__ == "__main__":
    lib.main()
