#!/bin/bash
# End-to-end replay benchmark: how fast sip_exporter counts a capture file, against the floor (a
# bare libpcap read loop over the same file, bench/pcap_read_loop.cpp) and against the tool carriers
# use today (`tshark -q -z sip,stat`).
#
# usage: bench/replay_benchmark.sh [--quick] [--runs N] [--messages N] [--cache DIR] [BUILD_DIR]
#   BUILD_DIR   a build tree holding the targets sip_exporter, gen_capture and pcap_read_loop
#               (default ./build); this script builds nothing. A Release build is what to measure:
#                 cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
#                 cmake --build build -j"$(nproc)" --target sip_exporter gen_capture pcap_read_loop
#   --quick     3 runs instead of 5, and no tshark run over the whole mixed capture (a few minutes;
#               that one run alone took over 10 minutes on a loaded 2-CPU machine)
#   --runs N    interleaved runs per measurement (the medians are printed)
#   --messages  SIP datagram slots for gen_capture's full profile (default 305000: ~302,800 messages)
#   --cache     where the captures are kept (default ${XDG_CACHE_HOME:-~/.cache}/sipex-replay-bench)
# Environment: WORKERS="1 2" overrides the worker counts (default 1 .. max(2, min(nproc, 4))).
#
# The captures (deterministic: made once, then reused from the cache; the cache key includes a hash
# of the gen_capture and pcap_read_loop binaries):
#   sip-only  gen_capture --profile full (Ethernet, IPv4/IPv6, 802.1Q and QinQ tags, malformed SIP,
#             retransmissions, keep-alives, ARP) with its RTP stripped by `pcap_read_loop --strip-rtp`
#             (libpcap, seconds; the full profile always interleaves 1-3 RTP packets per message and
#             has no flag to stop it; `tshark -Y sip -w` would take minutes and would also drop the
#             malformed SIP that tshark does not recognise).
#   mixed     the same full-profile capture with its RTP (about 2 RTP packets per SIP message), then
#             the transports profile appended with `mergecap -a` (SIP over TCP, IP fragments, GRE,
#             VXLAN, MPLS, SCTP, WebSocket, ...).
#   slice     the last 10% of the mixed capture's packets (all of the transports part and the end of
#             the full part): tshark is timed on it every round, and sip_exporter too, so their ratio
#             is measured on one file. Without --quick tshark is also timed once over the whole
#             mixed capture.
#   tiny      the first packet of the sip-only capture: sip_exporter's fixed cost (process start,
#             config, writing the exposition, up to one 100 ms tick of the main loop's wait).
#
# sip_exporter runs as `--capture.file=F --config.file=bench.yaml --metrics.out=/dev/null --workers=W`,
# where bench.yaml is gen_capture's configuration (home networks, peer map) with limits.max_series
# raised to 1,000,000: the generated traffic has ~290 peers and ~180,000 counter series, more than
# the default cap of 100,000, and a capped run would count fewer messages. Rows marked "no output"
# leave out --metrics.out, so the final exposition (single-threaded, proportional to the series) is
# not written: they show the capture/worker pipeline alone. SIP messages are the exporter's own
# sip_requests_total + sip_responses_total from one counting run per capture and worker count
# (also checked equal across worker counts); packets are sip_exporter_packets_total.
#
# Times are whole-process wall seconds (bash's `time`), medians of interleaved runs; "cpu" is
# user+system seconds of the process and its threads. On a loaded machine wall time stretches but
# CPU time of a single-threaded tool much less: compare both.
set -euo pipefail

die() { echo "replay_benchmark: $*" >&2; exit 1; }

runs=5
quick=0
messages=305000
cache=${XDG_CACHE_HOME:-$HOME/.cache}/sipex-replay-bench
build=./build
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; runs=3 ;;
    --runs) runs=${2:?}; shift ;;
    --messages) messages=${2:?}; shift ;;
    --cache) cache=${2:?}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "replay_benchmark: unknown option $1" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
case $runs in ''|*[!0-9]*|0) echo "replay_benchmark: --runs needs a positive number" >&2; exit 2 ;; esac
case $messages in ''|*[!0-9]*|0) echo "replay_benchmark: --messages needs a positive number" >&2; exit 2 ;; esac

exporter=$build/sip_exporter
gen=$build/tests/gen_capture
loop=$build/bench/pcap_read_loop
for b in "$exporter" "$gen" "$loop"; do
  [ -x "$b" ] || die "$b not found; build the targets first:
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release
  cmake --build $build -j\"\$(nproc)\" --target sip_exporter gen_capture pcap_read_loop"
