package leanstorage

import (
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fnhq/fn/store"
)

// Options tune a Service. The zero value of every field means its default.
type Options struct {
	// AuthVerifiers check third-party authData, by platform name ("weixin", "qq", "weibo",
	// "lc_weapp", …). nil means DefaultAuthVerifiers(nil). A platform without a verifier is
	// refused (252) unless cloud code defines onAuthData, which then answers for it.
	AuthVerifiers map[string]AuthVerifier

	// QueryTimeout bounds one query's work (124 when exceeded): 15 s.
	QueryTimeout time.Duration
	// MaxRegexLength bounds a $regex pattern, in bytes: 1024.
	MaxRegexLength int
	// MaxInValues bounds the values of one $in, $nin or $all: 10000.
	MaxInValues int

	// MaxLoginFailures wrong passwords in a row, from one client address for one user, lock that
	// pair out (219) for LoginLockout, doubled for every further failure up to LoginLockoutMax:
	// 5, 1 min, 15 min. Other addresses (the owner's) are not locked out.
	MaxLoginFailures int
	LoginLockout     time.Duration
	LoginLockoutMax  time.Duration

	// VerifyCode, when set, is the code every SMS and email verification gets instead of a
	// random one (tests, scripted demos).
	VerifyCode string
	// Files is where file contents are kept and served (the Files API is off without a Dir).
	Files FileStorage
	// Now is the clock (tests): time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.AuthVerifiers == nil {
		o.AuthVerifiers = DefaultAuthVerifiers(nil)
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 15 * time.Second
	}
	if o.MaxRegexLength <= 0 {
		o.MaxRegexLength = 1024
	}
	if o.MaxInValues <= 0 {
		o.MaxInValues = 10000
	}
	if o.MaxLoginFailures <= 0 {
		o.MaxLoginFailures = 5
	}
	if o.LoginLockout <= 0 {
		o.LoginLockout = time.Minute
	}
	if o.LoginLockoutMax <= 0 {
		o.LoginLockoutMax = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DefaultAuthVerifiers verifies weixin, qq and weibo against their public APIs with client
// (http.DefaultClient with a 10 s timeout when nil).
func DefaultAuthVerifiers(client *http.Client) map[string]AuthVerifier {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return map[string]AuthVerifier{
		"weixin": &WeChatVerifier{Client: client},
		"qq":     &QQVerifier{Client: client},
		"weibo":  &WeiboVerifier{Client: client},
	}
}

// NewWithOptions returns a service; hooks and log may be nil.
func NewWithOptions(st store.Store, hooks Hooks, log Logger, opts Options) *Service {
	if log == nil {
		log = func(string, string) {}
	}
	return &Service{st: st, hooks: hooks, log: log, HookTimeout: 3 * time.Second, opts: opts.withDefaults(), bcryptCost: bcrypt.DefaultCost,
		lockouts: map[lockKey]*lockout{}, outbox: &Outbox{}}
}
