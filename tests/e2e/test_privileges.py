"""Privileges: the exporter keeps no privilege once its captures and listening socket are open.

  - Started as root with --runas=nobody (live on lo): every thread of the process runs as
    nobody/nogroup (real, effective, saved and filesystem ids; no supplementary group), with
    CapInh/CapPrm/CapEff/CapBnd/CapAmb all 0 and NoNewPrivs 1, and it still counts SIP sent over lo
    after the drop (OPTIONS datagrams from a plain socket, scraped over HTTP); SIGTERM ends it with 0.
  - Started unprivileged with CAP_NET_RAW only, as an ambient capability (setpriv --reuid=nobody
    --inh-caps=+net_raw --ambient-caps=+net_raw), or from file capabilities (setcap cap_net_raw+ep
    on a copy of the binary): it captures, counts, and then holds no capability in any thread
    (CapInh/CapPrm/CapEff/CapAmb 0).
  - Started unprivileged without CAP_NET_RAW: exit 1 and a one-line permission error.
  - --runas naming no user: exit 1 and a one-line error.
Threads are checked one by one (/proc/PID/task/TID/status): capabilities, the bounding set and
no_new_privs are per-thread attributes, so a thread started before the drop keeps what it had
unless the drop reaches it too.
The only skip is a host where the test does not run as root (it must switch users and grant
CAP_NET_RAW), besides setpriv/setcap missing outside CI.
"""
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import sipex_testlib as lib

