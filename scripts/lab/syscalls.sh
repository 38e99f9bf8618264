#!/usr/bin/env bash
# syscalls.sh CONTENDER CASE: runs one case of the lab's loopback phase (run.sh loopback) for one Strait contender
# and counts, with perf stat on each tier's process for 5 s while the load runs, the system calls, reads, writes,
# the Go scheduler's calls (futex, epoll_pwait, nanosleep), thread switches and CPU time, per request.
#
#   scripts/lab/syscalls.sh strait-ws max     # at the maximum rate (64 connections)
#   scripts/lab/syscalls.sh strait-quic rate  # at 500 req/s (the rate case's first phase)
#
# Root and perf (Debian: apt-get install linux-perf) are needed; LAB_DIR as for run.sh. The per-request figures
# divide by the rate loadgen reports for the measured phase. Like every timing, run it alone on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
contender=${1:?contender: strait-ws or strait-quic}
case=${2:?case: max or rate}
case $contender in
strait-ws) edge=edge-ws ;;
strait-quic) edge=edge-quic ;;
*) echo "contender must be strait-ws or strait-quic" >&2; exit 2 ;;
esac
case $case in max | rate) ;; *) echo "case must be max or rate" >&2; exit 2 ;; esac
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
work=${LAB_DIR:-$PWD/.lab}
mkdir -p "$work"
out=$work/syscalls-$contender-$case
events=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_futex
events=$events,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_nanosleep,context-switches,task-clock

LAB_LOOP_CONTENDERS=$contender LAB_LOOP_CASES=$case scripts/lab/run.sh loopback >"$out.lab" 2>&1 &
lab=$!
# The load generator's binary, not its build: wait for it, then for the load to settle.
for _ in $(seq 1 240); do pgrep -f "$work/bin/loadgen" >/dev/null && break; sleep 0.5; done
sleep 3
e=$(pgrep -f "$work/bin/strait-edge.*$edge" | head -1)
r=$(pgrep -f "$work/bin/strait-relay" | head -1)
[ -n "$e" ] && [ -n "$r" ] || { echo "the lab's edge or relay is not running; see $out.lab" >&2; wait $lab; exit 1; }
perf stat -x, -e "$events" -p "$e" -o "$out.edge" -- sleep 5 &
perf stat -x, -e "$events" -p "$r" -o "$out.relay" -- sleep 5 &
wait %2 %3
wait $lab
# The measured phase's rate: the only line of the max case, the first (500 req/s) of the rate case.
rate=$(grep -E '^loopback' "$out.lab" | head -1 | awk '{print $(NF-4)}')
echo "$contender, $case case, $rate req/s (lab output: $out.lab); per request:"
for tier in edge relay; do
  awk -F, -v tier=$tier -v rate="$rate" '
    /^[0-9]/ { n = $1; name = $3; sub(/^(raw_)?syscalls:sys_enter_?/, "", name); if (name == "") name = "all calls"
               if (name == "task-clock") printf " %s %.1f us", "cpu", n * 1000 / (rate * 5)
               else printf " %s %.2f", name, n / (rate * 5) }
    END { print "" }' "$out.$tier" | sed "s/^/  $tier:/"
done
