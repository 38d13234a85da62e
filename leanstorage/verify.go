package leanstorage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/store"
)

// Verification flows (SMS codes, email links) keep their pending codes in memory and put the
// messages in the Outbox instead of sending them.

const (
	codeTTL          = 10 * time.Minute
	resendInterval   = time.Minute // one code per number and purpose per minute
	maxPendingCodes  = 10000
	maxCodeFailures  = 10          // wrong codes from one address before it is locked out like a login
	codeFailureScope = "\x00codes" // not a user id: the lock of wrong codes per address
)

var (
	phoneRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\+?[0-9]{6,20}$`) })
	emailRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^@\s]{1,64}@[^@\s]{1,255}$`) })

	errInvalidCode = &Error{Status: http.StatusBadRequest, Code: 603, Message: "Invalid SMS code."}
)

type pendingCode struct {
	purpose, to, code, userID string
	issued                    time.Time
}

type codeBook struct {
	mu      sync.Mutex
	pending []*pendingCode
}

func (s *Service) newCode(n int) string {
	if s.opts.VerifyCode != "" {
		return s.opts.VerifyCode
	}
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%0*d", n, v)
}

// issue records a code for (purpose, to) and puts its message in the outbox.
func (s *Service) issue(purpose, channel, to, userID, code, text string) error {
	now := s.opts.Now()
	b := &s.codes
	b.mu.Lock()
	kept := b.pending[:0]
	for _, p := range b.pending {
		if now.Sub(p.issued) < codeTTL {
			kept = append(kept, p)
		}
	}
	b.pending = kept
	for _, p := range b.pending {
		if p.purpose == purpose && p.to == to && now.Sub(p.issued) < resendInterval {
			b.mu.Unlock()
			return apiErr(http.StatusBadRequest, 601, "Can't send a code to %s again so soon: wait a minute.", to)
		}
	}
	if len(b.pending) >= maxPendingCodes {
		b.pending = b.pending[1:]
	}
	b.pending = append(b.pending, &pendingCode{purpose: purpose, to: to, code: code, userID: userID, issued: now})
	b.mu.Unlock()
	s.outbox.add(Message{Time: now, Channel: channel, To: to, Purpose: purpose, Code: code, Text: text})
	s.log("info", fmt.Sprintf("%s to %s (%s, not sent: see the outbox): %s", channel, to, purpose, text))
	return nil
}