done
for t in tshark mergecap editcap capinfos; do
  command -v $t >/dev/null || die "$t not found (Debian: apt-get install tshark wireshark-common)"
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true)

ncpu=$(nproc)
if [ -n "${WORKERS:-}" ]; then
  workers=$WORKERS
else
  top=$((ncpu < 2 ? 2 : (ncpu > 4 ? 4 : ncpu)))
  workers=$(seq -s ' ' 1 $top)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- The captures -----------------------------------------------------------------------------
key=$(cat "$gen" "$loop" | sha256sum | cut -c1-12)
dir=$cache/m$messages-seed1-$key
if [ ! -f "$dir/done" ]; then
  echo "generating the captures in $dir (once) ..."
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  "$gen" --out "$tmp/full.pcap" --truth "$tmp/full.truth" --config "$tmp/full.yaml" --seed 1 \
    --messages "$messages" --linktype en10mb >/dev/null
  "$gen" --out "$tmp/transports.pcap" --truth "$tmp/transports.truth" --config "$tmp/transports.yaml" \
    --seed 1 --profile transports >/dev/null
  "$loop" --strip-rtp "$tmp/sip.pcap" "$tmp/full.pcap" >/dev/null
  mergecap -F pcap -a -w "$tmp/mixed.pcap" "$tmp/full.pcap" "$tmp/transports.pcap"
  n=$(capinfos -M -c -T "$tmp/mixed.pcap" | awk -F'\t' 'NR == 2 {print $2}')
  editcap -F pcap -r "$tmp/mixed.pcap" "$tmp/slice.pcap" "$((n - n / 10 + 1))-$n"
  editcap -F pcap -r "$tmp/sip.pcap" "$tmp/tiny.pcap" 1
  { cat "$tmp/full.yaml"; echo; echo "limits: { max_series: 1000000 }"; } >"$tmp/bench.yaml"
  rm -f "$tmp/full.pcap" "$tmp/transports.pcap" "$tmp/full.truth" "$tmp/transports.truth"
  touch "$tmp/done"
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
caps="sip mixed slice tiny"
declare -A file=([sip]=$dir/sip.pcap [mixed]=$dir/mixed.pcap [slice]=$dir/slice.pcap [tiny]=$dir/tiny.pcap)
declare -A title=([sip]=sip-only [mixed]=mixed [slice]="mixed, last 10%" [tiny]="1 packet")
conf=$dir/bench.yaml

# ---- Counting runs (also warm the page cache) -------------------------------------------------
sum_metric() {  # sum_metric FILE REGEX
  awk -v re="$2" '$0 ~ re {s += $NF} END {printf "%d\n", s}' "$1"
}
declare -A msgs pkts
kernel=
for c in $caps; do
  for w in $workers; do
    "$exporter" --capture.file="${file[$c]}" --config.file="$conf" --metrics.out="$work/$c.prom" --workers="$w" \
      >/dev/null 2>"$work/err" || die "sip_exporter failed on ${file[$c]}: $(cat "$work/err")"
    m=$(sum_metric "$work/$c.prom" '^sip_(requests|responses)_total[{]')
    if [ -z "${msgs[$c]:-}" ]; then
      msgs[$c]=$m
    elif [ "${msgs[$c]}" != "$m" ]; then
      die "${title[$c]}: $m SIP messages with $w workers, ${msgs[$c]} with ${workers%% *}"
    fi
    pkts[$c]=$(sum_metric "$work/$c.prom" '^sip_exporter_packets_total[{]')
    lost=$(sum_metric "$work/$c.prom" '^sip_exporter_(dropped_packets|series_overflow)_total')
    [ "$lost" = 0 ] || echo "warning: ${title[$c]}, $w workers: $lost packets dropped or counts over limits.max_series"
    kernel=$(sed -n 's/^sip_exporter_scan_kernel_info{kernel="\([^"]*\)"}.*/\1/p' "$work/$c.prom")
    revision=$(sed -n 's/^sip_exporter_build_info{.*revision="\([^"]*\)".*/\1/p' "$work/$c.prom")
  done
done
tshark_msgs=$(tshark -r "${file[slice]}" -q -z sip,stat 2>/dev/null | sed -n 's/^Number of SIP messages: //p')

