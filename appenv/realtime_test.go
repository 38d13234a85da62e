package appenv

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

func TestRealtimeSamplesCoverEveryHook(t *testing.T) {
	now := time.UnixMilli(1472200796787)
	signRE := regexp.MustCompile(`^1472200796787,[0-9a-f]{40}$`)
	for _, name := range RealtimeHooks {
		b, ok := RealtimeSample(name, "mk", now)
		if !ok {
			t.Errorf("no sample for %s", name)
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s, _ := v["__sign"].(string); !signRE.MatchString(s) {
			t.Errorf("%s: __sign %q", name, s)
		}
	}
	b, _ := RealtimeSample("_messageReceived", "mk", now)
	var v map[string]any
	json.Unmarshal(b, &v)
	if v["fromPeer"] != "Tom" || v["convId"] != "5789a33a1b8694ad267d8040" || v["timestamp"] != float64(1472200796787) {
		t.Errorf("_messageReceived sample: %s", b)
	}
	if _, ok := RealtimeSample("hello", "mk", now); ok {
		t.Error("a sample for a function that is not a realtime hook")
	}
	a, _ := RealtimeSample("_messageSent", "mk", now)
	c, _ := RealtimeSample("_messageSent", "other", now)
	if string(a) == string(c) {
		t.Error("the sign does not depend on the key")
	}
}
