#!/usr/bin/env bash
# The fleet measurement of issue 20, reproducible: RabbitMQ (a vhost of its own) + s3s-fs + a
# dcmtk storescp standing in for the PACS + the DICOM receivers (`worker receiver`, where the load
# sends its C-STORE) and the five workers as separate processes, then `spinescreen load`;
# afterwards counts the SRs each study left at the PACS (exactly once) and, with --baseline,
# times `spinescreen analyze` of the first study (one process, best of 3).
#
# Usage: scripts/fleet-measure.sh BIN OUT_DIR [--baseline] [load args…]
#   e.g. scripts/fleet-measure.sh target/release/spinescreen /tmp/fleet \
#          --count 12 --seed 1000 --concurrency 2 --send cstore
# Needs RabbitMQ on 127.0.0.1:5672 (guest/guest, rabbitmqctl), s3s-fs and dcmtk on PATH.
# Ports and vhost: FLEET_VHOST, FLEET_S3_PORT (8015), FLEET_PACS_PORT (11215),
# FLEET_SCP_PORT (11216), FLEET_METRICS_BASE (9470 … 9475). The receiver spools to OUT_DIR/spool
# (`[ingest.scp] spool_dir`); FLEET_SPOOL=0 leaves the spool out (each instance stored to S3
# before its C-STORE response, as before reception bundles, and as a build without them does).
# S3 requests go with unsigned payloads (`[store] unsigned_payload`); FLEET_UNSIGNED_PAYLOAD=0
# signs every body. Prints each process's CPU seconds after the load (OUT_DIR/cpu.txt).
set -euo pipefail

BIN=$(realpath "$1")
OUT=$(realpath -m "$2")
shift 2
BASELINE=0
if [[ "${1:-}" == "--baseline" ]]; then
  BASELINE=1
  shift
fi
VHOST=${FLEET_VHOST:-spinescreen-fleet-measure}
S3_PORT=${FLEET_S3_PORT:-8015}
PACS_PORT=${FLEET_PACS_PORT:-11215}
SCP_PORT=${FLEET_SCP_PORT:-11216}
METRICS_BASE=${FLEET_METRICS_BASE:-9470}
# S3 requests signed without hashing their bodies, as for an in-cluster store;
# FLEET_UNSIGNED_PAYLOAD=0 signs every body (SHA-256 in the workers and in s3s-fs).
UNSIGNED_PAYLOAD=true
if [[ "${FLEET_UNSIGNED_PAYLOAD:-1}" == 0 ]]; then
  UNSIGNED_PAYLOAD=false
fi
SPOOL_LINE=""
if [[ "${FLEET_SPOOL:-1}" == 1 ]]; then
  SPOOL_LINE="spool_dir = \"$OUT/spool\""
fi
# `worker` arguments, one process each: the receivers first, then the five stages.
STAGES=(receiver ingest inference morphometry rendering publisher)

rm -rf "$OUT"
mkdir -p "$OUT/s3/spinescreen" "$OUT/pacs"
rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1 || true
rabbitmqctl add_vhost "$VHOST" >/dev/null
rabbitmqctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1 || true
}
trap cleanup EXIT

s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key K --secret-key S "$OUT/s3" \
  >"$OUT/s3s-fs.log" 2>&1 &
PIDS+=($!)
storescp -aet PACS -od "$OUT/pacs" -su st "$PACS_PORT" >"$OUT/storescp.log" 2>&1 &
PIDS+=($!)

cat >"$OUT/spinescreen.toml" <<EOF
service_name = "spinescreen"
shutdown_grace_secs = 5

[broker]
kind = "amqp"
url = "amqp://guest:guest@127.0.0.1:5672/$VHOST"
prefetch = 1
delivery_limit = 3

[store]
kind = "s3"
endpoint = "http://127.0.0.1:$S3_PORT"
bucket = "spinescreen"
access_key = "K"
secret_key = "S"
allow_http = true
unsigned_payload = $UNSIGNED_PAYLOAD

[ingest.scp]
enabled = true
bind_address = "127.0.0.1"
ae_title = "SPINESCREEN"
port = $SCP_PORT
$SPOOL_LINE

[ingest.stow]
enabled = false

[[publisher.destinations]]
kind = "cstore"
host = "127.0.0.1"
port = $PACS_PORT
called_ae = "PACS"
calling_ae = "SPINESCREEN"
EOF

WORKER_PIDS=()
for i in "${!STAGES[@]}"; do
  stage=${STAGES[$i]}
  SPINESCREEN__METRICS_ADDR="127.0.0.1:$((METRICS_BASE + i))" RUST_LOG=info \
    "$BIN" --config "$OUT/spinescreen.toml" worker "$stage" >"$OUT/$stage.log" 2>&1 &
  PIDS+=($!)
  WORKER_PIDS+=($!)
done
for i in "${!STAGES[@]}"; do
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$((METRICS_BASE + i))/readyz" >/dev/null && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$((METRICS_BASE + i))/readyz" >/dev/null \
    || { echo "worker ${STAGES[$i]} not ready; log:"; tail -20 "$OUT/${STAGES[$i]}.log"; exit 1; }
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/loadavg.txt"
"$BIN" --config "$OUT/spinescreen.toml" load --send cstore --port "$SCP_PORT" \
  --worker-pids "$(IFS=,; echo "${WORKER_PIDS[*]}")" --json "$OUT/load.json" \
  --work-dir "$OUT/studies" "$@" | tee "$OUT/load.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/loadavg.txt"

# CPU seconds each process spent (user + system, /proc/PID/stat fields 14 and 15), start to now:
# where a CPU-bound fleet's time goes. s3s-fs and storescp are the first two processes started.
TICKS=$(getconf CLK_TCK)
cpu_names=(s3s-fs storescp "${STAGES[@]}")
for i in "${!PIDS[@]}"; do
  stat=$(cat "/proc/${PIDS[$i]}/stat" 2>/dev/null) || continue
  # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  read -r -a rest <<<"${stat##*) }"
  awk -v n="${cpu_names[$i]}" -v u="${rest[11]}" -v s="${rest[12]}" -v t="$TICKS" \
    'BEGIN { printf "cpu %-12s %7.1f s\n", n, (u + s) / t }'
done | tee "$OUT/cpu.txt"

# Exactly once at the PACS: storescp sorts by study (-su st); one SR file per study directory.
sleep 2
studies=0
bad=0
for d in "$OUT"/pacs/*/; do
  [[ -d "$d" ]] || continue
  studies=$((studies + 1))
  n=$(find "$d" -maxdepth 1 -name 'SR*' | wc -l)
  [[ "$n" == 1 ]] || { echo "study dir $d holds $n SRs"; bad=$((bad + 1)); }
done
echo "PACS: $studies studies, $bad without exactly one SR" | tee "$OUT/pacs.txt"

if [[ "$BASELINE" == 1 ]]; then
  first=$(find "$OUT/studies" -mindepth 1 -maxdepth 1 -type d | sort | head -1)
  for run in 1 2 3; do
    s=$(date +%s.%N)
    "$BIN" analyze "$first" --out "$OUT/analyze-$run" >/dev/null
    e=$(date +%s.%N)
    echo "analyze run $run: $(awk "BEGIN{printf \"%.2f\", $e - $s}") s (load $(cut -d' ' -f1 /proc/loadavg))" \
      | tee -a "$OUT/analyze.txt"
  done
fi
