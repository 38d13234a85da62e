//go:build !linux

package sandbox

func abiVersion() (int, error) { return 0, ErrUnsupported }

func restrict(Policy) error { return ErrUnsupported }

func execve(string, []string, []string) error { return ErrUnsupported }

func setUmask(int) {}
