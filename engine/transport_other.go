//go:build !windows

package engine

// Workers inherit their protocol pipes as fds 3 and 4 unless FN_ENGINE_TRANSPORT says otherwise.
const (
	defaultTransport = transportFDs
	inheritsFDs      = true
)