# ---- Timed runs, interleaved ------------------------------------------------------------------
# Each line of $work/times: CAPTURE TOOL WALL CPU
TIMEFORMAT='%R %U %S'
timed() {  # timed CAPTURE TOOL COMMAND...
  local c=$1 tool=$2 t
  shift 2
  if ! t=$( { time "$@" >/dev/null 2>"$work/err"; } 2>&1 ); then
    die "$tool failed on ${file[$c]}: $(cat "$work/err")"
  fi
  echo "$c $tool $t" | awk '{printf "%s %s %s %.3f\n", $1, $2, $3, $4 + $5}' >>"$work/times"
}
exp_tool() {  # exp_tool CAPTURE W OUTPUT(1/0)
  if [ "$3" = 1 ]; then
    timed "$1" "exp_w$2" "$exporter" --capture.file="${file[$1]}" --config.file="$conf" --metrics.out=/dev/null --workers="$2"
  else
    timed "$1" "expnoout_w$2" "$exporter" --capture.file="${file[$1]}" --config.file="$conf" --workers="$2"
  fi
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tshark_full_runs=$((quick ? 0 : 1))
total=$runs
echo "timing: $runs interleaved rounds$([ $tshark_full_runs -gt 0 ] && echo ", then tshark once over the whole mixed capture") ..."
for r in $(seq 1 "$runs"); do
  printf '  round %d/%d\n' "$r" "$total"
  for c in sip mixed; do
    timed $c loop "$loop" "${file[$c]}"
    for w in $workers; do
      exp_tool $c "$w" 1
      exp_tool $c "$w" 0
    done
  done
  exp_tool slice 1 1
  timed slice tshark tshark -r "${file[slice]}" -q -z sip,stat
  exp_tool tiny 1 1
done
for r in $(seq 1 $tshark_full_runs); do
  timed mixed tshark tshark -r "${file[mixed]}" -q -z sip,stat
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- Report -----------------------------------------------------------------------------------
stats() {  # stats CAPTURE TOOL FIELD(3 wall, 4 cpu) -> "median min max runs", or nothing
  awk -v c="$1" -v t="$2" -v f="$3" '$1 == c && $2 == t {print $f}' "$work/times" | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) exit; m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                             printf "%.3f %.3f %.3f %d\n", m, v[1], v[NR], NR}'
}
med() { stats "$1" "$2" "$3" | cut -d' ' -f1; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "-"}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN {if (s > 0) printf "%.0f", n / s; else printf "-"}'; }
label() {
  case $1 in
    loop) echo "pcap_read_loop (floor)" ;;
    tshark) echo "tshark -q -z sip,stat" ;;
    exp_w*) echo "sip_exporter --workers=${1#exp_w}" ;;
    expnoout_w*) echo "sip_exporter --workers=${1#expnoout_w}, no output" ;;
  esac
}
commas() { echo "$1" | rev | sed 's/\([0-9]\{3\}\)/\1,/g; s/,$//' | rev; }

echo
echo "== machine"
echo "cpus: $ncpu ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); SIMD kernel: $kernel"
echo "sip_exporter revision $revision, build type ${build_type:-?}; $(tshark -v 2>/dev/null | awk 'NR == 1 {print $1, $3}')"
echo "load average (1/5/15 min): $load_start at the start, $load_end at the end"
echo "captures: $dir"
awk -v l="${load_start%% *} ${load_end%% *}" -v n="$ncpu" 'BEGIN {split(l, a, " "); if (a[1] > n || a[2] > n)
  print "warning: the load average exceeds the CPU count: wall times include waiting for a CPU (compare the cpu columns)"}'
echo
echo "== captures"
for c in $caps; do
  printf '%-16s %10s packets %9s SIP messages %8s MB\n' "${title[$c]}" "$(commas "${pkts[$c]}")" "$(commas "${msgs[$c]}")" \
    "$(awk -v b="$(wc -c <"${file[$c]}")" 'BEGIN {printf "%.1f", b / 1e6}')"
