package leanstorage

import (
	"strings"
	"sync"
	"testing"
)

func TestVerificationFlowsAndOutboxThroughSDK(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logs []string
	svc := newServiceWith(t, Options{VerifyCode: "246810"})
	svc.log = func(level, msg string) { mu.Lock(); logs = append(logs, level+" "+msg); mu.Unlock() }
	r := runSDK(t, svc, `
  const phone = '18612345678'
  const u = await new AV.User().set({ username: 'pat', password: 'pw', mobilePhoneNumber: phone, email: 'pat@example.com' }).signUp()
  await AV.User.requestMobilePhoneVerify(phone)
  try { await AV.User.requestMobilePhoneVerify(phone) } catch (e) { report.tooSoon = errOf(e) }
  try { await AV.User.requestMobilePhoneVerify('18600000009') } catch (e) { report.noSuchPhone = errOf(e) }
  try { await AV.User.requestMobilePhoneVerify('12ab') } catch (e) { report.badPhone = errOf(e) }
  try { await AV.User.verifyMobilePhone('000000') } catch (e) { report.wrongCode = errOf(e) }
  await AV.User.verifyMobilePhone('246810')
  report.verified = (await new AV.Query('_User').get(u.id, { useMasterKey: true })).get('mobilePhoneVerified')
  try { await AV.User.verifyMobilePhone('246810') } catch (e) { report.reused = errOf(e) }

  await AV.User.requestLoginSmsCode(phone)
  const bySms = await AV.User.logInWithMobilePhoneSmsCode(phone, '246810')
  report.smsLogin = bySms.id === u.id && bySms.getSessionToken() === u.getSessionToken()

  await AV.Cloud.requestSmsCode('13900000001')
  const fresh = await AV.User.signUpOrlogInWithMobilePhone('13900000001', '246810')
  report.phoneSignup = [fresh.get('username'), fresh.get('mobilePhoneVerified'), !!fresh.getSessionToken()]
  await AV.Cloud.requestSmsCode('13900000002')
  await AV.Cloud.verifySmsCode('246810', '13900000002')
  try { await AV.Cloud.verifySmsCode('246810', '13900000002') } catch (e) { report.smsCodeOnce = errOf(e) }

  await AV.User.requestPasswordResetBySmsCode(phone)
  await AV.User.resetPasswordBySmsCode('246810', 'new-pw')
  try { await AV.User.logIn('pat', 'pw') } catch (e) { report.oldPassword = errOf(e) }
  report.newPassword = !!(await AV.User.logIn('pat', 'new-pw')).id

  await AV.User.requestEmailVerify('pat@example.com')
  try { await AV.User.requestPasswordReset('nobody@example.com') } catch (e) { report.noSuchEmail = errOf(e) }
  report.userId = u.id
`)
	c := reportChecks{t, r}
	c.wantErr("tooSoon", 601, "Can't send a code to 18612345678 again so soon")
	c.wantErr("noSuchPhone", 213, "Could not find user with the mobile phone number 18600000009.")
	c.wantErr("badPhone", 127, "The mobile phone number was invalid.")
	c.wantErr("wrongCode", 603, "Invalid SMS code.")
	c.want("verified", true)
	c.wantErr("reused", 603, "Invalid SMS code.")
	c.want("smsLogin", true)
	c.want("phoneSignup", []any{"13900000001", true, true})
	c.wantErr("smsCodeOnce", 603, "Invalid SMS code.")
	c.wantErr("oldPassword", 210, "The username and password mismatch.")
	c.want("newPassword", true)
	c.wantErr("noSuchEmail", 205, "Could not find user with the email nobody@example.com.")

	// the outbox has every message, the log too; the email link verifies
	var token string
	purposes := map[string]int{}
	for _, m := range svc.Outbox().Messages() {
		purposes[m.Purpose]++
		if m.Purpose == "verifyEmail" {
			token = m.Code
			if m.Channel != "email" || m.To != "pat@example.com" || !strings.Contains(m.Text, "/1.1/verifyEmail/"+token) {
				t.Errorf("email message: %+v", m)
			}
		}
	}
	if purposes["verifyMobilePhone"] != 1 || purposes["login"] != 1 || purposes["smsCode"] != 2 || purposes["passwordResetBySms"] != 1 || token == "" {
		t.Errorf("outbox: %v", purposes)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) < 6 || !strings.Contains(strings.Join(logs, "\n"), "246810") {
		t.Errorf("logs: %v", logs)
	}
	if status, m := svc.do(t, "GET", "verifyEmail/"+token, nil, "", Auth{}); status != 200 {
		t.Fatalf("verify email: %d %v", status, m)
	}
	if _, u := svc.do(t, "GET", "users/"+r["userId"].(string), nil, "", Auth{Master: true}); u["emailVerified"] != true {
		t.Errorf("after the email link: %v", u)
	}
	if status, _ := svc.do(t, "GET", "verifyEmail/"+token, nil, "", Auth{}); status != 400 {
		t.Errorf("a used link: %d", status)
	}
}

// Guessing codes from one address ends in a lock.
func TestWrongCodesLockTheAddress(t *testing.T) {
	t.Parallel()
	s := newServiceWith(t, Options{VerifyCode: "111111"})
	s.do(t, "POST", "users", nil, `{"username":"q","password":"pw","mobilePhoneNumber":"18600000001"}`, Auth{})
	s.do(t, "POST", "requestMobilePhoneVerify", nil, `{"mobilePhoneNumber":"18600000001"}`, Auth{})
	guesser := Auth{RemoteAddr: "203.0.113.1"}
	for i := 0; i < maxCodeFailures; i++ {
		if _, m := s.do(t, "POST", "verifyMobilePhone/00000"+string(rune('0'+i%10)), nil, "", guesser); m["code"] != 603.0 {
			t.Fatalf("guess %d: %v", i, m)
		}
	}
	if _, m := s.do(t, "POST", "verifyMobilePhone/111111", nil, "", guesser); m["code"] != 219.0 {
		t.Fatalf("the right code from a locked address: %v", m)
	}
	if status, m := s.do(t, "POST", "verifyMobilePhone/111111", nil, "", Auth{RemoteAddr: "198.51.100.1"}); status != 200 {
		t.Fatalf("the right code from elsewhere: %d %v", status, m)
	}
}
