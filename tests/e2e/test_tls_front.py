"""/metrics behind the shipped TLS front: basic auth, the allow-list, and no TLS in the exporter.

The exporter serves plain HTTP only (civetweb's TLS crashes against OpenSSL 3 on Debian 12), so
TLS comes from the front in deploy/tls/. This test:
  - makes a throw-away CA and a server certificate (localhost, 127.0.0.1) with openssl;
  - writes an exporter-toolkit web config with one bcrypt user (Python's crypt module, else
    `mkpasswd -m bcrypt`);
  - starts sip_exporter live on lo with --web.listen-address=127.0.0.1:<port>, the web config and
    --web.allow-from=127.0.0.0/8;
  - starts stunnel4 from deploy/tls/stunnel.conf itself, only its ports and certificate paths
    rewritten (and nginx from deploy/tls/nginx.conf the same way, when nginx is installed: the
    alternative front, whose tests skip without it), and checks over TLS, verifying the chain:
    right credentials -> 200 with sip_exporter_build_info; a wrong password, an unknown user, no
    credentials -> 401; plain HTTP to the TLS port -> no 200 and nothing of the exposition; a
    TLS 1.2-only client gets an ECDHE AEAD cipher, a default one TLS 1.3;
  - checks the allow-list from another source address: a second exporter listens on every
    address (0.0.0.0) with --web.allow-from=127.0.0.0/8; a client inside a network namespace,
    10.x over a veth pair, connects (TCP works) but gets no HTTP answer, with the right
    password, while 127.0.0.1 gets 200; with the client's /32 added to the list it gets 200 too
    (so it was the list that refused it);
  - checks that `tls_server_config` in the web config makes the exporter exit 1 with one line.
The only skip is a host where raw capture or a network namespace is not permitted (not root),
besides missing tools outside CI.
"""
import base64
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import sipex_testlib as lib

USER = "prometheus"
PASSWORD = "s3cret-scrape"
SIP_PORT = 15381          # --sip.ports: nothing is sent there, the capture just has to be open
STUNNEL_CONF = os.path.join(lib.SOURCE_DIR, "deploy", "tls", "stunnel.conf")
NGINX_CONF = os.path.join(lib.SOURCE_DIR, "deploy", "tls", "nginx.conf")
SHIPPED_TLS_DIR = "/etc/sip_exporter/tls/"
NOT_PERMITTED = re.compile(r"not permitted|permission denied|EPERM|EACCES|don't have permission", re.I)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def skip_loudly(what, detail):
    bar = "!" * 78
    log(f"\n{bar}\n!! SKIPPING the TLS front test: {what} is not permitted here.\n!! {detail.strip()}\n"
        f"!! Run as root (CAP_NET_RAW, CAP_NET_ADMIN) to run this test.\n{bar}")
    raise unittest.SkipTest(f"{what} not permitted: {detail.strip()}")