// redeem takes a matching code (to "" matches any recipient); wrong codes count against the
// client's address.
func (s *Service) redeem(purposes []string, to, code string, auth Auth) (*pendingCode, error) {
	key := lockKey{user: codeFailureScope, addr: auth.RemoteAddr}
	if s.lockedOut(key) {
		return nil, apiErr(http.StatusBadRequest, 219, "Too many wrong verification codes; try again later.")
	}
	now := s.opts.Now()
	b := &s.codes
	b.mu.Lock()
	for i := len(b.pending) - 1; i >= 0; i-- {
		p := b.pending[i]
		if now.Sub(p.issued) < codeTTL && p.code == code && (to == "" || p.to == to) && contains(purposes, p.purpose) {
			b.pending = append(b.pending[:i:i], b.pending[i+1:]...)
			b.mu.Unlock()
			s.noteSuccess(key)
			return p, nil
		}
	}
	b.mu.Unlock()
	s.noteFailure(key, maxCodeFailures)
	return nil, errInvalidCode
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func phoneOf(fields map[string]any) (string, error) {
	phone, _ := fields["mobilePhoneNumber"].(string)
	if !phoneRE().MatchString(phone) {
		return "", apiErr(http.StatusBadRequest, 127, "The mobile phone number was invalid.")
	}
	return phone, nil
}

func (s *Service) userByPhone(ctx context.Context, phone string) (*store.Object, error) {
	u, err := s.findUser(ctx, "mobilePhoneNumber", phone)
	if err == nil && u == nil {
		return nil, apiErr(http.StatusBadRequest, 213, "Could not find user with the mobile phone number %s.", phone)
	}
	return u, err
}

func smsText(purpose, code string) string {
	what := map[string]string{"verifyMobilePhone": "verify your phone number", "login": "log in",
		"passwordResetBySms": "reset your password", "smsCode": "confirm", "changePhoneNumber": "change your phone number"}[purpose]
	return fmt.Sprintf("Your code to %s is %s; it is valid for 10 minutes.", what, code)
}

// verification serves the SMS and email routes; ok is false for other paths.
func (s *Service) verification(ctx context.Context, method string, parts []string, body []byte, auth Auth) (*Response, bool, error) {
	post := method == http.MethodPost
	one := len(parts) == 1
	two := len(parts) == 2
	switch {
	case post && one && parts[0] == "requestMobilePhoneVerify":
		return s.requestSms(ctx, body, "verifyMobilePhone", true, auth)
	case post && one && parts[0] == "requestLoginSmsCode":
		return s.requestSms(ctx, body, "login", true, auth)
	case post && one && parts[0] == "requestPasswordResetBySmsCode":
		return s.requestSms(ctx, body, "passwordResetBySms", true, auth)
	case post && one && parts[0] == "requestSmsCode":
		return s.requestSms(ctx, body, "smsCode", false, auth)
	case post && one && parts[0] == "requestChangePhoneNumber":
		return s.requestSms(ctx, body, "changePhoneNumber", false, auth)
	case post && two && parts[0] == "verifyMobilePhone":
		r, err := s.verifyMobilePhone(ctx, parts[1], auth)
		return r, true, err
	case post && two && parts[0] == "verifySmsCode":
		fields, err := parseObject(body)
		if err != nil {
			return nil, true, err
		}
		phone, err := phoneOf(fields)
		if err != nil {
			return nil, true, err
		}
		if _, err := s.redeem([]string{"smsCode"}, phone, parts[1], auth); err != nil {
			return nil, true, err
		}
		return ok(map[string]any{}), true, nil
	case method == http.MethodPut && two && parts[0] == "resetPasswordBySmsCode":
		r, err := s.resetPasswordBySms(ctx, parts[1], body, auth)
		return r, true, err
	case post && one && parts[0] == "changePhoneNumber":
		r, err := s.changePhoneNumber(ctx, body, auth)
		return r, true, err
	case post && one && parts[0] == "usersByMobilePhone":
		r, err := s.usersByMobilePhone(ctx, body, auth)
		return r, true, err
	case post && one && (parts[0] == "requestEmailVerify" || parts[0] == "requestPasswordReset"):
		r, err := s.requestEmail(ctx, parts[0], body)
		return r, true, err
	case method == http.MethodGet && two && parts[0] == "verifyEmail":
		r, err := s.verifyEmail(ctx, parts[1], auth)
		return r, true, err
	case post && two && parts[0] == "resetPassword":
		r, err := s.resetPasswordByEmail(ctx, parts[1], body, auth)
		return r, true, err
	}
	return nil, false, nil
}

func (s *Service) requestSms(ctx context.Context, body []byte, purpose string, needUser bool, auth Auth) (*Response, bool, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, true, err
	}
	phone, err := phoneOf(fields)
	if err != nil {
		return nil, true, err
	}
	userID := ""
	if needUser {
		u, err := s.userByPhone(ctx, phone)
		if err != nil {
			return nil, true, err
		}
		userID = u.ID
	}
	if purpose == "changePhoneNumber" {
		user, err := s.currentUser(ctx, auth)
		if err != nil {
			return nil, true, err
		}
		if user == nil {
			return nil, true, apiErr(http.StatusBadRequest, 206, "The user cannot be altered by a client without the session.")
		}
		if other, err := s.findUser(ctx, "mobilePhoneNumber", phone); err != nil {
			return nil, true, err
		} else if other != nil {
			return nil, true, apiErr(http.StatusBadRequest, 214, "Mobile phone number has already been taken.")
		}
		userID = user.ID
	}
	code := s.newCode(6)
	if err := s.issue(purpose, "sms", phone, userID, code, smsText(purpose, code)); err != nil {
		return nil, true, err
	}
	return ok(map[string]any{}), true, nil
}

