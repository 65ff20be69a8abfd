"""Packaging: the `cmake --install` layout, the systemd unit (systemd-analyze verify and security),
the Debian package CPack builds, and, as root, a real install, upgrade, removal and purge of it.

The package is built from SIPEX_BUILD_DIR when that is a Release build (as in CI), otherwise from
a fresh Release build of the exporter alone in a temporary directory. Everything the test makes
goes under one temporary directory; the install part restores the machine as it found it (the
package purged, the sip_exporter account deleted if the test created it).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import sipex_testlib as t

PKG = "sip-exporter"
UNIT = "sip_exporter.service"
USER = "sip_exporter"
WANTS_LINK = "/etc/systemd/system/multi-user.target.wants/" + UNIT
CONFFILES = {"/etc/default/sip_exporter", "/etc/sip_exporter/sip_exporter.yaml"}
DSH_STATE = ("/var/lib/systemd/deb-systemd-helper-enabled", "/var/lib/systemd/deb-systemd-helper-masked")


def log(msg):
    sys.stderr.write(f"[package] {msg}\n")
    sys.stderr.flush()


def run(cmd, check=True, timeout=300, **kw):
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}")
    return cp


def project_version():
    with open(os.path.join(t.SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(\s*sip_exporter\s+VERSION\s+([0-9.]+)", f.read()).group(1)


def expected_files():
    """Regular files (relative to /) that an install with the prefix /usr holds, and the .deb."""
    files = {
        "usr/bin/sip_exporter",
        "usr/lib/systemd/system/" + UNIT,
        "usr/lib/sysusers.d/sip_exporter.conf",
        "etc/sip_exporter/sip_exporter.yaml",
        "etc/default/sip_exporter",
        "usr/share/doc/sip-exporter/README.md",
    }
    deploy = os.path.join(t.SOURCE_DIR, "deploy")
    for p in glob.glob(os.path.join(deploy, "prometheus", "*.yml")):
        files.add("usr/share/sip-exporter/prometheus/" + os.path.basename(p))
    for p in glob.glob(os.path.join(deploy, "tls", "*")):
        files.add("usr/share/sip-exporter/tls/" + os.path.basename(p))
    grafana = os.path.join(deploy, "grafana")
    for ext in ("json", "yml", "yaml"):
        for p in glob.glob(os.path.join(grafana, "**", "*." + ext), recursive=True):
            files.add("usr/share/sip-exporter/grafana/" + os.path.relpath(p, grafana))
    return files


def tree_files(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def release_build_dir():
    """SIPEX_BUILD_DIR if it is a configured and built Release tree of this source, else None."""
    b = t.BUILD_DIR
    try:
        with open(os.path.join(b, "CMakeCache.txt")) as f:
            cache = f.read()
    except OSError:
        return None
    if not re.search(r"^CMAKE_BUILD_TYPE:\w+=Release$", cache, re.M):
        return None
    home = re.search(r"^CMAKE_HOME_DIRECTORY:\w+=(.*)$", cache, re.M)
    if not home or os.path.realpath(home.group(1)) != os.path.realpath(t.SOURCE_DIR):
        return None
    if not (os.path.exists(os.path.join(b, "CPackConfig.cmake")) and os.path.exists(os.path.join(b, "sip_exporter"))):
        return None
    return b


def package_state():
    """dpkg's two-letter state of the package ('ii', 'rc', ...), or None when dpkg does not know it."""
    cp = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG], check=False)
    state = cp.stdout.strip()
    return state if cp.returncode == 0 and state and state != "un" else None


def user_exists(name):
    return run(["getent", "passwd", name], check=False).returncode == 0


def group_exists(name):
    return run(["getent", "group", name], check=False).returncode == 0