def terminate(proc):
    """SIGTERM, then SIGKILL after 15 s; nothing if proc never started or has ended."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(cmd, timeout=60, check=True):
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {cp.returncode}:\n{cp.stdout}{cp.stderr}")
    return cp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(password):
    """A $2b$ hash: Python's crypt module (deprecated, present in 3.11), else mkpasswd (whois)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # noqa: PLC0415
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
        if h and h.startswith("$2"):
            return h
    except ImportError:
        pass
    mkpasswd = lib.require_tool("mkpasswd")
    return run([mkpasswd, "-m", "bcrypt", "-R", "10", password]).stdout.strip()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def make_pki(d):
    """Throw-away CA and a server certificate for localhost/127.0.0.1 signed by it."""
    openssl = lib.require_tool("openssl")
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = os.path.join(d, "server.key"), os.path.join(d, "server.csr"), os.path.join(d, "server.crt")
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=sipex test CA"])
    run([openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=localhost"])
    run([openssl, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext])
    os.chmod(key, 0o600)
    return ca_crt


def rewrite(text, replacements):
    """Mechanical rewrite of a shipped file: each (old, new) must occur exactly `count` times."""
    for old, new, count in replacements:
        n = text.count(old)
        if n != count:
            raise AssertionError(f"the shipped file has {n} x {old!r}, expected {count}: was it restructured?")
        text = text.replace(old, new)
    return text


class Exporter:
    """sip_exporter live on lo; its stderr in a file."""

    def __init__(self, d, name, listen, web_config, allow_from):
        self.err_path = os.path.join(d, f"{name}.stderr")
        self.cmd = [lib.BINARY, "--capture.interface=lo", f"--sip.ports={SIP_PORT}",
                    f"--web.listen-address={listen}", f"--web.config.file={web_config}",
                    f"--web.allow-from={allow_from}"]
        self.proc = None
        self.port = None

    def start(self):
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 15
        while True:
            text = self.stderr()
            m = re.search(r"sip_exporter: serving \S+ on port (\d+)", text)
            if m:
                self.port = int(m.group(1))
                return self
            rc = self.proc.poll()
            if rc is not None:
                if NOT_PERMITTED.search(text):
                    skip_loudly("raw capture on lo", f"{' '.join(self.cmd)}: {text}")
                raise AssertionError(f"sip_exporter exited {rc} before listening: {' '.join(self.cmd)}\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sip_exporter printed no listening line within 15 s:\n{text}")
            time.sleep(0.05)

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        terminate(self.proc)


class Front:
    """A TLS front process (stunnel or nginx) started from a rewritten copy of the shipped file."""

    def __init__(self, name, cmd, port, log_path):
        self.name, self.cmd, self.port, self.log_path = name, cmd, port, log_path
        self.proc = None

    def start(self):
        with open(self.log_path, "w") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {' '.join(self.cmd)}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} is not listening on {self.port} after 15 s:\n{self.log()}")
            time.sleep(0.05)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        terminate(self.proc)


class Namespace:
    """A network namespace joined to this one by a veth pair: host 10.X.Y.1/30, inside 10.X.Y.2/30."""

    def __init__(self):
        pid = os.getpid()
        self.name = f"sipex-tls-{pid}"
        self.outer, self.inner = f"sxt{pid}o", f"sxt{pid}i"
        self.host_ip = f"10.{200 + (pid >> 14) % 50}.{(pid >> 6) % 256}.{(pid % 64) * 4 + 1}"
        self.client_ip = self.host_ip[:self.host_ip.rfind(".") + 1] + str(int(self.host_ip.rsplit(".", 1)[1]) + 1)
        self.created_ns = self.created_link = False

    def _run(self, cmd, what):
        cp = run(cmd, check=False)
        if cp.returncode != 0:
            if NOT_PERMITTED.search(cp.stderr):
                skip_loudly(what, f"{' '.join(cmd)}: {cp.stderr}")
            raise AssertionError(f"{' '.join(cmd)} exited {cp.returncode}: {cp.stderr}")

    def create(self):
        lib.require_tool("ip")
        self._run(["ip", "netns", "add", self.name], "creating a network namespace")
        self.created_ns = True
        self._run(["ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner], "creating a veth pair")
        self.created_link = True
        self._run(["ip", "link", "set", self.inner, "netns", self.name], "moving a veth end")
        self._run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.outer], "adding an address")
        self._run(["ip", "link", "set", self.outer, "up"], "bringing a link up")
        self._run(["ip", "-n", self.name, "addr", "add", f"{self.client_ip}/30", "dev", self.inner], "adding an address")
        self._run(["ip", "-n", self.name, "link", "set", self.inner, "up"], "bringing a link up")
        self._run(["ip", "-n", self.name, "link", "set", "lo", "up"], "bringing a link up")

    def http_get(self, port, authorization):
        """GET /metrics from inside the namespace; returns (connected, status line or '', body text)."""
        code = (
            "import socket, sys\n"
            f"s = socket.create_connection(({self.host_ip!r}, {port}), timeout=5)\n"
            "print('CONNECTED', flush=True)\n"
            f"s.sendall(b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: {authorization}\\r\\n"
            "Connection: close\\r\\n\\r\\n')\n"
            "data = b''\n"
            "try:\n"
            "    while True:\n"
            "        b = s.recv(65536)\n"
            "        if not b: break\n"
            "        data += b\n"
            "except OSError as e:\n"
            "    print('RECV-ERROR', e, flush=True)\n"
            "sys.stdout.write('DATA ' + data.decode('latin-1'))\n")
        cp = run(["ip", "netns", "exec", self.name, sys.executable, "-c", code], check=False, timeout=30)
        out = cp.stdout
        connected = out.startswith("CONNECTED")
        data = out.split("DATA ", 1)[1] if "DATA " in out else ""
        status = data.split("\r\n", 1)[0] if data.startswith("HTTP/") else ""
        return connected, status, data, cp.stderr

    def destroy(self):
        if self.created_ns:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        if self.created_link:
            subprocess.run(["ip", "link", "del", self.outer], capture_output=True, timeout=30)


class TlsFrontTest(unittest.TestCase):
    skip_reason = None
    tmp = None
    exporter = None
    fronts = {}

    @classmethod
    def setUpClass(cls):
        # A SkipTest raised here would be one class-level skip that sipex_testlib.main() cannot
        # tell from success: record it and skip in setUp.
        try:
            cls._start()
        except unittest.SkipTest as e:
            cls.skip_reason = str(e)
            cls._stop()
        except BaseException:
            cls._stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls._stop()

    @classmethod
    def _stop(cls):
        for f in cls.fronts.values():
            f.stop()
        cls.fronts = {}
        if cls.exporter is not None:
            cls.exporter.stop()
            cls.exporter = None
        if cls.tmp is not None:
            cls.tmp.cleanup()
            cls.tmp = None

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)

    @classmethod
    def _start(cls):
        if not lib.BINARY:
            raise AssertionError("SIPEX_BINARY is not set")
        if os.geteuid() != 0:
            skip_loudly("live capture and network namespaces as a non-root user", f"euid {os.geteuid()}")
        cls.stunnel = lib.require_tool("stunnel4")
        cls.tmp = tempfile.TemporaryDirectory(prefix="sipex-tls-")
        d = cls.dir = cls.tmp.name
        cls.ca = make_pki(d)
        cls.web_config = os.path.join(d, "web.yml")
        with open(cls.web_config, "w") as f:
            f.write(f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD)}'\n")
        cls.exporter = Exporter(d, "exporter", "127.0.0.1:0", cls.web_config, "127.0.0.0/8").start()
        cls.fronts = {}
        cls.fronts["stunnel"] = cls._start_stunnel(d, cls.exporter.port)
        cls.nginx = shutil.which("nginx")
        if cls.nginx:
            cls.fronts["nginx"] = cls._start_nginx(d, cls.exporter.port)

    @classmethod
    def _start_stunnel(cls, d, backend):
        port = free_port()
        with open(STUNNEL_CONF) as f:
            conf = rewrite(f.read(), [("\naccept = 9574\n", f"\naccept = 127.0.0.1:{port}\n", 1),
                                      ("\nconnect = 127.0.0.1:9573\n", f"\nconnect = 127.0.0.1:{backend}\n", 1),
                                      ("= " + SHIPPED_TLS_DIR, "= " + d + "/", 2)])
        path = os.path.join(d, "stunnel.conf")
        with open(path, "w") as f:
            f.write(conf)
        return Front("stunnel", [cls.stunnel, path], port, os.path.join(d, "stunnel.log")).start()

    @classmethod
    def _start_nginx(cls, d, backend):
        port = free_port()
        with open(NGINX_CONF) as f:
            server = rewrite(f.read(), [("listen 9574 ssl;", f"listen 127.0.0.1:{port} ssl;", 1),
                                        ("listen [::]:9574 ssl;", "", 1),
                                        ("proxy_pass http://127.0.0.1:9573;", f"proxy_pass http://127.0.0.1:{backend};", 1),
                                        ("ssl_certificate     " + SHIPPED_TLS_DIR, f"ssl_certificate     {d}/", 1),
                                        ("ssl_certificate_key " + SHIPPED_TLS_DIR, f"ssl_certificate_key {d}/", 1)])
        with open(os.path.join(d, "nginx-server.conf"), "w") as f:
            f.write(server)
        main = os.path.join(d, "nginx.conf")
        with open(main, "w") as f:
            f.write(f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\n"
                    f"error_log {d}/nginx-error.log notice;\nevents {{ worker_connections 64; }}\n"
                    f"http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/nginx-body;\n"
                    f"  proxy_temp_path {d}/nginx-proxy;\n  fastcgi_temp_path {d}/nginx-fcgi;\n"
                    f"  uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n"
                    f"  include {d}/nginx-server.conf;\n}}\n")
        run([cls.nginx, "-t", "-c", main, "-e", f"{d}/nginx-error.log"])
        return Front("nginx", [cls.nginx, "-c", main, "-e", f"{d}/nginx-error.log"], port,
                     os.path.join(d, "nginx.log")).start()

    # ------------------------------------------------------------------ helpers

    def front(self, name):
        if name not in self.fronts:
            self.skipTest(f"{name} is not installed: deploy/tls/{name}.conf (an optional front) is not exercised")
        return self.fronts[name]

    def tls_context(self, **kw):
        ctx = ssl.create_default_context(cafile=self.ca)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def https_get(self, front, authorization=None, ctx=None):
        """(status, body, negotiated version, cipher) of GET /metrics through the front, the chain verified."""
        conn = http.client.HTTPSConnection("localhost", front.port, timeout=10, context=ctx or self.tls_context())
        try:
            conn.connect()
            version, cipher = conn.sock.version(), conn.sock.cipher()[0]
            headers = {"Authorization": authorization} if authorization else {}
            conn.request("GET", "/metrics", headers=headers)
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            return r.status, body, version, cipher, dict(r.getheaders())
        finally:
            conn.close()

    def plain_http_to(self, port):
        """Whatever comes back from a plain-HTTP request (with good credentials) sent to `port`."""
        data = b""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: {basic(USER, PASSWORD)}\r\n"
                      "Connection: close\r\n\r\n".encode())
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
            except OSError:
                pass
        return data

    # ------------------------------------------------------------------ the checks, per front

    def check_right_credentials(self, name):
        f = self.front(name)
        status, body, version, cipher, _ = self.https_get(f, basic(USER, PASSWORD))
        self.assertEqual(status, 200, f"{name}: right credentials over TLS\n{body[:500]}\n{f.log()}")
        self.assertIn("sip_exporter_build_info", body, name)
        self.assertIn(version, ("TLSv1.3", "TLSv1.2"), name)
        log(f"{name}: 200 over {version} ({cipher}), {len(body)} bytes")

    def check_rejected(self, name, authorization):
        status, body, _, _, headers = self.https_get(self.front(name), authorization)
        self.assertEqual(status, 401, f"{name}: Authorization {authorization!r}\n{body[:300]}")
        self.assertNotIn("sip_exporter_build_info", body, name)
        self.assertIn("Basic", headers.get("WWW-Authenticate", ""), f"{name}: 401 without a Basic challenge")

    def check_plain_http_refused(self, name):
        data = self.plain_http_to(self.front(name).port)
        head = data.split(b"\r\n", 1)[0]
        self.assertFalse(re.match(rb"HTTP/1\.[01] 200", head), f"{name}: plain HTTP answered 200: {data[:300]!r}")
        self.assertNotIn(b"sip_exporter", data, f"{name}: plain HTTP got the exposition")
        log(f"{name}: plain HTTP to the TLS port -> {head[:80]!r} ({len(data)} bytes)")

    def check_modern_tls(self, name):
        f = self.front(name)
        status, _, version, cipher, _ = self.https_get(f, basic(USER, PASSWORD))
        self.assertEqual((status, version), (200, "TLSv1.3"), f"{name}: a default client negotiates TLS 1.3")
        ctx = self.tls_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        status, _, version, cipher, _ = self.https_get(f, basic(USER, PASSWORD), ctx)
        self.assertEqual((status, version), (200, "TLSv1.2"), name)
        self.assertRegex(cipher, r"^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$",
                         f"{name}: TLS 1.2 cipher {cipher} is not ECDHE + AEAD")
        # A TLS 1.2 client offering only CBC suites is refused.
        ctx = self.tls_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA")
        with self.assertRaises(ssl.SSLError, msg=f"{name}: accepted a CBC-only TLS 1.2 client"):
            self.https_get(f, basic(USER, PASSWORD), ctx)

    def test_stunnel_right_credentials_200(self):
        self.check_right_credentials("stunnel")

    def test_stunnel_wrong_password_401(self):
        self.check_rejected("stunnel", basic(USER, PASSWORD + "x"))

    def test_stunnel_unknown_user_401(self):
        self.check_rejected("stunnel", basic("mallory", PASSWORD))

    def test_stunnel_no_credentials_401(self):
        self.check_rejected("stunnel", None)

    def test_stunnel_plain_http_refused(self):
        self.check_plain_http_refused("stunnel")

    def test_stunnel_modern_tls_only(self):
        self.check_modern_tls("stunnel")

    def test_nginx_right_credentials_200(self):
        self.check_right_credentials("nginx")

    def test_nginx_wrong_password_401(self):
        self.check_rejected("nginx", basic(USER, PASSWORD + "x"))

    def test_nginx_no_credentials_401(self):
        self.check_rejected("nginx", None)

    def test_nginx_plain_http_refused(self):
        self.check_plain_http_refused("nginx")

    def test_nginx_modern_tls_only(self):
        self.check_modern_tls("nginx")

    def test_exporter_itself_speaks_plain_http_with_auth(self):
        """The backend the fronts use: plain HTTP on 127.0.0.1, password still required."""
        for auth, want in ((basic(USER, PASSWORD), 200), (basic(USER, "nope"), 401), (None, 401)):
            conn = http.client.HTTPConnection("127.0.0.1", self.exporter.port, timeout=10)
            try:
                conn.request("GET", "/metrics", headers={"Authorization": auth} if auth else {})
                self.assertEqual(conn.getresponse().status, want, f"direct, Authorization {auth!r}")
            finally:
                conn.close()

    # ------------------------------------------------------------------ the allow-list

    def test_allow_list_refuses_other_source_address(self):
        ns = Namespace()
        exporters = []
        try:
            ns.create()
            good = basic(USER, PASSWORD)
            # Every address, loopback allowed only: the namespace's 10.x client is refused.
            e = Exporter(self.dir, "allow-lo", ":0", self.web_config, "127.0.0.0/8")
            exporters.append(e)
            e.start()
            connected, status, data, err = ns.http_get(e.port, good)
            self.assertTrue(connected, f"no TCP connection from {ns.client_ip} to {ns.host_ip}:{e.port}: {err}")
            self.assertEqual(status, "", f"{ns.client_ip} is outside --web.allow-from=127.0.0.0/8 but got {status!r}")
            self.assertNotIn("sip_exporter", data)
            conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
            conn.request("GET", "/metrics", headers={"Authorization": good})
            self.assertEqual(conn.getresponse().status, 200, "127.0.0.1 is inside the allow-list")
            conn.close()
            log(f"allow-list: {ns.client_ip} -> {e.port} connected, no HTTP answer ({data[:60]!r}); 127.0.0.1 -> 200")
            e.stop()
            # The same client with its /32 on the list: 200, so it was the list that refused it.
            e = Exporter(self.dir, "allow-ns", ":0", self.web_config, f"127.0.0.0/8,{ns.client_ip}/32")
            exporters.append(e)
            e.start()
            connected, status, data, err = ns.http_get(e.port, good)
            self.assertTrue(connected, err)
            self.assertRegex(status, r"^HTTP/1\.[01] 200", f"{ns.client_ip} is on the list now\n{data[:300]}{err}")
            self.assertIn("sip_exporter_build_info", data)
        finally:
            for e in exporters:
                e.stop()
            ns.destroy()

    # ------------------------------------------------------------------ no TLS in the exporter

    def test_tls_server_config_is_refused(self):
        cfg = os.path.join(self.dir, "web-tls.yml")
        with open(cfg, "w") as f:
            f.write(f"tls_server_config:\n  cert_file: {self.dir}/server.crt\n  key_file: {self.dir}/server.key\n"
                    f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD)}'\n")
        cp = lib.run_exporter(["--capture.interface=lo", f"--sip.ports={SIP_PORT}", "--web.listen-address=127.0.0.1:0",
                               f"--web.config.file={cfg}"], timeout=30, check=False)
        lines = cp.stderr.strip().splitlines()
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertEqual(len(lines), 1, f"expected a one-line error:\n{cp.stderr}")
        self.assertIn("tls_server_config", lines[0])
        self.assertIn(cfg, lines[0])
        log(f"tls_server_config: exit 1, {lines[0]!r}")


if __name__ == "__main__":
    lib.main()
