package sandbox

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// A separate uid per app. When fn serve runs as root, each app's workers run as a uid (and a gid
// of the same number) of their own, picked from a range the operator sets aside: the kernel's
// ordinary permission checks then keep one app's functions from another app's files, from the
// data directory and from fn serve's process, also where Landlock is missing. The directories
// a worker needs are prepared for its uid (Owner): the data directory and apps/ are traversable
// but not listable, the app's directory traversable by the app's group only, its versions
// readable by that group, its scratch directory owned by the uid; everything else under the
// data directory stays root's, 0700/0600.

// DefaultUIDs is the range used by default when fn serve runs as root.
const DefaultUIDs = "100000-165535"

// UIDRange is a range of uids, First to Last inclusive; uid n gets gid n.
type UIDRange struct{ First, Last int }

// ParseUIDRange reads "first-last" (e.g. 100000-165535). The range must not include uids below
// 1000 (system accounts) and holds at most 2^24 uids.
func ParseUIDRange(s string) (UIDRange, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return UIDRange{}, fmt.Errorf("uid range %q: want first-last, e.g. %s", s, DefaultUIDs)
	}
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	switch {
	case err1 != nil || err2 != nil:
		return UIDRange{}, fmt.Errorf("uid range %q: first and last must be numbers", s)
	case first < 1000:
		return UIDRange{}, fmt.Errorf("uid range %q: starts below 1000, among system accounts", s)
	case last < first:
		return UIDRange{}, fmt.Errorf("uid range %q: last is below first", s)
	case last-first >= 1<<24 || last >= 1<<31-1:
		return UIDRange{}, fmt.Errorf("uid range %q: too large", s)
	}
	return UIDRange{First: first, Last: last}, nil
}

func (r UIDRange) String() string { return strconv.Itoa(r.First) + "-" + strconv.Itoa(r.Last) }

// ErrUIDsExhausted means every uid of the range is taken by another app.
var ErrUIDsExhausted = errors.New("every uid of the range is taken")

// Pick maps key (an app id) to a uid of the range: its hash, or the next free one after it when
// taken says that one belongs to another key. The same key gets the same uid across restarts as
// long as it does not collide.
func (r UIDRange) Pick(key string, taken func(uid int) bool) (int, error) {
	h := fnv.New64a()
	h.Write([]byte(key))
	size := uint64(r.Last - r.First + 1)
	start := h.Sum64() % size
	for i := uint64(0); i < size; i++ {
		uid := r.First + int((start+i)%size)
		if !taken(uid) {
			return uid, nil
		}
	}
	return 0, ErrUIDsExhausted
}
