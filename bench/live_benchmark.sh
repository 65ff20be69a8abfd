#!/bin/bash
# Live benchmark: how fast can traffic arrive before sip_exporter loses any of it?
#
# A mixed capture written by gen_capture (profile full: SIP over UDP on ports 5060, 5080, 5090,
# 15060 and 25060, about two RTP frames per SIP message, IPv4 and IPv6, untagged, 802.1Q and QinQ
# frames, ARP) is replayed with tcpreplay into one end of a veth pair; the other end lives in a
# network namespace this script creates, where sip_exporter captures it live with its DEFAULT BPF
# filter (no --capture.bpf-filter; --sip.ports lists the capture's SIP ports), so RTP and ARP are
# rejected in the kernel and only SIP reaches the process. Two exporter set-ups are measured:
# `--workers=1` (one capture thread) and `--capture.threads=2 --workers=2` (PACKET_FANOUT).
#
# For each set-up: one replay at --topspeed, then fixed rates (--pps): a bisection between zero
# and the top-speed rate when top speed lost packets, a few rungs below it otherwise. Every run
# replays the whole capture and reports
#   - tcpreplay's achieved rate, the frames the inner veth end received, and frames lost on the
#     veth itself (the outer end's tx_dropped: a full backlog; these never reach any capture);
#   - what the exporter received (sip_exporter_packets_total), how many frames the kernel's BPF
#     rejected (veth rx - received - kernel and interface drops), drops by stage
#     (sip_exporter_dropped_packets_total: kernel, interface, pool, queue), SIP messages counted;
#   - the exporter's CPU time during the run (the sum of its threads' run time from
#     /proc/PID/task/*/schedstat, before the replay and once it is idle again, net of its idle
#     rate measured just before), per million frames offered and per million SIP messages counted.
# A run is "clean" when nothing was dropped anywhere and the exporter counted exactly the SIP
# messages that the same capture gives in file mode through the same filter (the reference,
# computed once per capture). The frames received may differ from the reference by a few
# non-SIP frames: the kernel sees VLAN tags stripped into metadata, libpcap's own filter in file
# mode sees them in the frame, and `vlan` tests differ accordingly (libpcap's pcap-filter(7) on
# Linux VLAN offload); the summary says by how many. The headline per set-up is the highest clean
# achieved rate, and what --topspeed gave.
#
# Counts come from --metrics.out, written when the exporter ends on SIGTERM after the replay
# settled (its CPU back at the idle rate), not from scrapes: the full capture makes ~400 000
# series, and a scrape would cost the exporter CPU inside the measured window. The benchmark's
# config raises limits.max_series so that every message is counted.
#
# usage: bench/live_benchmark.sh [--quick] [BUILD_DIR]
#   BUILD_DIR  the build tree holding sip_exporter, tests/gen_capture and bench/default_filter
#              (default: the repository's build/)
#   --quick    a smaller capture (100 000 SIP messages), fewer rates: about two minutes
# Needs root (namespace, veth, raw capture), ip (iproute2) and tcpreplay. The capture, its truth
# file and the file-mode reference are kept in BUILD_DIR/live-bench/ and reused (gen_capture is
# deterministic); each run's table, tcpreplay output and exporter stderr go to
# BUILD_DIR/live-bench/results-DATE/. The namespace, the veth pair and every process started are
# removed on exit, also on an error or a signal.
set -euo pipefail

usage() {
  sed -n '/^# usage:/,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d'
  exit "${1:-2}"
}

QUICK=0
BUILD=""
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h | --help) usage 0 ;;
    -*) echo "live_benchmark: unknown option $arg" >&2; usage 2 ;;
    *) [ -z "$BUILD" ] || usage 2; BUILD=$arg ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$root/build}
