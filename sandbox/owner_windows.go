package sandbox

import (
	"errors"
	"os/exec"
)

// Owner is the uid and gid an app's workers run as (not on Windows).
type Owner struct{ UID, GID int }

var errNoUIDs = errors.New("a uid per app needs a Unix system")

func RunAsAvailable() bool                  { return false }
func (o Owner) Hook() func(*exec.Cmd) error { return func(*exec.Cmd) error { return errNoUIDs } }
func Traversable(...string) error           { return errNoUIDs }
func (o Owner) Traverse(...string) error    { return errNoUIDs }
func (o Owner) Own(string) error            { return errNoUIDs }
func (o Owner) Share(string) error          { return errNoUIDs }
func Public(string) error                   { return errNoUIDs }
func Searchable(string) error               { return errNoUIDs }
