// Package wxclient holds wx-cloud.js, the mini-program client (wx.cloud.init, callFunction,
// database, uploadFile, getTempFileURL, downloadFile, deleteFile) that fn serves at
// GET /__fn/wx-cloud.js for page code and its tests in Node.js.
package wxclient

import (
	_ "embed"
	"net/http"
)

//go:embed wx-cloud.js
var Script []byte

// Handler serves the script.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(Script)
	})
}
