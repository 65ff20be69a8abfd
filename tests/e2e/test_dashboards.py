"""Dashboards and alert rules refer only to what the exporter emits, and every query runs on Prometheus.

Checked files: everything under deploy/grafana (the Grafana dashboard, its Grafana alert rules, the
datasource and dashboard providers) and every deploy/prometheus/*.rules.yml (recording and alerting
rules). The test
  1. runs the real exporter (--metrics.out=-) on captures that exercise every metric family:
     gen_capture's `transports` and `full` profiles, and a small capture written here (CALLS_CAPTURE:
     answered calls ended by BYE, INVITEs never answered, 503/408/486/603/380, REGISTER with a
     challenge) for the call-duration histogram and the transaction timeouts. What it prints is the
     emitted set: metric names with the label names each carries; histograms appear as
     `_bucket` (with `le`), `_sum` and `_count`. Prometheus adds `instance` and `job` to every series,
     and the `up` series;
  2. parses every PromQL expression (dashboard targets and template variable queries, Grafana alert
     queries, rule `expr`s) with the small PromQL parser below and infers the label set of every
     sub-expression: selectors, functions, aggregations (by/without), binary operators with
     on/ignoring/group_left/group_right, label_replace/label_join, histogram_quantile, and the
     recording rules (whose names are metrics here, with the labels their own expressions give).
     A metric name, matcher label, grouping or matching label, legend `{{label}}` or alert template
     `$labels.x` that the exporter (or the recording rule) does not have is an error naming the file,
     the panel or rule, and the expression. Grafana variables are substituted first
     ($__rate_interval -> 1m, $peer -> .*, ...), and every multi-value variable must sit in a `=~`
     matcher;
  3. checks the checker: wrong references of each kind must be reported;
  4. checks the dashboard's structure (unique ids, non-overlapping gridPos, the `${DS_PROMETHEUS}`
     variable or the provisioned uid as datasource of every panel and target, the variables) and
     that the `code` value mapping is exactly SIP_REASON_PHRASES below, the IANA "Response Codes"
     registry of SIP parameters;
  5. checks the Grafana alert provisioning file (apiVersion 1, groups, rules, queries on the
     provisioned datasource uid), and that its 503 and 408 alerts are the Prometheus alerts they
     mirror (GRAFANA_TWINS: same expression, `for` and severity);
  6. starts a real Prometheus (1 s scrapes and rule evaluations) loaded with the shipped rule files,
     scraping the exporter fed through named pipes (the exporter reads a pipe as a capture file and
     serves /metrics until the last pipe closes: no raw capture is needed), runs every dashboard,
     variable and alert query as an instant and a range query (each must succeed, and every panel
     but those that need an hour of history must show data), and has promtool evaluate the Grafana
     alert queries on synthetic history (a rising share fires, a steady one does not).

The code -> reason phrase mapping in deploy/grafana/sip_exporter.json is generated from
SIP_REASON_PHRASES by code_value_mappings() (tables) and code_display_overrides() (the time series
by code); test_code_reason_phrases fails when the JSON and the table differ, and
`python3 tests/e2e/test_dashboards.py --update-code-mappings` rewrites them from the table.
"""
import copy
import glob
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import sipex_testlib as lib

HERE = os.path.dirname(os.path.abspath(__file__))
GRAFANA_DIR = os.path.join(lib.SOURCE_DIR, "deploy", "grafana")
PROMETHEUS_DIR = os.path.join(lib.SOURCE_DIR, "deploy", "prometheus")
DASHBOARD = os.path.join(GRAFANA_DIR, "sip_exporter.json")
ALERTS = os.path.join(GRAFANA_DIR, "sip_exporter_alerts.yaml")
DATASOURCE = os.path.join(GRAFANA_DIR, "datasource.yaml")
PROVIDER = os.path.join(GRAFANA_DIR, "dashboard-provider.yaml")
GEN = os.environ.get("SIPEX_GEN_CAPTURE") or os.path.join(lib.BUILD_DIR, "tests", "gen_capture")
SEED = 1608

# ------------------------------------------------------------------------------------------------
# The IANA registry "Session Initiation Protocol (SIP) Parameters", sub-registry "Response Codes"
# (https://www.iana.org/assignments/sip-parameters, RFC 3261 section 27.4), complete: every
# registered code with its standard reason phrase and the RFC that registered it (or last changed
# its phrase). 75 codes. Notes:
#   202  registered by RFC 3265; RFC 6665 deprecated its use (the registry marks it "Deprecated").
#   428, 436, 437, 438  registered by RFC 4474; RFC 8224 obsoleted 4474 and renamed 436 (from
#        "Bad Identity-Info") and 437 (from "Unsupported Certificate"): the current phrases are used.
#   489  registered by RFC 3265, now RFC 6665.
#   Some registrations come from RFCs other than the usual list: 204 (RFC 5839), 422 (RFC 4028),
#   425 (RFC 8876), 429 (RFC 3892), 469 (RFC 6086), 580 (RFC 3312). RFC 3428 (MESSAGE) and RFC
#   7090 (PSAP callback) register no response code.
SIP_REASON_PHRASES = {
    # 1xx provisional
    "100": ("Trying", "RFC 3261"),
    "180": ("Ringing", "RFC 3261"),
    "181": ("Call Is Being Forwarded", "RFC 3261"),
    "182": ("Queued", "RFC 3261"),
    "183": ("Session Progress", "RFC 3261"),
    "199": ("Early Dialog Terminated", "RFC 6228"),
    # 2xx success
    "200": ("OK", "RFC 3261"),
    "202": ("Accepted", "RFC 3265"),
    "204": ("No Notification", "RFC 5839"),
    # 3xx redirection
    "300": ("Multiple Choices", "RFC 3261"),
    "301": ("Moved Permanently", "RFC 3261"),
    "302": ("Moved Temporarily", "RFC 3261"),
    "305": ("Use Proxy", "RFC 3261"),
    "380": ("Alternative Service", "RFC 3261"),
    # 4xx request failure
    "400": ("Bad Request", "RFC 3261"),
    "401": ("Unauthorized", "RFC 3261"),
    "402": ("Payment Required", "RFC 3261"),
    "403": ("Forbidden", "RFC 3261"),
    "404": ("Not Found", "RFC 3261"),
    "405": ("Method Not Allowed", "RFC 3261"),
    "406": ("Not Acceptable", "RFC 3261"),
    "407": ("Proxy Authentication Required", "RFC 3261"),
    "408": ("Request Timeout", "RFC 3261"),
    "410": ("Gone", "RFC 3261"),
    "412": ("Conditional Request Failed", "RFC 3903"),
    "413": ("Request Entity Too Large", "RFC 3261"),
    "414": ("Request-URI Too Long", "RFC 3261"),
    "415": ("Unsupported Media Type", "RFC 3261"),
    "416": ("Unsupported URI Scheme", "RFC 3261"),
    "417": ("Unknown Resource-Priority", "RFC 4412"),
    "420": ("Bad Extension", "RFC 3261"),
    "421": ("Extension Required", "RFC 3261"),
    "422": ("Session Interval Too Small", "RFC 4028"),
    "423": ("Interval Too Brief", "RFC 3261"),
    "424": ("Bad Location Information", "RFC 6442"),
    "425": ("Bad Alert Message", "RFC 8876"),
    "428": ("Use Identity Header", "RFC 8224"),
    "429": ("Provide Referrer Identity", "RFC 3892"),
    "430": ("Flow Failed", "RFC 5626"),
    "433": ("Anonymity Disallowed", "RFC 5079"),
    "436": ("Bad Identity Info", "RFC 8224"),
    "437": ("Unsupported Credential", "RFC 8224"),
    "438": ("Invalid Identity Header", "RFC 8224"),
    "439": ("First Hop Lacks Outbound Support", "RFC 5626"),
    "440": ("Max-Breadth Exceeded", "RFC 5393"),
    "469": ("Bad Info Package", "RFC 6086"),
    "470": ("Consent Needed", "RFC 5360"),
    "480": ("Temporarily Unavailable", "RFC 3261"),
    "481": ("Call/Transaction Does Not Exist", "RFC 3261"),
    "482": ("Loop Detected", "RFC 3261"),
    "483": ("Too Many Hops", "RFC 3261"),
    "484": ("Address Incomplete", "RFC 3261"),
    "485": ("Ambiguous", "RFC 3261"),
    "486": ("Busy Here", "RFC 3261"),
    "487": ("Request Terminated", "RFC 3261"),
    "488": ("Not Acceptable Here", "RFC 3261"),
    "489": ("Bad Event", "RFC 6665"),
    "491": ("Request Pending", "RFC 3261"),
    "493": ("Undecipherable", "RFC 3261"),
    "494": ("Security Agreement Required", "RFC 3329"),
    # 5xx server failure
    "500": ("Server Internal Error", "RFC 3261"),
    "501": ("Not Implemented", "RFC 3261"),
    "502": ("Bad Gateway", "RFC 3261"),
    "503": ("Service Unavailable", "RFC 3261"),
    "504": ("Server Time-out", "RFC 3261"),
    "505": ("Version Not Supported", "RFC 3261"),
    "513": ("Message Too Large", "RFC 3261"),
    "555": ("Push Notification Service Not Supported", "RFC 8599"),
    "580": ("Precondition Failure", "RFC 3312"),
    # 6xx global failure
    "600": ("Busy Everywhere", "RFC 3261"),
    "603": ("Decline", "RFC 3261"),
    "604": ("Does Not Exist Anywhere", "RFC 3261"),
    "606": ("Not Acceptable", "RFC 3261"),
    "607": ("Unwanted", "RFC 8197"),
    "608": ("Rejected", "RFC 8688"),
}
REGISTRY_SIZE = 75
# Codes the exporter may count that the registry does not hold (any 100-699) are shown by this
# regex mapping, after the table: "299" -> "299 (unregistered)".
UNREGISTERED_PATTERN = "/^([1-6][0-9][0-9])$/"
UNREGISTERED_TEXT = "$1 (unregistered)"


def code_value_mappings():
    """The Grafana value mappings for a field holding a SIP status code ("503"): one "value"
    mapping with every registered code ("503" -> "503 Service Unavailable"), then one "regex"
    mapping for any other three-digit code. Used as a field override on the `code` field of table
    panels (never as a panel default: a count of 200 would read "200 OK")."""
    options = {code: {"index": i, "text": f"{code} {phrase}"}
               for i, (code, (phrase, _)) in enumerate(sorted(SIP_REASON_PHRASES.items()))}
    return [{"type": "value", "options": options},
            {"type": "regex", "options": {"pattern": UNREGISTERED_PATTERN,
                                          "result": {"index": len(options), "text": UNREGISTERED_TEXT}}}]


def code_display_overrides():
    """Field overrides for a time series panel whose legend is `{{code}}`: value mappings do not
    apply to series names, so each registered code's series is renamed ("503" ->
    "503 Service Unavailable") by a byName override."""
    return [{"matcher": {"id": "byName", "options": code},
             "properties": [{"id": "displayName", "value": f"{code} {phrase}"}]}
            for code, (phrase, _) in sorted(SIP_REASON_PHRASES.items())]


# ------------------------------------------------------------------------------------------------
# A small YAML reader for the provisioning and rule files (PyYAML is not a dependency): block
# mappings and sequences, plain, quoted and block (| >) scalars, one-line flow collections, comments.
# Where PyYAML happens to be installed, the two must agree on every file read here
# (test_yaml_reader_agrees_with_pyyaml).

