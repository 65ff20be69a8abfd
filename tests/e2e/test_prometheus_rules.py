"""The shipped Prometheus rules: `promtool check rules` accepts every deploy/prometheus/*.rules.yml and
`promtool test rules` passes every deploy/prometheus/*.test.yml (hand-computed KPIs and alerts)."""
import glob
import os
import subprocess
import unittest

import sipex_testlib as t

RULES_DIR = os.path.join(t.SOURCE_DIR, "deploy", "prometheus")


def promtool(*args):
    """Runs promtool from the rules directory (rule tests name their rule files relative to it)."""
    exe = t.require_tool("promtool")
    return subprocess.run([exe, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)


def files(pattern):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(RULES_DIR, pattern)))


class PrometheusRulesTest(unittest.TestCase):
    def test_rule_files_exist(self):
        self.assertIn("sip_exporter_kpis.rules.yml", files("*.rules.yml"))
        self.assertIn("sip_exporter_kpis.rules.test.yml", files("*.test.yml"))

    def test_check_rules(self):
        for name in files("*.rules.yml"):
            with self.subTest(file=name):
                cp = promtool("check", "rules", name)
                out = cp.stdout + cp.stderr
                self.assertEqual(cp.returncode, 0, f"promtool check rules {name}:\n{out}")
                self.assertIn("SUCCESS", out, f"promtool check rules {name}:\n{out}")

    def test_rule_unit_tests(self):
        tests = files("*.test.yml")
        self.assertTrue(tests, f"no *.test.yml in {RULES_DIR}")
        for name in tests:
            with self.subTest(file=name):
                cp = promtool("test", "rules", name)
                self.assertEqual(cp.returncode, 0, f"promtool test rules {name}:\n{cp.stdout}{cp.stderr}")


if __name__ == "__main__":
    t.main()