func (s *Service) setUserFields(ctx context.Context, id string, set map[string]any) (*store.Object, error) {
	return s.st.Update(ctx, "_User", id, func(o *store.Object) error {
		for k, v := range set {
			o.Fields[k] = v
		}
		o.UpdatedAt = s.opts.Now()
		return nil
	})
}

func (s *Service) verifyMobilePhone(ctx context.Context, code string, auth Auth) (*Response, error) {
	p, err := s.redeem([]string{"verifyMobilePhone"}, "", code, auth)
	if err != nil {
		return nil, err
	}
	u, err := s.setUserFields(ctx, p.userID, map[string]any{"mobilePhoneVerified": true})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	if err != nil {
		return nil, err
	}
	s.onVerified(ctx, "sms", u)
	return ok(map[string]any{}), nil
}

func (s *Service) resetPasswordBySms(ctx context.Context, code string, body []byte, auth Auth) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	pw, _ := fields["password"].(string)
	if pw == "" {
		return nil, apiErr(http.StatusBadRequest, 201, "Password is missing or empty.")
	}
	p, err := s.redeem([]string{"passwordResetBySms"}, "", code, auth)
	if err != nil {
		return nil, err
	}
	return s.setPassword(ctx, p.userID, pw, map[string]any{"mobilePhoneVerified": true})
}

// setPassword changes a password after a reset and ends the user's sessions.
func (s *Service) setPassword(ctx context.Context, userID, pw string, also map[string]any) (*Response, error) {
	hash, err := s.hashPassword(pw)
	if err != nil {
		return nil, err
	}
	also["_hashed_password"] = hash
	if _, err := s.setUserFields(ctx, userID, also); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
		}
		return nil, err
	}
	if err := s.st.DeleteSessions(ctx, userID); err != nil {
		return nil, err
	}
	return ok(map[string]any{}), nil
}

func (s *Service) changePhoneNumber(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	phone, err := phoneOf(fields)
	if err != nil {
		return nil, err
	}
	code, _ := fields["code"].(string)
	p, err := s.redeem([]string{"changePhoneNumber"}, phone, code, auth)
	if err != nil {
		return nil, err
	}
	if _, err := s.setUserFields(ctx, p.userID, map[string]any{"mobilePhoneNumber": phone, "mobilePhoneVerified": true}); err != nil {
		return nil, err
	}
	return ok(map[string]any{}), nil
}

