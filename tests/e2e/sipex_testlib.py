"""Helpers shared by the end-to-end tests: run the exporter, parse its exposition text, find ../shared.

Tests are plain unittest modules run by CTest. The environment gives:
  SIPEX_BINARY      path of the sip_exporter binary under test
  SIPEX_SOURCE_DIR  the repository root (../shared is found next to it)
  SIPEX_BUILD_DIR   the build tree (for helper programs such as gen_capture)
A test that needs ../shared skips when it is absent, except when CI is set: then it fails.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SKIP = 77  # CTest SKIP_RETURN_CODE for a module that cannot run at all here

BINARY = os.environ.get("SIPEX_BINARY", "")
SOURCE_DIR = os.environ.get("SIPEX_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("SIPEX_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
SHARED_DIR = os.path.normpath(os.path.join(SOURCE_DIR, "..", "shared"))


def shared_path(*parts):
    """Path under ../shared; skips the test (or fails under CI) when ../shared is missing."""
    p = os.path.join(SHARED_DIR, *parts)
    if not os.path.exists(p):
        msg = f"{p} is missing"
        if os.environ.get("CI"):
            raise AssertionError(msg + " and CI is set: ../shared must be present in CI")
        raise unittest.SkipTest(msg)
    return p


def require_tool(name):
    """Absolute path of an external program; fails when CI is set, else skips, if it is missing."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (deploy/setup-debian.sh --test installs it)"
        if os.environ.get("CI"):
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)
    return path


def run_exporter(args, timeout=120, env=None, check=True):
    """Runs sip_exporter with args; returns CompletedProcess (text mode)."""
    if not BINARY:
        raise AssertionError("SIPEX_BINARY is not set")
    e = dict(os.environ)
    if env:
        e.update(env)
    cp = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout, env=e)
    if check and cp.returncode != 0:
        raise AssertionError(f"sip_exporter {' '.join(args)} exited {cp.returncode}: {cp.stderr.strip()}")
    return cp