class YamlError(Exception):
    pass


def _yaml_scalar(text):
    t = text.strip()
    if t == "" or t in ("~", "null", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t[0] == '"':
        if not t.endswith('"') or len(t) < 2:
            raise YamlError(f"unterminated string {t!r}")
        return json.loads(t)
    if t[0] == "'":
        if not t.endswith("'") or len(t) < 2:
            raise YamlError(f"unterminated string {t!r}")
        return t[1:-1].replace("''", "'")
    if t[0] in "[{":
        value, rest = _yaml_flow(t, 0)
        if t[rest:].strip():
            raise YamlError(f"text after a flow collection: {t!r}")
        return value
    if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", t):
        return int(t)
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", t):
        return float(t)
    return t


def _yaml_flow(t, i):
    """One flow collection or scalar starting at t[i]; returns (value, index after it)."""
    while t[i] == " ":
        i += 1
    if t[i] in "[{":
        close = "]" if t[i] == "[" else "}"
        is_map = t[i] == "{"
        out = {} if is_map else []
        i += 1
        while True:
            while t[i] == " ":
                i += 1
            if t[i] == close:
                return out, i + 1
            if is_map:
                m = re.compile(r"\s*([^:,{}\[\]]+?)\s*:\s").match(t, i)
                if not m:
                    raise YamlError(f"bad flow mapping {t!r}")
                key = _yaml_scalar(m.group(1))
                value, i = _yaml_flow(t, m.end())
                out[key] = value
            else:
                value, i = _yaml_flow(t, i)
                out.append(value)
            while t[i] == " ":
                i += 1
            if t[i] == ",":
                i += 1
            elif t[i] != close:
                raise YamlError(f"bad flow collection {t!r}")
    if t[i] in "\"'":
        q = t[i]
        j = i + 1
        while True:
            if t[j] == "\\" and q == '"':
                j += 2
                continue
            if t[j] == q:
                if q == "'" and j + 1 < len(t) and t[j + 1] == "'":
                    j += 2
                    continue
                break
            j += 1
        return _yaml_scalar(t[i:j + 1]), j + 1
    m = re.compile(r"[^,\]}]*").match(t, i)
    return _yaml_scalar(m.group(0)), m.end()


def _strip_comment(line):
    """The line without a trailing comment (a # at the start or after a space, outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'" and (i == 0 or line[i - 1] in " [{,:-"):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


class _YamlReader:
    def __init__(self, text):
        self.lines = text.splitlines()
        self.i = 0

    def _skip_blank(self):
        while self.i < len(self.lines):
            s = _strip_comment(self.lines[self.i])
            if s.strip() and s.strip() != "---":
                return
            self.i += 1

    def _peek(self):
        """(indent, content) of the next meaningful line, or None."""
        self._skip_blank()
        if self.i >= len(self.lines):
            return None
        s = _strip_comment(self.lines[self.i])
        content = s.lstrip(" ")
        if content.startswith("\t"):
            raise YamlError(f"line {self.i + 1}: tab indentation")
        return len(s) - len(content), content

    def parse(self):
        p = self._peek()
        if p is None:
            return None
        value = self._node(p[0])
        if self._peek() is not None:
            raise YamlError(f"line {self.i + 1}: unexpected text")
        return value

    def _node(self, indent):
        ind, content = self._peek()
        if content.startswith("- ") or content == "-":
            return self._seq(ind)
        return self._map(ind)

    def _seq(self, indent):
        out = []
        while True:
            p = self._peek()
            if p is None or p[0] < indent:
                return out
            ind, content = p
            if ind != indent or not (content.startswith("- ") or content == "-"):
                if ind > indent:
                    raise YamlError(f"line {self.i + 1}: bad indentation")
                return out
            rest = content[1:].lstrip(" ")
            if not rest:
                self.i += 1
                nxt = self._peek()
                out.append(self._node(nxt[0]) if nxt and nxt[0] > indent else None)
                continue
            child = indent + (len(content) - len(rest))
            if re.match(r"[^\"'\[{][^:]*:(\s|$)|\"[^\"]*\":(\s|$)|'[^']*':(\s|$)", rest) or rest.startswith("- "):
                # A mapping (or sequence) that starts on the dash's line: re-read it as indented text.
                self.lines[self.i] = " " * child + rest
                out.append(self._node(child))
            else:
                out.append(self._value(rest, indent))
        return out

    def _map(self, indent):
        out = {}
        while True:
            p = self._peek()
            if p is None or p[0] < indent:
                return out
            ind, content = p
            if ind != indent:
                raise YamlError(f"line {self.i + 1}: bad indentation")
            if content.startswith("- "):
                return out
            m = re.match(r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\"'#][^:]*?)\s*:(?:\s+|$)(.*)$", content)
            if not m:
                raise YamlError(f"line {self.i + 1}: expected 'key: value': {content!r}")
            key = _yaml_scalar(m.group(1))
            if key in out:
                raise YamlError(f"line {self.i + 1}: duplicate key {key!r}")
            rest = m.group(2)
            if rest == "":
                self.i += 1
                nxt = self._peek()
                if nxt and (nxt[0] > indent or (nxt[0] == indent and nxt[1].startswith("- "))):
                    out[key] = self._node(nxt[0])
                else:
                    out[key] = None
            else:
                out[key] = self._value(rest, indent)

    def _value(self, rest, indent):
        """A scalar after 'key:' or '- ' on line self.i (which it consumes, with any continuation)."""
        m = re.fullmatch(r"([|>])([-+]?)([1-9]?)", rest)
        if m:
            return self._block_scalar(m.group(1), m.group(2), indent)
        self.i += 1
        if rest[0] in "\"'[{":
            # Quoted or flow values spanning lines are not needed here.
            return _yaml_scalar(rest)
        parts = [rest]
        while True:
            p = self._peek()
            if p is None or p[0] <= indent:
                break
            parts.append(p[1])
            self.i += 1
        return _yaml_scalar(" ".join(parts))

    def _block_scalar(self, style, chomp, indent):
        self.i += 1
        lines = []
        block_indent = None
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            if raw.strip() == "":
                lines.append("")
                self.i += 1
                continue
            ind = len(raw) - len(raw.lstrip(" "))
            if block_indent is None:
                if ind <= indent:
                    break
                block_indent = ind
            if ind < block_indent:
                break
            lines.append(raw[block_indent:])
            self.i += 1
        while lines and lines[-1] == "":
            lines.pop()
        if style == "|":
            text = "\n".join(lines)
        else:
            text = ""
            for j, line in enumerate(lines):
                if j == 0:
                    text = line
                elif line == "" or lines[j - 1] == "" or line.startswith(" "):
                    text += "\n" + line
                else:
                    text += " " + line
        if chomp == "-" or not lines:
            return text
        return text + "\n"


def load_yaml(path):
    with open(path) as f:
        text = f.read()
    try:
        return _YamlReader(text).parse()
    except (YamlError, IndexError) as e:
        raise AssertionError(f"{path}: cannot parse YAML: {e}")


# ------------------------------------------------------------------------------------------------
# PromQL: a tokenizer, a parser, and label-set inference.

FUNCTIONS = {
    # name: index of the vector/matrix argument whose labels the result keeps (None: no labels)
    **{f: 0 for f in (
        "abs", "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "sgn", "clamp", "clamp_min",
        "clamp_max", "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "holt_winters",
        "double_exponential_smoothing", "resets", "changes", "avg_over_time", "min_over_time", "max_over_time",
        "sum_over_time", "count_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
        "present_over_time", "mad_over_time", "timestamp", "sort", "sort_desc", "deg", "rad", "acos", "acosh",
        "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "day_of_month",
        "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year", "histogram_count",
        "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar", "sort_by_label",
        "sort_by_label_desc")},
    "quantile_over_time": 1, "histogram_fraction": 2,
    "histogram_quantile": 1, "label_replace": 0, "label_join": 0,
    "absent": None, "absent_over_time": None, "vector": None, "scalar": None, "time": None, "pi": None,
}
SCALAR_FUNCTIONS = {"scalar", "time", "pi"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "holt_winters",
                   "double_exponential_smoothing", "resets", "changes", "absent_over_time"} | {
                  f for f in FUNCTIONS if f.endswith("_over_time")}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio"}
PARAM_AGGREGATIONS = {"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
BINARY_PREC = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3,
               "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6}
COMPARISONS = {"==", "!=", "<=", "<", ">=", ">"}
SET_OPS = {"and", "or", "unless"}

_TOKEN = re.compile(r"""
  (?P<ws>\s+|\#[^\n]*)
| (?P<duration>(?:[0-9]+(?:ms|[smhdwy]))+)(?![a-zA-Z0-9_.])
| (?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
| (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
| (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
| (?P<op>=~|!~|==|!=|<=|>=|[-+*/%^<>=(){}\[\],@:])
""", re.X)


class PromQLError(Exception):
    pass


def tokenize(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise PromQLError(f"unexpected character {expr[pos]!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        text = m.group(kind)
        if kind == "string":
            text = json.loads(text) if text[0] == '"' else text[1:-1]
        out.append((kind, text))
    out.append(("eof", ""))
    return out


class Parser:
    """PromQL expression -> AST of dicts: {"t": kind, ...}."""

    def __init__(self, expr):
        self.toks = tokenize(expr)
        self.k = 0

    def peek(self, off=0):
        return self.toks[min(self.k + off, len(self.toks) - 1)]

    def next(self):
        t = self.toks[self.k]
        self.k += 1
        return t

    def accept(self, text):
        if self.peek()[1] == text and self.peek()[0] in ("op", "ident"):
            self.k += 1
            return True
        return False

    def expect(self, text):
        if not self.accept(text):
            raise PromQLError(f"expected {text!r}, found {self.peek()[1]!r}")

    def parse(self):
        e = self.expr(1)
        if self.peek()[0] != "eof":
            raise PromQLError(f"unexpected {self.peek()[1]!r} after the expression")
        return e

    def binary_op(self):
        kind, text = self.peek()
        if kind == "op" and text in BINARY_PREC:
            return text
        if kind == "ident" and text in ("and", "or", "unless", "atan2"):
            return text
        return None

    def expr(self, min_prec):
        left = self.unary()
        while True:
            op = self.binary_op()
            if op is None or BINARY_PREC[op] < min_prec:
                return left
            self.next()
            node = {"t": "binary", "op": op, "bool": False, "match": None, "labels": [], "group": None,
                    "include": []}
            if self.accept("bool"):
                node["bool"] = True
            if self.peek()[1] in ("on", "ignoring") and self.peek()[0] == "ident":
                node["match"] = self.next()[1]
                node["labels"] = self.label_list()
                if self.peek()[1] in ("group_left", "group_right") and self.peek()[0] == "ident":
                    node["group"] = self.next()[1]
                    node["include"] = self.label_list() if self.peek()[1] == "(" else []
            right = self.expr(BINARY_PREC[op] if op == "^" else BINARY_PREC[op] + 1)
            node["lhs"], node["rhs"] = left, right
            left = node

    def unary(self):
        if self.peek() in (("op", "-"), ("op", "+")):
            op = self.next()[1]
            return {"t": "unary", "op": op, "arg": self.expr(BINARY_PREC["^"])}
        return self.postfix(self.primary())

    def postfix(self, node):
        while True:
            if self.peek() == ("op", "["):
                self.next()
                rng = self.duration()
                if self.accept(":"):
                    step = None if self.peek() == ("op", "]") else self.duration()
                    self.expect("]")
                    node = {"t": "subquery", "arg": node, "range": rng, "step": step}
                else:
                    self.expect("]")
                    if node["t"] != "selector" or node.get("range"):
                        raise PromQLError("a range [..] applies only to a vector selector")
                    node = dict(node, range=rng)
            elif self.peek() == ("ident", "offset"):
                self.next()
                neg = self.accept("-")
                node = {"t": "offset", "arg": node, "offset": ("-" if neg else "") + self.duration()}
            elif self.peek() == ("op", "@"):
                self.next()
                if self.peek()[0] == "ident" and self.peek()[1] in ("start", "end"):
                    self.next()
                    self.expect("(")
                    self.expect(")")
                else:
                    self.accept("-")
                    if self.next()[0] != "number":
                        raise PromQLError("@ needs a timestamp, start() or end()")
                node = {"t": "at", "arg": node}
            else:
                return node

    def duration(self):
        kind, text = self.next()
        if kind != "duration":
            raise PromQLError(f"expected a duration, found {text!r}")
        return text

    def label_list(self):
        self.expect("(")
        out = []
        while not self.accept(")"):
            kind, text = self.next()
            if kind not in ("ident", "string"):
                raise PromQLError(f"expected a label name, found {text!r}")
            out.append(text)
            if not self.accept(","):
                self.expect(")")
                break
        return out

    def matchers(self):
        self.expect("{")
        out = []
        while not self.accept("}"):
            kind, name = self.next()
            if kind not in ("ident", "string"):
                raise PromQLError(f"expected a label name in a selector, found {name!r}")
            kind, op = self.next()
            if op not in ("=", "!=", "=~", "!~"):
                raise PromQLError(f"expected a matcher operator after {name!r}, found {op!r}")
            kind, value = self.next()
            if kind != "string":
                raise PromQLError(f"expected a string after {name}{op}, found {value!r}")
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as e:
                    raise PromQLError(f"bad regex {value!r}: {e}")
            out.append((name, op, value))
            if not self.accept(","):
                self.expect("}")
                break
        return out

    def primary(self):
        kind, text = self.peek()
        if kind == "op" and text == "(":
            self.next()
            e = self.expr(1)
            self.expect(")")
            return {"t": "paren", "arg": e}
        if kind == "number":
            self.next()
            return {"t": "number"}
        if kind == "string":
            self.next()
            return {"t": "string", "value": text}
        if kind == "op" and text == "{":
            return {"t": "selector", "name": None, "matchers": self.matchers(), "range": None}
        if kind != "ident":
            raise PromQLError(f"unexpected {text!r}")
        if text.lower() in ("inf", "nan"):
            self.next()
            return {"t": "number"}
        if text in AGGREGATIONS and (self.peek(1) == ("op", "(") or self.peek(1)[1] in ("by", "without")):
            return self.aggregation()
        if self.peek(1) == ("op", "("):
            if text not in FUNCTIONS:
                raise PromQLError(f"unknown function {text}()")
            self.next()
            self.next()
            args = []
            while not self.accept(")"):
                args.append(self.expr(1))
                if not self.accept(","):
                    self.expect(")")
                    break
            return {"t": "call", "func": text, "args": args}
        if text in ("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
                    "unless", "atan2"):
            raise PromQLError(f"unexpected keyword {text!r}")
        self.next()
        matchers = self.matchers() if self.peek() == ("op", "{") else []
        return {"t": "selector", "name": text, "matchers": matchers, "range": None}

    def aggregation(self):
        op = self.next()[1]
        grouping, labels = None, []
        if self.peek()[1] in ("by", "without"):
            grouping = self.next()[1]
            labels = self.label_list()
        self.expect("(")
        param = None
        if op in PARAM_AGGREGATIONS:
            param = self.expr(1)
            self.expect(",")
        arg = self.expr(1)
        self.expect(")")
        if grouping is None and self.peek()[1] in ("by", "without"):
            grouping = self.next()[1]
            labels = self.label_list()
        return {"t": "agg", "op": op, "grouping": grouping, "labels": labels, "param": param, "arg": arg}


def parse_promql(expr):
    return Parser(expr).parse()


def selectors(node):
    """Every selector node in an AST."""
    if isinstance(node, dict):
        if node.get("t") == "selector":
            yield node
        for v in node.values():
            if isinstance(v, (dict, list)):
                yield from selectors(v)
    elif isinstance(node, list):
        for v in node:
            yield from selectors(v)


class Checker:
    """Checks PromQL against the metrics the exporter emits.

    `metrics`: {metric name: set of label names} as scraped (instance and job included).
    `rules`: {recording rule name: [expression text, {static label: value}]...} from the rule files;
    a rule's label set is what its expression gives plus its static labels (the union over every rule
    of that name)."""

    def __init__(self, metrics, rules=None, _memo=None, _stack=()):
        self.metrics = metrics
        self.rules = rules or {}
        self._rule_labels = {} if _memo is None else _memo
        self._stack = _stack
        self.errors = []

    def rule_labels(self, name):
        if name in self._rule_labels:
            return self._rule_labels[name]
        if name in self._stack:
            raise PromQLError(f"recording rule {name} refers to itself")
        labels = set()
        # Errors inside a rule's own expression are reported when the rule file is checked.
        sub = Checker(self.metrics, self.rules, self._rule_labels, self._stack + (name,))
        for expr, static in self.rules[name]:
            try:
                kind, got = sub.infer(parse_promql(expr))
            except PromQLError:
                got = set()
            labels |= got | set(static)
        self._rule_labels[name] = labels
        return labels

    def check(self, expr):
        """Errors (list of strings) for one expression, and its result labels (None if it does not parse)."""
        self.errors = []
        try:
            kind, labels = self.infer(parse_promql(expr))
        except PromQLError as e:
            return [f"does not parse: {e}"], None
        return list(dict.fromkeys(self.errors)), labels

    def err(self, msg):
        self.errors.append(msg)

    def series_labels(self, name):
        if name in self.metrics:
            return self.metrics[name]
        if name in self.rules:
            return self.rule_labels(name)
        return None

    def infer(self, n):
        """(kind, label names) of a node: kind is scalar, string, vector or matrix."""
        t = n["t"]
        if t == "number":
            return "scalar", set()
        if t == "string":
            return "string", set()
        if t == "paren":
            return self.infer(n["arg"])
        if t == "unary":
            kind, labels = self.infer(n["arg"])
            return kind, labels
        if t in ("offset", "at"):
            return self.infer(n["arg"])
        if t == "subquery":
            kind, labels = self.infer(n["arg"])
            if kind != "vector":
                self.err("a subquery needs an instant vector")
            return "matrix", labels
        if t == "selector":
            return self.infer_selector(n)
        if t == "call":
            return self.infer_call(n)
        if t == "agg":
            return self.infer_agg(n)
        if t == "binary":
            return self.infer_binary(n)
        raise PromQLError(f"unknown node {t}")

    def infer_selector(self, n):
        name = n["name"]
        matchers = n["matchers"]
        if name is None:
            names = [v for l, op, v in matchers if l == "__name__" and op == "="]
            if not names:
                self.err(f"selector {{...}} without a metric name equality matcher: {matchers}")
                return ("matrix" if n["range"] else "vector"), set()
            name = names[0]
        labels = self.series_labels(name)
        if labels is None:
            self.err(f"metric {name} is not emitted by the exporter (nor a recording rule)")
            labels = set()
        else:
            for l, op, v in matchers:
                if l != "__name__" and l not in labels:
                    self.err(f"label {l!r} in {name}{{...}}: {name} has only {sorted(labels)}")
        return ("matrix" if n["range"] else "vector"), set(labels)

    def infer_call(self, n):
        f, args = n["func"], n["args"]
        inferred = [self.infer(a) for a in args]
        if f in SCALAR_FUNCTIONS:
            return "scalar", set()
        if f == "vector":
            return "vector", set()
        if f in ("absent", "absent_over_time"):
            out = set()
            if args and args[0]["t"] == "selector":
                out = {l for l, op, v in args[0]["matchers"] if op == "=" and l != "__name__"}
            return "vector", out
        idx = FUNCTIONS[f]
        if idx >= len(args):
            raise PromQLError(f"{f}() needs more arguments")
        kind, labels = inferred[idx]
        want = "matrix" if f in RANGE_FUNCTIONS else "vector"
        if kind != want:
            self.err(f"{f}() needs a range vector" if want == "matrix" else f"{f}() needs an instant vector")
        labels = set(labels)
        if f == "histogram_quantile" or f == "histogram_fraction":
            if "le" not in labels and f == "histogram_quantile":
                self.err(f"histogram_quantile() over series without an 'le' label ({sorted(labels)})")
            labels.discard("le")
        if f in ("label_replace", "label_join"):
            strs = [a.get("value") for a in args[1:]]
            if any(s is None for s in strs):
                raise PromQLError(f"{f}() takes string arguments after the vector")
            dst = strs[0]
            # label_replace(v, dst, replacement, src, regex); label_join(v, dst, separator, src...)
            srcs = [strs[2]] if f == "label_replace" else strs[2:]
            for s in srcs:
                if s not in labels:
                    self.err(f"{f}() reads label {s!r}, which the vector does not have ({sorted(labels)})")
            labels.add(dst)
        return "vector", labels

    def infer_agg(self, n):
        kind, labels = self.infer(n["arg"])
        if n["param"] is not None:
            self.infer(n["param"])
        if kind != "vector":
            self.err(f"{n['op']}() needs an instant vector, got a {kind}")
        for l in n["labels"]:
            if l not in labels:
                self.err(f"{n['op']} {n['grouping']} ({l}): the aggregated series have no label {l!r} "
                         f"(they have {sorted(labels)})")
        if n["op"] in ("topk", "bottomk", "limitk", "limit_ratio"):
            out = set(labels)
        elif n["grouping"] == "by":
            out = set(n["labels"])
        elif n["grouping"] == "without":
            out = set(labels) - set(n["labels"])
        else:
            out = set()
        if n["op"] == "count_values":
            if n["param"].get("t") != "string":
                raise PromQLError("count_values() needs a string label name")
            out.add(n["param"]["value"])
        return "vector", out

    def infer_binary(self, n):
        lk, ll = self.infer(n["lhs"])
        rk, rl = self.infer(n["rhs"])
        op = n["op"]
        if "matrix" in (lk, rk) or "string" in (lk, rk):
            self.err(f"operator {op} between a {lk} and a {rk}")
        if op in SET_OPS and (lk != "vector" or rk != "vector"):
            self.err(f"set operator {op} needs two instant vectors")
        if lk == "scalar" and rk == "scalar":
            return "scalar", set()
        if lk != "vector" or rk != "vector":
            return "vector", set(ll if lk == "vector" else rl)
        if n["match"] == "on":
            for l in n["labels"]:
                missing = [side for side, ls in (("left", ll), ("right", rl)) if l not in ls]
                if missing:
                    self.err(f"on ({l}): the {' and '.join(missing)} side of '{op}' has no label {l!r} "
                             f"(left {sorted(ll)}, right {sorted(rl)})")
        elif n["match"] == "ignoring":
            for l in n["labels"]:
                if l not in ll and l not in rl:
                    self.err(f"ignoring ({l}): neither side of '{op}' has a label {l!r}")
        if n["group"] == "group_left":
            for l in n["include"]:
                if l not in rl:
                    self.err(f"group_left ({l}): the right side of '{op}' has no label {l!r} ({sorted(rl)})")
        if n["group"] == "group_right":
            for l in n["include"]:
                if l not in ll:
                    self.err(f"group_right ({l}): the left side of '{op}' has no label {l!r} ({sorted(ll)})")
        if op == "or":
            return "vector", ll | rl
        if op in ("and", "unless"):
            return "vector", set(ll)
        if n["group"] == "group_left":
            return "vector", ll | set(n["include"])
        if n["group"] == "group_right":
            return "vector", rl | set(n["include"])
        if n["match"] == "on":
            return "vector", set(n["labels"])
        if n["match"] == "ignoring":
            return "vector", ll - set(n["labels"])
        return "vector", set(ll)


# ------------------------------------------------------------------------------------------------
# CALLS_CAPTURE: a small capture written here, for the families gen_capture's profiles leave empty
# (sip_call_duration_seconds needs an answered call ended by BYE; sip_transaction_timeouts_total an
# INVITE left unanswered past Timer B while packets keep coming). Addresses fit gen_capture's
# config: 203.0.113.0/24 is home, 198.51.100.0/24 is carrier-a.

HOME_IP, PEER_IP = "203.0.113.5", "198.51.100.77"
CALLS_START = 1700000100  # after the end of gen_capture's captures, so packet time only moves forward
CALLS_SPLIT = 50.0        # s into CALLS_CAPTURE: one timeout before, one after (PrometheusTest)


def _ipv4_checksum(header):
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def udp_frame(src, dst, payload, ident):
    """Ethernet + IPv4 + UDP (5060 -> 5060, no UDP checksum) around payload."""
    udp = struct.pack("!HHHH", 5060, 5060, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", _ipv4_checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def pcap_header(linktype=1):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)


def pcap_record(ts, frame):
    sec = int(ts)
    return struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(frame), len(frame)) + frame


def pcap_records(path):
    """(header bytes, [record bytes]) of a little-endian microsecond pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    out, off = [], 24
    while off < len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        out.append(data[off:off + 16 + caplen])
        off += 16 + caplen
    return data[:24], out


def pcap_last_time(path):
    _, records = pcap_records(path)
    sec, usec = struct.unpack_from("<II", records[-1], 0)
    return sec + usec / 1e6


class _Dialog:
    """Messages of one SIP conversation between HOME_IP and PEER_IP."""

    def __init__(self, call_id, caller_is_home=True):
        self.call_id = call_id
        self.caller, self.callee = (HOME_IP, PEER_IP) if caller_is_home else (PEER_IP, HOME_IP)
        self.to_tag = None

    def request(self, method, cseq, branch, to_tag=None, cseq_method=None):
        ruri = f"sip:+15550100@{self.callee}"
        to = f"<{ruri}>" + (f";tag={to_tag}" if to_tag else "")
        text = (f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.caller}:5060;branch=z9hG4bK{branch}\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <sip:+15550199@{self.caller}>;tag=f{self.call_id}\r\n"
                f"To: {to}\r\n"
                f"Call-ID: {self.call_id}@{self.caller}\r\n"
                f"CSeq: {cseq} {cseq_method or method}\r\n"
                f"Contact: <sip:{self.caller}:5060>\r\n"
                f"Content-Length: 0\r\n\r\n")
        return self.caller, self.callee, text.encode()

    def response(self, code, reason, method, cseq, branch, to_tag=None):
        ruri = f"sip:+15550100@{self.callee}"
        to = f"<{ruri}>" + (f";tag={to_tag}" if to_tag else "")
        text = (f"SIP/2.0 {code} {reason}\r\n"
                f"Via: SIP/2.0/UDP {self.caller}:5060;branch=z9hG4bK{branch}\r\n"
                f"From: <sip:+15550199@{self.caller}>;tag=f{self.call_id}\r\n"
                f"To: {to}\r\n"
                f"Call-ID: {self.call_id}@{self.caller}\r\n"
                f"CSeq: {cseq} {method}\r\n"
                f"Content-Length: 0\r\n\r\n")
        return self.callee, self.caller, text.encode()

    def backward_request(self, method, cseq, branch, to_tag):
        """A request from the callee inside the dialog (BYE from the called side)."""
        ruri = f"sip:+15550199@{self.caller}"
        text = (f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.callee}:5060;branch=z9hG4bK{branch}\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <sip:+15550100@{self.callee}>;tag={to_tag}\r\n"
                f"To: <sip:+15550199@{self.caller}>;tag=f{self.call_id}\r\n"
                f"Call-ID: {self.call_id}@{self.caller}\r\n"
                f"CSeq: {cseq} {method}\r\n"
                f"Content-Length: 0\r\n\r\n")
        return self.callee, self.caller, text.encode()

    def backward_response(self, code, reason, method, cseq, branch, to_tag):
        text = (f"SIP/2.0 {code} {reason}\r\n"
                f"Via: SIP/2.0/UDP {self.callee}:5060;branch=z9hG4bK{branch}\r\n"
                f"From: <sip:+15550100@{self.callee}>;tag={to_tag}\r\n"
                f"To: <sip:+15550199@{self.caller}>;tag=f{self.call_id}\r\n"
                f"Call-ID: {self.call_id}@{self.caller}\r\n"
                f"CSeq: {cseq} {method}\r\n"
                f"Content-Length: 0\r\n\r\n")
        return self.caller, self.callee, text.encode()


def calls_capture_messages():
    """[(seconds after CALLS_START, (src, dst, payload))] of CALLS_CAPTURE."""
    out = []

    def failed_invite(t, call_id, code, reason, caller_is_home=True, ring=False):
        d = _Dialog(call_id, caller_is_home)
        b = f"{call_id}i"
        out.append((t, d.request("INVITE", 1, b)))
        out.append((t + 0.05, d.response(100, "Trying", "INVITE", 1, b)))
        if ring:
            out.append((t + 0.4, d.response(180, "Ringing", "INVITE", 1, b, to_tag=f"t{call_id}")))
        out.append((t + 1.0, d.response(code, reason, "INVITE", 1, b, to_tag=f"t{call_id}")))
        out.append((t + 1.05, d.request("ACK", 1, b, to_tag=f"t{call_id}")))

    # An answered call, outbound: INVITE, 100, 180 (post-dial delay 0.6 s), 200, ACK; BYE from the
    # called side 60 s later.
    d = _Dialog("c1")
    out += [(0.0, d.request("INVITE", 1, "c1i")), (0.05, d.response(100, "Trying", "INVITE", 1, "c1i")),
            (0.6, d.response(180, "Ringing", "INVITE", 1, "c1i", to_tag="tc1")),
            (2.0, d.response(200, "OK", "INVITE", 1, "c1i", to_tag="tc1")),
            (2.05, d.request("ACK", 1, "c1a", to_tag="tc1")),
            (62.0, d.backward_request("BYE", 1, "c1b", "tc1")),
            (62.05, d.backward_response(200, "OK", "BYE", 1, "c1b", "tc1"))]
    # An answered call, inbound, ended by the caller 30 s later.
    d = _Dialog("c2", caller_is_home=False)
    out += [(3.0, d.request("INVITE", 1, "c2i")), (3.3, d.response(183, "Session Progress", "INVITE", 1, "c2i",
                                                                    to_tag="tc2")),
            (4.0, d.response(200, "OK", "INVITE", 1, "c2i", to_tag="tc2")),
            (4.05, d.request("ACK", 1, "c2a", to_tag="tc2")),
            (34.0, d.request("BYE", 2, "c2b", to_tag="tc2")),
            (34.05, d.response(200, "OK", "BYE", 2, "c2b", to_tag="tc2"))]
    failed_invite(5.0, "c3", 503, "Service Unavailable")
    failed_invite(6.0, "c4", 408, "Request Timeout", ring=True)
    failed_invite(7.0, "c5", 486, "Busy Here", ring=True)
    failed_invite(8.0, "c6", 603, "Decline", caller_is_home=False)
    failed_invite(9.0, "c7", 380, "Alternative Service")
    # Two INVITEs never answered (retransmitted at 0.5 s and 1.5 s): timeouts after Timer B (32 s),
    # at 42 s and 62 s.
    for t0, call_id in ((10.0, "c8"), (30.0, "c9")):
        d = _Dialog(call_id)
        out += [(t0, d.request("INVITE", 1, f"{call_id}i")), (t0 + 0.5, d.request("INVITE", 1, f"{call_id}i")),
                (t0 + 1.5, d.request("INVITE", 1, f"{call_id}i"))]
    # REGISTER challenged, then accepted.
    d = _Dialog("r1")
    out += [(12.0, d.request("REGISTER", 1, "r1a")),
            (12.1, d.response(401, "Unauthorized", "REGISTER", 1, "r1a", to_tag="tr1")),
            (12.2, d.request("REGISTER", 2, "r1b")),
            (12.35, d.response(200, "OK", "REGISTER", 2, "r1b", to_tag="tr1"))]
    # OPTIONS pings every 5 s, so that packet time passes Timer B and the call's BYE.
    for k in range(14):
        d = _Dialog(f"o{k}", caller_is_home=k % 2 == 0)
        t = 15.0 + 5 * k
        out += [(t, d.request("OPTIONS", 1, f"o{k}")), (t + 0.02, d.response(200, "OK", "OPTIONS", 1, f"o{k}",
                                                                             to_tag=f"to{k}"))]
    return sorted(out, key=lambda m: m[0])


def write_calls_capture(path, start=CALLS_START, since=None, until=None):
    """CALLS_CAPTURE with its first message at `start`; only the messages at since <= t < until
    (seconds after the first) when given."""
    with open(path, "wb") as f:
        f.write(pcap_header())
        for i, (t, (src, dst, payload)) in enumerate(calls_capture_messages()):
            if (since is None or t >= since) and (until is None or t < until):
                f.write(pcap_record(start + t, udp_frame(src, dst, payload, 0x1000 + i)))


# ------------------------------------------------------------------------------------------------
# What the exporter emits.

def generate(out_dir, name, *args):
    if not os.path.exists(GEN):
        raise AssertionError(f"gen_capture not found at {GEN} (set SIPEX_GEN_CAPTURE)")
    paths = {ext: os.path.join(out_dir, f"{name}.{ext}") for ext in ("pcap", "json", "yaml")}
    subprocess.run([GEN, "--out", paths["pcap"], "--truth", paths["json"], "--config", paths["yaml"], *args],
                   check=True, capture_output=True, timeout=60)
    return paths


def make_captures(out_dir):
    """{name: (capture path, config path)} for the captures that exercise every family, in the order
    they are read (packet time moves forward from one to the next)."""
    trans = generate(out_dir, "transports", "--profile", "transports", "--seed", str(SEED))
    full = generate(out_dir, "full", "--profile", "full", "--seed", str(SEED))
    calls = os.path.join(out_dir, "calls.pcap")
    start = max(CALLS_START, int(max(pcap_last_time(trans["pcap"]), pcap_last_time(full["pcap"]))) + 10)
    write_calls_capture(calls, start)
    return {"transports": (trans["pcap"], trans["yaml"]), "full": (full["pcap"], full["yaml"]),
            "calls": (calls, full["yaml"])}


_SAMPLE_NAME = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+(?:\s+-?\d+)?$")


def emitted(captures):
    """({metric name: label names} as Prometheus stores them, {family: type}) from running the
    exporter on each capture. Prometheus adds `instance` and `job` to every series and `up`."""
    metrics, families = {}, {}
    for name, (pcap, config) in captures.items():
        text = lib.metrics_for_files([pcap], f"--config.file={config}")
        for line in text.splitlines():
            m = re.match(r"# TYPE (\S+) (\S+)$", line)
            if m:
                families[m.group(1)] = m.group(2)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                m = _SAMPLE_NAME.match(line)
                if not m:
                    raise AssertionError(f"unparsable exposition line: {line!r}")
                labels = metrics.setdefault(m.group(1), set())
                if m.group(2):
                    labels.update(lm.group(1) for lm in lib._LABEL.finditer(m.group(2)))
    for labels in metrics.values():
        labels |= {"instance", "job"}
    metrics["up"] = {"instance", "job"}
    return metrics, families


# ------------------------------------------------------------------------------------------------
# The expressions of every file.

# Grafana alert rule uid -> the Prometheus alert (deploy/prometheus/*.rules.yml) it mirrors: same
# expression, `for` and severity.
GRAFANA_TWINS = {"sipex-503-rising": "SIPPeer503Rising", "sipex-408-rising": "SIPPeer408Rising"}


def normalize_promql(expr):
    """The expression without comments and with single spaces, for comparing two copies."""
    return " ".join(re.sub(r"#[^\n]*", "", expr).split())


GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000", "__range": "1h",
                    "__range_s": "3600", "__range_ms": "3600000"}
_VAR_REF = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


class Query:
    """One PromQL expression and where it comes from."""

    def __init__(self, path, where, expr, legend=None, kind="query", label_refs=()):
        self.path, self.where, self.raw, self.legend, self.kind = path, where, expr, legend, kind
        self.label_refs = tuple(label_refs)  # (text, label) pairs from templates ($labels.x, {{x}})
        self.expr = expr

    def __str__(self):
        return f"{os.path.relpath(self.path, lib.SOURCE_DIR)}: {self.where}: {self.raw.strip()}"


def substitute_variables(expr, variables):
    """The expression with Grafana variables replaced as Grafana would for a Prometheus query, and
    a list of problems (unknown variables, multi-value variables outside a =~ matcher)."""
    problems = []

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name not in variables:
            problems.append(f"unknown variable ${name}")
            return m.group(0)
        before = expr[:m.start()]
        if variables[name].get("multi") or variables[name].get("includeAll"):
            if not re.search(r'=~\s*"[^"]*$', before):
                problems.append(f"multi-value variable ${name} outside a =~\"...\" matcher")
        return ".*"

    return _VAR_REF.sub(repl, expr), problems


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_queries(path=DASHBOARD, dashboard=None):
    """(queries, problems) of the dashboard: panel targets and template variable queries."""
    d = dashboard or load_dashboard()
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    queries, problems = [], []
    for v in variables.values():
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        sub, probs = substitute_variables(q, variables)
        problems += [f"variable ${v['name']}: {p}" for p in probs]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", sub, re.S)
        if m:
            query = Query(path, f"variable ${v['name']}", f"count by ({m.group(2)}) ({m.group(1)})", kind="variable")
        elif re.fullmatch(r"\s*query_result\((.*)\)\s*", sub, re.S):
            query = Query(path, f"variable ${v['name']}", re.fullmatch(r"\s*query_result\((.*)\)\s*", sub,
                                                                      re.S).group(1), kind="variable")
        else:
            problems.append(f"variable ${v['name']}: query {q!r} is not label_values(selector, label) "
                            f"or query_result(expr)")
            continue
        queries.append(query)
    for p in walk_panels(d.get("panels", [])):
        for t in p.get("targets", []):
            where = f"panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}"
            if "expr" not in t:
                problems.append(f"{where}: no expr")
                continue
            sub, probs = substitute_variables(t["expr"], variables)
            problems += [f"{where}: {x}" for x in probs]
            legend = t.get("legendFormat") or ""
            refs = [(legend, l) for l in re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", legend)]
            q = Query(path, where, sub, legend=legend, kind="panel", label_refs=refs)
            q.panel, q.target = p, t
            queries.append(q)
    return queries, problems


def _template_label_refs(texts):
    refs = []
    for text in texts:
        if isinstance(text, str):
            refs += [(text, l) for l in re.findall(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", text)]
    return refs


def grafana_alert_queries(path=ALERTS):
    """Queries of the Grafana alert rules (datasource queries, not server-side expressions)."""
    doc = load_yaml(path)
    out = []
    for g in doc.get("groups") or []:
        for r in g.get("rules") or []:
            texts = list((r.get("annotations") or {}).values()) + list((r.get("labels") or {}).values())
            for d in r.get("data") or []:
                if d.get("datasourceUid") == "__expr__":
                    continue
                expr = (d.get("model") or {}).get("expr")
                q = Query(path, f"alert {r.get('title')!r} query {d.get('refId')}", expr or "", kind="grafana_alert",
                          label_refs=_template_label_refs(texts))
                q.rule, q.data = r, d
                out.append(q)
    return out


def rule_files():
    return sorted(glob.glob(os.path.join(PROMETHEUS_DIR, "*.rules.yml")))


def prometheus_rules(paths=None):
    """(queries, {record name: [(expr, static labels)]}) of the Prometheus rule files."""
    queries, records = [], {}
    for path in paths if paths is not None else rule_files():
        doc = load_yaml(path) or {}
        for g in doc.get("groups") or []:
            for r in g.get("rules") or []:
                name = r.get("record") or r.get("alert")
                kind = "record" if "record" in r else "alert"
                texts = list((r.get("annotations") or {}).values()) + list((r.get("labels") or {}).values())
                q = Query(path, f"group {g.get('name')!r} {kind} {name}", str(r.get("expr", "")), kind=kind,
                          label_refs=_template_label_refs(texts) if kind == "alert" else ())
                q.rule = r
                queries.append(q)
                if kind == "record":
                    records.setdefault(name, []).append((str(r.get("expr", "")), r.get("labels") or {}))
    return queries, records


def check_queries(queries, metrics, records):
    """Every reference problem, as 'file: where: expr\n    problem' strings."""
    checker = Checker(metrics, records)
    out = []
    for q in queries:
        errors, labels = checker.check(q.expr)
        if labels is not None:
            for text, label in q.label_refs:
                if label not in labels:
                    errors.append(f"{text!r} uses label {label!r}, which the result does not have "
                                  f"({sorted(labels)})")
        if q.kind == "record" and labels is not None:
            static = q.rule.get("labels") or {}
            for l in static:
                if l in labels:
                    errors.append(f"static label {l!r} overwrites a label of the expression")
        out += [f"{q}\n    {e}" for e in errors]
    return out


# ------------------------------------------------------------------------------------------------
# A real Prometheus scraping the exporter, which reads the captures through named pipes.

FEED_CHUNKS = 6         # the full capture is written in this many parts ...
FEED_PAUSE = 1.0        # ... this many seconds apart, so that rates over the last minute are not 0
SCRAPE_INTERVAL = "1s"
PROMETHEUS_MAX_PEERS = 12


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8")


def prom_api(port, path, **params):
    """JSON of a Prometheus HTTP API call; errors (HTTP 400/422) come back as JSON too."""
    url = f"http://127.0.0.1:{port}{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        try:
            return json.loads(body)
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}: {body[:300]}"}


class PipeFeed:
    """Named pipes the exporter reads as capture files, in order. Each is opened read-write here
    first (so neither side blocks on open) and gets its pcap header at once; the packets follow
    from a thread. The last pipe gets no packets and stays open: the exporter keeps serving /metrics
    until close() ends it."""

    def __init__(self, work, captures):
        self.captures = captures  # [(name, pcap path)]
        self.paths, self.fds, self.records = [], [], []
        for name, pcap in captures + [("idle", None)]:
            path = os.path.join(work, f"{name}.pipe")
            os.mkfifo(path)
            fd = os.open(path, os.O_RDWR)
            if pcap:
                header, records = pcap_records(pcap)
            else:
                header, records = pcap_header(), []
            os.write(fd, header)
            self.paths.append(path)
            self.fds.append(fd)
            self.records.append(records)
        self.thread = None
        self.error = None
        self.done = threading.Event()

    @staticmethod
    def parts(records, spec):
        """records cut into parts: `spec` is a number of equal parts, or a list of times (s after the
        first record) at which to cut."""
        if isinstance(spec, int):
            step = (len(records) + spec - 1) // spec
            return [records[k * step:(k + 1) * step] for k in range(spec)]
        times = [struct.unpack_from("<I", r, 0)[0] + struct.unpack_from("<I", r, 4)[0] / 1e6 for r in records]
        cuts = [0] + [next((j for j, t in enumerate(times) if t >= times[0] + c), len(records)) for c in spec]
        return [records[a:b] for a, b in zip(cuts, cuts[1:] + [len(records)])]

    def start(self, plan):
        """Writes every capture; {name: spec} cuts some into parts (see parts()) written FEED_PAUSE s apart."""
        def run():
            try:
                for i, (name, _) in enumerate(self.captures):
                    chunks = self.parts(self.records[i], plan.get(name, 1))
                    for k, chunk in enumerate(chunks):
                        self._write(self.fds[i], b"".join(chunk))
                        if k + 1 < len(chunks):
                            time.sleep(FEED_PAUSE)
                    os.close(self.fds[i])  # end of this file: the exporter counts its last batch
                    self.fds[i] = -1
                    time.sleep(FEED_PAUSE)
            except Exception as e:  # noqa: BLE001 (reported by wait())
                self.error = e
            finally:
                self.done.set()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    @staticmethod
    def _write(fd, data):
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def wait(self, timeout):
        if not self.done.wait(timeout):
            raise AssertionError(f"the exporter did not read the captures within {timeout} s")
        if self.error:
            raise AssertionError(f"feeding the captures failed: {self.error!r}")

    def close(self):
        for i, fd in enumerate(self.fds):
            if fd >= 0:
                os.close(fd)
                self.fds[i] = -1


class Stack:
    """sip_exporter (reading PipeFeed) + Prometheus (scraping it every second, evaluating the shipped
    rule files every second)."""

    def __init__(self, work, captures, config):
        self.work = work
        self.feed = PipeFeed(work, captures)
        self.exporter = self.prometheus = None
        self.err_path = os.path.join(work, "exporter.stderr")
        self.prom_log = os.path.join(work, "prometheus.log")
        self._err = open(self.err_path, "w")
        cmd = [lib.BINARY, *[f"--capture.file={p}" for p in self.feed.paths], f"--config.file={config}",
               "--web.listen-address=127.0.0.1:0", "--workers=2"]
        self.exporter = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._err)
        deadline = time.monotonic() + 20
        while True:
            with open(self.err_path, errors="replace") as f:
                err = f.read()
            m = re.search(r"serving \S+ on port (\d+)", err)
            if m and int(m.group(1)):
                self.exporter_port = int(m.group(1))
                break
            if self.exporter.poll() is not None:
                raise AssertionError(f"sip_exporter exited {self.exporter.returncode}: {' '.join(cmd)}\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sip_exporter printed no listening port within 20 s:\n{err}")
            time.sleep(0.05)

    def start_prometheus(self, prometheus, rules):
        cfg = os.path.join(self.work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\n"
                    f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
                    "rule_files:\n" + "".join(f"  - {json.dumps(r)}\n" for r in rules) +
                    "scrape_configs:\n  - job_name: sip_exporter\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{self.exporter_port}']\n")
        for attempt in range(3):
            self.prom_port = free_port()
            self._prom_out = open(self.prom_log, "w")
            self.prometheus = subprocess.Popen(
                [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(self.work, 'tsdb')}",
                 f"--web.listen-address=127.0.0.1:{self.prom_port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=self._prom_out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.prometheus.poll() is None:
                try:
                    http_get(f"http://127.0.0.1:{self.prom_port}/-/ready", timeout=2)
                    return
                except (OSError, urllib.error.URLError):
                    time.sleep(0.1)
            with open(self.prom_log, errors="replace") as f:
                out = f.read()
            self.stop_prometheus()
            if "address already in use" not in out:
                raise AssertionError(f"Prometheus did not become ready:\n{out[-3000:]}")
        raise AssertionError("Prometheus found no free port")

    def query(self, expr, **params):
        return prom_api(self.prom_port, "/api/v1/query", query=expr, **params)

    def wait_for(self, what, pred, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            got = pred()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.25)

    def stop_prometheus(self):
        if self.prometheus and self.prometheus.poll() is None:
            self.prometheus.send_signal(signal.SIGTERM)
            try:
                self.prometheus.wait(20)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
                self.prometheus.wait()
        self.prometheus = None
        if getattr(self, "_prom_out", None):
            self._prom_out.close()
            self._prom_out = None

    def close(self):
        """Ends Prometheus, then the exporter (by closing its last pipe); returns the exporter's exit code."""
        self.stop_prometheus()
        self.feed.close()
        rc = None
        if self.exporter:
            try:
                rc = self.exporter.wait(30)
            except subprocess.TimeoutExpired:
                self.exporter.kill()
                self.exporter.wait()
        self._err.close()
        return rc


# ------------------------------------------------------------------------------------------------
# The tests.

class _Emitted:
    """The emitted set, computed once for the module."""
    tmp = captures = metrics = families = None

    @classmethod
    def get(cls):
        if cls.metrics is None:
            if not lib.BINARY:
                raise AssertionError("SIPEX_BINARY is not set")
            cls.tmp = tempfile.TemporaryDirectory(prefix="sipex-dashboards-")
            cls.captures = make_captures(cls.tmp.name)
            cls.metrics, cls.families = emitted(cls.captures)
        return cls


def all_queries():
    """(queries, records, problems) of every checked file."""
    dq, problems = dashboard_queries()
    rq, records = prometheus_rules()
    return dq + grafana_alert_queries() + rq, records, problems


class ReferencesTest(unittest.TestCase):
    """Every metric and label a dashboard, alert or rule uses is one the exporter emits."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        e = _Emitted.get()
        cls.metrics, cls.families = e.metrics, e.families

    def test_captures_exercise_every_family(self):
        """Each family the exporter declares has samples, so its label names are known."""
        empty = [f for f in self.families
                 if not any(m == f or m in (f + "_bucket", f + "_sum", f + "_count") for m in self.metrics)]
        self.assertEqual(empty, [], "families without samples in the generated captures")
        for f, kind in self.families.items():
            if kind == "histogram":
                self.assertIn("le", self.metrics[f + "_bucket"], f)

    def test_files_are_found(self):
        self.assertTrue(os.path.exists(DASHBOARD), DASHBOARD)
        self.assertTrue(os.path.exists(ALERTS), ALERTS)
        self.assertTrue(rule_files(), f"no *.rules.yml in {PROMETHEUS_DIR}")
        for path in glob.glob(os.path.join(GRAFANA_DIR, "*")):
            self.assertRegex(path, r"\.(json|ya?ml)$", "unexpected file in deploy/grafana")

    def test_every_reference_is_emitted(self):
        queries, records, problems = all_queries()
        self.assertGreater(len([q for q in queries if q.kind == "panel"]), 40)
        errors = problems + check_queries(queries, self.metrics, records)
        self.assertEqual(errors, [], "references to metrics or labels the exporter does not emit:\n" +
                         "\n".join(errors))

    def test_recording_rules_are_defined_once_per_label_set(self):
        """Rules that share a name differ by their static labels (the PDD quantiles do)."""
        _, records = prometheus_rules()
        for name, defs in records.items():
            statics = [json.dumps(s, sort_keys=True) for _, s in defs]
            self.assertEqual(len(statics), len(set(statics)), f"{name} is defined twice with the same labels")

    def test_checker_reports_bad_references(self):
        """The checker fails on each kind of wrong reference (else the test above proves nothing)."""
        _, records = prometheus_rules()
        checker = Checker(self.metrics, records)
        bad = {
            "unknown metric": 'sum(rate(sip_reponses_total{peer=~".*"}[1m]))',
            "histogram family without suffix": "sip_response_latency_seconds",
            "label the metric lacks": 'rate(sip_requests_total{code="503"}[5m])',
            "misspelt label": 'rate(sip_transactions_total{peers="a"}[5m])',
            "grouping by a missing label": "sum by (code) (rate(sip_requests_total[5m]))",
            "grouping after aggregation removed it": "sum by (peer) (sum by (method) (rate(sip_requests_total[5m])))",
            "without a missing label": "sum without (outcome) (rate(sip_requests_total[5m]))",
            "on() a label one side lacks": "sip_exporter_build_info * on (instance, kernel) sip_exporter_scan_kernel_info",
            "group_left a missing label": "sip_exporter_build_info * on (instance, job) group_left (kernal) "
                                          "sip_exporter_scan_kernel_info",
            "quantile without le": "histogram_quantile(0.9, sum by (peer) (rate(sip_response_latency_seconds_bucket[5m])))",
            "unknown recording rule": "peer_direction:sip_asr:ratio_rate1m",
            "label a recording rule dropped": 'peer_direction:sip_asr:ratio_rate5m{outcome="answered"}',
            "unknown function": "ratee(sip_requests_total[5m])",
            "rate of an instant vector": "rate(sip_requests_total)",
            "syntax error": "sum(rate(sip_requests_total[5m])",
        }
        for what, expr in bad.items():
            errors, _ = checker.check(expr)
            self.assertTrue(errors, f"{what}: {expr} passed the checker")
        # Through the file readers too: a dashboard target, a legend and a rule file.
        d = copy.deepcopy(load_dashboard())
        panel = next(p for p in walk_panels(d["panels"]) if p.get("targets"))
        panel["targets"][0]["expr"] = 'sum(rate(sip_bogus_total{instance=~"$instance"}[$__rate_interval]))'
        panel["targets"][0]["legendFormat"] = "{{peer}}"
        queries, problems = dashboard_queries(dashboard=d)
        errors = check_queries(queries, self.metrics, records)
        self.assertTrue(any("sip_bogus_total is not emitted" in e for e in errors), errors)
        self.assertTrue(any("uses label 'peer'" in e for e in errors), errors)
        panel["targets"][0]["expr"] = 'sum(rate(sip_requests_total{peer="$peer"}[1m]))'
        _, problems = dashboard_queries(dashboard=d)
        self.assertTrue(any("outside a =~" in p for p in problems), problems)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.rules.yml")
            with open(path, "w") as f:
                f.write("groups:\n  - name: bad\n    rules:\n      - record: peer:sip_bad:rate5m\n"
                        "        expr: sum by (peer) (rate(sip_calls_total{outcomes=\"answered\"}[5m]))\n"
                        "      - alert: Bad\n        expr: peer:sip_bad:rate5m > 1\n"
                        "        annotations:\n          summary: '{{ $labels.direction }} is wrong'\n")
            rq, rrecords = prometheus_rules([path])
            errors = check_queries(rq, self.metrics, rrecords)
            self.assertTrue(any("'outcomes'" in e for e in errors), errors)
            self.assertTrue(any("'direction'" in e for e in errors), errors)

    def test_checker_accepts_valid_promql(self):
        checker = Checker(self.metrics, {})
        good = [
            'sum by (peer) (rate(sip_requests_total{method="INVITE"}[5m] offset 1h))',
            "histogram_quantile(0.99, sum without (instance, job, peer, direction, method, stage) "
            "(rate(sip_response_latency_seconds_bucket[5m])))",
            'label_replace(sip_exporter_build_info, "v", "$1", "version", "(.*)")',
            "max_over_time(sip_exporter_transactions_active[10m:1m])",
            "sip_exporter_build_info * on (instance, job) group_left (kernel) sip_exporter_scan_kernel_info",
            "topk(3, sum by (peer) (increase(sip_calls_total[1h]))) or vector(0)",
            "-sum(rate(sip_exporter_packets_total[1m])) ^ 2 > bool 1",
            "count_values(\"k\", sip_exporter_scan_kernel_info)",
            "absent(up{job=\"sip_exporter\"})",
        ]
        for expr in good:
            errors, _ = checker.check(expr)
            self.assertEqual(errors, [], expr)

    def test_yaml_reader_agrees_with_pyyaml(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("PyYAML is not installed: the built-in reader could not be compared with it")
        for path in sorted(glob.glob(os.path.join(GRAFANA_DIR, "*.yaml")) + rule_files()):
            with open(path) as f:
                self.assertEqual(load_yaml(path), yaml.safe_load(f), path)


class DashboardTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.d = load_dashboard()
        cls.ds = load_yaml(DATASOURCE)
        cls.uid = cls.ds["datasources"][0]["uid"]
        cls.panels = list(walk_panels(cls.d["panels"]))

    def assert_datasource(self, ds, where):
        self.assertIsInstance(ds, dict, f"{where}: datasource must be an object {{type, uid}}")
        self.assertEqual(ds.get("type"), "prometheus", where)
        self.assertIn(ds.get("uid"), ("${DS_PROMETHEUS}", self.uid), where)

    def test_dashboard_header(self):
        d = self.d
        self.assertEqual(d["uid"], "sip-exporter")
        self.assertTrue(36 <= d["schemaVersion"] <= 39, d["schemaVersion"])
        self.assertIsNone(d.get("id"), "a provisioned dashboard has no fixed id")
        self.assertTrue(d["title"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["DS_PROMETHEUS"]["type"], "datasource")
        self.assertEqual(variables["DS_PROMETHEUS"]["query"], "prometheus")
        self.assertEqual(variables["DS_PROMETHEUS"]["current"]["value"], self.uid)
        for name, query in (("instance", re.escape("label_values(sip_exporter_build_info, instance)")),
                            ("peer", r"label_values\(sip_requests_total(\{.*\})?, peer\)"),
                            ("direction", r"label_values\(sip_requests_total(\{.*\})?, direction\)")):
            v = variables[name]
            self.assertEqual(v["type"], "query", name)
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            self.assertRegex(q, query, name)
            self.assertTrue(v["multi"] and v["includeAll"], name)
            self.assertEqual(v["allValue"], ".*", name)
            self.assert_datasource(v["datasource"], f"variable {name}")

    def test_panels(self):
        ids = [p["id"] for p in self.panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are not unique")
        occupied = {}
        for p in self.panels:
            where = f"panel {p['id']} {p.get('title')!r}"
            self.assertTrue(p.get("title"), where)
            g = p.get("gridPos")
            self.assertIsInstance(g, dict, where)
            self.assertTrue(all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")), where)
            self.assertTrue(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0, where)
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), occupied, f"{where} overlaps panel {occupied.get((x, y))}")
                    occupied[(x, y)] = p["id"]
            if p["type"] == "row":
                continue
            self.assertIn(p["type"], ("timeseries", "stat", "table", "bargauge", "heatmap", "gauge", "text"), where)
            self.assert_datasource(p.get("datasource"), where)
            self.assertTrue(p.get("targets"), f"{where}: no query")
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), f"{where}: duplicate refId")
            for t in p["targets"]:
                self.assert_datasource(t.get("datasource"), f"{where} target {t['refId']}")
                self.assertTrue(t.get("expr", "").strip(), f"{where}: empty expr")
                if p["type"] == "table":
                    self.assertEqual(t.get("format"), "table", where)
                    self.assertTrue(t.get("instant"), f"{where}: table queries are instant")
            self.assertFalse(p["fieldConfig"]["defaults"].get("mappings"),
                             f"{where}: value mappings belong on the code field, not on every value")

    def test_required_panels(self):
        """The panels the issue asks for are there, by what they query."""
        exprs = {p["title"]: " ".join(t["expr"] for t in p.get("targets", [])) for p in self.panels}
        def some(pred, what):
            self.assertTrue([t for t, e in exprs.items() if pred(t, e)], what)
        some(lambda t, e: "sum by (class)" in e and "sip_responses_total" in e, "responses by class")
        some(lambda t, e: "sum by (code" in e and "sip_responses_total" in e, "responses by code")
        some(lambda t, e: 'code="503"' in e and "by (peer" in e, "503 per peer")
        some(lambda t, e: 'code="408"' in e and "by (peer" in e, "408 per peer")
        some(lambda t, e: "sip_transaction_timeouts_total" in e and "by (peer" in e, "timeouts per peer")
        some(lambda t, e: "topk" in e and 'class="5xx"' in e, "top peers by 5xx ratio")
        some(lambda t, e: "topk" in e and 'class="6xx"' in e, "top peers by 6xx ratio")
        some(lambda t, e: 'stage="ringing"' in e and "histogram_quantile(0.99" in e, "post-dial delay p99")
        some(lambda t, e: 'method="REGISTER", stage="final"' in e, "registration delay")
        some(lambda t, e: "sip_asr" in e, "ASR")
        some(lambda t, e: "sum by (outcome)" in e, "call outcomes")
        for metric in ("sip_exporter_packets_total", "sip_exporter_dropped_packets_total",
                       "sip_exporter_skipped_packets_total", "sip_exporter_parse_errors_total",
                       "sip_exporter_reassembly_evictions_total", "sip_exporter_tls_connections_total",
                       "sip_exporter_stream_bytes_total", "sip_retransmissions_total", "sip_calls_total",
                       "sip_call_duration_seconds_bucket"):
            some(lambda t, e, m=metric: m in e, metric)

    def test_code_reason_phrases(self):
        """The code -> reason phrase mapping is the whole IANA registry, three-digit codes only."""
        self.assertEqual(len(SIP_REASON_PHRASES), REGISTRY_SIZE)
        for code, (phrase, ref) in SIP_REASON_PHRASES.items():
            self.assertRegex(code, r"^[1-6][0-9][0-9]$")
            self.assertTrue(phrase and phrase == phrase.strip(), code)
            self.assertRegex(ref, r"^RFC [0-9]{4}$", code)
        spot = {"199": "Early Dialog Terminated", "380": "Alternative Service", "608": "Rejected",
                "607": "Unwanted", "606": "Not Acceptable", "204": "No Notification", "555":
                "Push Notification Service Not Supported", "494": "Security Agreement Required",
                "481": "Call/Transaction Does Not Exist", "504": "Server Time-out", "183": "Session Progress"}
        for code, phrase in spot.items():
            self.assertEqual(SIP_REASON_PHRASES[code][0], phrase, code)
        # Every table showing a code maps it, with exactly the generated mappings.
        want = code_value_mappings()
        code_tables = 0
        for p in self.panels:
            if p["type"] != "table":
                continue
            shows_code = any(re.search(r"by \([^)]*\bcode\b", t["expr"]) for t in p["targets"])
            overrides = [o for o in p["fieldConfig"]["overrides"]
                         if o["matcher"] == {"id": "byName", "options": "code"}]
            mappings = [pr["value"] for o in overrides for pr in o["properties"] if pr["id"] == "mappings"]
            if shows_code:
                code_tables += 1
                self.assertEqual(mappings, [want], f"panel {p['id']} {p['title']!r}: code mappings")
        self.assertGreaterEqual(code_tables, 2)
        value_map = want[0]["options"]
        self.assertEqual(set(value_map), set(SIP_REASON_PHRASES))
        self.assertTrue(all(re.fullmatch(r"[1-6][0-9][0-9]", c) for c in value_map))
        # The regex mapping (codes outside the registry) comes after the table and takes 3 digits only.
        pattern = want[1]["options"]["pattern"]
        rx = re.compile(pattern.strip("/"))
        self.assertTrue(rx.fullmatch("299") and rx.fullmatch("699") and not rx.fullmatch("2999")
                        and not rx.fullmatch("099") and not rx.fullmatch("700"))
        # The time series by code names each registered code's series by its phrase.
        by_code = [p for p in self.panels if p["type"] == "timeseries"
                   and any(t.get("legendFormat") == "{{code}}" for t in p["targets"])]
        self.assertTrue(by_code, "no time series by code")
        for p in by_code:
            renames = [o for o in p["fieldConfig"]["overrides"]
                       if o["matcher"]["id"] == "byName" and o["properties"][0]["id"] == "displayName"]
            self.assertEqual(renames, code_display_overrides(), p["title"])
            self.assertEqual(len(renames), REGISTRY_SIZE)

    def test_alert_links_point_at_panels(self):
        alerts = load_yaml(ALERTS)
        ids = {str(p["id"]): p for p in self.panels}
        for g in alerts["groups"]:
            for r in g["rules"]:
                a = r.get("annotations", {})
                if "__dashboardUid__" in a:
                    self.assertEqual(a["__dashboardUid__"], self.d["uid"], r["title"])
                    self.assertIn(str(a.get("__panelId__")), ids, r["title"])


class ProvisioningTest(unittest.TestCase):
    def test_datasource(self):
        ds = load_yaml(DATASOURCE)
        self.assertEqual(ds["apiVersion"], 1)
        (d,) = ds["datasources"]
        self.assertEqual(d["type"], "prometheus")
        self.assertRegex(d["uid"], r"^[a-zA-Z0-9_-]{1,40}$")
        self.assertTrue(d["url"].startswith("http"))
        self.assertEqual(d["access"], "proxy")

    def test_dashboard_provider(self):
        p = load_yaml(PROVIDER)
        self.assertEqual(p["apiVersion"], 1)
        (prov,) = p["providers"]
        self.assertEqual(prov["type"], "file")
        self.assertTrue(os.path.isabs(prov["options"]["path"]))
        self.assertTrue(prov["name"] and prov["folder"])

    def test_alert_rules(self):
        doc = load_yaml(ALERTS)
        uid = load_yaml(DATASOURCE)["datasources"][0]["uid"]
        self.assertEqual(doc["apiVersion"], 1)
        uids, titles = set(), set()
        for g in doc["groups"]:
            for key in ("orgId", "name", "folder", "interval"):
                self.assertIn(key, g, f"group {g.get('name')}")
            self.assertRegex(str(g["interval"]), r"^[0-9]+[smh]$")
            for r in g["rules"]:
                where = f"rule {r.get('title')!r}"
                for key in ("uid", "title", "condition", "data", "for", "labels", "annotations", "noDataState",
                            "execErrState"):
                    self.assertIn(key, r, where)
                self.assertRegex(r["uid"], r"^[a-zA-Z0-9_-]{1,40}$", where)
                self.assertNotIn(r["uid"], uids, where)
                self.assertNotIn(r["title"], titles, where)
                uids.add(r["uid"])
                titles.add(r["title"])
                self.assertIn(r["noDataState"], ("OK", "NoData", "Alerting"), where)
                self.assertIn(r["execErrState"], ("OK", "Error", "Alerting"), where)
                self.assertRegex(str(r["for"]), r"^[0-9]+[smh]$", where)
                refs = [d["refId"] for d in r["data"]]
                self.assertEqual(len(refs), len(set(refs)), where)
                self.assertIn(r["condition"], refs, where)
                self.assertIn("A", refs, where)
                for d in r["data"]:
                    self.assertEqual(d["model"]["refId"], d["refId"], where)
                    self.assertIn("relativeTimeRange", d, where)
                    if d["datasourceUid"] == "__expr__":
                        self.assertIn(d["model"]["type"], ("math", "reduce", "threshold", "classic_conditions"),
                                      where)
                        for ref in re.findall(r"\$(\w+)", d["model"].get("expression", "")):
                            self.assertIn(ref, refs, where)
                    else:
                        self.assertEqual(d["datasourceUid"], uid, f"{where}: query on another datasource")
                        self.assertTrue(d["model"]["expr"].strip(), where)
                        rng = d["relativeTimeRange"]
                        self.assertGreater(rng["from"], rng["to"], where)
                        self.assertTrue(d["model"].get("instant"), f"{where}: alert queries are instant")
                self.assertTrue(r["annotations"].get("summary") and r["annotations"].get("description"), where)
                self.assertIn("severity", r["labels"], where)
        self.assertTrue(set(GRAFANA_TWINS) <= uids, uids)

    def test_grafana_alerts_are_the_prometheus_alerts(self):
        """The 503 and 408 alerts mean the same in Grafana as in Prometheus: one definition of 'rising'."""
        prom = {q.rule["alert"]: q.rule for q in prometheus_rules()[0] if q.kind == "alert"}
        grafana = {q.rule["uid"]: q for q in grafana_alert_queries()}
        for uid, twin in GRAFANA_TWINS.items():
            self.assertIn(twin, prom, f"the Prometheus alert {twin} (twin of Grafana's {uid}) is gone")
            q = grafana[uid]
            self.assertEqual(normalize_promql(q.expr), normalize_promql(prom[twin]["expr"]),
                             f"Grafana alert {uid} and Prometheus alert {twin} differ")
            self.assertEqual(q.rule["for"], prom[twin].get("for"), uid)
            self.assertEqual(q.rule["labels"].get("severity"), (prom[twin].get("labels") or {}).get("severity"), uid)


class PrometheusTest(unittest.TestCase):
    """Every dashboard, variable and Grafana alert query runs on a real Prometheus that loads the shipped
    rule files and scrapes the exporter."""

    maxDiff = None
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.prometheus = lib.require_tool("prometheus")
        e = _Emitted.get()
        cls.work = tempfile.TemporaryDirectory(prefix="sipex-dashboards-prom-")
        caps = e.captures
        # Fewer peers than gen_capture's hundreds keep each scrape small enough for 1 s intervals.
        config = os.path.join(cls.work.name, "config.yaml")
        with open(caps["full"][1]) as f, open(config, "w") as out:
            out.write(f.read() + f"limits: {{max_peers: {PROMETHEUS_MAX_PEERS}}}\n")
        t0 = time.monotonic()
        # The calls capture goes in two files, CALLS_SPLIT s apart in packet time and FEED_PAUSE s apart
        # in wall time: a file's last packets are counted when it ends (a partial batch waits for
        # more), and a counter must change between scrapes for increase() to see it.
        start = struct.unpack_from("<I", pcap_records(caps["calls"][0])[1][0], 0)[0]  # its first message's time
        calls = []
        for k, (since, until) in enumerate(((None, CALLS_SPLIT), (CALLS_SPLIT, None))):
            path = os.path.join(cls.work.name, f"calls{k + 1}.pcap")
            write_calls_capture(path, start, since, until)
            calls.append((f"calls{k + 1}", path))
        cls.calls_files = calls
        cls.stack = Stack(cls.work.name, [(n, caps[n][0]) for n in ("transports", "full")] + calls, config)
        try:
            cls.stack.start_prometheus(cls.prometheus, rule_files())
            # The exporter is scraped before any packet arrives ...
            cls.stack.wait_for("the first scrape", lambda: cls._has_result(
                'sip_exporter_build_info{job="sip_exporter"}'))
            # (Prometheus hands new targets to its scrapers every 5 s: this takes about 6 s.)
            cls.feed_start = time.time()
            # ... then the captures flow, the full one in parts a second apart.
            cls.stack.feed.start({"full": FEED_CHUNKS})
            cls.stack.feed.wait(120)
            cls.feed_end = time.time()
            want = len(pcap_records(calls[-1][1])[1])
            calls_source = cls.stack.feed.paths[len(cls.stack.feed.captures) - 1]
            # Everything counted and scraped twice since, and the rules evaluated on it.
            cls.stack.wait_for("the last capture's packets in Prometheus", lambda: cls._value(
                f'sip_exporter_packets_total{{source="{calls_source}"}}') == want)
            time.sleep(2.5)
            cls.stack.wait_for("the recording rules", lambda: cls._has_result("peer_direction:sip_calls:rate5m"))
            cls.setup_seconds = time.monotonic() - t0
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def _has_result(cls, expr):
        r = cls.stack.query(expr)
        return r.get("status") == "success" and bool(r["data"]["result"])

    @classmethod
    def _value(cls, expr):
        r = cls.stack.query(expr)
        if r.get("status") != "success" or not r["data"]["result"]:
            return None
        return float(r["data"]["result"][0]["value"][1])

    @classmethod
    def _teardown(cls):
        rc = None
        if cls.stack:
            rc = cls.stack.close()
            cls.stack = None
        cls.work.cleanup()
        return rc

    @classmethod
    def tearDownClass(cls):
        rc = cls._teardown()
        if rc != 0:
            raise AssertionError(f"sip_exporter exited {rc} after its last pipe closed (expected 0)")

    def scrape_time(self):
        """The time of a successful scrape of the exporter: instant queries at it see every series (a
        scrape that timed out on a loaded machine would have marked them stale at its own time)."""
        def ok():
            r = self.stack.query('timestamp(up{job="sip_exporter"} == 1)')
            return r["status"] == "success" and r["data"]["result"] and float(r["data"]["result"][0]["value"][1])
        return self.stack.wait_for("a successful scrape", ok) + 0.001

    def run_all(self, queries):
        """{query: (instant response, range response)}."""
        now = self.scrape_time()
        out = {}
        for q in queries:
            inst = self.stack.query(q.expr, time=f"{now:.3f}")
            rng = prom_api(self.stack.prom_port, "/api/v1/query_range", query=q.expr,
                           start=f"{self.feed_start - 5:.3f}", end=f"{now:.3f}", step="1")
            out[q] = (inst, rng)
        return out

    def test_rule_files_loaded(self):
        r = prom_api(self.stack.prom_port, "/api/v1/rules")
        self.assertEqual(r["status"], "success")
        groups = r["data"]["groups"]
        want = sum(len((load_yaml(p) or {}).get("groups") or []) for p in rule_files())
        self.assertEqual(len(groups), want, "rule groups loaded")
        bad = [(g["name"], rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"]
               if rule.get("health") != "ok"]
        self.assertEqual(bad, [], "rules that do not evaluate cleanly")

    def test_every_query_runs(self):
        queries, _, problems = all_queries()
        queries = [q for q in queries if q.kind in ("panel", "variable", "grafana_alert")]
        self.assertEqual(problems, [])
        results = self.run_all(queries)
        failed, empty = [], []
        for q, (inst, rng) in results.items():
            for what, r in (("instant", inst), ("range", rng)):
                if r.get("status") != "success":
                    failed.append(f"{q}\n    {what} query failed: {r.get('errorType')}: {r.get('error')}")
            if inst.get("status") == "success" and not inst["data"]["result"]:
                empty.append(q)
        self.assertEqual(failed, [], "queries Prometheus rejects:\n" + "\n".join(failed))
        with_data = len(results) - len(empty)
        log(f"\n{with_data} of {len(results)} queries return data after the replay "
            f"(setup {self.setup_seconds:.1f} s); without data:\n" +
            "\n".join(f"  {q.where}" for q in empty))
        # Data presence: every panel shows something, except what needs more history than this run has
        # (a baseline of the hour that ended 5 minutes ago) and the alert queries (nothing is wrong).
        def needs_history(q):
            return "offset5m" in q.expr or re.search(r"\boffset\s+5m\b", q.expr)
        missing = [str(q) for q in empty if q.kind != "grafana_alert" and not needs_history(q)]
        self.assertEqual(missing, [], "panels without data:\n" + "\n".join(missing))

    def test_core_panels_show_traffic(self):
        """The headline numbers are non-zero: the replay really reached the panels."""
        d = load_dashboard()
        titles = {"SIP messages/s", "Call attempts/s", "Responses/s by class", "Responses/s by code",
                  "Packets/s by source", "Transactions/s by method"}
        queries, _ = dashboard_queries(dashboard=d)
        seen = set()
        at = f"{self.scrape_time():.3f}"
        for q in queries:
            if q.kind == "panel" and q.panel["title"] in titles:
                r = self.stack.query(q.expr, time=at)
                self.assertEqual(r["status"], "success", str(q))
                values = [float(s["value"][1]) for s in r["data"]["result"]]
                self.assertTrue(any(v > 0 for v in values), f"{q}: {values}")
                seen.add(q.panel["title"])
        self.assertEqual(seen, titles)

    def test_code_mapping_covers_every_code_counted(self):
        """Every code the exporter counted is a three-digit code: registered, or shown by the regex mapping."""
        r = self.stack.query("count by (code) (sip_responses_total)", time=f"{self.scrape_time():.3f}")
        codes = {s["metric"]["code"] for s in r["data"]["result"]}
        self.assertTrue({"100", "180", "200", "503", "408", "486", "603", "608"} <= codes, sorted(codes))
        rx = re.compile(UNREGISTERED_PATTERN.strip("/"))
        for c in codes:
            self.assertTrue(c in SIP_REASON_PHRASES or rx.fullmatch(c), c)

    def test_grafana_alerts_fire_like_their_prometheus_twins(self):
        """promtool evaluates the Grafana alert queries, with the shipped rule files, on two hours of
        synthetic history per peer: a share that jumps, one that appears from nothing and one of
        timeouts fire; a steady share and a small rise stay quiet."""
        promtool = lib.require_tool("promtool")
        work = os.path.join(self.work.name, "grafana_alert_exprs")
        os.makedirs(work)
        grafana = {q.rule["uid"]: q.expr for q in grafana_alert_queries() if q.rule["uid"] in GRAFANA_TWINS}
        self.assertEqual(set(grafana), set(GRAFANA_TWINS))

        def series(metric, peer, values, **labels):
            labels = {"job": "sip_exporter", "instance": "x", "peer": peer, "direction": "outbound",
                      "method": "INVITE", **labels}
            return {"series": metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}",
                    "values": values}

        def txn(peer, code, values):
            return series("sip_transactions_total", peer, values, code=code, cls=f"{code[0]}xx")

        inputs, want = [], {}
        for uid, code in (("sipex-503-rising", "503"), ("sipex-408-rising", "408")):
            inputs += [
                # 1/s answered 200 all along, and CODE at 1/min for two hours, then 0.5/s: fires.
                txn(f"rising{code}", "200", "0+60x130"), txn(f"rising{code}", code, "0+1x120 150+30x9"),
                # CODE at 10% all along: quiet.
                txn(f"steady{code}", "200", "0+54x130"), txn(f"steady{code}", code, "0+6x130"),
                # No CODE at all for two hours, then 0.5/s: fires (baseline 0).
                txn(f"new{code}", "200", "0+60x130"), txn(f"new{code}", code, "_x120 30+30x9"),
                # No CODE for two hours, then 1/min (1.6%, under the 5-point margin and the floor): quiet.
                txn(f"small{code}", "200", "0+60x130"), txn(f"small{code}", code, "_x120 1+1x9"),
            ]
            want[uid] = {f"rising{code}", f"new{code}"}
        # Requests never answered count as 408s: timeouts from nothing to 0.5/s fire the 408 alert.
        inputs += [txn("timeouts", "200", "0+60x130"),
                   series("sip_transaction_timeouts_total", "timeouts", "0x120 30+30x9")]
        want["sipex-408-rising"].add("timeouts")
        for item in inputs:
            item["series"] = item["series"].replace("cls=", "class=")
        with open(os.path.join(work, "grafana.rules.yml"), "w") as f:
            json.dump({"groups": [{"name": "grafana_alert_queries", "rules": [
                {"alert": uid, "expr": expr} for uid, expr in sorted(grafana.items())]}]}, f)
        test = {"rule_files": rule_files() + ["grafana.rules.yml"], "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": inputs, "alert_rule_test": [
                    {"eval_time": "130m", "alertname": uid, "exp_alerts": [
                        {"exp_labels": {"job": "sip_exporter", "peer": p, "direction": "outbound"}}
                        for p in sorted(peers)]}
                    for uid, peers in sorted(want.items())]}]}
        with open(os.path.join(work, "test.yml"), "w") as f:
            json.dump(test, f)
        cp = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=work, capture_output=True, text=True,
                            timeout=120)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)


def update_code_mappings(path=DASHBOARD):
    """Rewrites the dashboard's code mappings and code display names from SIP_REASON_PHRASES:
    python3 tests/e2e/test_dashboards.py --update-code-mappings"""
    with open(path) as f:
        d = json.load(f)
    for p in walk_panels(d["panels"]):
        overrides = p.get("fieldConfig", {}).get("overrides", [])
        for o in overrides:
            if o["matcher"] == {"id": "byName", "options": "code"}:
                for prop in o["properties"]:
                    if prop["id"] == "mappings":
                        prop["value"] = code_value_mappings()
        if p["type"] == "timeseries" and any(t.get("legendFormat") == "{{code}}" for t in p.get("targets", [])):
            p["fieldConfig"]["overrides"] = [
                o for o in overrides
                if not (o["matcher"]["id"] == "byName" and o["properties"][0]["id"] == "displayName")
            ] + code_display_overrides()
    with open(path, "w") as f:
        json.dump(d, f, indent=2, ensure_ascii=False)
        f.write("\n")


def tearDownModule():
    if _Emitted.tmp:
        _Emitted.tmp.cleanup()


if __name__ == "__main__":
    if sys.argv[1:] == ["--update-code-mappings"]:
        update_code_mappings()
        sys.exit(0)
    lib.main()
