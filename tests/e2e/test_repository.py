"""Repository contracts: the README's commands are the ones CI runs, every flag is documented."""
import os
import re
import unittest

import sipex_testlib as t


def read(*parts):
    with open(os.path.join(t.SOURCE_DIR, *parts)) as f:
        return f.read()


def readme_commands():
    return re.findall(r"```sh\n(.*?)\n```", read("README.md"), re.S)


class RepositoryTest(unittest.TestCase):
    def test_ci_runs_the_readme_test_command(self):
        cmds = readme_commands()
        self.assertGreaterEqual(len(cmds), 2)
        test_cmd = cmds[1].strip()
        self.assertIn("ctest", test_cmd)
        ci_lines = [l.strip() for l in read(".ci", "run").splitlines() if l.strip() and not l.startswith("#")]
        self.assertIn(test_cmd, ci_lines)

    def test_first_command_runs_the_demo_capture(self):
        first = readme_commands()[0]
        self.assertIn("deploy/setup-debian.sh", first)
        self.assertIn("--capture.file=tests/data/sample.pcap", first)
        self.assertTrue(os.path.exists(os.path.join(t.SOURCE_DIR, "tests", "data", "sample.pcap")))

    def test_every_flag_is_in_the_readme(self):
        help_text = t.run_exporter(["--help"]).stdout
        flags = set(re.findall(r"(--[a-z][a-z0-9.\-]+)", help_text))
        self.assertIn("--capture.interface", flags)
        readme = read("README.md")
        for f in sorted(flags):
            self.assertIn(f"`{f}", readme, f"{f} is not documented in README.md")

    def test_layout(self):
        for d in ("exporter", "include/sipex", "bench", "tests", "deploy", ".ci"):
            self.assertTrue(os.path.isdir(os.path.join(t.SOURCE_DIR, d)), d)
        # DESIGN section 7: one header per stage.
        for h in ("packet", "capture", "decode", "sip_parse", "sip_scan", "aggregate", "metrics", "config"):
            self.assertTrue(os.path.exists(os.path.join(t.SOURCE_DIR, "include", "sipex", h + ".hpp")), h)


if __name__ == "__main__":
    t.main()
