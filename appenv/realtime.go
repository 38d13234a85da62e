package appenv

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// realtimeSamples are the payloads LeanCloud's realtime service sends to each hook, as its
// documentation records them (the hook's __sign and timestamp are added per call).
var realtimeSamples = map[string]map[string]any{
	"_messageReceived": {"fromPeer": "Tom", "receipt": false, "groupId": nil, "system": nil,
		"content": `{"_lctext":"耗子,起床!","_lctype":-1}`, "convId": "5789a33a1b8694ad267d8040", "toPeers": []string{"Jerry"},
		"bin": false, "transient": false, "sourceIP": "121.239.62.103"},
	"_receiversOffline": {"fromPeer": "Tom", "convId": "5789a33a1b8694ad267d8040", "offlinePeers": []string{"Jerry"},
		"content": `{"_lctext":"耗子,起床!","_lctype":-1}`, "mentionAll": false, "mentionPids": []string{}},
	"_messageSent": {"fromPeer": "Tom", "receipt": false, "onlinePeers": []string{}, "content": "12345678",
		"convId": "5789a33a1b8694ad267d8040", "msgId": "fptKnuYYQMGdiSt_Zs7zDA", "bin": false, "transient": false,
		"sourceIP": "114.219.127.186", "offlinePeers": []string{"Jerry"}},
	"_messageUpdate": {"fromPeer": "Tom", "convId": "5789a33a1b8694ad267d8040", "msgId": "fptKnuYYQMGdiSt_Zs7zDA",
		"content": "12345678 (edited)", "recall": false, "sourceIP": "114.219.127.186"},
	"_conversationStart":   {"initBy": "Tom", "members": []string{"Tom", "Jerry"}, "attr": map[string]any{"name": "Tom & Jerry"}},
	"_conversationStarted": {"convId": "5789a33a1b8694ad267d8040"},
	"_conversationAdd":     {"initBy": "Tom", "members": []string{"Mary"}, "convId": "5789a33a1b8694ad267d8040"},
	"_conversationAdded":   {"initBy": "Tom", "members": []string{"Mary"}, "convId": "5789a33a1b8694ad267d8040"},
	"_conversationRemove":  {"initBy": "Tom", "members": []string{"Jerry"}, "convId": "57c8f3ac92509726c3dadaba"},
	"_conversationRemoved": {"initBy": "Tom", "members": []string{"Jerry"}, "convId": "57c8f3ac92509726c3dadaba"},
	"_conversationUpdate": {"convId": "57c9208292509726c3dadb4b", "initBy": "Tom",
		"attr": map[string]any{"name": "聰明的喵星人", "type": "public"}},
	"_clientOnline":  {"peerId": "Tom", "sourceIP": "121.239.62.103"},
	"_clientOffline": {"peerId": "Tom", "closeCode": 1, "closeEvent": "logout", "sourceIP": "121.239.62.103"},
	"_rtmClientSign": {"clientId": "Tom", "sourceIP": "121.239.62.103"},
}

// RealtimeSample is a sample payload of a realtime hook as the realtime service sends it, with a
// fresh timestamp and __sign ("<ms>,<40 hex>": an HMAC-SHA1 of the timestamp with the master
// key here — leanengine does not check it, and the service's own formula is not published).
func RealtimeSample(name, masterKey string, now time.Time) (json.RawMessage, bool) {
	sample, ok := realtimeSamples[name]
	if !ok {
		return nil, false
	}
	out := make(map[string]any, len(sample)+2)
	for k, v := range sample {
		out[k] = v
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	mac := hmac.New(sha1.New, []byte(masterKey))
	mac.Write([]byte(ts))
	out["__sign"] = ts + "," + hex.EncodeToString(mac.Sum(nil))
	if name != "_conversationStart" && name != "_conversationStarted" && name != "_conversationUpdate" && name != "_rtmClientSign" {
		out["timestamp"] = now.UnixMilli()
	}
	b, _ := json.Marshal(out)
	return b, true
}
