#!/usr/bin/env bash
# Recovery benchmark (not a test): a plan of 12 services in 4 waves, each
# service needing its own system (a file set of real, incompressible
# data restored from a local repository) and, from the second wave on,
# one service of the wave before; each service then runs a `wait` step
# (its application starting). Measured in the same run:
#   - each system's restore alone (`haven restore`, sequentially: the
#     individual restore times);
#   - the critical path of those times through the plan's dependencies
#     (each service's own time is its wait);
#   - the dry-run's predicted completion (from one drill of each system);
#   - the recovery itself (`haven recover --plan bench --target
#     alternate:DIR`), REPS times (default 5): its wall time from the
#     run's start to its last step's end.
# Targets: the recovery's wall time within 10 % of the critical path
# (waves overlap: a service starts when its own needs are back, not when
# the whole wave before is), and the prediction within 20 % of it.
#
# usage: bench/recovery.sh [WORKDIR]     (default /tmp/haven-bench-recovery)
# writes bench/results/recovery.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${1:-/tmp/haven-bench-recovery}
REPS=${REPS:-5}
OUT="$ROOT/bench/results/recovery.md"

cargo build --release --locked -p haven-cli >&2
HAVEN="${CARGO_TARGET_DIR:-$ROOT/target}/release/haven"
[ -x "$HAVEN" ] || { echo "no haven binary at $HAVEN" >&2; exit 1; }

DATA="$WORK/haven"
export HAVEN_BENCH_PASSWORD=bench
haven() { "$HAVEN" --data-dir "$DATA" "$@"; }

# System N holds (16 + 8 N) MiB in 8 files; service waits cycle 2, 3, 4 s.
size_mib() { echo $((16 + 8 * $1)); }
wait_s() { echo $((2 + ($1 - 1) % 3)); }

prepare() {
  rm -rf "$WORK"
  mkdir -p "$WORK/data" "$DATA/catalog"
  local cat="$DATA/catalog/bench.toml"
  : > "$cat"
  for n in $(seq 1 12); do
    local dir="$WORK/data/sys$n" mib
    mib=$(size_mib "$n")
    mkdir -p "$dir"
    for f in $(seq 1 8); do
      head -c $((mib * 1048576 / 8)) /dev/urandom > "$dir/part$f.bin"
    done
    local wave=$(((n - 1) / 3)) needs="\"sys$n\""
    if [ "$wave" -gt 0 ]; then needs="$needs, \"svc$((n - 3))\""; fi
    cat >> "$cat" <<TOML
[[service]]
id = "svc$n"
tier = 2
rpo = "1d"
rto = "1h"
mtd = "1d"
depends_on = [$needs]

[[service.recovery]]
type = "wait"
duration = "$(wait_s "$n")s"

[[system]]
id = "sys$n"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["$dir"]

TOML
  done
  cat >> "$cat" <<TOML
[[policy]]
id = "daily"
schedule = "0 1 * * *"
repository = "main"

[[repository]]
id = "main"
url = "$WORK/repo"
password = "env:HAVEN_BENCH_PASSWORD"

[[plan]]
id = "bench"
services = "all"
concurrency = 12
TOML
  HAVEN_REPO="$WORK/repo" HAVEN_PASSWORD=bench "$HAVEN" repo init >&2
  for n in $(seq 1 12); do haven run "sys$n" >&2; done
  for n in $(seq 1 12); do haven drill "sys$n" >/dev/null; done
}
if [ "${REUSE:-0}" != 1 ] || [ ! -d "$DATA" ]; then prepare; fi

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
now_ms() { date +%s%3N; }

# The individual restore times, one system at a time.
for n in $(seq 1 12); do
  rm -rf "$WORK/alone"
  sync
  start=$(now_ms)
  HAVEN_REPO="$WORK/repo" HAVEN_PASSWORD=bench haven restore "sys$n" --target "$WORK/alone" >/dev/null
  printf 'alone-sys%s\t%s\n' "$n" $(($(now_ms) - start)) >> "$RESULTS"
done
rm -rf "$WORK/alone"

predicted=$(haven --json recover --plan bench --dry-run | python3 -c '
import json, re, sys
def secs(d):
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", d)
    h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return h * 3600 + mi * 60 + s
print(round(secs(json.load(sys.stdin)["completion"]) * 1000))')

for rep in $(seq 1 "$REPS"); do
  rm -rf "$WORK/recovered"
  sync
  haven --json recover --plan bench --target "alternate:$WORK/recovered" --reason "benchmark $rep" 2>/dev/null \
    | python3 -c '
import json, sys
from datetime import datetime
run = json.load(sys.stdin)
assert run["state"] == "completed", run["state"]
t = lambda s: datetime.fromisoformat(s[:26].rstrip("Z") + "+00:00")
ends = [t(s["ended_at"]) for s in run["steps"]]
print("recovery\t%d" % round((max(ends) - t(run["started_at"])).total_seconds() * 1000))' >> "$RESULTS"
done
rm -rf "$WORK/recovered"

# The critical path of the individual times: a service ends its wait
# after its system and its upstream service are back.
critical=$(python3 - "$RESULTS" <<'PY'
import sys
alone = {}
for line in open(sys.argv[1]):
    k, v = line.split("\t")
    if k.startswith("alone-"):
        alone[k[len("alone-"):]] = int(v)
back = {}
for n in range(1, 13):
    ready = alone[f"sys{n}"]
    if n > 3:
        ready = max(ready, back[n - 3])
    back[n] = ready + (2 + (n - 1) % 3) * 1000
print(max(back.values()))
PY
)
median() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$RESULTS" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
actual=$(median recovery)
ratio() { python3 -c "print(f'{($1 / $2 - 1) * 100:+.1f} %')"; }
alone_rows=$(for n in $(seq 1 12); do printf '| sys%s | %s MiB | %s ms |\n' "$n" "$(size_mib "$n")" "$(median "alone-sys$n")"; done)
all_runs=$(awk -F'\t' '$1 == "recovery" { printf "%s%s", sep, $2; sep = ", " }' "$RESULTS")

cat > "$OUT" <<MD
# Recovery benchmark

\`bench/recovery.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d). A plan of 12
services in 4 waves (svc1–3, then svc4–6 each needing one of them, …),
each service needing its own system: a file set of incompressible data
restored from a local repository into an alternate directory; each
service then waits 2, 3 or 4 s (its application starting). Concurrency
12: slots never limit, so the critical path is the dependency chain.

| what | time | against the critical path | target |
|---|---:|---:|---:|
| critical path of the individual restore times and the waits | $critical ms | | |
| recovery, run start to last step end (median of $REPS: $all_runs ms) | $actual ms | $(ratio "$actual" "$critical") | within ±10 % |
| dry-run prediction (drill history × current sizes, the waits) | $predicted ms | $(ratio "$predicted" "$critical") | within ±20 % of the actual ($(ratio "$predicted" "$actual")) |

The individual restore times (\`haven restore SYSTEM\`, one at a time,
including opening the repository):

| system | size | restore alone |
|---|---:|---:|
$alone_rows

In the recovery all 12 restores start at once and share the machine's
cores and disk, so each takes longer than alone; the waves overlap
because a service starts the moment its own system and upstream service
are back (svc4 does not wait for svc2 or svc3).
MD
cat "$OUT"
