#!/usr/bin/env bash
# Runs a WeChat mini-program project's cloud functions in place under fn dev and reports, per
# function, whether a call with a sample event succeeded and why not.
#
#   scripts/compat/wx-projects.sh [--events DIR] [--no-install] CHECKOUT
#
# CHECKOUT is a checkout of the project (fn never copies third-party code into this repository):
# the script finds project.config.json with cloudfunctionRoot in it or up to three levels below,
# runs npm install in each function folder that has a package.json and no node_modules yet, starts
# fn dev (no fn.yaml needed), calls every function once with fn invoke (its sample event is
# DIR/<function>.json: --events, else scripts/compat/events/<checkout folder name>/ when it
# exists, else {}; DIR/_data/<collection>.json, JSON Lines, is imported first; a function's
# third-party HTTP is answered from DIR/_recordings/<function>.jsonl when that folder exists),
# stops fn dev and prints one tab-separated line per function: name, the
# wx-server-sdk version its folder installed, ok|fail|no-load, milliseconds, and the result or
# the reason. The last line is "N passed, N failed". FN names the fn binary (default: built from
# this repository).
set -euo pipefail

events="" install=1
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--events DIR] [--no-install] CHECKOUT" >&2; exit 2; }
checkout=$(cd "$1" && pwd)

repo=$(cd "$(dirname "$0")/../.." && pwd)
# this repository's own sample events for a project, by the checkout's folder name
if [ -z "$events" ] && [ -d "$repo/scripts/compat/events/$(basename "$checkout")" ]; then
  events="$repo/scripts/compat/events/$(basename "$checkout")"
fi
if [ -z "${FN:-}" ]; then
  FN=$(mktemp -d)/fn
  (cd "$repo" && go build -o "$FN" ./cmd/fn)
fi

# the project root: the shallowest project.config.json that names cloudfunctionRoot
root=""
while IFS= read -r f; do
  if node -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); process.exit(c.cloudfunctionRoot ? 0 : 1)' "$f" 2>/dev/null; then
    root=$(dirname "$f"); break
  fi