// usersByMobilePhone signs up or logs in with a phone number and an SMS code.
func (s *Service) usersByMobilePhone(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	phone, err := phoneOf(fields)
	if err != nil {
		return nil, err
	}
	code, _ := fields["smsCode"].(string)
	if _, err := s.redeem([]string{"smsCode", "login"}, phone, code, auth); err != nil {
		return nil, err
	}
	u, err := s.findUser(ctx, "mobilePhoneNumber", phone)
	if err != nil {
		return nil, err
	}
	if u != nil {
		if u, err = s.setUserFields(ctx, u.ID, map[string]any{"mobilePhoneVerified": true}); err != nil {
			return nil, err
		}
		return s.finishLogin(ctx, u, auth)
	}
	delete(fields, "smsCode")
	password, _ := fields["password"].(string)
	delete(fields, "password")
	dropServerOwned(fields, auth)
	if err := checkKeys(fields); err != nil {
		return nil, err
	}
	delete(fields, "authData") // a phone signup links no third-party account
	now := s.opts.Now()
	o := &store.Object{Class: "_User", ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}
	if err := applyOps(o.Fields, fields); err != nil {
		return nil, err
	}
	name, _ := o.Fields["username"].(string)
	if name == "" {
		name = phone
	}
	o.Fields["username"] = name
	if other, err := s.findUser(ctx, "username", name); err != nil {
		return nil, err
	} else if other != nil {
		return nil, apiErr(http.StatusBadRequest, 202, "Username has already been taken.")
	}
	o.Fields["mobilePhoneNumber"], o.Fields["mobilePhoneVerified"] = phone, true
	if password != "" {
		hash, err := s.hashPassword(password)
		if err != nil {
			return nil, err
		}
		o.Fields["_hashed_password"] = hash
	}
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	token, err := s.sessionOf(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	s.afterHook(ctx, "_User", "afterSave", JSON(o), nil)
	return &Response{Status: http.StatusCreated, Location: "/1.1/users/" + o.ID, Body: userJSON(o, token)}, nil
}

// loginBySmsCode is POST /login {mobilePhoneNumber, smsCode}.
func (s *Service) loginBySmsCode(ctx context.Context, u *store.Object, phone, code string, auth Auth) (*Response, error) {
	if _, err := s.redeem([]string{"login"}, phone, code, auth); err != nil {
		return nil, err
	}
	u, err := s.setUserFields(ctx, u.ID, map[string]any{"mobilePhoneVerified": true})
	if err != nil {
		return nil, err
	}
	return s.finishLogin(ctx, u, auth)
}

func (s *Service) requestEmail(ctx context.Context, route string, body []byte) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	email, _ := fields["email"].(string)
	if !emailRE().MatchString(email) {
		return nil, apiErr(http.StatusBadRequest, 125, "The email address was invalid.")
	}
	u, err := s.findUser(ctx, "email", email)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, apiErr(http.StatusBadRequest, 205, "Could not find user with the email %s.", email)
	}
	token := newToken()
	purpose, text := "verifyEmail", fmt.Sprintf("Verify your email: GET /1.1/verifyEmail/%s", token)
	if route == "requestPasswordReset" {
		purpose, text = "passwordReset", fmt.Sprintf("Reset your password: POST /1.1/resetPassword/%s {\"password\": …}", token)
	}
	if err := s.issue(purpose, "email", email, u.ID, token, text); err != nil {
		return nil, err
	}
	return ok(map[string]any{}), nil
}

// verifyEmail stands in for the link of the verification email.
func (s *Service) verifyEmail(ctx context.Context, token string, auth Auth) (*Response, error) {
	p, err := s.redeem([]string{"verifyEmail"}, "", token, auth)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, 1, "The email verification link is invalid or expired.")
	}
	u, err := s.setUserFields(ctx, p.userID, map[string]any{"emailVerified": true})
	if err != nil {
		return nil, err
	}
	s.onVerified(ctx, "email", u)
	return ok(map[string]any{}), nil
}

// resetPasswordByEmail stands in for the page the reset email links to.
func (s *Service) resetPasswordByEmail(ctx context.Context, token string, body []byte, auth Auth) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	pw, _ := fields["password"].(string)
	if pw == "" {
		return nil, apiErr(http.StatusBadRequest, 201, "Password is missing or empty.")
	}
	p, err := s.redeem([]string{"passwordReset"}, "", token, auth)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, 1, "The password reset link is invalid or expired.")
	}
	return s.setPassword(ctx, p.userID, pw, map[string]any{"emailVerified": true})
}

// onVerified fires the onVerified hook of kind ("sms" or "email").
func (s *Service) onVerified(ctx context.Context, kind string, u *store.Object) {
	if !s.userHookDefined("__on_verified_" + kind) {
		return
	}
	res := s.runHook(ctx, engine.LeanRequest{Kind: engine.LeanUserHook, Hook: "onVerified", ClassName: kind, HookKeyOK: true,
		Params: hookBody(JSON(u), nil), Timeout: s.HookTimeout, URL: "/1.1/functions/onVerified/" + kind, RemoteAddress: "127.0.0.1"})
	if res.Status != http.StatusOK {
		s.log("error", "onVerified "+kind+" hook failed: "+strings.TrimSpace(string(res.Body)))
	}
}