SIP_PORT = 15391
CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
NOT_PERMITTED = re.compile(r"not permitted|permission denied|don't have permission|EPERM|EACCES", re.I)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def options(n, sender):
    return (f"OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {sender}:{SIP_PORT};branch=z9hG4bKpriv{n}\r\n"
            f"From: <sip:a@x>;tag={n}\r\nTo: <sip:b@y>\r\nCall-ID: priv-{n}@{sender}\r\nCSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def proc_status(path):
    """/proc/.../status as {field: value string}."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def threads(pid):
    """{tid: (comm, status dict)} for every thread of pid."""
    out = {}
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            out[int(tid)] = (comm, proc_status(f"/proc/{pid}/task/{tid}/status"))
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return out


def describe(pid):
    rows = []
    for tid, (comm, st) in threads(pid).items():
        rows.append(f"  {tid} {comm:16} Uid {st['Uid']:24} Gid {st['Gid']:24} Groups [{st.get('Groups', '')}] " +
                    " ".join(f"{k} {st[k]}" for k in CAP_FIELDS) + f" NoNewPrivs {st.get('NoNewPrivs')}")
    return "\n".join(rows)


class Exporter:
    """One exporter run on lo; prefix is what runs it (setpriv ...) and may be empty."""

    def __init__(self, test, binary, prefix=(), extra=()):
        self.test = test
        self.tmp = tempfile.TemporaryDirectory(prefix="sipex-priv-")
        self.err_path = os.path.join(self.tmp.name, "stderr")
        self.cmd = [*prefix, binary, "--capture.interface=lo", f"--sip.ports={SIP_PORT}",
                    "--web.listen-address=127.0.0.1:0", "--workers=2", *extra]
        self.proc = None
        self.port = None

    def __enter__(self):
        with open(self.err_path, "w") as err:
            # setpriv execs the program: the pid is the exporter's own.
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_listening(self):
        deadline = time.monotonic() + 15
        while True:
            m = re.search(r"sip_exporter: serving \S+ on port (\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            rc = self.proc.poll()
            if rc is not None:
                self.test.fail(f"sip_exporter exited {rc} before listening: {' '.join(self.cmd)}\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.test.fail(f"no listening line within 15 s: {' '.join(self.cmd)}\n{self.stderr()}")
            time.sleep(0.05)
        # The drop follows the listening line and ends with no_new_privs on the main thread.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc_status(f"/proc/{self.proc.pid}/status").get("NoNewPrivs") != "1":
            time.sleep(0.02)
        time.sleep(0.2)  # the pipeline threads start right after the drop

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return lib.parse_exposition(r.read().decode())

    def count_options(self, sender, n):
        """Sends n OPTIONS from `sender` and waits until all are counted; returns the count seen."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((sender, 0))
            for i in range(n):
                s.sendto(options(i, sender), ("127.0.0.1", SIP_PORT))
        deadline = time.monotonic() + 10
        got = 0
        while time.monotonic() < deadline:
            got = lib.sum_by(self.scrape(), "sip_requests_total", "method", "peer").get(("OPTIONS", sender), 0)
            if got >= n:
                break
            time.sleep(0.1)
        return got

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


class PrivilegesTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        if not lib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        if os.geteuid() != 0:
            bar = "!" * 78
            log(f"\n{bar}\n!! SKIPPING the privilege tests: they must run as root (they switch users and grant "
                f"CAP_NET_RAW); euid is {os.geteuid()}.\n{bar}")
            self.skipTest("not root")
        self.nobody = pwd.getpwnam("nobody")
        self.nogroup = grp.getgrgid(self.nobody.pw_gid).gr_name
        self.tmp = tempfile.TemporaryDirectory(prefix="sipex-priv-bin-")
        self.addCleanup(self.tmp.cleanup)

    # ------------------------------------------------------------------ helpers

    def setpriv(self, caps):
        """setpriv prefix: nobody/nogroup, no supplementary groups, `caps` (e.g. 'net_raw' or '') as
        inheritable and ambient capabilities."""
        sp = lib.require_tool("setpriv")
        inh = "-all" + (f",+{caps}" if caps else "")
        return [sp, "--reuid=nobody", f"--regid={self.nogroup}", "--clear-groups",
                f"--inh-caps={inh}", f"--ambient-caps={inh}", "--"]

    def binary_for_nobody(self):
        """The binary if nobody can run it where it is, else a 0755 copy in a 0755 temp dir."""
        sp = lib.require_tool("setpriv")
        cp = subprocess.run([sp, "--reuid=nobody", f"--regid={self.nogroup}", "--clear-groups", "--",
                             "test", "-x", lib.BINARY], capture_output=True)
        if cp.returncode == 0:
            return lib.BINARY
        return self.copy_binary()

    def copy_binary(self):
        os.chmod(self.tmp.name, 0o755)
        path = os.path.join(self.tmp.name, "sip_exporter")
        shutil.copy(lib.BINARY, path)
        os.chmod(path, 0o755)
        return path

    def assert_threads(self, pid, what, want):
        """Every thread of pid has the status fields in `want` ({field: expected string})."""
        bad = {}
        for tid, (comm, st) in threads(pid).items():
            diff = {k: st.get(k) for k, v in want.items() if st.get(k) != v}
            if diff:
                bad[f"{tid} {comm}"] = diff
        self.assertEqual(bad, {}, f"{what}: threads whose credentials differ from {want}:\n{describe(pid)}")

    def assert_no_caps_left(self, ex, fields):
        pid = ex.proc.pid
        main = proc_status(f"/proc/{pid}/status")
        zero = "0000000000000000"
        self.assertEqual({k: main[k] for k in fields}, {k: zero for k in fields},
                         f"main thread still holds capabilities:\n{describe(pid)}")
        self.assertEqual(main["NoNewPrivs"], "1", f"main thread: no_new_privs\n{describe(pid)}")
        self.assert_threads(pid, "after the drop", {**{k: zero for k in fields}, "NoNewPrivs": "1"})
        log(f"{' '.join(ex.cmd[:ex.cmd.index('--capture.interface=lo')])}: {len(threads(pid))} threads, "
            f"{'/'.join(fields)} 0 and NoNewPrivs 1 in each")

    # ------------------------------------------------------------------ root --runas

    def test_root_runas_nobody_drops_everything_and_still_counts(self):
        with Exporter(self, lib.BINARY, extra=["--runas=nobody"]) as ex:
            ex.wait_listening()
            uid, gid = str(self.nobody.pw_uid), str(self.nobody.pw_gid)
            ids = {"Uid": "\t".join([uid] * 4), "Gid": "\t".join([gid] * 4), "Groups": ""}
            main = proc_status(f"/proc/{ex.proc.pid}/status")
            self.assertEqual({k: " ".join(main[k].split()) for k in ids}, {k: " ".join(v.split()) for k, v in ids.items()},
                             f"ids after --runas=nobody:\n{describe(ex.proc.pid)}")
            counted = ex.count_options("127.0.0.21", 7)
            self.assertEqual(counted, 7, "OPTIONS sent over lo after the drop were not all counted")
            # Ids are process-wide (glibc's setuid reaches every thread); check them per thread too.
            for tid, (comm, st) in threads(ex.proc.pid).items():
                self.assertEqual((st["Uid"].split(), st["Gid"].split(), st["Groups"]),
                                 ([uid] * 4, [gid] * 4, ""), f"thread {tid} {comm}")
            self.assert_no_caps_left(ex, CAP_FIELDS)
            self.assertEqual(ex.stop(), 0, f"exit code after SIGTERM\n{ex.stderr()}")

    def test_root_runas_unknown_user_fails_with_one_line(self):
        cp = lib.run_exporter(["--capture.interface=lo", f"--sip.ports={SIP_PORT}", "--web.listen-address=127.0.0.1:0",
                               "--runas=no-such-user-sipex"], timeout=30, check=False)
        lines = cp.stderr.strip().splitlines()
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertEqual(len([ln for ln in lines if "serving" not in ln]), 1, cp.stderr)
        self.assertIn("no-such-user-sipex", lines[-1])

    # ------------------------------------------------------------------ unprivileged

    def test_unprivileged_with_ambient_net_raw_captures_then_clears(self):
        binary = self.binary_for_nobody()
        with Exporter(self, binary, prefix=self.setpriv("net_raw")) as ex:
            ex.wait_listening()
            main = proc_status(f"/proc/{ex.proc.pid}/status")
            self.assertEqual(main["Uid"].split()[0], str(self.nobody.pw_uid), describe(ex.proc.pid))
            counted = ex.count_options("127.0.0.22", 5)
            self.assertEqual(counted, 5, "OPTIONS not counted by the unprivileged exporter")
            self.assert_no_caps_left(ex, ("CapInh", "CapPrm", "CapEff", "CapAmb"))
            self.assertEqual(ex.stop(), 0, ex.stderr())

    def test_unprivileged_with_file_capability_captures_then_clears(self):
        setcap = lib.require_tool("setcap")
        binary = self.copy_binary()
        cp = subprocess.run([setcap, "cap_net_raw+ep", binary], capture_output=True, text=True)
        if cp.returncode != 0:
            self.fail(f"setcap cap_net_raw+ep {binary}: {cp.stderr}")
        with Exporter(self, binary, prefix=self.setpriv("")) as ex:
            ex.wait_listening()
            counted = ex.count_options("127.0.0.23", 5)
            self.assertEqual(counted, 5, "OPTIONS not counted by the exporter with a file capability")
            self.assert_no_caps_left(ex, ("CapInh", "CapPrm", "CapEff", "CapAmb"))
            self.assertEqual(ex.stop(), 0, ex.stderr())

    def test_unprivileged_without_net_raw_fails_with_one_line(self):
        binary = self.binary_for_nobody()
        cmd = [*self.setpriv(""), binary, "--capture.interface=lo", f"--sip.ports={SIP_PORT}",
               "--web.listen-address=127.0.0.1:0"]
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        lines = cp.stderr.strip().splitlines()
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertEqual(len(lines), 1, f"expected a one-line error:\n{cp.stderr}")
        self.assertRegex(lines[0], NOT_PERMITTED)
        self.assertIn("lo", lines[0])
        log(f"without CAP_NET_RAW: exit 1, {lines[0]!r}")


if __name__ == "__main__":
    lib.main()
