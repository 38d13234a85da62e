#!/usr/bin/env bash
# Runs leanengine-node-sdk's own test suite against fn serve, over HTTP: the suite's cloud code
# (test/fixtures/functions.js and hooks.js) is deployed to fn serve as a LeanEngine project, and
# the suite's requests, which it sends to an in-process express app, go to fn serve instead.
#
#   scripts/compat/leanengine-sdk-suite.sh <leanengine-node-sdk checkout>
#
# In a temporary copy (the checkout is never written) two things are rewritten, and only
# these: `request(app)` → `request(FN_URL)` in test/*.js (test/express/*.js test middleware
# on express apps they build themselves, and stay in process), and the serverURL of
# test/fixtures/app-info.js → FN_URL. The app's keys are the fixture's own.
# Output: mocha's result per test, then its summary. Needs go, node, npm, python3.
source "$(dirname "$0")/lib.sh"
SRC="$(cd "${1:?usage: $0 <leanengine-node-sdk checkout>}" && pwd)"
SDK="$WORK/sdk"
copy_checkout "$SRC" "$SDK"
[ -d "$SDK/node_modules" ] || npm_install "$SDK"
(cd "$SDK" && npm install --no-save --no-audit --no-fund --loglevel=error leancloud-storage@4 >/dev/null 2>&1) || true
build_fn

SPORT="$(free_port)"
FN_URL="http://127.0.0.1:$SPORT"
export FN_ADMIN_TOKEN=compat-admin-token-01 XDG_CONFIG_HOME="$WORK/config"
"$FN" serve --listen "127.0.0.1:$SPORT" --data-dir "$WORK/serve" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_http "$FN_URL/__fn/whoami" 60
"$FN" login --server "$FN_URL" --token "$FN_ADMIN_TOKEN" >/dev/null

read -r APPID APPKEY MASTER HOOK < <(node -e '
  const s=require("fs").readFileSync(process.argv[1],"utf8");
  const g=(k)=>(s.match(new RegExp(k+":\\s*\x27([^\x27]+)\x27"))||[])[1];
  console.log(g("appId"),g("appKey"),g("masterKey"),g("hookKey"))' "$SDK/test/fixtures/app-info.js")
"$FN" apps create sdk-suite --app-id "$APPID" --app-key "$APPKEY" --master-key "$MASTER" --hook-key "$HOOK" >/dev/null

# The data the suite's own LeanCloud app holds, as its tests read it (fixed object ids, the user
# admin/admin with its session token): written here from the tests' assertions and loaded with
# fn import, which keeps objectIds and session tokens (LeanCloud's password hash scheme).
SEED="$WORK/seed"
mkdir -p "$SEED"
python3 - "$SEED" <<'PY'
import base64, hashlib, json, sys, os
d = sys.argv[1]
def lc_hash(salt, pw):
    h = hashlib.sha512((salt + pw).encode()).digest()
    for _ in range(512):
        h = hashlib.sha512(h).digest()
    return base64.b64encode(h).decode()
t0 = "2015-03-09T09:38:43.000Z"
def w(cls, rows):
    with open(os.path.join(d, cls + ".jsonl"), "w") as f:
        for r in rows:
            r.setdefault("createdAt", t0); r.setdefault("updatedAt", t0)
            f.write(json.dumps(r) + "\n")
salt = "compatsuitesalt0123456789"
w("_User", [
    {"objectId": "54fd6a03e4b06c41e00b1f40", "username": "admin", "salt": salt, "password": lc_hash(salt, "admin"),
     "sessionToken": "w2jrtkbehp38otqmhbqu7ybs9"},
    {"objectId": "55069e5be4b0c93838ed8e6c", "username": "pointed", "salt": salt, "password": lc_hash(salt, "pointed")},
])
w("TestObject", [{"objectId": "55069f5be4b0c93838ed9b17", "foo": "bar"}])
w("_File", [{"objectId": "55543fc2e4b0846760bd92f3", "name": "ttt.jpg",
             "url": "http://lc-4h2h4okw.cn-n1.lcfile.com/4qSbLMO866Tf4YtT9QEwJwysTlHGC9sMl7bpTwhQ.jpg",
             "mime_type": "image/jpeg", "metaData": {"size": 0}}])
w("ComplexObject", [{"objectId": "55543fe4e4b0846760bd9348", "numberColumn": 1.23, "arrayColumn": [1, 2, 3],
    "objectColumn": {"foo": "bar"}, "stringColumn": "testString", "anyColumn": "", "booleanColumn": True,
    "pointerColumn": {"__type": "Pointer", "className": "_User", "objectId": "55069e5be4b0c93838ed8e6c"},
    "relationColumn": {"__type": "Relation", "className": "TestObject"},
    "geopointColumn": {"__type": "GeoPoint", "latitude": 0, "longitude": 30},
    "dateColumn": {"__type": "Date", "iso": "2015-05-14T06:24:47.000Z"},
    # the file as LeanCloud answers a file field (fn import points a _File's url at fn itself)
    "fileColumn": {"__type": "File", "objectId": "55543fc2e4b0846760bd92f3", "name": "ttt.jpg",
                   "url": "http://lc-4h2h4okw.cn-n1.lcfile.com/4qSbLMO866Tf4YtT9QEwJwysTlHGC9sMl7bpTwhQ.jpg",
                   "mime_type": "image/jpeg", "metaData": {"size": 0}}}])
PY
"$FN" import "$SEED" --remote --app sdk-suite --no-files >"$WORK/import.log" 2>&1 ||
  { echo "fn import of the suite's data failed: $(tail -5 "$WORK/import.log")"; exit 1; }

# the two rewrites
python3 - "$SDK" "$FN_URL" <<'PY'
import re, sys, pathlib
root, url = pathlib.Path(sys.argv[1]), sys.argv[2]
info = root / "test/fixtures/app-info.js"
info.write_text(re.sub(r"serverURL:\s*'[^']*'", "serverURL: '%s'" % url, info.read_text()))
# test/express/*.js build their own express apps around the middleware: they stay in process
# (their storage calls still go to fn serve through serverURL)
for f in root.glob("test/*.js"):
    f.write_text(f.read_text().replace("request(app)", "request(process.env.FN_URL)"))
PY

# the suite's cloud code as a LeanEngine project: cloud.js loads the fixtures from the SDK copy
CLOUD="$WORK/cloud"
mkdir -p "$CLOUD/node_modules"
copy_checkout "$SDK" "$CLOUD/node_modules/leanengine"
cat >"$CLOUD/package.json" <<'JSON'
{"name": "sdk-suite", "dependencies": {"leanengine": "*"}}
JSON
cat >"$CLOUD/cloud.js" <<'JS'
require('leanengine/test/fixtures/functions')
require('leanengine/test/fixtures/hooks')
JS
if (cd "$CLOUD" && "$FN" deploy --env production --app sdk-suite >"$WORK/deploy.log" 2>&1); then
  echo "deployed the suite's cloud code: $(tail -1 "$WORK/deploy.log")"
else
  echo "deploy failed: $(tail -20 "$WORK/deploy.log")"
  exit 1
fi

cd "$SDK"
FN_URL="$FN_URL" ./node_modules/.bin/mocha --timeout 8000 --reporter spec test test/express 2>&1 | tee "$WORK/mocha.txt" || true
echo "---- mocha output in $WORK/mocha.txt"
grep -E "passing|failing|pending" "$WORK/mocha.txt" || true
