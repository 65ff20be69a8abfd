"""The shipped alert rules on a real Prometheus: two exporters, SIPp storms of 503 and 408, alert states.

Two sip_exporter processes capture `lo`, each with its own --sip.ports, so each sees its own share of
one peer's traffic, as two exporters on two SPAN ports would:
  exporter A  ports 15260-15264  normal calls (built-in uac/uas, 4 calls/s, all along) and the storms
  exporter B  port 15280         normal calls (2 calls/s, all along)
Every UAC runs on 127.0.0.1, the exporters' home network; every UAS on 127.0.0.2, the peer map's
`carrier-p`. So every transaction is (peer="carrier-p", direction="outbound"), and the peer rules
must add up both exporters.

A real Prometheus (Debian `prometheus`) scrapes both every second (job `sip_exporter`, the job the
rules expect) and evaluates a copy of deploy/prometheus/*.rules.yml every second. The shipped
windows (5m, 1h, 10m) would make this test take hours, so the copy is shortened by one mechanical
substitution: every duration in a range selector `[d]` or subquery `[d:s]`, after `offset`, in `for:`
and in a group `interval:` is divided by SCALE (30): 5m -> 10s, 1h -> 120s, 10m -> 20s, for 5m -> 10s,
for 2m -> 4s. Nothing else changes (checked: both texts are equal once every duration is replaced by
a placeholder). Every duration token in every expression must be one of those it rewrote (so a new
kind of window cannot slip through unshortened), every expression in the files must have been
seen (Prometheus' own count of loaded rules), and Prometheus must report each alert's shortened
`for`.

Timeline (seconds are approximate; the phases end on events, not clocks):
  baseline  35 s of normal calls: no alert may even be pending. At its end the recorded
            peer_direction:sip_transactions:rate5m for carrier-p must equal the sum of the two
            exporters' rates, both non-zero.
  503 storm 30 s of extra calls answered 503 (tests/e2e/sipp/uas_503.xml) at 6/s: a third of
            carrier-p's transactions. SIPPeer503Rising must go inactive -> pending -> firing, and
            SIPPeer5xxSpike with it (33% > 20%); nothing else.
  recovery  normal calls only, until both are inactive again; then 10 s with no alert at all.
  408 storm 30 s of calls answered 408 (uas_503.xml/uac_503.xml with 503 -> 408, written to the temp
            dir) at 3/s and unanswered INVITEs (uas_silent.xml/uac_silent.xml) at 3/s, which the
            exporter counts as timeouts after limits.transaction_timeout_seconds (5 s here).
            SIPPeer408Rising must go inactive -> pending -> firing; nothing else.
  recovery  until it is inactive again; then 10 s with no alert at all.
Alert states, labels and annotations come from /api/v1/rules?type=alert, polled twice a second
(the rule's state, and its active alerts). At the end every rule of both files must have evaluated
without error (health "ok": a vector-matching error only shows on live data).

The only skips: an exporter that may not open a raw capture on `lo` (no CAP_NET_RAW), or sipp,
prometheus or promtool missing outside CI. The static rule checks (promtool check/test rules, the
example configuration) run without capture.
"""
import json
import math
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import sipex_testlib
from sipex_testlib import parse_exposition, require_tool, sum_by
import test_live_sipp as live  # SippRun, udp_ports_bound(), scrape(), log()

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(HERE, "sipp")
PROM_DIR = os.path.join(sipex_testlib.SOURCE_DIR, "deploy", "prometheus")
ALERT_RULES = os.path.join(PROM_DIR, "sip_exporter_alerts.rules.yml")
ALERT_TESTS = os.path.join(PROM_DIR, "sip_exporter_alerts.rules.test.yml")
EXAMPLE_CONFIG = os.path.join(PROM_DIR, "prometheus.example.yml")
log = live.log

SCALE = 30            # every rule duration is divided by this in the test's copy of the rules
HOME_IP = "127.0.0.1"  # our side: the UACs
PEER_IP = "127.0.0.2"  # the carrier: the UASes
PEER = "carrier-p"
JOB = "sip_exporter"
TIMER_B = 5            # limits.transaction_timeout_seconds: after the silent UAC's last INVITE copy (3.5 s)

NORMAL_A_RATE, NORMAL_B_RATE = 4, 2   # calls/s all along, on exporter A and B
STORM_503_RATE, STORM_503_CALLS = 6, 180
STORM_408_RATE, STORM_408_CALLS = 3, 90   # for each of the 408 UAC and the silent UAC
BASELINE_SECONDS = 35
QUIET_SECONDS = 10
RECOVERY_TIMEOUT = 45
POLL = 0.5
SIPP_TIMEOUT = 120     # how long a storm's UACs may take
SIPP_GLOBAL_TIMEOUT = 600  # SIPp's own -timeout: the long-running ones are ended by the test

