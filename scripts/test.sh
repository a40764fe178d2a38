#!/usr/bin/env bash
# spinescreen's one test command (README and .ci/run call exactly this).
#
# Makes sure the real services the suite talks to are up, then runs the whole workspace suite:
#   - RabbitMQ on 127.0.0.1:5672 (guest/guest): started if not answering, installed with apt-get
#     if missing;
#   - s3s-fs on 127.0.0.1:8014 (access key K, secret S, bucket spinescreen-test): installed with
#     cargo if missing, started on a temporary data directory if not answering;
#   - PostgreSQL on 127.0.0.1:5432 for the study ledger's tests (database `test`, user postgres):
#     started if not answering, installed with apt-get if missing; each test works in a schema
#     of its own and drops it;
#   - the DICOM/imaging tools some tests call (dcmtk, dicom3tools, dcm2niix, cmake, DejaVu fonts);
#   - headless Chromium and its WebDriver (chromium, chromium-driver) for the console's browser
#     test;
#   - ONNX Runtime for the ONNX detector's tests: when ORT_DYLIB_PATH is unset, the library from
#     the PyPI onnxruntime wheel, unpacked under target/onnxruntime (pip, no Python import).
# Services this script started are stopped on exit. The exit code is the test run's.
#
# Environment:
#   SPINESCREEN_SKIP_SERVICES=1   do not start services; service tests skip instead of failing
#   SPINESCREEN_TEST_S3_ENDPOINT  S3 endpoint for the tests (default http://127.0.0.1:8014)
#   SPINESCREEN_TEST_DATABASE_URL PostgreSQL for the tests (default
#                                 postgres://postgres@127.0.0.1:5432/test)
#   extra arguments are passed to cargo nextest run / cargo test (e.g. `-p spinescreen-runtime`)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[test.sh] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  return 1
}

STARTED_RABBIT=0
STARTED_PG=""
S3_PID=""
S3_DIR=""
cleanup() {
  if [ -n "$S3_PID" ]; then
    log "stopping s3s-fs (pid $S3_PID)"
    kill "$S3_PID" 2>/dev/null
    wait "$S3_PID" 2>/dev/null
  fi
  if [ -n "$S3_DIR" ]; then rm -rf "$S3_DIR" "$S3_DIR.log"; fi
  if [ -n "$STARTED_PG" ]; then
    log "stopping the PostgreSQL this script started"
    $SUDO pg_ctlcluster "$STARTED_PG" main stop >/dev/null 2>&1
  fi
  if [ "$STARTED_RABBIT" = 1 ]; then
    log "stopping the RabbitMQ this script started"
    $SUDO rabbitmqctl stop >/dev/null 2>&1
  fi
}
trap cleanup EXIT

apt_install() {
  log "installing with apt-get: $*"
  $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# --- tools the suite calls -------------------------------------------------------------------
missing=()
command -v storescu >/dev/null 2>&1 || missing+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)
command -v dcm2niix >/dev/null 2>&1 || missing+=(dcm2niix)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

# The chart test renders with Helm's own engine (from PyPI) and validates against Kubernetes schemas.
if ! python3 -c "import helm_python, kubernetes_validate" >/dev/null 2>&1 && [ "${SPINESCREEN_SKIP_HELM:-0}" != 1 ]; then
  log "installing helm-python-sdk and kubernetes-validate (pip)"
  python3 -m pip install -q helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 ||
    log "WARNING: pip install failed; the chart test will say what is missing"
fi

# The ONNX detector loads ONNX Runtime at run time (ort's load-dynamic): its library ships in the
# PyPI wheel. Without it the ONNX tests only print why they were skipped.
ORT_VERSION=1.32.0
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DIR="$ROOT/target/onnxruntime-$ORT_VERSION"
  ort_lib() { ls "$ORT_DIR"/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -n 1; }
  if [ -z "$(ort_lib)" ]; then
    log "fetching ONNX Runtime $ORT_VERSION (the PyPI wheel's library) into $ORT_DIR"
    python3 -m pip install -q --no-deps --target "$ORT_DIR" "onnxruntime==$ORT_VERSION" ||
      log "WARNING: pip could not fetch onnxruntime; the ONNX detector's tests will skip"
  fi
  if [ -n "$(ort_lib)" ]; then export ORT_DYLIB_PATH="$(ort_lib)"; fi
fi
[ -n "${ORT_DYLIB_PATH:-}" ] && log "ONNX Runtime: $ORT_DYLIB_PATH"

SKIP="${SPINESCREEN_SKIP_SERVICES:-0}"
if [ "$SKIP" != 1 ] && ! port_open 5672 && ! command -v rabbitmq-server >/dev/null 2>&1; then
  missing+=(rabbitmq-server)
fi
if [ "$SKIP" != 1 ] && ! port_open 5432 && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}" || log "WARNING: apt-get install failed for: ${missing[*]}"
fi

if [ "$SKIP" = 1 ]; then
  log "SPINESCREEN_SKIP_SERVICES=1: not starting RabbitMQ, PostgreSQL or s3s-fs; service tests will skip"
