#!/usr/bin/env bash
# Drill benchmark (not a test): `haven drill` against doing the same by
# hand, measured in the same run, for
#   - a ~1 GiB file set (bench/gen_dataset.py): `haven restore SYSTEM`
#     into a fresh directory, then the same check command;
#   - a PostgreSQL database whose custom-format dump is ~1 GiB: `haven
#     restore SYSTEM`, then initdb + pg_ctl start + createdb + pg_restore
#     + the same count query + pg_ctl stop (what the drill does in its
#     throwaway cluster).
# Each is run REPS times (default 3); medians are reported with the
# drill's overhead over the manual procedure (target: at most 10 %).
#
# usage: bench/drill.sh [WORKDIR]     (default /tmp/haven-bench-drill)
# writes bench/results/drill.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${1:-/tmp/haven-bench-drill}
REPS=${REPS:-3}
OUT="$ROOT/bench/results/drill.md"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server programs are missing (apt-get install postgresql)" >&2; exit 1; }
# PostgreSQL refuses root: its servers run as nobody then.
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
pg_owned() { if [ "$(id -u)" = 0 ]; then chown -R 65534:65534 "$@"; fi; }

cargo build --release --locked -p haven-cli >&2
HAVEN="${CARGO_TARGET_DIR:-$ROOT/target}/release/haven"
[ -x "$HAVEN" ] || { echo "no haven binary at $HAVEN" >&2; exit 1; }

