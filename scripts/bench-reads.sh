#!/usr/bin/env bash
# make bench-reads: leasehold's read path side by side with the reference
# consumer (bench/kclref, vmware-go-kcl-v2 at its defaults) on the issue-15
# workload: 8 shards, 200 records/s, 3 consumer processes, AWS's per-shard
# read limits enforced by the harness's proxy. RUNS steady runs of each,
# alternating, then one catch-up run of each after a BACKLOG of records
# (10m at 200 records/s by default; BACKLOG=0 skips it). The catch-up reads
# from kinesisbench, the harness's in-memory Kinesis-compatible server
# (internal/dev/kinesisbench), behind the same limits proxy: the local
# Kinesis emulator takes seconds per large call once a stream holds a
# backlog, and took over 22 minutes to accept 10m on a loaded day.
# Prints every run's table and a summary (median of the runs) on stdout;
# the raw tables stay in OUT. Starts the local stack's Kinesis, DynamoDB and
# S3 if they are not running (left running); takes about 40 minutes,
# most of it the reference's workers taking their leases (one shard per
# worker per 30-90 s shard sync). A run that fails is reported and left out.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-90s}
WARMUP=${WARMUP:-20s}
BACKLOG=${BACKLOG:-10m}
OUT=${OUT:-.leasehold/bench-reads/$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"

go build -o bin/leasehold ./cmd/leasehold
go -C bench/kclref build -o "$PWD/bin/kclref" .
./bin/leasehold dev up --only kinesis,dynamodb,s3 >&2

common=(bench pipeline --sink file --shards 8 --workers 3 --rate 200)
run() { # run NAME ARGS...: one run, its table into $OUT/NAME.md
  local name=$1
  shift
  echo "== $name (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  if ./bin/leasehold "${common[@]}" "$@" > "$OUT/$name.md.tmp"; then
    mv "$OUT/$name.md.tmp" "$OUT/$name.md"
    cat "$OUT/$name.md"
  else
    echo "$name failed (see above); left out of the summary"
  fi
  echo
}
ref=(--consumer "$PWD/bin/kclref")
for i in $(seq "$RUNS"); do
  run "leasehold-$i" --duration "$DURATION" --warmup "$WARMUP"
  run "kclref-$i" --duration "$DURATION" --warmup "$WARMUP" "${ref[@]}"
done
if [ "$BACKLOG" != 0 ]; then
  run leasehold-backlog --backlog "$BACKLOG" --duration 0 --kinesis kinesisbench
  run kclref-backlog --backlog "$BACKLOG" --duration 0 --kinesis kinesisbench "${ref[@]}"
fi

# Summary: per figure, the median over the steady runs of each consumer
# (each number of a "a; b" figure on its own), then every run's value.
summary() { # summary CONSUMER: "figure<TAB>median<TAB>runs" lines
  awk -F'|' -v runs="$RUNS" '
    FNR <= 4 || NF < 3 { next }
    { f = $2; v = $3; gsub(/^ +| +$/, "", f); gsub(/^ +| +$/, "", v)
      if (!(f in seen)) { seen[f] = 1; order[++n] = f }
      vals[f] = vals[f] (vals[f] == "" ? "" : " · ") v
      k = split(v, parts, /; /)
      for (j = 1; j <= k; j++) { c = ++cnt[f, j]; num[f, j, c] = parts[j] + 0; str[f, j, c] = parts[j]; nparts[f] = k } }
    END {
      for (i = 1; i <= n; i++) {
        f = order[i]; med = ""
        for (j = 1; j <= nparts[f]; j++) {
          c = cnt[f, j]
          for (a = 1; a <= c; a++) { s[a] = num[f, j, a]; o[a] = str[f, j, a] }
          for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (s[b] < s[a]) {
            t = s[a]; s[a] = s[b]; s[b] = t; t = o[a]; o[a] = o[b]; o[b] = t }
          med = med (j > 1 ? "; " : "") o[int((c + 1) / 2)]
        }
        printf "%s\t%s\t%s\n", f, med, vals[f]
      }
    }' "$OUT/$1"-[0-9]*.md
}
summary leasehold > "$OUT/leasehold.tsv" || true
summary kclref > "$OUT/kclref.tsv" || true
echo "## Summary: median of $RUNS runs each (every run after the median)"
echo
echo "| figure | leasehold | vmware-go-kcl-v2 (bench/kclref) |"
echo "|---|---|---|"
awk -F'\t' 'NR == FNR { ref[$1] = $2 " (" $3 ")"; next }
  { f = $1; sub(/^figure \(leasehold\)$/, "", f); if (f == "") next
    printf "| %s | %s (%s) | %s |\n", $1, $2, $3, ($1 in ref ? ref[$1] : "") }' \
  "$OUT/kclref.tsv" "$OUT/leasehold.tsv"
echo
awk -F'\t' '/^consumer CPU seconds/ { v[FILENAME] = $2 + 0 }
  END { if (v[ARGV[2]] > 0) printf "CPU per 1,000 records, leasehold ÷ reference (medians): %.2f\n", v[ARGV[1]] / v[ARGV[2]] }' \
  "$OUT/leasehold.tsv" "$OUT/kclref.tsv"
echo
echo "Raw tables: $OUT"