done < <(find "$checkout" -maxdepth 4 -name project.config.json -not -path '*/node_modules/*' | awk '{ print length($0) "\t" $0 }' | sort -n | cut -f2-)
[ -n "$root" ] || { echo "no project.config.json with cloudfunctionRoot in $checkout" >&2; exit 1; }
fnroot=$(node -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); process.stdout.write(c.cloudfunctionRoot.replace(/^\.\//,"").replace(/\/+$/,""))' "$root/project.config.json")
echo "# project $root (functions in $fnroot/)" >&2

if [ "$install" = 1 ]; then
  for pkg in "$root/$fnroot"/*/package.json; do
    [ -f "$pkg" ] || continue
    d=$(dirname "$pkg")
    [ -d "$d/node_modules" ] && continue
    echo "# npm install in ${d#"$root"/}" >&2
    npmlog=$(mktemp)
    if ! (cd "$d" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null 2>"$npmlog"); then
      # a committed lockfile often resolves to a registry mirror that is out of reach: try once
      # more without it (set aside, then put back)
      echo "# npm install failed in ${d#"$root"/} ($(grep -m1 -o 'npm error [a-zA-Z]*.*' "$npmlog" | head -c 120)); retrying without its lockfile" >&2
      moved=""
      for lock in package-lock.json yarn.lock; do
        if [ -f "$d/$lock" ]; then mv "$d/$lock" "$d/$lock.fn-compat"; moved="$moved $lock"; fi
      done
      (cd "$d" && npm install --no-audit --no-fund --ignore-scripts --no-package-lock --loglevel=error >/dev/null 2>"$npmlog") ||
        echo "# npm install failed again in ${d#"$root"/}: $(tail -n 3 "$npmlog" | tr '\n' ' ')" >&2
      for lock in $moved; do mv "$d/$lock.fn-compat" "$d/$lock"; done
    fi
    rm -f "$npmlog"
  done
fi

# seed collections the project expects to exist (created in the console on the platform):
# DIR/_data/<collection>.json in the console's JSON Lines export format
if [ -n "$events" ] && [ -d "$events/_data" ]; then
  for f in "$events/_data"/*.json; do
    [ -f "$f" ] || continue
    (cd "$root" && "$FN" data import "$f" --mode upsert >/dev/null 2>&1) || echo "# could not import $(basename "$f")" >&2
  done
fi

# third-party HTTP a function makes: answered offline from DIR/_recordings/<function>.jsonl (fn dev
# --http replay, which reads <project>/recordings/); the files are put in the checkout's
# recordings/ (never over one it has) and taken away again at the end
http=live placed=""
if [ -n "$events" ] && [ -d "$events/_recordings" ]; then
  http=replay
  mkdir -p "$root/recordings"
  for f in "$events/_recordings"/*.jsonl; do
    [ -f "$f" ] || continue
    [ -e "$root/recordings/$(basename "$f")" ] && continue
    cp "$f" "$root/recordings/"; placed="$placed $root/recordings/$(basename "$f")"
  done
fi

log=$(mktemp)
(cd "$root" && exec "$FN" dev --port 0 --json --no-timers --http "$http" >"$log" 2>"$log.err") &
dev=$!
trap 'kill "$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true; for f in $placed; do rm -f "$f"; done; rmdir "$root/recordings" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q '"ready"' "$log" 2>/dev/null && break
  kill -0 "$dev" 2>/dev/null || { echo "fn dev stopped:" >&2; cat "$log.err" >&2; exit 1; }
  sleep 0.1
done
grep -q '"ready"' "$log" || { echo "fn dev did not start within 60 s" >&2; cat "$log.err" >&2; exit 1; }
loaderr=$(node -e 'for (const l of require("fs").readFileSync(process.argv[1],"utf8").split("\n")) { try { const e=JSON.parse(l); if (e.event==="ready"||e.type==="ready") { process.stdout.write((e.loadError||"").split("\n").join(" | ")); break } } catch {} }' "$log")
[ -z "$loaderr" ] || echo "# load errors: $loaderr" >&2

passed=0 failed=0
for d in "$root/$fnroot"/*/; do
  name=$(basename "$d")
  [ "$name" = node_modules ] && continue
  ls "$d"index.* "$d"package.json >/dev/null 2>&1 || continue
  data='{}'
  if [ -n "$events" ] && [ -f "$events/$name.json" ]; then data=$(cat "$events/$name.json"); fi
  out=$(cd "$root" && "$FN" invoke "$name" --data "$data" --json 2>/dev/null || true)
  line=$(printf '%s' "$out" | node -e '
    let s=""; process.stdin.on("data",(c)=>s+=c).on("end",()=>{
      let o; try { o=JSON.parse(s) } catch { console.log("fail\t0\tno answer from fn invoke"); return }
      const short=(t)=>String(t).replace(/\s+/g," ").slice(0,300);
      if (o.error) console.log((/failed to load|not found/i.test(o.error.message)?"no-load":"fail")+"\t"+Math.round(o.durationMs||0)+"\t"+short(o.error.message));
      else {
        const r=JSON.stringify(o.result===undefined?null:o.result);
        // a result that carries an SDK failure (errMsg "x:fail …", a negative errCode, or the network
        // error of the real platform when an SDK goes there) is a failure the function caught and returned
        if (/ENOTFOUND|ECONNREFUSED|tencentcloudapi\.com|:fail |"errCode":-\d/.test(r)) console.log("fail\t"+Math.round(o.durationMs||0)+"\treturned an error: "+short(r));
        else console.log("ok\t"+Math.round(o.durationMs||0)+"\t"+short(r));
      }
    })')
  sdk=$(node -e 'try { process.stdout.write(require(process.argv[1] + "/node_modules/wx-server-sdk/package.json").version) } catch { process.stdout.write("-") }' "${d%/}")
  printf '%s\t%s\t%s\n' "$name" "$sdk" "$line"
  case "$line" in ok*) passed=$((passed+1)) ;; *) failed=$((failed+1)) ;; esac
done
echo "$passed passed, $failed failed"
