//go:build windows

package engine

// A Windows child inherits no descriptors past stdin, stdout and stderr that Node could open as
// fds 3 and 4: workers connect back over loopback TCP (transport_tcp.go).
const (
	defaultTransport = transportTCP
	inheritsFDs      = false
)