else
  # --- RabbitMQ ------------------------------------------------------------------------------
  if port_open 5672; then
    log "RabbitMQ answers on 127.0.0.1:5672"
  else
    log "starting RabbitMQ"
    $SUDO rabbitmq-server -detached
    STARTED_RABBIT=1
    if ! timeout 180 $SUDO rabbitmqctl await_startup >/dev/null 2>&1 || ! wait_port 5672 60; then
      log "ERROR: RabbitMQ did not start"
      exit 2
    fi
    log "RabbitMQ is up"
  fi

  # --- PostgreSQL ----------------------------------------------------------------------------
  if port_open 5432; then
    log "PostgreSQL answers on 127.0.0.1:5432"
  else
    PG_VERSION="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
    log "starting PostgreSQL $PG_VERSION"
    if [ -z "$PG_VERSION" ] || ! $SUDO pg_ctlcluster "$PG_VERSION" main start; then
      log "ERROR: PostgreSQL did not start"
      exit 2
    fi
    STARTED_PG="$PG_VERSION"
    if ! wait_port 5432 60; then
      log "ERROR: PostgreSQL does not answer on 5432"
      exit 2
    fi
  fi
  if [ -z "${SPINESCREEN_TEST_DATABASE_URL:-}" ] &&
    ! psql "postgres://postgres@127.0.0.1:5432/test" -Atc 'SELECT 1' >/dev/null 2>&1; then
    # A fresh installation: local TCP logins need a password, and there is no database `test`.
    log "preparing PostgreSQL for the tests (password for postgres, database test)"
    as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
    as_postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
    as_postgres psql -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
      as_postgres createdb test
    export SPINESCREEN_TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/test"
  fi

  # --- s3s-fs --------------------------------------------------------------------------------
  S3_ENDPOINT="${SPINESCREEN_TEST_S3_ENDPOINT:-http://127.0.0.1:8014}"
  S3_PORT="${S3_ENDPOINT##*:}"
  S3_PORT="${S3_PORT%%/*}"
  if port_open "$S3_PORT"; then
    log "S3 answers on port $S3_PORT"
  else
    S3FS="$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")"
    if [ ! -x "$S3FS" ]; then
      log "installing s3s-fs (cargo install, a few minutes once)"
      cargo install s3s-fs@0.14.1 --locked --features binary || { log "ERROR: cannot install s3s-fs"; exit 2; }
    fi
    S3_DIR="$(mktemp -d -t spinescreen-s3.XXXXXX)"
    mkdir -p "$S3_DIR/spinescreen-test" # with s3s-fs a bucket is a folder
    log "starting s3s-fs on 127.0.0.1:$S3_PORT (data in $S3_DIR)"
    "$S3FS" --host 127.0.0.1 --port "$S3_PORT" --access-key K --secret-key S "$S3_DIR" \
      >"$S3_DIR.log" 2>&1 &
    S3_PID=$!
    if ! wait_port "$S3_PORT" 30; then
      log "ERROR: s3s-fs did not start; its log:"
      cat "$S3_DIR.log" >&2
      exit 2
    fi
  fi
fi

# --- the suite ---------------------------------------------------------------------------------
# A clean build of the suite writes about 11 GiB of debug artefacts (TARGET_GIB leaves room); a disk that fills up
# mid-link shows as a linker crash (`ld terminated with signal 7 [Bus error]`), so say so first.
TARGET_GIB=12
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$target_dir"
free_gib=$(df -Pk "$target_dir" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
log "free disk under $target_dir: ${free_gib} GiB"
if [ "${free_gib:-0}" -lt "$TARGET_GIB" ]; then
  log "WARNING: under ${TARGET_GIB} GiB free; the build may fail in the linker (Bus error) when the disk fills"
fi
# JPEG-LS decoding is an opt-in feature (CharLS needs cmake, installed above); the suite covers it.
FEATURES=()
[ $# -eq 0 ] && command -v cmake >/dev/null 2>&1 && FEATURES=(--features spinescreen-ingest/jpeg-ls)
if cargo nextest --version >/dev/null 2>&1; then
  if [ $# -eq 0 ]; then set -- --workspace; fi
  log "cargo nextest run --no-fail-fast $*"
  cargo nextest run --no-fail-fast "${FEATURES[@]}" "$@"
  status=$?
  # nextest does not run doctests
  if [ $status -eq 0 ]; then
    cargo test --doc "${FEATURES[@]}" "$@"
    status=$?
  fi
  # Drills that restart the shared RabbitMQ node run alone, after everything else.
  if [ $status -eq 0 ] && [ "$SKIP" != 1 ] && [ "$*" = "--workspace" ]; then
    log "exclusive drills (RabbitMQ node restart)"
    cargo nextest run "${FEATURES[@]}" -p spinescreen-e2e --test fleet_distributed --run-ignored ignored-only
    status=$?
  fi
else
  if [ $# -eq 0 ]; then set -- --workspace; fi
  log "cargo test --no-fail-fast $*"
  cargo test --no-fail-fast "${FEATURES[@]}" "$@"
  status=$?
fi
exit $status
