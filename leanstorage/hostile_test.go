package leanstorage

import (
	"net/url"
	"strings"
	"testing"
)

// Every route answers hostile input with a client error, never a crash or a 500.
func TestHostileInputToEveryRoute(t *testing.T) {
	t.Parallel()
	s := newServiceWith(t, Options{})
	_, u := s.do(t, "POST", "users", nil, `{"username":"h","password":"pw","mobilePhoneNumber":"18600000000"}`, Auth{})
	id := u["objectId"].(string)
	user := Auth{SessionToken: u["sessionToken"].(string)}
	s.do(t, "POST", "classes/Thing", nil, `{"v":1}`, Auth{})
	routes := []struct{ method, path string }{
		{"POST", "users"}, {"POST", "login"}, {"PUT", "users/" + id}, {"DELETE", "users/" + id + "x"},
		{"PUT", "users/" + id + "/updatePassword"}, {"POST", "users/" + id + "/friendship/nobody"}, {"GET", "users/" + id + "/followersAndFollowees"},
		{"POST", "classes/Thing"}, {"GET", "classes/Thing"}, {"PUT", "classes/Thing/x"}, {"POST", "batch"},
		{"GET", "scan/classes/Thing"}, {"GET", "cloudQuery"}, {"POST", "statuses"}, {"DELETE", "statuses/x"},
		{"GET", "subscribe/statuses"}, {"GET", "subscribe/statuses/count"}, {"POST", "subscribe/statuses/resetUnreadCount"},
		{"POST", "leaderboard/leaderboards"}, {"GET", "leaderboard/leaderboards/x/ranks"}, {"POST", "leaderboard/users/" + id + "/statistics"},
		{"GET", "leaderboard/users/" + id + "/statistics"}, {"PUT", "leaderboard/leaderboards/x"},
		{"POST", "requestSmsCode"}, {"POST", "verifySmsCode/1"}, {"POST", "usersByMobilePhone"}, {"POST", "requestEmailVerify"},
		{"PUT", "resetPasswordBySmsCode/1"}, {"POST", "changePhoneNumber"}, {"GET", "verifyEmail/x"}, {"POST", "resetPassword/x"},
	}
	bodies := []string{``, `null`, `[]`, `"x"`, `{"a":`, `{"authData":{"weixin":5}}`, `{"authData":{"x":{}}}`,
		`[{"statisticName":5,"statisticValue":"x"}]`, `{"requests":[{"method":"GET","path":"%zz"}]}`, `{"data":5,"query":{"className":"_User","where":5}}`,
		`{"mobilePhoneNumber":5,"smsCode":[1]}`, `{"email":{}}`, `{"username":{"__op":"Increment","amount":1}}`, `{"v":{"__op":5}}`,
		`{"r":{"__op":"AddRelation","objects":[5]}}`, `{"r":{"__op":"Batch","ops":5}}`, `{"f":{"__op":"BitAnd","value":"1"}}`}
	queries := []url.Values{nil, {"where": {`{"loc":{"$nearSphere":5}}`}}, {"where": {`{"$relatedTo":5}`}}, {"cql": {"select"}},
		{"cql": {"select * from Thing where (((("}}, {"cql": {"select * from Thing where v = pointer()"}}, {"pvalues": {"{"}, "cql": {"select * from Thing"}},
		{"cursor": {"!!"}}, {"owner": {"5"}}, {"version": {"-1"}}, {"limit": {"-5"}}, {"where": {`{"v":{"$within":{"$polygon":[1,2,3]}}}`}},
		{"where": {`{"v":{"$in":{}}}`}}, {"redirectClassNameForKey": {"r"}, "where": {`{"$relatedTo":{"object":5}}`}}}
	for _, r := range routes {
		for _, b := range bodies {
			for _, q := range queries {
				for _, auth := range []Auth{{}, user, {Master: true}} {
					resp := s.Serve(t.Context(), r.method, r.path, q, []byte(b), auth)
					if resp.Status >= 500 {
						t.Errorf("%s %s %q %v: %d %v", r.method, r.path, b, q, resp.Status, resp.Body)
					}
					if strings.Contains(strings.ToLower(r.path), "resetpassword") && resp.Status == 200 {
						t.Errorf("%s %s %q: a reset without a code succeeded", r.method, r.path, b)
					}
				}
			}
		}
	}
}