# UAS port, UAC port
PORTS = {
    "normal_a": (15260, 15250),
    "storm_503": (15262, 15252),
    "storm_408": (15263, 15253),
    "silent": (15264, 15254),
    "normal_b": (15280, 15281),
}
PORTS_A = [PORTS[k][0] for k in ("normal_a", "storm_503", "storm_408", "silent")]
PORTS_B = [PORTS["normal_b"][0]]
ALL_PORTS = sorted(p for pair in PORTS.values() for p in pair)

CONFIG = (f"home_networks: [{HOME_IP}/32]\n"
          f"peers:\n  {PEER}: [{PEER_IP}/32]\n"
          f"limits: {{transaction_timeout_seconds: {TIMER_B}}}\n")

ALERTS = ["SIPPeer5xxSpike", "SIPPeer6xxSpike", "SIPPeer503Rising", "SIPPeer408Rising", "SIPPeerSilent",
          "SIPExporterCaptureDrops", "SIPExporterParseErrorSurge", "SIPExporterDown"]


def rule_files():
    """Every shipped rule file (the KPI recording rules and the alerts)."""
    return sorted(os.path.join(PROM_DIR, f) for f in os.listdir(PROM_DIR) if f.endswith(".rules.yml"))


# ---------------------------------------------------------------- the mechanical shortening

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
            "y": 31_536_000_000}
_DUR = r"(?:\d+(?:ms|s|m|h|d|w|y))+"
_DUR_TOKEN = re.compile(rf"(?<![\w.]){_DUR}(?![\w.])")
_WINDOW = re.compile(rf"\[(\s*)({_DUR})(\s*)(?::(\s*)({_DUR})?(\s*))?\]")
_OFFSET = re.compile(rf"\boffset(\s+)(-?)({_DUR})(?![\w.])")
_KEY = re.compile(r"^(\s*)(-\s+)?(expr|for|interval|keep_firing_for):(\s*)(.*?)\s*$")


def duration_ms(text):
    return sum(int(n) * _UNIT_MS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


def shorten_duration(text):
    ms = duration_ms(text)
    if ms % SCALE:
        raise AssertionError(f"duration {text} is not a multiple of {SCALE} ms")
    ms //= SCALE
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _promql_segments(expr):
    """Splits PromQL text into (is_code, text) pieces: string literals and # comments are not code."""
    out, i, start = [], 0, 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            out.append((True, expr[start:i]))
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if (c != "`" and expr[j] == "\\") else 1
            out.append((False, expr[i:j + 1]))
            i = start = j + 1
        elif c == "#":
            out.append((True, expr[start:i]))
            j = expr.find("\n", i)
            j = len(expr) if j < 0 else j
            out.append((False, expr[i:j]))
            i = start = j
        else:
            i += 1
    out.append((True, expr[start:]))
    return out


def shorten_expr(expr):
    """(shortened expr, windows rewritten, duration tokens in the code). Rewrites the durations of
    range selectors, subqueries and offsets; comments and string literals are left alone."""
    rewritten = tokens = 0
    pieces = []
    for is_code, text in _promql_segments(expr):
        if not is_code:
            pieces.append(text)
            continue
        tokens += len(_DUR_TOKEN.findall(text))

        def window(m):
            nonlocal rewritten
            rewritten += 1
            s = f"[{m.group(1)}{shorten_duration(m.group(2))}{m.group(3)}"
            if m.group(4) is not None:
                s += ":" + m.group(4)
                if m.group(5):
                    rewritten += 1
                    s += shorten_duration(m.group(5))
                s += m.group(6)
            return s + "]"

        def offset(m):
            nonlocal rewritten
            rewritten += 1
            return f"offset{m.group(1)}{m.group(2)}{shorten_duration(m.group(3))}"

        pieces.append(_OFFSET.sub(offset, _WINDOW.sub(window, text)))
    return "".join(pieces), rewritten, tokens


def shorten_rule_file(text, where):
    """The rule file text with every rule window, offset, `for` and group `interval` divided by
    SCALE. Returns (text, number of expressions, {alert `for` seconds after shortening})."""
    lines = text.split("\n")
    out, i, exprs, fors = [], 0, 0, []
    while i < len(lines):
        line = lines[i]
        m = _KEY.match(line)
        if not m:
            out.append(line)
            i += 1
            continue
        indent, dash, key, space, value = m.groups()
        head = f"{indent}{dash or ''}{key}:{space}"
        if key != "expr":
            if not re.fullmatch(_DUR, value):
                raise AssertionError(f"{where}:{i + 1}: {key}: {value!r} is not a plain duration")
            new = shorten_duration(value)
            if key == "for":
                fors.append(duration_ms(new) / 1000)
            out.append(head + new)
            i += 1
            continue
        exprs += 1
        if value[:1] in ("|", ">"):
            key_col = len(indent) + len(dash or "")
            body, j = [], i + 1
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > key_col):
                body.append(lines[j])
                j += 1
            new_body, rewritten, tokens = shorten_expr("\n".join(body))
            out.append(head + value)
            out.extend(new_body.split("\n"))
            i = j
        elif value[:1] in ("'", '"'):
            raise AssertionError(f"{where}:{i + 1}: a quoted expr is not handled by the shortener: {value}")
        else:
            new_value, rewritten, tokens = shorten_expr(value)
            out.append(head + new_value)
            i += 1
        if rewritten != tokens:
            raise AssertionError(f"{where}:{i}: {tokens} duration(s) in the expression but only {rewritten} "
                                 "in a range, subquery or offset: teach the shortener the new kind of window")
    new_text = "\n".join(out)
    normal = lambda t: _DUR_TOKEN.sub("<D>", t)  # noqa: E731
    if normal(new_text) != normal(text):
        raise AssertionError(f"{where}: the shortened copy differs from the original in more than durations")
    return new_text, exprs, fors


