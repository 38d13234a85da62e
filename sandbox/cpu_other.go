//go:build !linux

package sandbox

// CPUGroups is Linux-only.
type CPUGroups struct{}

// OpenCPUGroups is not available here.
func OpenCPUGroups() (*CPUGroups, error) { return nil, ErrUnsupported }

// Group is not available here.
func (g *CPUGroups) Group(string) (string, error) { return "", ErrUnsupported }

// Close does nothing here.
func (g *CPUGroups) Close() {}

func joinCgroup(string) error { return ErrUnsupported }