FILES="$WORK/files"
PROD="$WORK/prod"
PORT=5998
ROWS=4500000
DATA="$WORK/haven"
export HAVEN_BENCH_PASSWORD=bench
haven() { "$HAVEN" --data-dir "$DATA" "$@"; }
psql_prod() { "$PGBIN/psql" -h "$PROD" -p "$PORT" -U haven -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# The estate: files, a database, a repository with one backup of each.
# REUSE=1 keeps the one a previous run prepared.
prepare() {
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
python3 "$ROOT/bench/gen_dataset.py" "$FILES" >&2

# "Production": a cluster on a socket only, one table of ~1 GiB of text.
mkdir -p "$PROD"
pg_owned "$PROD"
as_pg "$PGBIN/initdb" -D "$PROD/data" -U haven --auth=trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PROD/data" -o "-k $PROD -p $PORT -c listen_addresses=''" -l "$PROD/log" -w start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$PROD/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT
psql_prod -d postgres -c "CREATE DATABASE bench"
psql_prod -d bench -c "CREATE TABLE readings (id bigint PRIMARY KEY, taken timestamptz, payload text);
  INSERT INTO readings SELECT g, now() - g * interval '1 second', repeat(md5(g::text), 7) FROM generate_series(1, $ROWS) g;"

mkdir -p "$DATA/catalog"
cat > "$DATA/catalog/bench.toml" <<TOML
[[service]]
id = "bench"
tier = 1
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["bench-files", "bench-db"]

[[system]]
id = "bench-files"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["$FILES"]

[[system.check]]
type = "command"
run = "test \$(find . -type f | wc -l) -eq $FILE_COUNT"

[[system]]
id = "bench-db"
kind = "database-postgres"
policy = "daily"

[[system.backup_set]]
command = "$PGBIN/pg_dump -Fc -Z0 -h $PROD -p $PORT -U haven bench"

[[system.check]]
type = "sql"
query = "SELECT count(*) FROM readings"
expect = "$ROWS"

[[policy]]
id = "daily"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "$WORK/repo"
password = "env:HAVEN_BENCH_PASSWORD"
TOML
haven repo init --all --catalog "$DATA/catalog" >&2
haven run bench-files >&2
haven run bench-db >&2
as_pg "$PGBIN/pg_ctl" -D "$PROD/data" -m fast -w stop >/dev/null
trap - EXIT
}
if [ "${REUSE:-0}" = 1 ] && [ -f "$DATA/catalog/bench.toml" ]; then
  echo "reusing the estate in $WORK" >&2
else
  prepare
fi
FILE_BYTES=$(du -sb "$FILES" | cut -f1)
FILE_COUNT=$(find "$FILES" -type f | wc -l)
DUMP_BYTES=$(haven --json drill bench-db | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
# measure WHAT CMD... : wall seconds → results.tsv (dirty pages flushed
# first, so no run pays for another's writeback)
measure() {
  local what=$1; shift
  sync
  local start end
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  printf '%s\t%s\n' "$what" "$(( (end - start) / 1000000 ))" >> "$RESULTS"
}

drill() {
  local out
  out=$(haven --json drill "$1")
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(d["verdict"] != "pass")' "$out" \
    || { echo "the drill of $1 failed: $out" >&2; exit 1; }
}

files_by_hand() {
  local target=$1
  haven restore bench-files --target "$target" >/dev/null
  (cd "$target" && test "$(find . -type f | wc -l)" -eq "$FILE_COUNT")
  rm -rf "$target"
}

db_by_hand() {
  local target=$1 cluster=$2
  haven restore bench-db --target "$target" >/dev/null
  local dump
  dump=$(find "$target" -name '*.dump' | head -n 1)
  mkdir -p "$cluster"
  pg_owned "$cluster"
  as_pg "$PGBIN/initdb" -D "$cluster/data" -U haven --auth=trust -E UTF8 >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$cluster/data" -o "-k $cluster -p 5997 -c listen_addresses=''" -l "$cluster/log" -w start >/dev/null
  local client=("-h" "$cluster" "-p" "5997" "-U" "haven")
  as_pg "$PGBIN/psql" "${client[@]}" -d postgres -X -q -c "CREATE DATABASE drill"
  as_pg "$PGBIN/pg_restore" "${client[@]}" -d drill --no-owner --no-privileges --exit-on-error < "$dump"
  local count
  count=$(as_pg "$PGBIN/psql" "${client[@]}" -d drill -X -q -A -t -c "SELECT count(*) FROM readings")
  as_pg "$PGBIN/pg_ctl" -D "$cluster/data" -m immediate -w stop >/dev/null
  [ "$count" = "$ROWS" ] || { echo "by hand: $count rows, expected $ROWS" >&2; exit 1; }
  rm -rf "$target" "$cluster"
}

# The drill removes its sandbox and cluster when it ends; by hand, the
# same clean-up is part of the procedure (and of its time).
for rep in $(seq "$REPS"); do
  measure files-drill drill bench-files
  measure files-by-hand files_by_hand "$WORK/restore-files-$rep"
  measure db-drill drill bench-db
  measure db-by-hand db_by_hand "$WORK/restore-db-$rep" "$WORK/cluster-$rep"
done

median() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$RESULTS" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { python3 -c "print(f'{($1 / $2 - 1) * 100:+.1f} %')"; }
files_drill=$(median files-drill); files_hand=$(median files-by-hand)
db_drill=$(median db-drill); db_hand=$(median db-by-hand)
human() { python3 -c "print(f'{$1 / 2**30:.2f} GiB')"; }
cat > "$OUT" <<MD
# Drill benchmark

\`bench/drill.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d). Medians of
${REPS} runs, each measured in the same run as its peer: the same work done
by hand with Haven's restore and PostgreSQL's own tools. Both sides open
the repository (key derivation) and run the same checks.

Both sides clean up after themselves within the time measured (the
drill removes its sandbox and throwaway cluster; by hand, \`rm -rf\` of
the restore and the cluster).

| what | drill | by hand | drill overhead | target |
|---|---:|---:|---:|---:|
| file set: $(human "$FILE_BYTES") in $FILE_COUNT files, restored and counted | ${files_drill} ms | ${files_hand} ms | $(ratio "$files_drill" "$files_hand") | ≤ +10 % |
| PostgreSQL: a $(human "$DUMP_BYTES") custom-format dump ($ROWS rows) restored, loaded into a new cluster, counted | ${db_drill} ms | ${db_hand} ms | $(ratio "$db_drill" "$db_hand") | ≤ +10 % |

By hand: \`haven restore SYSTEM --target DIR\` and the check; for the
database also initdb, pg_ctl start, CREATE DATABASE, pg_restore from the
dump, the count, pg_ctl stop. The drill does the same in its sandbox and
records the evidence (steps, measurements, verdict) in the database.
MD
cat "$OUT"