# A measured run starts the exporter from a fresh, small interpreter that forks it and reports its
# rusage. Linux carries a process's resident high-water mark into its children: fork copies it
# with the memory map, and exec keeps the larger of it and the new program's (the signal struct's
# maxrss). A child spawned straight from a test process would report that process's peak -- tens
# or hundreds of MiB of generated captures -- instead of its own. The intermediate (python3 -S,
# about 5 MiB) is below the exporter's own baseline, so the number it reports is the exporter's.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_measured(args, timeout=300, env=None):
    """Runs sip_exporter with args; returns (stdout, stderr, exit code, its own peak resident set in
    KiB, hung). On timeout the process group is killed and hung is True (exit code None)."""
    if not BINARY:
        raise AssertionError("SIPEX_BINARY is not set")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rusage") as result:
        p = subprocess.Popen([sys.executable, "-S", "-c", _MEASURE, result.name, BINARY, *args],
                             stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            p.wait(timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            hung = True
        out.seek(0)
        err.seek(0)
        fields = result.read().split()
        rc, peak = (int(fields[0]), int(fields[1])) if len(fields) == 2 else (None, 0)
        if not hung and rc is None:
            raise AssertionError(f"the measuring interpreter failed (exit {p.returncode})")
        return out.read().decode(errors="replace"), err.read().decode(errors="replace"), rc, peak, hung


def metrics_for_files(files, *extra, env=None):
    """Exposition text sip_exporter prints for the given capture files."""
    args = [f"--capture.file={f}" for f in files] + ["--metrics.out=-", *extra]
    return run_exporter(args, env=env).stdout


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """List of (name, labels dict, float value) for every sample in Prometheus text format."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError(f"unparsable exposition line: {line!r}")
        labels = {}
        if m.group(3):
            for lm in _LABEL.finditer(m.group(3)):
                labels[lm.group(1)] = bytes(lm.group(2), "utf-8").decode("unicode_escape")
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def sum_by(samples, name, *labels):
    """{label value tuple (or single value): summed sample value} for metric `name`, dropping zeros."""
    acc = {}
    for n, l, v in samples:
        if n != name:
            continue
        key = tuple(l.get(x, "") for x in labels)
        if len(labels) == 1:
            key = key[0]
        acc[key] = acc.get(key, 0) + v
    return {k: int(v) for k, v in acc.items() if v}


def total(samples, name):
    """Sum of every sample of metric `name` (0 if there is none)."""
    return int(sum(v for n, _, v in samples if n == name))


# What a refused privileged operation prints (ip, tcpreplay, libpcap, the kernel).
NOT_PERMITTED = re.compile(r"not permitted|permission denied|don't have permission|EPERM|EACCES", re.I)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def skip_loudly(test, what, cmd, detail):
    """Skips `test` (its name, for the banner) because `what` was refused; says so where no one can miss it."""
    bar = "!" * 78
    log(f"\n{bar}\n!! SKIPPING {test}: {what} is not permitted here.\n!! {' '.join(cmd)}\n!! {detail.strip()}\n"
        f"!! Run as root (CAP_NET_ADMIN and CAP_NET_RAW) to run this test.\n{bar}")
    raise unittest.SkipTest(f"{what} not permitted: {detail.strip()}")


def run_or_skip(cmd, test, what=None, timeout=60):
    """Runs cmd; a permission error while doing `what` skips `test`, any other failure fails it."""
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        if what and NOT_PERMITTED.search(cp.stderr + cp.stdout):
            skip_loudly(test, what, cmd, cp.stderr or cp.stdout)
        raise AssertionError(f"{' '.join(cmd)} exited {cp.returncode}:\n{cp.stdout}{cp.stderr}")
    return cp


LISTENING = re.compile(r"sip_exporter: serving \S+ on port (\d+)")


def wait_listening(proc, err_path, cmd, test, what, timeout=20):
    """Waits for sip_exporter's "serving /metrics on port N" line in err_path (its stderr) and
    returns N, never 0. If the process ends first: exit 1 with a permission error skips `test`
    (`what` says which capture was refused), anything else fails; so does no line within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with open(err_path, errors="replace") as f:
            err = f.read()
        m = LISTENING.search(err)
        if m and int(m.group(1)) != 0:
            return int(m.group(1))
        rc = proc.poll()
        if rc is not None:
            if rc == 1 and NOT_PERMITTED.search(err):
                skip_loudly(test, what, cmd, f"exited {rc}: {err}")
            raise AssertionError(f"sip_exporter exited {rc} before listening: {' '.join(cmd)}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"sip_exporter printed no listening line (or port 0) within {timeout} s:\n{err}")
        time.sleep(0.05)


class VethNamespace:
    """A network namespace holding one end of a veth pair, the other end left in this namespace;
    `tag` names them (namespace sipex-TAG-PID, links sx<t>PIDi/o, at most 15 characters), `test`
    is what a refused `ip` command skips. Both ends get `mtu`, IPv6 off before they come up (no
    solicitations or MLD reports), and the namespace's lo is up for the exporter's listener."""

    def __init__(self, tag, test, mtu):
        pid = os.getpid()
        self.name = f"sipex-{tag}-{pid}"
        self.inner, self.outer = f"sx{tag[0]}{pid}i", f"sx{tag[0]}{pid}o"
        self.test, self.mtu = test, mtu
        self.created_ns = self.created_link = False

    def run(self, cmd, what=None, timeout=60):
        return run_or_skip(cmd, self.test, what, timeout)

    def exec(self, *cmd):
        return ["ip", "netns", "exec", self.name, *cmd]

    def create(self):
        self.run(["ip", "netns", "add", self.name], "creating a network namespace")
        self.created_ns = True
        self.run(["ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner], "creating a veth pair")
        self.created_link = True
        self.run(["ip", "link", "set", self.inner, "netns", self.name], "moving a veth end into a namespace")
        if os.path.exists("/proc/sys/net/ipv6"):
            with open(f"/proc/sys/net/ipv6/conf/{self.outer}/disable_ipv6", "w") as f:
                f.write("1")
            self.run(self.exec("sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{self.inner}/disable_ipv6"))
        self.run(["ip", "link", "set", self.outer, "mtu", str(self.mtu), "up"])
        self.run(["ip", "-n", self.name, "link", "set", self.inner, "mtu", str(self.mtu), "up"])
        self.run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def scrape(self, port):
        """The exporter's /metrics, fetched from inside the namespace."""
        code = ("import sys, urllib.request\n"
                f"r = urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=10)\n"
                "sys.stdout.write(r.read().decode('utf-8'))\n")
        return self.run(self.exec(sys.executable, "-c", code), timeout=30).stdout

    def destroy(self):
        """Removes the namespace and the veth pair; safe after a partial create()."""
        if self.created_ns:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        if self.created_link:
            # Deleting the namespace deletes its veth end and so the pair; this covers a pair
            # created but never moved.
            subprocess.run(["ip", "link", "del", self.outer], capture_output=True, timeout=30)


class LiveRunTest(unittest.TestCase):
    """Base of the tests that make one expensive run in setUpClass (the subclass's classmethod
    `_run`) and check what it produced in several tests. A SkipTest raised by `_run` would reach
    unittest as one class-level skip with no test run, which main() cannot tell from success: it is
    recorded instead, and every test skips in setUp with its reason."""

    maxDiff = 10000
    skip_reason = None

    @classmethod
    def setUpClass(cls):
        try:
            cls._run()
        except unittest.SkipTest as e:
            cls.skip_reason = str(e)

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)

    @classmethod
    def _run(cls):
        raise NotImplementedError


def main():
    """unittest.main() that turns 'every test skipped' into CTest's skip code."""
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun > 0 and len(r.skipped) == r.testsRun:
        sys.exit(SKIP)
    sys.exit(0)
