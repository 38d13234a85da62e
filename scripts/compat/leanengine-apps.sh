#!/usr/bin/env bash
# Runs a public LeanEngine app checkout, unchanged, under fn dev and deployed to fn serve, through
# a scripted call sequence (generic checks, plus the app's own routes for the apps we know).
#
#   scripts/compat/leanengine-apps.sh <checkout>
#
# The checkout is copied to a temporary directory and `npm install`ed there; nothing is written
# to it. Needs go, node, npm, curl and python3.
source "$(dirname "$0")/lib.sh"
SRC="$(cd "${1:?usage: $0 <checkout>}" && pwd)"
APP="$WORK/app"
copy_checkout "$SRC" "$APP"
[ -d "$APP/node_modules" ] || npm_install "$APP"
build_fn
NAME="$(node -e 'try{console.log(require(process.argv[1]).name||"")}catch(e){console.log("")}' "$APP/package.json")"

export LEANCLOUD_APP_ID=compatAppId01 LEANCLOUD_APP_KEY=compatAppKey01 LEANCLOUD_APP_MASTER_KEY=compatMaster01 LEANCLOUD_APP_HOOK_KEY=compatHook01
KEY=(-H "X-LC-Id: $LEANCLOUD_APP_ID" -H "X-LC-Key: $LEANCLOUD_APP_KEY" -H 'Content-Type: application/json')
MASTER=(-H "X-LC-Id: $LEANCLOUD_APP_ID" -H "X-LC-Key: $LEANCLOUD_APP_MASTER_KEY,master")

# sequence MODE BASE [CURL-ARGS for the app's own routes]
sequence() {
  local mode="$1" base="$2"
  shift 2
  local own=("$@")
  check "$mode" "ping" '"version":' "$base/__engine/1/ping" "${own[@]}"
  check "$mode" "metadatas (master key)" '"result":[' "${MASTER[@]}" "$base/1.1/functions/_ops/metadatas"
  check "$mode" "unknown function 404" "[404]" "${KEY[@]}" -X POST -d '{}' "$base/1.1/functions/noSuchFunction"
  check "$mode" "storage save" '"objectId"' "${KEY[@]}" -X POST -d '{"n":1}' "$base/1.1/classes/CompatProbe"
  check "$mode" "CORS preflight 200" "[200]" -X OPTIONS -H 'Origin: http://x.test' -H 'Access-Control-Request-Method: POST' "$base/1.1/functions/hello"
  case "$NAME" in
  node-js-getting-started)
    check "$mode" "GET / (index view)" "LeanEngine" "$base/" "${own[@]}"
    check "$mode" "hello (cloud.js)" '{"result":"Hello world!"}' "${KEY[@]}" -X POST -d '{}' "$base/1.1/functions/hello"
    check "$mode" "GET /todos (empty)" "[200]" "$base/todos" "${own[@]}"
    check "$mode" "POST /todos (a save from express)" "[302]" -X POST --data-urlencode "content=compat $mode" "$base/todos" "${own[@]}"
    check "$mode" "GET /todos lists it" "compat $mode" "$base/todos" "${own[@]}"
    check "$mode" "static file" "body" "$base/stylesheets/style.css" "${own[@]}"
    ;;
  open-lession.node)
    check "$mode" "GET / (home route)" '"login":"/ex/login"' "$base/" "${own[@]}" -H 'X-Forwarded-Proto: https'
    ;;
  web-leancloud-demo)
    check "$mode" "GET / redirects to the admin page" "/static/admin/index.html [302]" "$base/" "${own[@]}"
    check "$mode" "the admin page (static)" "[200]" "$base/static/admin/index.html" "${own[@]}"
    check "$mode" "hello cloud function" '"result"' "${KEY[@]}" -X POST -d '{}' "$base/1.1/functions/hello"
    ;;
  *)
    check "$mode" "GET /" "[" "$base/" "${own[@]}"
    ;;
  esac
}

# ---- fn dev
PORT="$(free_port)"
(cd "$APP" && exec "$FN" dev --port "$PORT" --no-timers >"$WORK/dev.log" 2>&1) &
PIDS+=($!)
if wait_http "http://127.0.0.1:$PORT/__engine/1/ping" 120; then
  sequence dev "http://127.0.0.1:$PORT"
else
  echo "FAIL  dev        fn dev did not start: $(tail -5 "$WORK/dev.log")" | tee -a "$RESULTS"
  FAIL=$((FAIL + 1))
fi
kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true

# ---- fn serve + fn deploy
SPORT="$(free_port)"
export FN_ADMIN_TOKEN=compat-admin-token-01 XDG_CONFIG_HOME="$WORK/config"
"$FN" serve --listen "127.0.0.1:$SPORT" --data-dir "$WORK/serve" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SPORT/__fn/whoami" 60
"$FN" login --server "http://127.0.0.1:$SPORT" --token "$FN_ADMIN_TOKEN" >/dev/null
APPNAME="$(node -e '
  const n=(require(process.argv[1]).name||"").toLowerCase().replace(/^@[^/]*\//,"").replace(/[^a-z0-9-]+/g,"-").replace(/^-+|-+$/g,"");
  console.log(/^[a-z][a-z0-9-]{0,49}$/.test(n)?n:"app")' "$APP/package.json")"
"$FN" apps create "$APPNAME" --app-id "$LEANCLOUD_APP_ID" --app-key "$LEANCLOUD_APP_KEY" --master-key "$LEANCLOUD_APP_MASTER_KEY" --hook-key "$LEANCLOUD_APP_HOOK_KEY" >/dev/null
if (cd "$APP" && "$FN" deploy --env production --app "$APPNAME" >"$WORK/deploy.log" 2>&1); then
  echo "PASS  serve      deploy ($(tail -1 "$WORK/deploy.log"))" | tee -a "$RESULTS"
  PASS=$((PASS + 1))
  sequence serve "http://127.0.0.1:$SPORT" -H "Host: $APPNAME.apps.test"
else
  echo "FAIL  serve      deploy: $(tail -5 "$WORK/deploy.log")" | tee -a "$RESULTS"
  FAIL=$((FAIL + 1))
fi
summary
