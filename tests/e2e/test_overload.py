"""Overload: offered load above capacity produces counted drops, never a stall; /metrics answers
within 100 ms while the workers are saturated.

Set-up, as in test_live_replay.py: a network namespace holding one end of a veth pair (quiet: no
addresses, IPv6 off, MTU 9000); sip_exporter captures the inner end with --workers=1 and serves
/metrics on 127.0.0.1 inside the namespace. tcpreplay sends a capture written here into the outer
end with --topspeed --loop for REPLAY_SECONDS.

Making the worker the bottleneck: tcpreplay onto a veth manages 25 000-50 000 frames/s of 8-9 KB
on a small machine (20-40 us of the sender's CPU per frame, the kernel's copy into the capture ring
included). 8 KB UDP INVITEs with ~90 Via headers each cost the worker only ~3 us (measured: the
SIMD line scan is cheap), so they never overload it. What costs the worker far more per frame
than it costs the sender or the capture thread is SCTP bundling: each frame is one SCTP packet
carrying as many DATA chunks as fit in 8960 bytes (~35), each chunk one complete MESSAGE request
(B and E flags), so every frame is ~35 parses, transaction look-ups and counter updates (~0.7 us
each, ~25 us a frame) against one copy for the capture thread. On top of that the whole exporter
(capture thread, worker, web server) is pinned to one CPU with `taskset -c 1`, tcpreplay to the
other (`taskset -c 0`): the capture thread and the worker share a CPU, the kernel's veth receive
path and the copy into the ring run on the sender's. The worker falls behind, the batch pool (64
batches) runs dry and the capture thread drops and counts at stage `pool` (or `queue`) rather
than wait. Without a second CPU the pinning is skipped.

While the replay runs, one scraper process inside the namespace, on the exporter's CPU, scrapes
/metrics every SCRAPE_INTERVAL seconds over a fresh connection and times each answer (connect to
last byte); each record also holds the TCP segments the namespace retransmitted meanwhile, so a
slow scrape says whether the kernel lost a segment of it.
Checked:
  - every scrape, during and after the replay, answered 200 within SCRAPE_DEADLINE (0.1 s), and
    at least MIN_SCRAPES_DURING of them happened while the replay ran and drops were growing;
  - sip_exporter_dropped_packets_total{stage=~"pool|queue"} > 0: the load exceeded capacity, and
    the loss was counted;
  - the books balance: packets_total = drops after capture (pool + queue) + decoded + skipped
    (but not_sip); every decoded frame was SCTP, and every DATA chunk was counted as a MESSAGE
    request (no parse error);
  - packets_total + kernel/interface drops = frames the inner veth received, and those are the
    frames tcpreplay sent less what the veth itself dropped (reported);
  - afterwards the exporter still captures and counts: OPTIONS_AFTER OPTIONS replayed at a gentle
    rate are all counted within seconds, and it exits 0 on SIGTERM.
The only skip is a host where the namespace, the veth pair or raw capture is not permitted (not
root), besides tcpreplay/ip/taskset missing outside CI.
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

HEAVY_FRAMES = 2000        # SCTP frames in the heavy capture (~18 MB, ~71 000 distinct MESSAGEs)
SCTP_BUDGET = 8960         # bytes of chunks per frame: MTU - IPv4 header - SCTP common header
OPTIONS_AFTER = 25         # OPTIONS sent after the overload, at OPTIONS_PPS
OPTIONS_PPS = 500
REPLAY_SECONDS = 8         # tcpreplay --duration
MAX_LOOPS = 100000         # --loop bound; --duration ends the replay first
SCRAPE_INTERVAL = 0.05
SCRAPE_DEADLINE = 0.100    # s, connect to last byte
MIN_SCRAPES_DURING = 20
MTU = 9000
SIP_PORT = 5060
NOT_PERMITTED = lib.NOT_PERMITTED
SRC_IP, DST_IP = "198.51.100.7", "203.0.113.5"
log = lib.log


def skip_loudly(what, cmd, detail):
    lib.skip_loudly("the overload test", what, cmd, detail)


def run(cmd, what=None, timeout=60):
    return lib.run_or_skip(cmd, "the overload test", what, timeout)


# ---------------------------------------------------------------------- the captures

def _checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _ipv4(proto, l4, ident):
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0, 64, proto, 0,
                               bytes(map(int, SRC_IP.split("."))), bytes(map(int, DST_IP.split(".")))))
    ip[10:12] = struct.pack("!H", _checksum(bytes(ip)))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + bytes(ip) + l4


def udp_frame(payload, ident):
    return _ipv4(17, struct.pack("!HHHH", SIP_PORT, SIP_PORT, 8 + len(payload), 0) + payload, ident)


def bundled_message(i, j):
    return (f"MESSAGE sip:user{j}@{DST_IP} SIP/2.0\r\nVia: SIP/2.0/SCTP {SRC_IP}:5060;branch=z9hG4bKovl{i}x{j}\r\n"
            f"From: <sip:load@{SRC_IP}>;tag=o{i}\r\nTo: <sip:user{j}@{DST_IP}>\r\nCall-ID: ovl-{i}-{j}\r\n"
            f"CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n").encode()


def sctp_frame(i):
    """One SCTP packet (no association state needed: each DATA chunk is a whole message) holding as
    many DATA chunks as fit in SCTP_BUDGET bytes; returns (frame, chunks)."""
    chunks, j = b"", 0
    while True:
        m = bundled_message(i, j)
        c = struct.pack("!BBHIHHI", 0, 0x03, 16 + len(m), i * 1000 + j, 0, j, 0) + m  # DATA, B|E
        c += b"\0" * (-len(c) % 4)
        if len(chunks) + len(c) > SCTP_BUDGET:
            break
        chunks += c
        j += 1
    return _ipv4(132, struct.pack("!HHII", SIP_PORT, SIP_PORT, 1, 0) + chunks, i), j


def options(i):
    return (f"OPTIONS sip:probe@{DST_IP} SIP/2.0\r\nVia: SIP/2.0/UDP {SRC_IP}:5060;branch=z9hG4bKafter{i}\r\n"
            f"From: <sip:probe@{SRC_IP}>;tag=after{i}\r\nTo: <sip:probe@{DST_IP}>\r\nCall-ID: after-{i}@{SRC_IP}\r\n"
            f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i // 1000, (i % 1000) * 1000, len(fr), len(fr)))
            f.write(fr)
    return path


def parse_tcpreplay(out):
    def num(pattern):
        m = re.search(pattern, out)
        if not m:
            raise AssertionError(f"no {pattern!r} in tcpreplay's output:\n{out}")
        return m.group(1)
    return {"sent": int(num(r"Successful packets:\s+(\d+)")), "failed": int(num(r"Failed packets:\s+(\d+)")),
            "seconds": float(num(r"Actual: \d+ packets \(\d+ bytes\) sent in ([\d.]+) seconds")),
            "rated": num(r"Rated: [\d.]+ Bps, ([\d.]+ Mbps, [\d.]+ pps)")}


# ---------------------------------------------------------------------- the scraper (in the namespace)

SCRAPER = r"""
import http.client, json, re, select, sys, time
port, interval = int(sys.argv[1]), float(sys.argv[2])
pat = re.compile(r'^(sip_exporter_packets_total|sip_exporter_dropped_packets_total)\{([^}]*)\} (\S+)$', re.M)
def retransmitted():  # TCP segments this namespace retransmitted, SYNs included
    with open("/proc/self/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("RetransSegs")])
out = []
while True:
    t0 = time.monotonic()
    rec = {"t": t0}
    r0 = retransmitted()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        rec["latency"] = time.monotonic() - t0
        rec["status"] = r.status
        packets = dropped = 0
        for name, labels, v in pat.findall(body):
            if name == "sip_exporter_packets_total":
                packets += float(v)
            elif 'stage="pool"' in labels or 'stage="queue"' in labels:
                dropped += float(v)
        rec["packets"], rec["dropped"] = packets, dropped
    except Exception as e:
        rec["latency"] = time.monotonic() - t0
        rec["error"] = repr(e)
    rec["retransmitted"] = retransmitted() - r0
    out.append(rec)
    if select.select([sys.stdin], [], [], interval)[0]:
        break
json.dump(out, sys.stdout)
"""


class Namespace(lib.VethNamespace):
    def __init__(self):
        super().__init__("overload", "the overload test", MTU)

    def link_stats(self, netns, dev):
        cmd = ["ip", "-s", "-j", "link", "show", dev]
        if netns:
            cmd[1:1] = ["-n", self.name]
        return json.loads(run(cmd).stdout)[0]["stats64"]


def figures(text):
    s = lib.parse_exposition(text)
    dropped = lib.sum_by(s, "sip_exporter_dropped_packets_total", "stage")
    skipped = lib.sum_by(s, "sip_exporter_skipped_packets_total", "reason")
    return {
        "packets": lib.total(s, "sip_exporter_packets_total"),
        "dropped": dropped,
        "after_capture_drops": dropped.get("pool", 0) + dropped.get("queue", 0),
        "before_capture_drops": dropped.get("kernel", 0) + dropped.get("interface", 0),
        "decoded": lib.total(s, "sip_exporter_decoded_packets_total"),
        "skipped": skipped,
        "skipped_not_not_sip": sum(n for r, n in skipped.items() if r != "not_sip"),
        "requests": lib.sum_by(s, "sip_requests_total", "method"),
        "decoded_by_path": lib.sum_by(s, "sip_exporter_decoded_packets_total", "path"),
        "sctp_chunks": lib.total(s, "sip_exporter_sctp_data_chunks_total"),
        "parse_errors": lib.total(s, "sip_exporter_parse_errors_total"),
    }


class OverloadTest(lib.LiveRunTest):
    maxDiff = None

    @classmethod
    def _run(cls):
        if not lib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        lib.require_tool("ip")
        tcpreplay = lib.require_tool("tcpreplay")
        taskset = lib.require_tool("taskset")
        cpus = sorted(os.sched_getaffinity(0))
        pin = len(cpus) >= 2
        exp_cpu, tx_cpu = (str(cpus[1]), str(cpus[0])) if pin else (None, None)
        t_start = time.monotonic()
        tmp = tempfile.TemporaryDirectory(prefix="sipex-overload-")
        ns = Namespace()
        exporter = scraper = None
        r = cls.r = {"pinned": pin}
        try:
            d = tmp.name
            frames = [sctp_frame(i) for i in range(HEAVY_FRAMES)]
            r["chunks_per_frame"] = sum(n for _, n in frames) / len(frames)
            heavy = write_pcap(os.path.join(d, "heavy.pcap"), (fr for fr, _ in frames))
            del frames
            after = write_pcap(os.path.join(d, "after.pcap"), (udp_frame(options(i), i) for i in range(OPTIONS_AFTER)))
            ns.create()
            err_path = os.path.join(d, "exporter.stderr")
            metrics_out = os.path.join(d, "final.metrics")
            cmd = ns.exec(*([taskset, "-c", exp_cpu] if pin else []), lib.BINARY,
                          f"--capture.interface={ns.inner}", "--workers=1", f"--sip.ports={SIP_PORT}",
                          "--web.listen-address=127.0.0.1:0", f"--metrics.out={metrics_out}")
            with open(err_path, "w") as err:
                exporter = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            port = cls._wait_listening(exporter, err_path, cmd)
            r["threads"] = len(os.listdir(f"/proc/{exporter.pid}/task"))
            rx0 = ns.link_stats(True, ns.inner)["rx"]
            tx0 = ns.link_stats(False, ns.outer)["tx"]

            # The scraper shares the exporter's CPU: its loopback segments then go through that CPU's
            # backlog, not the sender's, which the replay floods (a segment dropped there would time
            # the kernel's retransmission, not the exporter).
            scraper = subprocess.Popen(ns.exec(*([taskset, "-c", exp_cpu] if pin else []), sys.executable, "-c",
                                               SCRAPER, str(port), str(SCRAPE_INTERVAL)),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)  # a few scrapes of the idle exporter first
            replay = [*([taskset, "-c", tx_cpu] if pin else []), tcpreplay, "-i", ns.outer, "--topspeed",
                      "--preload-pcap", f"--loop={MAX_LOOPS}", f"--duration={REPLAY_SECONDS}", heavy]
            r["replay_window"] = [time.monotonic()]
            cp = run(replay, timeout=REPLAY_SECONDS + 60)
            r["replay_window"].append(time.monotonic())
            r["replay"] = parse_tcpreplay(cp.stdout)
            # Settle: the worker drains what it queued.
            r["settled"] = cls._settle(ns, port, exporter)
            r["rx"] = ns.link_stats(True, ns.inner)["rx"]["packets"] - rx0["packets"]
            r["rx_dropped"] = ns.link_stats(True, ns.inner)["rx"]["dropped"] - rx0["dropped"]
            r["tx"] = ns.link_stats(False, ns.outer)["tx"]["packets"] - tx0["packets"]
            r["tx_dropped"] = ns.link_stats(False, ns.outer)["tx"]["dropped"] - tx0["dropped"]
            time.sleep(0.5)  # scrapes of the drained exporter

            # No stall: gentle traffic after the overload is captured and counted.
            t_after = time.monotonic()
            cp = run([tcpreplay, "-i", ns.outer, f"--pps={OPTIONS_PPS}", after], timeout=60)
            r["after_replay"] = parse_tcpreplay(cp.stdout)
            deadline = time.monotonic() + 10
            while True:
                r["after"] = figures(ns.scrape(port))
                if r["after"]["requests"].get("OPTIONS", 0) >= OPTIONS_AFTER or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            r["after_seconds"] = time.monotonic() - t_after

            scraper.stdin.write("stop\n")
            scraper.stdin.flush()
            out, serr = scraper.communicate(timeout=30)
            r["scrapes"] = json.loads(out) if out.strip() else []
            r["scraper_stderr"] = serr
            scraper = None

            exporter.send_signal(signal.SIGTERM)
            r["exit_code"] = exporter.wait(timeout=30)
            with open(err_path, errors="replace") as f:
                r["stderr"] = f.read()
            r["final"] = None
            if os.path.exists(metrics_out):
                with open(metrics_out) as f:
                    r["final"] = figures(f.read())
            r["runtime"] = time.monotonic() - t_start
            cls._report()
        finally:
            if scraper is not None:
                scraper.kill()
                scraper.wait()
            if exporter is not None and exporter.poll() is None:
                exporter.kill()
                exporter.wait()
            ns.destroy()
            tmp.cleanup()

    @staticmethod
    def _wait_listening(exporter, err_path, cmd):
        return lib.wait_listening(exporter, err_path, cmd, "the overload test", "raw capture on the veth")

    @staticmethod
    def _settle(ns, port, exporter):
        """Scrapes until the figures stop moving for 1 s (at most 20 s); returns the last figures."""
        deadline = time.monotonic() + 20
        prev, since = None, time.monotonic()
        while True:
            if exporter.poll() is not None:
                raise AssertionError(f"sip_exporter exited {exporter.returncode} after the overload")
            c = figures(ns.scrape(port))
            key = (c["packets"], c["decoded"], c["after_capture_drops"], c["before_capture_drops"])
            if key != prev:
                prev, since = key, time.monotonic()
            elif time.monotonic() - since >= 1.0 or time.monotonic() > deadline:
                return c
            time.sleep(0.1)

    @classmethod
    def _report(cls):
        r = cls.r
        rp, s = r["replay"], r["settled"]
        lat = [x["latency"] for x in r["scrapes"]]
        w0, w1 = r["replay_window"]
        during = [x for x in r["scrapes"] if w0 <= x["t"] <= w1]
        r["during"] = during
        lat_during = [x["latency"] for x in during]
        srt = sorted(lat_during) or [0]
        log(f"overload: exporter {'pinned to one CPU (taskset), tcpreplay on the other' if r['pinned'] else 'unpinned'}, "
            f"--workers=1, {r['threads']} threads; tcpreplay --topspeed sent {rp['sent']} frames (failed "
            f"{rp['failed']}) in {rp['seconds']:.2f} s ({rp['rated']}); veth: outer tx {r['tx']} "
            f"(dropped {r['tx_dropped']}), inner rx {r['rx']} (dropped {r['rx_dropped']})")
        log(f"overload: exporter took {s['packets']} packets, dropped {s['dropped']}, decoded {s['decoded']}, "
            f"skipped {s['skipped']}; {s['sctp_chunks']} DATA chunks ({r['chunks_per_frame']:.1f} a frame), "
            f"requests {s['requests']}, parse errors {s['parse_errors']}")
        log(f"overload: {len(lat)} scrapes in all, {len(during)} during the replay: latency max "
            f"{max(lat) * 1000 if lat else 0:.1f} ms (during: max {srt[-1] * 1000:.1f} ms, median "
            f"{srt[len(srt) // 2] * 1000:.1f} ms, p99 {srt[min(len(srt) - 1, int(len(srt) * 0.99))] * 1000:.1f} ms); "
            f"TCP segments retransmitted meanwhile: {sum(x.get('retransmitted', 0) for x in r['scrapes'])}")
        log(f"overload: after the replay {r['after_replay']['sent']} OPTIONS counted as "
            f"{r['after']['requests'].get('OPTIONS', 0)} in {r['after_seconds']:.2f} s; exit {r['exit_code']}; "
            f"test runtime {r['runtime']:.1f} s")

    # ------------------------------------------------------------------ the checks

    def test_scrapes_answer_within_deadline_while_saturated(self):
        r = self.r
        bad = [x for x in r["scrapes"] if "error" in x or x.get("status") != 200 or x["latency"] > SCRAPE_DEADLINE]
        worst = max((x["latency"] for x in r["scrapes"]), default=0)
        self.assertEqual(bad, [], f"scrapes that failed or took over {SCRAPE_DEADLINE * 1000:.0f} ms "
                                  f"(of {len(r['scrapes'])}; max {worst * 1000:.1f} ms)")
        self.assertGreaterEqual(len(r["during"]), MIN_SCRAPES_DURING, "too few scrapes during the replay")
        # The scrapes during the replay saw the overload happen: drops growing between scrapes.
        growing = sum(1 for a, b in zip(r["during"], r["during"][1:])
                      if "dropped" in a and "dropped" in b and b["dropped"] > a["dropped"])
        self.assertGreater(growing, 0, "no scrape during the replay saw the drop counters move")

    def test_overload_is_counted_as_drops(self):
        s = self.r["settled"]
        self.assertGreater(s["after_capture_drops"], 0,
                           f"no pool/queue drops: the worker kept up, the test did not overload it ({s['dropped']})")

    def test_books_balance(self):
        s = self.r["settled"]
        self.assertEqual(s["packets"], s["after_capture_drops"] + s["decoded"] + s["skipped_not_not_sip"],
                         f"packets_total != pool/queue drops + decoded + skipped: {s}")
        # Every frame is SCTP, every chunk in it a MESSAGE: each chunk decoded is a request.
        self.assertEqual(s["decoded_by_path"], {"sctp": s["decoded"]}, s)
        self.assertEqual(s["requests"], {"MESSAGE": s["sctp_chunks"]}, s)
        self.assertEqual(s["parse_errors"], 0, s)

    def test_frames_are_accounted_for(self):
        r, s = self.r, self.r["settled"]
        rp = r["replay"]
        self.assertEqual(rp["failed"], 0, rp)
        # The veth pair carried nothing but the replay (no addresses, IPv6 off).
        self.assertEqual(r["tx"], rp["sent"], f"outer end transmitted {r['tx']} frames, tcpreplay sent {rp['sent']}")
        self.assertEqual(r["rx"] + r["rx_dropped"] + r["tx_dropped"], rp["sent"],
                         f"veth: rx {r['rx']} + dropped {r['rx_dropped']}/{r['tx_dropped']} != sent {rp['sent']}")
        self.assertEqual(s["packets"] + s["before_capture_drops"], r["rx"],
                         f"captured {s['packets']} + kernel/interface drops {s['before_capture_drops']} != "
                         f"frames the inner end received {r['rx']}")

    def test_keeps_counting_after_the_overload(self):
        r = self.r
        self.assertEqual(r["after_replay"]["sent"], OPTIONS_AFTER)
        self.assertEqual(r["after"]["requests"].get("OPTIONS", 0), OPTIONS_AFTER,
                         f"OPTIONS sent after the overload were not all counted within 10 s: {r['after']}")
        self.assertEqual(r["after"]["packets"] - r["settled"]["packets"], OPTIONS_AFTER, "packets after the overload")
        self.assertEqual(r["exit_code"], 0, r["stderr"])
        self.assertIsNotNone(r["final"], "--metrics.out was not written")
        self.assertEqual(r["final"]["requests"], r["after"]["requests"], "figures moved after the last scrape")


if __name__ == "__main__":
    lib.main()
