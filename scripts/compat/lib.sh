# Shared helpers of the compatibility scripts (sourced). Third-party code never enters the
# repository: each script takes a checkout path, copies it to a temporary directory and runs there.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${COMPAT_WORK:-$(mktemp -d -t fn-compat.XXXXXX)}"
mkdir -p "$WORK"
FN="$WORK/fn"
PIDS=()
PASS=0
FAIL=0
RESULTS="$WORK/results.txt"
: >"$RESULTS"

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

build_fn() {
  (cd "$REPO" && go build -o "$FN" ./cmd/fn)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# copy_checkout SRC DST: the checkout's files without .git
copy_checkout() {
  mkdir -p "$2"
  (cd "$1" && tar --exclude=.git -cf - .) | (cd "$2" && tar -xf -)
}

npm_install() {
  (cd "$1" && npm install --no-audit --no-fund --loglevel=error >"$WORK/npm-$(basename "$1").log" 2>&1) ||
    { echo "npm install failed in $1 (see $WORK/npm-$(basename "$1").log)"; return 1; }
}

wait_http() { # URL [seconds]
  local url="$1" n="${2:-60}"
  for _ in $(seq 1 $((n * 10))); do
    curl -s -o /dev/null "$url" && return 0
    sleep 0.1
  done
  return 1
}

# check AREA NAME EXPECTED-SUBSTRING CURL-ARGS...: one call of the sequence, recorded
check() {
  local area="$1" name="$2" want="$3"
  shift 3
  local out
  out="$(curl -s -w ' [%{http_code}]' "$@" 2>&1 || true)"
  if [[ "$out" == *"$want"* ]]; then
    PASS=$((PASS + 1))
    printf 'PASS  %-10s %-40s\n' "$area" "$name" | tee -a "$RESULTS"
  else
    FAIL=$((FAIL + 1))
    printf 'FAIL  %-10s %-40s want %q, got %q\n' "$area" "$name" "$want" "${out:0:300}" | tee -a "$RESULTS"
  fi
}

summary() {
  echo "---- $PASS passed, $FAIL failed (work dir $WORK)"
  [ "$FAIL" -eq 0 ]
}