# ---------------------------------------------------------------- processes and HTTP

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


class Prom:
    def __init__(self, port):
        self.port = port

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        doc = http_json(url)
        if doc.get("status") != "success":
            raise AssertionError(f"{url}: {doc}")
        return doc["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)

    def vector(self, expr, at=None):
        """[(labels, value)] of an instant query."""
        d = self.query(expr, at)
        if d["resultType"] != "vector":
            raise AssertionError(f"{expr}: {d['resultType']}")
        return [(r["metric"], float(r["value"][1])) for r in d["result"]]


def start_exporter(work, name, ports):
    cfg = os.path.join(work, f"{name}.yml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    err_path = os.path.join(work, f"{name}.stderr")
    err = open(err_path, "w")
    cmd = [sipex_testlib.BINARY, "--capture.interface=lo", "--sip.ports=" + ",".join(map(str, ports)),
           "--web.listen-address=127.0.0.1:0", f"--config.file={cfg}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        port = sipex_testlib.wait_listening(proc, err_path, cmd, "the Prometheus alert test", "raw capture on lo")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
        raise
    return proc, err, port


def stop(proc, timeout=15):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def state_sequence(polls, name, lo, hi):
    """Rule states of alert `name` in polls[lo:hi], consecutive repeats collapsed."""
    seq = []
    for p in polls[lo:hi]:
        s = p["states"][name]
        if not seq or seq[-1] != s:
            seq.append(s)
    return seq


# ---------------------------------------------------------------- static checks

class RuleFilesTest(unittest.TestCase):
    """promtool on the shipped files: no capture needed."""

    def test_promtool_check_rules(self):
        promtool = require_tool("promtool")
        cp = subprocess.run([promtool, "check", "rules", *rule_files()], capture_output=True, text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("SUCCESS", cp.stdout)

    def test_promtool_test_rules(self):
        promtool = require_tool("promtool")
        cp = subprocess.run([promtool, "test", "rules", ALERT_TESTS], capture_output=True, text=True, timeout=120,
                            cwd=PROM_DIR)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)

    def test_every_alert_has_a_firing_and_a_quiet_case(self):
        with open(ALERT_TESTS) as f:
            text = f.read()
        with open(ALERT_RULES) as f:
            rules = f.read()
        self.assertEqual(sorted(re.findall(r"^\s*- alert: (\S+)", rules, re.M)), sorted(ALERTS))
        for name in ALERTS:
            quiet = re.search(rf"alertname: {name}(,\s*|\s+)exp_alerts: \[\]", text)
            firing = re.search(rf"alertname: {name}\s+exp_alerts:\s*\n\s+- exp_labels:", text)
            self.assertTrue(quiet, f"{name}: no test case where it stays quiet")
            self.assertTrue(firing, f"{name}: no test case where it fires")

    def test_every_alert_is_documented_and_labelled(self):
        with open(ALERT_RULES) as f:
            text = f.read()
        for block in re.split(r"\n\s*- (?=alert:|record:)", text)[1:]:
            if not block.startswith("alert:"):
                continue
            name = block.split()[1]
            self.assertRegex(block, r"\n\s*for: \d+m", name)
            self.assertRegex(block, r"severity: (warning|critical)\n", name)
            self.assertRegex(block, r"summary: ", name)
            self.assertRegex(block, r"description: ", name)
            if name.startswith("SIPPeer"):
                for key in ("summary", "description"):
                    line = re.search(rf"{key}: (.*)", block).group(1)
                    self.assertIn("{{ $labels.peer }}", line, f"{name} {key}")

    def test_example_config(self):
        promtool = require_tool("promtool")
        cp = subprocess.run([promtool, "check", "config", EXAMPLE_CONFIG], capture_output=True, text=True,
                            timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        with open(EXAMPLE_CONFIG) as f:
            text = f.read()
        self.assertIn("job_name: sip_exporter\n", text)
        for f in rule_files():
            self.assertIn(os.path.basename(f), text)

    def test_shortener(self):
        """The substitution itself, on the forms it must handle and one it must refuse."""
        self.assertEqual(shorten_expr('rate(x{a="[5m]"}[5m] offset 1h) # [5m]')[0],
                         'rate(x{a="[5m]"}[10s] offset 120s) # [5m]')
        self.assertEqual(shorten_expr("max_over_time(x[1h:1m])")[0], "max_over_time(x[120s:2s])")
        self.assertEqual(shorten_expr("x[1h30m:]")[0], "x[180s:]")
        _, rewritten, tokens = shorten_expr("predict_linear(x[1h], 4h)")
        self.assertNotEqual(rewritten, tokens, "a duration outside a window must be noticed")
        text = "groups:\n  - name: g\n    interval: 1m\n    rules:\n      - alert: A\n        expr: |\n" \
               "          rate(x[5m]) > 0\n          and y[10m:1m]\n        for: 5m\n"
        new, exprs, fors = shorten_rule_file(text, "t")
        self.assertEqual(exprs, 1)
        self.assertEqual(fors, [10])
        self.assertIn("interval: 2s", new)
        self.assertIn("rate(x[10s]) > 0\n          and y[20s:2s]\n        for: 10s", new)


# ---------------------------------------------------------------- the live run

class PrometheusAlertsTest(sipex_testlib.LiveRunTest):
    """One live run (setUpClass) and the checks on what it recorded."""

    # -- the run

    @classmethod
    def _poll(cls, phase):
        """One look at every alert: rule state (/api/v1/rules) and active alerts (/api/v1/alerts)."""
        groups = cls.prom.api("rules", type="alert")["groups"]
        states, alerts = {}, []
        for g in groups:
            for r in g["rules"]:
                states[r["name"]] = r["state"]
                for a in r.get("alerts", []):
                    alerts.append(a)
        missing = set(ALERTS) - set(states)
        if missing:
            raise AssertionError(f"Prometheus has not loaded the alerts {sorted(missing)}")
        p = {"t": time.monotonic() - cls.t0, "phase": phase, "states": states, "alerts": alerts}
        cls.polls.append(p)
        prev = cls.polls[-2]["states"] if len(cls.polls) > 1 else {}
        for name in sorted(states):
            if states[name] != prev.get(name, "inactive"):
                cls.timeline.append(f"  +{p['t']:6.1f} s  [{phase:10}] {name}: {prev.get(name, 'inactive')} -> "
                                    f"{states[name]}")
        for proc, name in ((cls.exporter_a, "A"), (cls.exporter_b, "B"), (cls.prom_proc, "prometheus")):
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited {proc.returncode} during the run")
        return p

    @classmethod
    def _observe(cls, phase, seconds=None, until=None, timeout=None):
        """Polls every POLL s for `seconds`, or until `until(poll)` is true (AssertionError after
        `timeout` s). Returns the last poll."""
        end = time.monotonic() + (seconds if seconds is not None else timeout)
        while True:
            p = cls._poll(phase)
            if until is not None and until(p):
                return p
            if time.monotonic() >= end:
                if until is not None:
                    raise AssertionError(f"phase {phase}: condition not reached within {timeout} s; states "
                                         f"{p['states']}\n" + "\n".join(cls.timeline))
                return p
            time.sleep(POLL)

    @classmethod
    def _mark(cls, name):
        cls.marks[name] = (len(cls.polls), time.monotonic() - cls.t0)
        cls.timeline.append(f"  +{cls.marks[name][1]:6.1f} s  -- {name}")

    @classmethod
    def _sipp(cls, label, args):
        run = live.SippRun(label, cls.work, [*args, "-nostdin", "-timeout", f"{SIPP_GLOBAL_TIMEOUT}s"])
        cls.sipps.append(run)
        return run

    @classmethod
    def _uas(cls, label, scenario_args, port):
        run = cls._sipp(label, [*scenario_args, "-i", PEER_IP, "-p", str(port)])
        deadline = time.monotonic() + 10
        while port not in live.udp_ports_bound():
            if run.proc.poll() is not None:
                raise AssertionError(f"SIPp {label} exited {run.proc.returncode}:\n{run.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"SIPp {label} did not bind UDP port {port} within 10 s")
            time.sleep(0.05)
        return run

    @classmethod
    def _uac(cls, label, scenario_args, uas_port, uac_port, rate, calls):
        # -l: SIPp's default cap on simultaneous calls throttles the silent UAC (5.5 s calls) to
        # about 1 call/s; lift it so every UAC keeps its rate.
        return cls._sipp(label, [*scenario_args, f"{PEER_IP}:{uas_port}", "-i", HOME_IP, "-p", str(uac_port),
                                 "-r", str(rate), "-m", str(calls), "-l", "500"])

    @classmethod
    def _wait_storm(cls, phase, runs_and_rcs):
        """Polls while the storm's UACs run; checks their exit codes."""
        def done(_):
            return all(r.proc.poll() is not None for r, _ in runs_and_rcs)
        cls._observe(phase, until=done, timeout=SIPP_TIMEOUT)
        for r, rc in runs_and_rcs:
            if r.proc.returncode != rc:
                raise AssertionError(f"SIPp {r.label} exited {r.proc.returncode}, expected {rc}:\n"
                                     f"{r.output()[-3000:]}")

    @classmethod
    def _write_rules(cls):
        """Shortened copies of the shipped rule files; returns (paths, expressions, alert `for`s)."""
        paths, exprs, fors = [], 0, []
        for src in rule_files():
            with open(src) as f:
                text = f.read()
            new, n, f_ = shorten_rule_file(text, src)
            dst = os.path.join(cls.work, os.path.basename(src))
            with open(dst, "w") as f:
                f.write(new)
            paths.append(dst)
            exprs += n
            fors += f_
        cp = subprocess.run([cls.promtool, "check", "rules", *paths], capture_output=True, text=True, timeout=60)
        if cp.returncode != 0:
            raise AssertionError(f"promtool check rules on the shortened copy:\n{cp.stdout}{cp.stderr}")
        return paths, exprs, fors

    @classmethod
    def _scenario_408(cls):
        """uas_503.xml / uac_503.xml answering 408 instead: written to the temp dir."""
        out = []
        for name, pairs in (("uas_503.xml", [("SIP/2.0 503 Service Unavailable", "SIP/2.0 408 Request Timeout"),
                                             ("      Retry-After: 60\n", "")]),
                            ("uac_503.xml", [('<recv response="503">', '<recv response="408">')])):
            with open(os.path.join(SCENARIO_DIR, name)) as f:
                text = f.read()
            for old, new in pairs:
                if text.count(old) != 1:
                    raise AssertionError(f"{name}: expected one {old!r}")
                text = text.replace(old, new)
            path = os.path.join(cls.work, name.replace("503", "408"))
            with open(path, "w") as f:
                f.write(text)
            out.append(path)
        return out

    @classmethod
    def _aggregation(cls):
        """The recorded peer rate against the per-exporter rates at the same evaluation timestamps."""
        sel = f'{{job="{JOB}",peer="{PEER}",direction="outbound"}}'
        rec = cls.prom.query(f"peer_direction:sip_transactions:rate5m{sel}[6s]")
        if rec["resultType"] != "matrix" or len(rec["result"]) != 1:
            raise AssertionError(f"expected one recorded series for {PEER}: {rec}")
        cls.agg_labels = rec["result"][0]["metric"]
        window = shorten_duration("5m")
        checks = []
        for ts, value in rec["result"][0]["values"]:
            recorded = float(value)
            per_instance = {l["instance"]: v for l, v in cls.prom.vector(
                f"sum by (instance) (rate(sip_transactions_total{sel}[{window}]))", at=ts)}
            again = cls.prom.vector(
                f"sum without (class) (sum without (code) (sum without (instance, method) "
                f"(rate(sip_transactions_total{sel}[{window}]))))", at=ts)
            checks.append({"ts": ts, "recorded": recorded, "per_instance": per_instance,
                           "again": again[0][1] if again else None})
        return checks

    @classmethod
    def _run(cls):
        cls.promtool = require_tool("promtool")
        prometheus = require_tool("prometheus")
        require_tool("sipp")
        if not sipex_testlib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        busy = sorted(set(ALL_PORTS) & live.udp_ports_bound())
        if busy:
            raise AssertionError(f"UDP ports {busy} are already in use on this host; the test needs {ALL_PORTS} free")
        cls.t_start = cls.t0 = time.monotonic()
        tmp = tempfile.TemporaryDirectory(prefix="sipex-alerts-")
        cls.work = tmp.name
        cls.sipps, cls.polls, cls.timeline, cls.marks = [], [], [], {}
        cls.exporter_a = cls.exporter_b = cls.prom_proc = None
        errs = []
        prom_log = None
        try:
            rule_paths, cls.n_exprs, cls.fors = cls._write_rules()
            cls.exporter_a, err_a, port_a = start_exporter(cls.work, "exporter-a", PORTS_A)
            errs.append(err_a)
            cls.exporter_b, err_b, port_b = start_exporter(cls.work, "exporter-b", PORTS_B)
            errs.append(err_b)
            cls.targets = {f"127.0.0.1:{port_a}": "A", f"127.0.0.1:{port_b}": "B"}

            prom_port = free_port()
            cfg = os.path.join(cls.work, "prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
                        "rule_files:\n" + "".join(f"  - {json.dumps(p)}\n" for p in rule_paths) +
                        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
                        f"      - targets: {json.dumps(sorted(cls.targets))}\n")
            prom_log = open(os.path.join(cls.work, "prometheus.log"), "w")
            cls.prom_proc = subprocess.Popen(
                [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(cls.work, 'tsdb')}",
                 f"--web.listen-address=127.0.0.1:{prom_port}", "--web.enable-lifecycle"],
                cwd=cls.work, stdin=subprocess.DEVNULL, stdout=prom_log, stderr=subprocess.STDOUT)
            cls.prom = Prom(prom_port)
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if cls.prom_proc.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(cls.work, "prometheus.log"), errors="replace") as f:
                        raise AssertionError(f"prometheus did not become ready:\n{f.read()[-4000:]}")
                time.sleep(0.2)
            all_rules = [r for g in cls.prom.api("rules")["groups"] for r in g["rules"]]
            cls.loaded = {"rules": len(all_rules),
                          "for": sorted(r["duration"] for r in all_rules if r["type"] == "alerting")}

            # Both targets up, and every alert inactive, before the traffic starts.
            def both_up(_):
                up = {l["instance"]: v for l, v in cls.prom.vector(f'up{{job="{JOB}"}}')}
                return up == {t: 1.0 for t in cls.targets}
            cls._observe("startup", until=both_up, timeout=20)
            cls._observe("startup", until=lambda p: set(p["states"].values()) == {"inactive"}, timeout=20)

            # The normal traffic: UASes for everything, then the two normal UACs, all along.
            cls._uas("uas-normal-a", ["-sn", "uas"], PORTS["normal_a"][0])
            cls._uas("uas-normal-b", ["-sn", "uas"], PORTS["normal_b"][0])
            cls._uas("uas-503", ["-sf", os.path.join(SCENARIO_DIR, "uas_503.xml")], PORTS["storm_503"][0])
            uas_408, uac_408 = cls._scenario_408()
            cls._uas("uas-408", ["-sf", uas_408], PORTS["storm_408"][0])
            cls._uas("uas-silent", ["-sf", os.path.join(SCENARIO_DIR, "uas_silent.xml")], PORTS["silent"][0])
            cls._mark("baseline: normal calls start")
            cls._uac("uac-normal-a", ["-sn", "uac"], *PORTS["normal_a"], NORMAL_A_RATE, 1_000_000)
            cls._uac("uac-normal-b", ["-sn", "uac"], *PORTS["normal_b"], NORMAL_B_RATE, 1_000_000)
            cls._observe("baseline", seconds=BASELINE_SECONDS)
            cls.aggregation = cls._aggregation()
            log("peer_direction:sip_transactions:rate5m (shortened) against the exporters' own rates:\n" + "\n".join(
                f"  @{c['ts']:.3f}  recorded {c['recorded']:.6g}  = "
                + " + ".join(f"{cls.targets[i]} {v:.6g}" for i, v in sorted(c["per_instance"].items()))
                + ("" if c["again"] is not None and math.isclose(c["again"], c["recorded"], rel_tol=1e-9)
                   else "  (data changed after the evaluation: not compared)")
                for c in cls.aggregation))
            cls.instance_rates = {cls.targets[l["instance"]]: v for l, v in cls.prom.vector(
                f'sum by (instance) (rate(sip_transactions_total{{peer="{PEER}"}}[{shorten_duration("5m")}]))')}

            # The 503 storm.
            cls._mark("503 storm starts")
            run = cls._uac("uac-503", ["-sf", os.path.join(SCENARIO_DIR, "uac_503.xml")], *PORTS["storm_503"],
                           STORM_503_RATE, STORM_503_CALLS)
            cls._wait_storm("503 storm", [(run, 0)])
            cls._mark("503 storm ends")
            cls._observe("recover", until=lambda p: set(p["states"].values()) == {"inactive"},
                         timeout=RECOVERY_TIMEOUT)
            cls._mark("503 alerts inactive again")
            cls._observe("quiet 1", seconds=QUIET_SECONDS)

            # The 408 storm: 408 answers and unanswered INVITEs (timeouts), side by side.
            cls._mark("408 storm starts")
            r408 = cls._uac("uac-408", ["-sf", uac_408], *PORTS["storm_408"], STORM_408_RATE, STORM_408_CALLS)
            rsil = cls._uac("uac-silent", ["-sf", os.path.join(SCENARIO_DIR, "uac_silent.xml")], *PORTS["silent"],
                            STORM_408_RATE, STORM_408_CALLS)
            cls._wait_storm("408 storm", [(r408, 0), (rsil, 1)])  # SIPp exits 1: every silent call failed
            cls._mark("408 storm ends")
            cls._observe("recover", until=lambda p: set(p["states"].values()) == {"inactive"},
                         timeout=RECOVERY_TIMEOUT + TIMER_B)
            cls._mark("408 alerts inactive again")
            cls._observe("quiet 2", seconds=QUIET_SECONDS)
            cls._mark("end")

            for name in ("SIPPeer503Rising", "SIPPeer5xxSpike", "SIPPeer408Rising"):
                firing = [a for p in cls.polls for a in p["alerts"]
                          if a["labels"]["alertname"] == name and a["state"] == "firing"]
                if firing:
                    a = firing[len(firing) // 2]
                    log(f"{name} while firing: labels {a['labels']}\n  summary: {a['annotations']['summary']}\n"
                        f"  description: {a['annotations']['description']}")
            cls.rule_health = [(g["name"], r["name"], r["health"], r.get("lastError", ""))
                               for g in cls.prom.api("rules")["groups"] for r in g["rules"]]
            cls.scrape = {"A": parse_exposition(live.scrape(port_a)), "B": parse_exposition(live.scrape(port_b))}
            cls.runtime = time.monotonic() - cls.t_start
            log("timeline (seconds from the start of the test):\n" + "\n".join(cls.timeline))
            log(f"Prometheus alert run: {cls.runtime:.1f} s")
        finally:
            for r in cls.sipps:
                r.kill()
            stop(cls.prom_proc)
            stop(cls.exporter_a)
            stop(cls.exporter_b)
            for e in errs:
                e.close()
            if prom_log is not None:
                prom_log.close()
            tmp.cleanup()

    # -- helpers

    def active(self, lo, hi):
        """{alertname: set of states other than inactive} seen in polls[lo:hi]."""
        out = {}
        for p in self.polls[lo:hi]:
            for name, s in p["states"].items():
                if s != "inactive":
                    out.setdefault(name, set()).add(s)
        return out

    def firing_alerts(self, name, lo, hi):
        return [a for p in self.polls[lo:hi] for a in p["alerts"]
                if a["labels"]["alertname"] == name and a["state"] == "firing"]

    def check_storm(self, name, start, end, also=()):
        # From the last poll before the storm to the first one with every alert inactive again.
        lo, hi = self.marks[start][0] - 1, self.marks[end][0]
        self.assertEqual(state_sequence(self.polls, name, lo, hi), ["inactive", "pending", "firing", "inactive"],
                         "\n".join(self.timeline))
        seen = self.active(lo, hi)
        self.assertLessEqual(set(seen), {name, *also}, f"other alerts during the storm: {seen}\n"
                             + "\n".join(self.timeline))
        firing = self.firing_alerts(name, lo, hi)
        self.assertTrue(firing)
        storm = self.polls[lo + 1]["phase"]
        self.assertTrue(any(p["states"][name] == "firing" for p in self.polls[lo:hi] if p["phase"] == storm),
                        f"{name} must fire while the storm lasts\n" + "\n".join(self.timeline))
        for a in firing:
            self.assertEqual(a["labels"], {"alertname": name, "severity": "critical", "job": JOB, "peer": PEER,
                                           "direction": "outbound"})
            self.assertIn(f"SIP peer {PEER} (outbound)", a["annotations"]["summary"])
            self.assertIn(f"Peer {PEER} (outbound)", a["annotations"]["description"])
        return firing

    # -- the shortened rules

    def test_rules_shortened_and_loaded(self):
        self.assertEqual(self.loaded["rules"], self.n_exprs,
                         "every rule Prometheus loaded was seen (and shortened) by the test")
        self.assertEqual(self.loaded["for"], sorted(self.fors))
        self.assertEqual(sorted(set(self.fors)), [4, 10], "for: 2m -> 4 s, for: 5m -> 10 s")

    def test_every_rule_evaluates(self):
        bad = [r for r in self.rule_health if r[2] != "ok" or r[3]]
        self.assertEqual(bad, [], "rules that did not evaluate cleanly on live data")

    # -- the phases

    def test_no_alert_during_normal_traffic(self):
        """Nothing is even pending: in the baseline, in the quiet phase between the storms (from the
        first poll with every alert inactive), and in the quiet phase at the end."""
        for first, last in (("baseline: normal calls start", "503 storm starts"),
                            ("503 alerts inactive again", "408 storm starts"),
                            ("408 alerts inactive again", "end")):
            lo, hi = self.marks[first][0], self.marks[last][0]
            self.assertGreaterEqual(self.polls[hi - 1]["t"] - self.polls[lo]["t"], QUIET_SECONDS - 1)
            self.assertEqual(self.active(lo, hi), {}, f"{first} .. {last}\n" + "\n".join(self.timeline))

    def test_503_storm(self):
        """SIPPeer503Rising goes inactive -> pending -> firing -> inactive; SIPPeer5xxSpike may join it."""
        self.check_storm("SIPPeer503Rising", "503 storm starts", "503 alerts inactive again",
                         also=("SIPPeer5xxSpike",))

    def test_503_storm_is_a_5xx_spike(self):
        lo, hi = self.marks["503 storm starts"][0] - 1, self.marks["503 alerts inactive again"][0]
        self.assertEqual(state_sequence(self.polls, "SIPPeer5xxSpike", lo, hi),
                         ["inactive", "pending", "firing", "inactive"], "\n".join(self.timeline))

    def test_408_storm(self):
        """SIPPeer408Rising goes inactive -> pending -> firing -> inactive; nothing else."""
        self.check_storm("SIPPeer408Rising", "408 storm starts", "408 alerts inactive again")

    def test_alert_descriptions_name_the_baseline(self):
        for name in ("SIPPeer503Rising", "SIPPeer408Rising"):
            firing = self.firing_alerts(name, 0, len(self.polls))
            self.assertTrue(firing, name)
            self.assertRegex(firing[-1]["annotations"]["description"],
                             r"against [0-9.e+-]+% in the hour before", name)

    # -- aggregation across the two exporters

    def test_aggregated_rate_is_the_sum_of_the_exporters(self):
        self.assertEqual(self.agg_labels, {"__name__": "peer_direction:sip_transactions:rate5m", "job": JOB,
                                           "peer": PEER, "direction": "outbound"})
        compared = 0
        for c in self.aggregation:
            self.assertEqual(set(c["per_instance"]), set(self.targets), c)
            if not math.isclose(c["again"], c["recorded"], rel_tol=1e-9):
                continue  # a scrape landed between the evaluation and this query: data changed since
            compared += 1
            self.assertTrue(math.isclose(c["recorded"], sum(c["per_instance"].values()), rel_tol=1e-9),
                            f"recorded {c['recorded']} != sum of the exporters {c['per_instance']}")
        self.assertGreaterEqual(compared, 3, self.aggregation)

    def test_both_exporters_contribute(self):
        """Each exporter sees its own calls: 2 transactions (INVITE, BYE) per call."""
        want = {"A": 2 * NORMAL_A_RATE, "B": 2 * NORMAL_B_RATE}
        for k, rate in want.items():
            got = self.instance_rates.get(k, 0)
            self.assertTrue(0.5 * rate <= got <= 1.5 * rate, f"exporter {k}: {got} transactions/s, SIPp "
                            f"places {rate}/s: {self.instance_rates}")

    # -- the exporters saw what the scenarios did

    def test_exporters_counted_the_storms(self):
        a, b = self.scrape["A"], self.scrape["B"]
        tx_a = sum_by(a, "sip_transactions_total", "method", "code", "peer", "direction")
        self.assertEqual(tx_a.get(("INVITE", "503", PEER, "outbound"), 0), STORM_503_CALLS,
                         "every rejected call is one transaction")
        self.assertEqual(tx_a.get(("INVITE", "408", PEER, "outbound"), 0), STORM_408_CALLS)
        self.assertEqual(sum_by(a, "sip_transaction_timeouts_total", "method", "peer", "direction"),
                         {("INVITE", PEER, "outbound"): STORM_408_CALLS},
                         "every unanswered INVITE is one timeout")
        self.assertEqual({k[1] for k in sum_by(b, "sip_transactions_total", "method", "code")}, {"200"},
                         "exporter B sees only the normal calls on its port")
        for name, s in (("A", a), ("B", b)):
            self.assertEqual(sum_by(s, "sip_exporter_dropped_packets_total", "source", "stage"), {}, name)
            self.assertEqual(sum_by(s, "sip_exporter_parse_errors_total", "reason"), {}, name)

    def test_runtime(self):
        self.assertLess(self.runtime, 240, "the Prometheus alert test must stay under 4 minutes")


if __name__ == "__main__":
    sipex_testlib.main()