done
echo "(tshark counts $(commas "${tshark_msgs:-?}") SIP messages in the slice, the exporter $(commas "${msgs[slice]}"))"
echo
echo "== medians of $runs interleaved runs (tshark over the whole mixed capture: $tshark_full_runs run(s))"
printf '%-16s %-38s %4s %24s %8s %12s %12s\n' capture tool runs "wall s [min-max]" "cpu s" "SIP msg/s" "packets/s"
for c in $caps; do
  for tool in loop $(for w in $workers; do echo "exp_w$w expnoout_w$w"; done) tshark; do
    s=$(stats $c $tool 3)
    [ -n "$s" ] || continue
    read -r m lo hi n <<<"$s"
    cpu=$(med $c $tool 4)
    mps=-
    [ "$tool" = loop ] || mps=$(commas "$(rate "${msgs[$c]}" "$m")")
    printf '%-16s %-38s %4s %24s %8s %12s %12s\n' "${title[$c]}" "$(label $tool)" "$n" "$m [$lo-$hi]" "$cpu" "$mps" \
      "$(commas "$(rate "${pkts[$c]}" "$m")")"
  done
done

echo
echo "== ratios (wall medians; cpu medians in brackets)"
r2() { echo "$(div "$(med "$1" "$2" 3)" "$(med "$3" "$4" 3)") [$(div "$(med "$1" "$2" 4)" "$(med "$3" "$4" 4)")]"; }
for c in sip mixed; do
  for w in $workers; do
    echo "${title[$c]}: sip_exporter --workers=$w / pcap_read_loop: $(r2 $c exp_w$w $c loop);  no output: $(r2 $c expnoout_w$w $c loop)"
  done
done
echo "mixed, last 10%: tshark / sip_exporter --workers=1: $(r2 slice tshark slice exp_w1)"
if [ $tshark_full_runs -gt 0 ]; then
  echo "mixed: tshark / sip_exporter --workers=1: $(r2 mixed tshark mixed exp_w1)"
else
  est=$(awk -v t="$(med slice tshark 3)" -v a="${pkts[mixed]}" -v b="${pkts[slice]}" 'BEGIN {printf "%.3f", t * a / b}')
  echo "mixed: tshark estimated as the slice's median x $(div "${pkts[mixed]}" "${pkts[slice]}") (packets) = ${est} s, a lower bound" \
    "(tshark's time per packet grows with the capture) / sip_exporter --workers=1: $(div "$est" "$(med mixed exp_w1 3)")"
fi
for c in sip mixed; do
  for w in $workers; do
    [ "$w" = 1 ] && continue
    echo "${title[$c]}: throughput, $w workers vs 1: $(div "$(med $c exp_w1 3)" "$(med $c exp_w$w 3)");  no output: $(div "$(med $c expnoout_w1 3)" "$(med $c expnoout_w$w 3)")"
  done
done

echo
echo "== targets"
fixed=$(med tiny exp_w1 3)
sip_w1=$(med sip exp_w1 3)
sip_no=$(med sip expnoout_w1 3)
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = op == ">=" ? v >= t : v <= t; printf "%s", ok ? "met" : "NOT met"}'; }
v=$(rate "${msgs[sip]}" "$sip_w1")
echo "sip-only, 1 worker, >= 3,000,000 SIP messages/s: $(commas "$v") -> $(verdict "$v" 3000000 ">=")" \
  "(no output: $(commas "$(rate "${msgs[sip]}" "$sip_no")"); less the 1-packet run's ${fixed} s: $(commas "$(rate "${msgs[sip]}" "$(awk -v a="$sip_w1" -v b="$fixed" 'BEGIN {print a - b}')")"))"
v=$(div "$(med mixed exp_w1 3)" "$(med mixed loop 3)")
echo "mixed, 1 worker, <= 2.0x pcap_read_loop: ${v}x -> $(verdict "$v" 2.0 "<=") (cpu: $(div "$(med mixed exp_w1 4)" "$(med mixed loop 4)")x)"
if [ $tshark_full_runs -gt 0 ]; then
  c=mixed
  what="whole mixed capture"
else
  c=slice
  what="last 10% of the mixed capture"
fi
v=$(div "$(med $c tshark 3)" "$(med $c exp_w1 3)")
echo "mixed, >= 200x faster than tshark ($what): ${v}x -> $(verdict "$v" 200 ">=") (cpu: $(div "$(med $c tshark 4)" "$(med $c exp_w1 4)")x)"
for w in $workers; do
  [ "$w" = 2 ] || continue
  for c in sip mixed; do
    v=$(div "$(med $c exp_w1 3)" "$(med $c exp_w2 3)")
    v2=$(div "$(med $c expnoout_w1 3)" "$(med $c expnoout_w2 3)")
    echo "${title[$c]}, 2 workers vs 1, >= 1.5x: ${v}x -> $(verdict "$v" 1.5 ">=") (no output: ${v2}x -> $(verdict "$v2" 1.5 ">="))"
  done
done
exit 0