def exporter_processes():
    """PIDs of running processes whose executable is /usr/bin/sip_exporter."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/exe") in ("/usr/bin/sip_exporter", "/bin/sip_exporter"):
                    pids.append(int(p))
            except OSError:
                pass
    return pids


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cmake = t.require_tool("cmake")
        cls.cpack = t.require_tool("cpack")
        for tool in ("dpkg-deb", "dpkg-shlibdeps", "file"):
            t.require_tool(tool)
        started = time.monotonic()
        cls.tmp = tempfile.mkdtemp(prefix="sipex-package-")
        os.chmod(cls.tmp, 0o755)  # apt reads the .deb as _apt
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)

        cls.build = release_build_dir()
        if cls.build:
            log(f"packaging the Release build {cls.build}")
            cls._protect_build_dir(cls.build)
        else:
            cls.build = os.path.join(cls.tmp, "build")
            log(f"{t.BUILD_DIR} is not a Release build: configuring and building {cls.build}")
            run([cls.cmake, "-S", t.SOURCE_DIR, "-B", cls.build, "-DCMAKE_BUILD_TYPE=Release",
                 "-DSIPEX_BUILD_TESTS=OFF", "-DSIPEX_BUILD_BENCH=OFF"], timeout=300)
            run([cls.cmake, "--build", cls.build, "-j", str(os.cpu_count() or 2), "--target", "sip_exporter"],
                timeout=900)
        log(f"build ready after {time.monotonic() - started:.0f}s")

        # The .deb (cpack first: its preinstall step brings the build, and the globbed file lists,
        # up to date).
        t0 = time.monotonic()
        cls.pkgdir = os.path.join(cls.tmp, "pkg")
        run([cls.cpack, "--config", os.path.join(cls.build, "CPackConfig.cmake"), "-B", cls.pkgdir], timeout=600)
        debs = glob.glob(os.path.join(cls.pkgdir, "*.deb"))
        if len(debs) != 1:
            raise AssertionError(f"cpack made {debs}, expected one .deb")
        cls.deb = debs[0]
        os.chmod(cls.pkgdir, 0o755)
        log(f"cpack made {os.path.basename(cls.deb)} in {time.monotonic() - t0:.0f}s")

        # `cmake --install --prefix /usr` into a staging root (DESTDIR).
        cls.root = os.path.join(cls.tmp, "root")
        run([cls.cmake, "--install", cls.build, "--prefix", "/usr"], env=dict(os.environ, DESTDIR=cls.root))
        cls.installed = tree_files(cls.root)

    @classmethod
    def _protect_build_dir(cls, build):
        """cmake --install and cpack leave install_manifest.txt and sipex-install/ in the build
        tree: put them back as they were once the test is done."""
        manifest = os.path.join(build, "install_manifest.txt")
        saved = None
        if os.path.exists(manifest):
            with open(manifest, "rb") as f:
                saved = f.read()
        staging = os.path.join(build, "sipex-install")
        staging_existed = os.path.exists(staging)

        def restore():
            if saved is None:
                if os.path.exists(manifest):
                    os.remove(manifest)
            else:
                with open(manifest, "wb") as f:
                    f.write(saved)
            if not staging_existed:
                shutil.rmtree(staging, ignore_errors=True)
        cls.addClassCleanup(restore)

    # ---- cmake --install ------------------------------------------------------------------------

    def test_install_layout(self):
        self.assertEqual(self.installed, expected_files())
        for rel in self.installed:
            mode = os.stat(os.path.join(self.root, rel)).st_mode & 0o7777
            self.assertEqual(mode, 0o755 if rel == "usr/bin/sip_exporter" else 0o644, rel)
        # With the prefix /usr the unit is installed as written.
        with open(os.path.join(t.SOURCE_DIR, "deploy", "systemd", UNIT)) as a, \
                open(os.path.join(self.root, "usr/lib/systemd/system", UNIT)) as b:
            self.assertEqual(a.read(), b.read())

    # ---- the unit -------------------------------------------------------------------------------

    def _unit_root(self):
        """The staging root, completed into a system systemd-analyze can check the unit against:
        the host's systemd units (targets the unit depends on) and /bin/kill (its ExecReload)."""
        t.require_tool("systemd-analyze")
        kill = t.require_tool("kill")
        root = os.path.join(self.tmp, "unitroot")
        if not os.path.exists(root):
            shutil.copytree(self.root, root, symlinks=True)
            unitdir = os.path.join(root, "usr/lib/systemd/system")
            seen = set()
            for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
                if os.path.isdir(d) and os.path.realpath(d) not in seen:
                    seen.add(os.path.realpath(d))
                    shutil.copytree(d, unitdir, symlinks=True, dirs_exist_ok=True,
                                    ignore=lambda _d, names: [n for n in names if n.startswith("sip_exporter")])
            shutil.copy2(kill, os.path.join(root, "usr/bin/kill"))
            for d in ("bin", "sbin", "lib"):
                os.symlink("usr/" + d, os.path.join(root, d))
        return root

    def test_unit_verifies(self):
        root = self._unit_root()
        sa = shutil.which("systemd-analyze")
        unit = os.path.join(root, "usr/lib/systemd/system", UNIT)
        cp = run([sa, "verify", f"--root={root}", unit], check=False)
        out = (cp.stdout + cp.stderr).strip()
        self.assertEqual(cp.returncode, 0, out)
        self.assertEqual([l for l in out.splitlines() if "sip_exporter" in l], [], out)

        # The check is real: without the binary, verify complains about ExecStart.
        binary = os.path.join(root, "usr/bin/sip_exporter")
        os.rename(binary, binary + ".away")
        try:
            cp = run([sa, "verify", f"--root={root}", unit], check=False)
        finally:
            os.rename(binary + ".away", binary)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("/usr/bin/sip_exporter is not executable", cp.stdout + cp.stderr)

    def test_unit_exposure(self):
        root = self._unit_root()
        sa = shutil.which("systemd-analyze")
        cp = run([sa, "security", "--offline=true", "--no-pager", f"--root={root}",
                  os.path.join(root, "usr/lib/systemd/system", UNIT)],
                 check=False, env=dict(os.environ, SYSTEMD_COLORS="0"))
        out = cp.stdout + cp.stderr
        m = re.search(r"Overall exposure level for sip_exporter\.service: (\d+(?:\.\d+)?)", out)
        self.assertIsNotNone(m, out)
        flagged = [l.strip() for l in out.splitlines() if l.startswith("✗")]
        log(f"exposure {m.group(1)}; flagged: " + "; ".join(re.sub(r"\s{2,}", " | ", l) for l in flagged))
        self.assertLessEqual(float(m.group(1)), 2.0, out)

    # ---- the .deb ---------------------------------------------------------------------------------

    def test_deb_control(self):
        version = project_version()
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(os.path.basename(self.deb), f"{PKG}_{version}_{arch}.deb")

        info = run(["dpkg-deb", "-I", self.deb]).stdout
        fields = {}
        for name in ("Package", "Version", "Architecture", "Section", "Priority", "Maintainer", "Depends",
                     "Description"):
            fields[name] = run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()
        self.assertEqual(fields["Package"], PKG, info)
        self.assertEqual(fields["Version"], version)
        self.assertEqual(fields["Architecture"], arch)
        self.assertEqual(fields["Section"], "net")
        self.assertTrue(fields["Maintainer"], info)
        self.assertTrue(fields["Description"], info)

        deps = [[re.match(r"\s*([^\s(]+)", alt).group(1) for alt in d.split("|")] for d in fields["Depends"].split(",")]
        names = {n for alts in deps for n in alts}
        # The shared libraries come from dpkg-shlibdeps over what the binary links (--as-needed):
        # civetweb and zlib serve /metrics; prometheus-cpp is no longer used at run time.
        for want in ("libpcap0.8", "libcivetweb1", "zlib1g", "libyaml-cpp", "libsystemd0", "libcrypt1",
                     "procps", "init-system-helpers"):
            self.assertTrue(any(n.startswith(want) for n in names), f"Depends lacks {want}: {fields['Depends']}")
        self.assertTrue(any("systemd" in alts for alts in deps), f"Depends lacks systemd: {fields['Depends']}")

        control = os.path.join(self.tmp, "control")
        run(["dpkg-deb", "-e", self.deb, control])
        with open(os.path.join(control, "conffiles")) as f:
            self.assertEqual(set(f.read().split()), CONFFILES)
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(control, script)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o755, script)
            with open(path) as a, open(os.path.join(t.SOURCE_DIR, "deploy", "debian", script)) as b:
                self.assertEqual(a.read(), b.read(), script)
            run(["sh", "-n", path])
        self.assertFalse(os.path.exists(os.path.join(control, "preinst")))

    def test_deb_contents(self):
        listing = run(["dpkg-deb", "-c", self.deb]).stdout
        files, paths = set(), []
        for line in listing.splitlines():
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            path = path.split(" -> ")[0]
            self.assertEqual(owner, "root/root", line)
            paths.append(path)
            if not mode.startswith("d"):
                files.add(os.path.normpath(path))
        self.assertEqual(files, expected_files(), listing)
        self.assertFalse([p for p in paths if p.startswith("./usr/local")], listing)
        self.assertEqual([f for f in files if f.startswith("usr/bin/")], ["usr/bin/sip_exporter"])
        for bad in ("unit_tests", "gen_capture", "bench", "/lib/cmake", "/include/"):
            self.assertFalse([f for f in files if bad in f], bad)

        data = os.path.join(self.tmp, "data")
        run(["dpkg-deb", "-x", self.deb, data])
        self.assertIn("stripped", run(["file", "-b", os.path.join(data, "usr/bin/sip_exporter")]).stdout)
        self.assertNotIn("not stripped", run(["file", "-b", os.path.join(data, "usr/bin/sip_exporter")]).stdout)
        with open(os.path.join(t.SOURCE_DIR, "deploy", "systemd", UNIT)) as a, \
                open(os.path.join(data, "usr/lib/systemd/system", UNIT)) as b:
            self.assertEqual(a.read(), b.read())

    # ---- a real installation ---------------------------------------------------------------------

    def test_install_upgrade_remove_purge(self):
        if os.geteuid() != 0:
            if os.environ.get("CI"):
                self.fail("installing the package needs root, and CI runs as root")
            self.skipTest("not root: the .deb is not installed for real")
        t.require_tool("dpkg")
        state = package_state()
        if state:
            self.skipTest(f"{PKG} is already known to dpkg here (state {state}): not touching it")
        clash = [p for p in sorted(expected_files()) + [WANTS_LINK[1:]] if os.path.lexists("/" + p)]
        if clash:
            self.skipTest(f"the package would overwrite files already here: {clash}")

        had_user, had_group = user_exists(USER), group_exists(USER)
        if not had_user:
            def drop_user():
                if user_exists(USER):
                    run(["userdel", USER], check=False)
                if not had_group and group_exists(USER):
                    run(["groupdel", USER], check=False)
            self.addCleanup(drop_user)
        self.addCleanup(lambda: package_state() and run(["dpkg", "--purge", PKG], check=False))

        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        apt = shutil.which("apt-get")
        t0 = time.monotonic()
        if apt:
            run([apt, "install", "-y", "-q", "--no-install-recommends", self.deb], env=env, timeout=300)
        else:
            run(["dpkg", "-i", self.deb], env=env)
        log(f"installed in {time.monotonic() - t0:.1f}s")
        self.assertEqual(package_state(), "ii")

        # The account, from sysusers.d.
        self.assertTrue(user_exists(USER))
        pw = run(["getent", "passwd", USER]).stdout.strip().split(":")
        self.assertLess(int(pw[2]), 1000, pw)
        self.assertEqual(pw[5:], ["/nonexistent", "/usr/sbin/nologin"])
        self.assertTrue(group_exists(USER))

        # Enabled, not started.
        self.assertTrue(os.path.islink(WANTS_LINK), WANTS_LINK)
        target = os.path.realpath(WANTS_LINK)
        self.assertTrue(os.path.isfile(target) and os.path.basename(target) == UNIT, target)
        self.assertEqual(exporter_processes(), [])
        if os.path.isdir("/run/systemd/system"):
            self.assertNotEqual(run(["systemctl", "is-active", "--quiet", UNIT], check=False).returncode, 0)

        cp = run(["/usr/bin/sip_exporter", "--version"])
        self.assertIn(f"sip_exporter {project_version()}", cp.stdout + cp.stderr)
        for p in expected_files():
            self.assertTrue(os.path.isfile("/" + p), p)
        listed = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout.split()
        self.assertEqual(CONFFILES, {c for c in listed if c.startswith("/")})

        # Upgrade (a reinstall runs postinst configure VERSION): an edited conffile and a unit the
        # administrator disabled stay as they are.
        with open("/etc/default/sip_exporter", "a") as f:
            f.write("# edited by the administrator\n")
        run(["systemctl", "disable", UNIT])
        self.assertFalse(os.path.lexists(WANTS_LINK))
        run(["dpkg", "-i", self.deb], env=env)
        self.assertEqual(package_state(), "ii")
        self.assertFalse(os.path.lexists(WANTS_LINK), "postinst re-enabled a unit the administrator disabled")
        with open("/etc/default/sip_exporter") as f:
            self.assertIn("# edited by the administrator", f.read())
        self.assertEqual(exporter_processes(), [])

        # Remove: the program goes, the configuration stays.
        run(["dpkg", "--remove", PKG], env=env)
        self.assertEqual(package_state(), "rc")
        self.assertFalse(os.path.exists("/usr/bin/sip_exporter"))
        self.assertFalse(os.path.exists("/usr/lib/systemd/system/" + UNIT))
        for c in CONFFILES:
            self.assertTrue(os.path.exists(c), c)

        # Purge: nothing is left but the account (Debian policy: never delete a system user).
        run(["dpkg", "--purge", PKG], env=env)
        self.assertIsNone(package_state())
        for p in sorted(expected_files()):
            self.assertFalse(os.path.lexists("/" + p), p)
        for d in ("/etc/sip_exporter", "/usr/share/sip-exporter", "/usr/share/doc/sip-exporter"):
            self.assertFalse(os.path.lexists(d), d)
        self.assertFalse(os.path.lexists(WANTS_LINK))
        self.assertFalse(os.path.lexists("/etc/systemd/system/" + UNIT), "a mask was left behind")
        for d in DSH_STATE:
            left = [os.path.join(dp, n) for dp, _, ns in os.walk(d) for n in ns if "sip_exporter" in n]
            self.assertEqual(left, [], "deb-systemd-helper state left behind")
        self.assertTrue(user_exists(USER))


if __name__ == "__main__":
    t.main()