[ -d "$BUILD" ] || { echo "live_benchmark: no build directory $BUILD" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
EXPORTER=$BUILD/sip_exporter
GEN=$BUILD/tests/gen_capture

die() { echo "live_benchmark: $*" >&2; exit 1; }
log() { echo "$*" >&2; }

missing=""
[ -x "$EXPORTER" ] || missing="$missing sip_exporter"
[ -x "$GEN" ] || missing="$missing gen_capture"
[ -x "$BUILD/bench/default_filter" ] || missing="$missing default_filter"
[ -z "$missing" ] || die "not built in $BUILD:$missing (cmake --build $BUILD --target$missing)"
[ "$(id -u)" = 0 ] || die "needs root: it creates a network namespace and a veth pair and captures on it"
for tool in ip tcpreplay awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed (deploy/setup-debian.sh --test installs tcpreplay)"
done

# ------------------------------------------------------------------------------------ parameters
SEED=7
if [ "$QUICK" = 1 ]; then
  MESSAGES=100000   # ~300 000 frames
  BISECT_STEPS=2    # fixed-rate runs when top speed lost packets
  INFO_RATES="0.5"  # fixed-rate runs (fractions of top speed) when top speed was clean
  TOPSPEED_RUNS=1
  CONFIRM=0         # repeat the best clean rate once more
  IDLE_SECONDS=1
else
  MESSAGES=300000   # ~900 000 frames
  BISECT_STEPS=5
  INFO_RATES="0.25 0.5 0.75"
  TOPSPEED_RUNS=2
  CONFIRM=1
  IDLE_SECONDS=2
fi
BUFFER=268435456    # --capture.buffer-size: 256 MiB of kernel ring per capture thread
MTU=9000
CONFIGS=("--workers=1" "--capture.threads=2 --workers=2")

# The SIP ports gen_capture writes (its kSipPorts), so SIP on non-standard ports passes the filter.
SIP_PORTS=$(sed -n 's/.*kSipPorts\[\] = {\(.*\)};.*/\1/p' "$root/tests/tools/gen_capture.cpp" 2>/dev/null |
  tr -d ' ' | tr , '\n' | awk 'NF && !seen[$0]++' | paste -sd, -)
SIP_PORTS=${SIP_PORTS:-5060,5080,15060,25060,5090}

# The filter the exporter builds from --sip.ports, printed by the exporter's own code
# (bench/default_filter.cpp calls default_bpf_filter()): used only in file mode, for the
# reference the live runs are compared with.
default_filter() { "$BUILD/bench/default_filter" "$SIP_PORTS"; }

# -------------------------------------------------------------------------- the capture (cached)
CACHE=$BUILD/live-bench
mkdir -p "$CACHE"
cap=$CACHE/full-seed$SEED-m$MESSAGES
if [ ! -s "$cap.pcap" ] || [ ! -s "$cap.json" ] || [ "$GEN" -nt "$cap.pcap" ]; then
  log "generating $cap.pcap (gen_capture --profile full --messages $MESSAGES --seed $SEED)"
  "$GEN" --out "$cap.tmp.pcap" --truth "$cap.tmp.json" --config "$cap.tmp.yaml" --seed "$SEED" \
    --messages "$MESSAGES" --profile full --linktype en10mb
  mv "$cap.tmp.json" "$cap.json"
  mv "$cap.tmp.yaml" "$cap.yaml"
  mv "$cap.tmp.pcap" "$cap.pcap"
  rm -f "$cap.ref"
fi
# The generated config plus a series cap that the capture's ~400 000 series do not reach.
CONFIG=$cap.bench.yaml
{ cat "$cap.yaml"; echo "limits: { max_series: 4000000 }"; } > "$CONFIG.tmp"
if cmp -s "$CONFIG.tmp" "$CONFIG"; then rm -f "$CONFIG.tmp"; else mv "$CONFIG.tmp" "$CONFIG"; fi

FRAMES=$(awk -F'[:,]' '/"packets":/ {gsub(/ /, "", $2); print $2; exit}' "$cap.json")
SIP_TRUTH=$(awk '/"count": [0-9]+}/ {sub(/.*"count": /, ""); s += $0 + 0} END {print s + 0}' "$cap.json")

# exposition FILE -> "packets kernel interface pool queue sip series_overflow"
figures() {
  awk '
    /^#/ { next }
    /^sip_exporter_packets_total[{ ]/ { p += $NF }
    /^sip_exporter_dropped_packets_total[{ ]/ {
      if (match($0, /stage="[a-z]+"/)) d[substr($0, RSTART + 7, RLENGTH - 8)] += $NF
    }
    /^sip_(requests|responses)_total[{ ]/ { s += $NF }
    /^sip_exporter_series_overflow_total[{ ]/ { o += $NF }
    END { printf "%d %d %d %d %d %d %d\n", p, d["kernel"], d["interface"], d["pool"], d["queue"], s, o }
  ' "$1"
}

# The reference: the capture in file mode through the default filter, and unfiltered.
if [ ! -s "$cap.ref" ] || [ "$EXPORTER" -nt "$cap.ref" ] || [ "$CONFIG" -nt "$cap.ref" ] ||
   [ "$BUILD/bench/default_filter" -nt "$cap.ref" ]; then
  log "computing the file-mode reference (the capture through the default filter, and unfiltered)"
  "$EXPORTER" --capture.file="$cap.pcap" --config.file="$CONFIG" --capture.bpf-filter="$(default_filter)" \
    --metrics.out="$cap.ref.filtered.txt"
  "$EXPORTER" --capture.file="$cap.pcap" --config.file="$CONFIG" --metrics.out="$cap.ref.all.txt"
  read -r fp _ _ _ _ fs fo < <(figures "$cap.ref.filtered.txt")
  read -r ap _ _ _ _ as ao < <(figures "$cap.ref.all.txt")
  rm -f "$cap.ref.filtered.txt" "$cap.ref.all.txt"
  if [ "$fo" != 0 ] || [ "$ao" != 0 ]; then die "series overflow in file mode: raise limits.max_series in $CONFIG"; fi
  echo "$fp $fs $ap $as" > "$cap.ref"
fi
read -r REF_RECV REF_SIP ALL_PKTS ALL_SIP < "$cap.ref"
[ "$ALL_PKTS" = "$FRAMES" ] || log "warning: file mode read $ALL_PKTS frames, the truth file says $FRAMES"
[ "$ALL_SIP" = "$SIP_TRUTH" ] || log "warning: file mode counted $ALL_SIP SIP messages unfiltered, the truth file says $SIP_TRUTH"

# --------------------------------------------------------------- namespace, veth pair, clean-up
NS=sipex-bench-$$
IN=sxb$$i    # interface names: at most 15 characters
OUT=sxb$$o
EXP_PID=""
REPLAY_PID=""
CREATED=0
WORK=$(mktemp -d /tmp/sipex-live-bench.XXXXXX)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$REPLAY_PID" ] && kill -0 "$REPLAY_PID" 2>/dev/null; then
    kill "$REPLAY_PID" 2>/dev/null || true
    wait "$REPLAY_PID" 2>/dev/null || true
  fi
  if [ -n "$EXP_PID" ] && kill -0 "$EXP_PID" 2>/dev/null; then
    kill -TERM "$EXP_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$EXP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$EXP_PID" 2>/dev/null || true
    wait "$EXP_PID" 2>/dev/null || true
  fi
  if [ "$CREATED" = 1 ]; then
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$OUT" 2>/dev/null || true   # deleting the namespace deleted the pair already
  fi
  rm -rf "$WORK"
  if [ "$rc" != 0 ] && [ -n "${RESULTS:-}" ] && [ ! -e "$RESULTS/table.txt" ]; then
    echo "the benchmark ended with exit status $rc before its table" > "$RESULTS/INCOMPLETE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CREATED=1
ip netns add "$NS"
ip link add "$OUT" type veth peer name "$IN"
ip link set "$IN" netns "$NS"
# IPv6 off before the links come up: no router or neighbour solicitations, no MLD on the link.
if [ -d /proc/sys/net/ipv6 ]; then
  echo 1 > "/proc/sys/net/ipv6/conf/$OUT/disable_ipv6"
  ip netns exec "$NS" sh -c "echo 1 > /proc/sys/net/ipv6/conf/$IN/disable_ipv6"
fi
ip link set "$OUT" mtu "$MTU" up
ip -n "$NS" link set "$IN" mtu "$MTU" up
ip -n "$NS" link set lo up   # the exporter's HTTP listener

in_stat() { ip netns exec "$NS" cat "/sys/class/net/$IN/statistics/$1"; }
out_stat() { cat "/sys/class/net/$OUT/statistics/$1"; }

# The CPU time (ns) of process $1, all threads: sum_exec_runtime from schedstat, else utime+stime.
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ns() {
  local s=0 f v
  if [ -r "/proc/$1/schedstat" ]; then
    for f in /proc/"$1"/task/*/schedstat; do
      read -r v _ < "$f" 2>/dev/null && s=$((s + v))
    done
    echo "$s"
  else
    awk -v t="$TICK_NS" '{ sub(/.*\) /, ""); print ($12 + $13) * t }' "/proc/$1/stat"
  fi
}
now_ns() { local t=${EPOCHREALTIME/./}; echo $((10#$t * 1000)); }

RESULTS=$CACHE/results-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
TSV=$RESULTS/runs.tsv
printf 'setup\trate\tachieved_pps\tsent\tveth_rx\tveth_tx_dropped\treceived\tbpf_rejected\tkernel\tinterface\tpool\tqueue\tsip\tcpu_s\tidle_ms_per_s\tnet_cpu_s\tclean\texit\n' > "$TSV"
NRUN=0

# run_one SETUP_NAME "EXPORTER FLAGS" RATE_ARG: one exporter, one replay of the whole capture.
# Sets R_ACH (achieved pps), R_CLEAN (1/0) and R_DROPS (every loss, counted or not).
run_one() {
  local setup=$1 flags=$2 rate=$3
  NRUN=$((NRUN + 1))
  local tag
  tag=$(printf '%02d-%s-%s' "$NRUN" "$setup" "${rate#--}")
  local err=$RESULTS/$tag.stderr out=$WORK/$tag.metrics rep=$RESULTS/$tag.tcpreplay
  # shellcheck disable=SC2086  # flags are words
  ip netns exec "$NS" "$EXPORTER" --capture.interface="$IN" $flags --sip.ports="$SIP_PORTS" \
    --capture.buffer-size="$BUFFER" --config.file="$CONFIG" --web.listen-address=127.0.0.1:0 \
    --metrics.out="$out" < /dev/null > /dev/null 2> "$err" &
  EXP_PID=$!   # `ip netns exec` execs the exporter: the same pid
  local deadline=$((SECONDS + 30))
  until grep -q 'serving .* on port [1-9]' "$err"; do
    kill -0 "$EXP_PID" 2>/dev/null || { cat "$err" >&2; wait "$EXP_PID" || true; EXP_PID=""; die "sip_exporter exited before listening"; }
    [ "$SECONDS" -lt "$deadline" ] || die "sip_exporter did not start listening within 30 s"
    sleep 0.05
  done
  sleep 0.5   # let the start-up (ring allocation, threads) finish before measuring the idle rate
  local i0 i1 t0 t1
  i0=$(cpu_ns "$EXP_PID"); t0=$(now_ns)
  sleep "$IDLE_SECONDS"
  i1=$(cpu_ns "$EXP_PID"); t1=$(now_ns)
  local idle_per_s=$(( (i1 - i0) * 1000000000 / (t1 - t0) ))   # ns of CPU per s idle

  local rx0 lost0 c0 c1 ts te
  rx0=$(in_stat rx_packets); lost0=$(out_stat tx_dropped)
  c0=$(cpu_ns "$EXP_PID"); ts=$(now_ns)
  tcpreplay -i "$OUT" --no-flow-stats "$rate" "$cap.pcap" > "$rep" 2>&1 &
  REPLAY_PID=$!
  wait "$REPLAY_PID" || { cat "$rep" >&2; REPLAY_PID=""; die "tcpreplay failed"; }
  REPLAY_PID=""
  # Settled: two consecutive 250 ms intervals with the exporter's CPU back near its idle rate.
  local quiet=0 prev cur thr=$(( idle_per_s * 3 / 4 + 10000000 ))
  prev=$(cpu_ns "$EXP_PID")
  deadline=$((SECONDS + 120))
  while [ "$quiet" -lt 2 ]; do
    sleep 0.25
    cur=$(cpu_ns "$EXP_PID")
    if [ $((cur - prev)) -le "$thr" ]; then quiet=$((quiet + 1)); else quiet=0; fi
    prev=$cur
    [ "$SECONDS" -lt "$deadline" ] || { log "warning: $tag: the exporter did not go idle within 120 s"; break; }
  done
  c1=$cur; te=$(now_ns)
  local rx lost
  rx=$(( $(in_stat rx_packets) - rx0 )); lost=$(( $(out_stat tx_dropped) - lost0 ))
  kill -TERM "$EXP_PID"
  deadline=$((SECONDS + 120))
  while kill -0 "$EXP_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  kill -0 "$EXP_PID" 2>/dev/null && { log "warning: $tag: sip_exporter still running 120 s after SIGTERM: killed"; kill -KILL "$EXP_PID"; }
  local code=0
  wait "$EXP_PID" || code=$?
  EXP_PID=""
  [ -s "$out" ] || die "$tag: --metrics.out was not written (exit $code); see $err"

  local sent failed ach
  sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' "$rep")
  failed=$(sed -n 's/.*Failed packets: *\([0-9]*\).*/\1/p' "$rep")
  ach=$(sed -n 's/.*Rated: .* Mbps, \([0-9.]*\) pps.*/\1/p' "$rep")
  if [ -z "$sent" ] || [ -z "$ach" ]; then die "$tag: cannot read tcpreplay's summary in $rep"; fi
  local p dk di dp dq sip ov
  read -r p dk di dp dq sip ov < <(figures "$out")
  rm -f "$out"
  local rejected=$(( rx - p - dk - di ))
  local cpu=$(( c1 - c0 )) net=$(( c1 - c0 - idle_per_s * (te - ts) / 1000000000 ))
  [ "$net" -ge 0 ] || net=0
  R_DROPS=$(( dk + di + dp + dq + (sent - rx) + failed ))
  R_CLEAN=0
  if [ "$R_DROPS" = 0 ] && [ "$sip" = "$REF_SIP" ] && [ "$sent" = "$FRAMES" ]; then R_CLEAN=1; fi
  R_EXTRA=$(( p - REF_RECV ))
  R_ACH=${ach%.*}
  [ "$ov" = 0 ] || log "warning: $tag: sip_exporter_series_overflow_total $ov"
  [ "${failed:-0}" = 0 ] || log "warning: $tag: tcpreplay could not send $failed frames"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$setup" "${rate#--}" "$R_ACH" "$sent" "$rx" "$lost" "$p" "$rejected" "$dk" "$di" "$dp" "$dq" "$sip" \
    "$(awk -v n="$cpu" 'BEGIN {printf "%.3f", n / 1e9}')" "$((idle_per_s / 1000000))" \
    "$(awk -v n="$net" 'BEGIN {printf "%.3f", n / 1e9}')" "$R_CLEAN" "$code" >> "$TSV"
  log "$(printf '  %-26s %-15s achieved %8s pps, received %s, drops k/i/p/q %s/%s/%s/%s, veth lost %s, SIP %s, CPU %s s, %s' \
    "$setup" "${rate#--}" "$R_ACH" "$p" "$dk" "$di" "$dp" "$dq" "$((sent - rx))" "$sip" \
    "$(awk -v n="$cpu" 'BEGIN {printf "%.2f", n / 1e9}')" "$([ "$R_CLEAN" = 1 ] && echo clean || echo LOSS)")"
  [ "$code" = 0 ] || log "warning: $tag: sip_exporter exited $code after SIGTERM; see $err"
}

# ------------------------------------------------------------------------------------- the runs
log ""
log "capture: $cap.pcap: $FRAMES frames, $SIP_TRUTH SIP messages (truth); through the default filter"
log "         for --sip.ports=$SIP_PORTS (file mode): $REF_RECV frames, $REF_SIP SIP messages"
log "exporter: $("$EXPORTER" --version); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
START=$SECONDS
declare -A BEST BEST_SIP TOP_ACH TOP_DROPS NOTE
for flags in "${CONFIGS[@]}"; do
  setup=${flags// /,}
  setup=${setup//--/}
  log ""
  log "$flags:"
  best=0; top_ach=0; top_drops=0; top_clean=1
  for _ in $(seq "$TOPSPEED_RUNS"); do
    run_one "$setup" "$flags" --topspeed
    [ "$R_ACH" -gt "$top_ach" ] && top_ach=$R_ACH
    top_drops=$((top_drops > R_DROPS ? top_drops : R_DROPS))
    if [ "$R_CLEAN" = 1 ]; then [ "$R_ACH" -gt "$best" ] && best=$R_ACH; else top_clean=0; fi
  done
  if [ "$top_clean" = 1 ]; then
    # Top speed lost nothing: the rungs below it only show CPU per packet at lower rates.
    for f in $INFO_RATES; do
      run_one "$setup" "$flags" "--pps=$(awk -v t="$top_ach" -v f="$f" 'BEGIN {printf "%d", t * f / 1000 + 0.5}')000"
    done
  else
    # Bisect the achieved rate between zero (assumed clean) and top speed (lossy).
    lo=$best; hi=$top_ach
    for _ in $(seq "$BISECT_STEPS"); do
      r=$(( (lo + hi) / 2 / 1000 * 1000 ))
      [ "$r" -ge 1000 ] || break
      [ $((hi - lo)) -gt $((hi / 20)) ] || break   # within 5 %: close enough
      run_one "$setup" "$flags" "--pps=$r"
      if [ "$R_CLEAN" = 1 ]; then
        lo=$R_ACH; [ "$R_ACH" -gt "$best" ] && best=$R_ACH
      else
        hi=$(( R_ACH < r ? R_ACH : r ))
      fi
    done
    if [ "$CONFIRM" = 1 ] && [ "$best" -gt 0 ]; then
      r=$(( best / 1000 * 1000 ))
      log "  confirming $r pps"
      run_one "$setup" "$flags" "--pps=$r"
      [ "$R_CLEAN" = 1 ] || NOTE[$setup]=" (NOT clean when repeated at $r pps: noisy)"
    fi
  fi
  BEST[$setup]=$best
  BEST_SIP[$setup]=$(awk -v b="$best" -v s="$REF_SIP" -v f="$FRAMES" 'BEGIN {printf "%d", b * s / f}')
  TOP_ACH[$setup]=$top_ach
  TOP_DROPS[$setup]=$top_drops
done

# ------------------------------------------------------------------------------------ the report
{
  echo "sip_exporter live benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "exporter: $("$EXPORTER" --version) ($EXPORTER); tcpreplay $(tcpreplay --version 2>&1 | sed -n 's/^tcpreplay version: \([^ ]*\).*/\1/p')"
  echo "capture: $(basename "$cap.pcap"): $FRAMES frames, $SIP_TRUTH SIP messages ($(awk -v s="$SIP_TRUTH" -v f="$FRAMES" 'BEGIN {printf "%.3f", s / f}') per frame)"
  echo "default filter (--sip.ports=$SIP_PORTS), file mode: passes $REF_RECV frames holding $REF_SIP SIP messages"
  echo "exporter flags: --capture.interface=VETH --sip.ports=$SIP_PORTS --capture.buffer-size=$BUFFER + the set-up's flags"
  echo
  awk -F'\t' '
    NR == 1 { next }
    {
      rows[NR] = $0
    }
    END {
      printf "%-27s %-13s %10s %8s %8s %6s %8s %9s %17s %8s %7s %5s %9s %11s %5s\n",
        "set-up", "tcpreplay", "ach. pps", "sent", "veth rx", "v.lost", "received", "BPF rej.",
        "drops k/i/p/q", "SIP", "CPU s", "idle", "s/M pkts", "s/M SIP", "clean"
      for (i = 2; i <= NR; i++) {
        split(rows[i], f, "\t")
        sent = f[4]; sip = f[13]; net = f[16]
        printf "%-27s %-13s %10s %8s %8s %6s %8s %9s %17s %8s %7s %5s %9.3f %11.3f %5s\n",
          f[1], f[2], f[3], sent, f[5], sent - f[5], f[7], f[8], f[9] "/" f[10] "/" f[11] "/" f[12],
          sip, f[14], f[15] "ms", (sent > 0 ? net / (sent / 1e6) : 0), (sip > 0 ? net / (sip / 1e6) : 0),
          (f[17] == 1 ? "yes" : "NO")
      }
    }' "$TSV"
  echo
  echo "ach. pps: tcpreplay's achieved rate; v.lost: frames sent but not received by the inner veth end (a full backlog:"
  echo "lost before any capture); BPF rej.: frames the kernel filter rejected (veth rx - received - kernel/interface drops); CPU s: the"
  echo "exporter's CPU time from the replay start until it was idle again; idle: its CPU use per second before the replay;"
  echo "s/M pkts, s/M SIP: that CPU time net of the idle rate, per million frames offered and per million SIP messages"
  echo "counted; clean: no drop or loss anywhere and exactly the file-mode reference's SIP messages counted."
  echo
  for flags in "${CONFIGS[@]}"; do
    setup=${flags// /,}
    setup=${setup//--/}
    if [ "${BEST[$setup]}" -gt 0 ]; then
      echo "$flags: highest zero-drop rate: ${BEST[$setup]} pps (${BEST_SIP[$setup]} SIP msg/s), topspeed: ${TOP_ACH[$setup]} pps with ${TOP_DROPS[$setup]} drops${NOTE[$setup]:-}"
    else
      echo "$flags: no clean run (lowest rate tried still lost packets), topspeed: ${TOP_ACH[$setup]} pps with ${TOP_DROPS[$setup]} drops"
    fi
  done
  echo "BPF: of the $FRAMES frames offered, the kernel filter rejected $((FRAMES - REF_RECV)) ($(awk -v r="$((FRAMES - REF_RECV))" -v f="$FRAMES" 'BEGIN {printf "%.1f", 100 * r / f}') %: RTP, ARP, other ports); the process received $REF_RECV"
  if [ "${R_EXTRA:-0}" != 0 ]; then
    echo "      (file mode, same filter; the last live run received $(awk -v x="$R_EXTRA" 'BEGIN {printf "%d frames %s", x < 0 ? -x : x, x < 0 ? "fewer" : "more"}'), none of them SIP:"
    echo "      the kernel tests VLAN tags it has stripped into metadata, libpcap's file-mode filter the tags in the frame)"
  fi
  if [ "$REF_SIP" != "$SIP_TRUTH" ]; then
    echo "note: the default filter passes $REF_SIP of the capture's $SIP_TRUTH SIP messages; $((SIP_TRUTH - REF_SIP)) are rejected in the kernel"
    echo "      (file mode, same filter; e.g. SIP over IPv6 behind an extension header, which 'port N' does not match)"
  fi
  echo "took $((SECONDS - START)) s; files: $RESULTS"
} | tee "$RESULTS/table.txt"
