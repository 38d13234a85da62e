package bundler

import "testing"

func TestUsesPackages(t *testing.T) {
	for code, want := range map[string]bool{
		`exports.main = async () => 1`: false,
		`const fs = require("fs"); const p = require('node:path'); require("fs/promises")`: false,
		`const x = require("localdep")`:                                           true,
		`const x = require("wx-server-sdk/sub")`:                                  true,
		`const x = require(name)`:                                                 true,
		`const m = module.require("fs"); const n = process.mainModule.require(y)`: true,
		`const r = createRequire(__filename); r("x")`:                             true,
		`const m = await import("./esm.mjs")`:                                     true,
		`require("/abs/project/cloud.js")`:                                        true,
		`require("fs`:                                                             true,
	} {
		if got := UsesPackages([]byte(code)); got != want {
			t.Errorf("UsesPackages(%q) = %v, want %v", code, got, want)
		}
	}
}
