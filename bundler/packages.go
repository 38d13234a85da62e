package bundler

import (
	"bytes"
	"strings"
)

// nodeBuiltins are Node's own modules (require('module').builtinModules, Node 20, without the
// internal _ ones); node:-prefixed names are builtins too.
var nodeBuiltins = map[string]bool{}

func init() {
	for _, m := range strings.Fields(`assert assert/strict async_hooks buffer child_process cluster console constants crypto
		dgram diagnostics_channel dns dns/promises domain events fs fs/promises http http2 https inspector inspector/promises
		module net os path path/posix path/win32 perf_hooks process punycode querystring readline readline/promises repl
		stream stream/consumers stream/promises stream/web string_decoder sys timers timers/promises tls trace_events tty url
		util util/types v8 vm wasi worker_threads zlib`) {
		nodeBuiltins[m] = true
	}
}

// UsesPackages reports whether built code may load anything from node_modules at run time: a
// require of anything but a Node builtin, a require that is not a plain string literal, a
// dynamic import() or createRequire. It errs on yes: a bundle it calls package-free does not
// need a fresh worker when the project's dependencies change.
func UsesPackages(code []byte) bool {
	if bytes.Contains(code, []byte("createRequire")) || bytes.Contains(code, []byte("import(")) {
		return true
	}
	rest := code
	for {
		i := bytes.Index(rest, []byte("require("))
		if i < 0 {
			return false
		}
		rest = rest[i+len("require("):]
		if len(rest) == 0 || (rest[0] != '"' && rest[0] != '\'') {
			return true
		}
		end := bytes.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return true
		}
		name := string(rest[1 : 1+end])
		if !nodeBuiltins[strings.TrimPrefix(name, "node:")] {
			return true
		}
		rest = rest[1+end:]
	}
}
