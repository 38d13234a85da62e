package localrun

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The real wx-server-sdk against fn dev: cloud storage round trips and cloud.openapi answered
// offline (messages kept in the outbox, security checks, a QR code PNG, permissions honoured,
// getOpenData from the caller's identity).
const wxCloudFunction = `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
const fail = (e) => ({ errCode: e.errCode, errMsg: e.errMsg || e.message })
exports.main = async (event) => {
  const out = {}
  if (event.storage) {
    const up = await cloud.uploadFile({ cloudPath: 'dir/hello.txt', fileContent: Buffer.from('hello storage') })
    out.fileID = up.fileID
    const urls = await cloud.getTempFileURL({ fileList: [up.fileID, up.fileID.replace('hello', 'nope')] })
    out.urls = urls.fileList.map((f) => ({ status: f.status, url: f.tempFileURL }))
    const dl = await cloud.downloadFile({ fileID: up.fileID })
    out.content = dl.fileContent.toString()
    try { await cloud.uploadFile({ cloudPath: '../escape.txt', fileContent: Buffer.from('x') }); out.escape = 'uploaded' } catch (e) { out.escape = fail(e) }
    const del = await cloud.deleteFile({ fileList: [up.fileID] })
    out.deleted = del.fileList.map((f) => f.status)
    try { await cloud.downloadFile({ fileID: up.fileID }); out.after = 'still there' } catch (e) { out.after = fail(e) }
  }
  if (event.openapi) {
    const send = await cloud.openapi.subscribeMessage.send({ touser: 'oAlice', templateId: 'tmpl-1', page: 'pages/index/index', data: { thing1: { value: 'hi' } } })
    out.send = { errCode: send.errCode, errMsg: send.errMsg }
    try { await cloud.openapi.subscribeMessage.send({ touser: 'oAlice', data: {} }); out.invalid = 'sent' } catch (e) { out.invalid = fail(e) }
    out.clean = (await cloud.openapi.security.msgSecCheck({ content: 'hello' })).errCode
    try { await cloud.openapi.security.msgSecCheck({ content: 'buy spam now' }); out.risky = 'passed' } catch (e) { out.risky = fail(e) }
    const code = await cloud.openapi.wxacode.getUnlimited({ scene: 'id=42', page: 'pages/item/item' })
    out.qr = { contentType: code.contentType, png: code.buffer.toString('base64') }
    out.canned = (await cloud.openapi.wxa.getPaidUnionid({ openid: 'oAlice' })).unionid
    try { await cloud.openapi.ocr.idcard({ imgUrl: 'x' }); out.unknown = 'answered' } catch (e) { out.unknown = fail(e) }
    out.openData = (await cloud.getOpenData({ list: ['cloud-id-1'] })).list
    out.img = (await cloud.openapi.security.imgSecCheck({ media: { contentType: 'image/png', value: Buffer.from('not really a png') } })).errCode
    try { await cloud.cloudPay.unifiedOrder({ body: 'x', outTradeNo: '1', totalFee: 1 }); out.pay = 'paid' } catch (e) { out.pay = fail(e) }
  }
  if (event.denied) {
    try { await cloud.openapi.templateMessage.send({ touser: 'o', templateId: 't', formId: 'f', data: { k: { value: 'v' } } }); out.denied = 'sent' } catch (e) { out.denied = fail(e) }
  }
  return out
}
`

func TestWXStorageAndOpenAPIThroughTheRealSDK(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml": `name: wxc
dialect: wx
env: wxc-env
identities:
  alice: {openid: oAlice, appid: wxApp1, unionid: uAlice}
defaultIdentity: alice
functions:
  limited:
    openapi: [subscribeMessage.send]
wx:
  openapi:
    blocklist: [spam]
    responses:
      wxa.getPaidUnionid: {unionid: paid-union}
`,
		"functions/cloudy/index.js":  wxCloudFunction,
		"functions/limited/index.js": wxCloudFunction,
	}, DevOptions{})
	call := func(fn, body string) map[string]any {
		t.Helper()
		res, err := http.Post(rec.url+"/wx/functions/"+fn, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %s", fn, b)
		}
		r, ok := m["result"].(map[string]any)
		if !ok {
			t.Fatalf("%s failed: %s", fn, b)
		}
		return r
	}

	st := call("cloudy", `{"storage": true}`)
	if st["fileID"] != "cloud://wxc-env.7778-wxc-env-1300000000/dir/hello.txt" || st["content"] != "hello storage" {
		t.Errorf("upload/download: %v", st)
	}
	urls := st["urls"].([]any)
	if u := urls[0].(map[string]any); u["status"] != 0.0 || !strings.HasPrefix(u["url"].(string), rec.url+"/wx/storage/file/") {
		t.Errorf("temp URL: %v", u)
	}
	if u := urls[1].(map[string]any); u["status"] != -503003.0 {
		t.Errorf("temp URL of a missing file: %v", u)
	}
	if e, _ := st["escape"].(map[string]any); e == nil || !strings.Contains(e["errMsg"].(string), "not allowed") {
		t.Errorf("an escaping cloud path: %v", st["escape"])
	}
	if d := st["deleted"].([]any); d[0] != 0.0 {
		t.Errorf("delete: %v", d)
	}
	if e, _ := st["after"].(map[string]any); e == nil || !strings.Contains(e["errMsg"].(string), "no such file") {
		t.Errorf("download after delete: %v", st["after"])
	}

	oa := call("cloudy", `{"openapi": true}`)
	if s := oa["send"].(map[string]any); s["errCode"] != 0.0 || s["errMsg"] != "openapi.subscribeMessage.send:ok" {
		t.Errorf("subscribeMessage.send: %v", s)
	}
	if e, _ := oa["invalid"].(map[string]any); e == nil || !strings.Contains(e["errMsg"].(string), "template_id") {
		t.Errorf("a message without template_id: %v", oa["invalid"])
	}
	if oa["clean"] != 0.0 {
		t.Errorf("msgSecCheck of clean text: %v", oa["clean"])
	}
	if e, _ := oa["risky"].(map[string]any); e == nil || e["errCode"] != 87014.0 {
		t.Errorf("msgSecCheck of a blocked word: %v", oa["risky"])
	}
	qr := oa["qr"].(map[string]any)
	raw, _ := decodeB64(qr["png"].(string))
	if img, err := png.Decode(bytes.NewReader(raw)); qr["contentType"] != "image/png" || err != nil || img.Bounds().Dx() < 280 {
		t.Errorf("wxacode: %v %v", qr["contentType"], err)
	}
	if oa["canned"] != "paid-union" {
		t.Errorf("canned response: %v", oa["canned"])
	}
	if e, _ := oa["unknown"].(map[string]any); e == nil || !strings.Contains(e["errMsg"].(string), "not emulated: ocr.idcard") {
		t.Errorf("an unemulated API: %v", oa["unknown"])
	}
	if l, _ := oa["openData"].([]any); len(l) != 1 || !strings.Contains(mustJSON(l), `"openId":"oAlice"`) || !strings.Contains(mustJSON(l), `"cloudID":"cloud-id-1"`) {
		t.Errorf("getOpenData: %v", oa["openData"])
	}

	if oa["img"] != 0.0 {
		t.Errorf("imgSecCheck: %v", oa["img"])
	}
	if e, _ := oa["pay"].(map[string]any); e == nil || !strings.Contains(e["errMsg"].(string), "not emulated: cloudPay") {
		t.Errorf("cloudPay names itself: %v", oa["pay"])
	}
	if e, _ := call("limited", `{"denied": true}`)["denied"].(map[string]any); e == nil || e["errCode"] != -604101.0 || !strings.Contains(e["errMsg"].(string), "templateMessage.send") {
		t.Errorf("an API the function did not declare: %v", e)
	}

	// the outbox, through the admin API
	res, err := http.Get(rec.url + "/__fn/apps/-/outbox/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var box []map[string]any
	json.NewDecoder(res.Body).Decode(&box)
	if len(box) != 1 || box[0]["api"] != "subscribeMessage.send" || box[0]["touser"] != "oAlice" || box[0]["function"] != "cloudy" ||
		!strings.Contains(mustJSON(box[0]["data"]), `"template_id":"tmpl-1"`) {
		t.Errorf("outbox: %v", box)
	}
	// and in the log fn logs reads
	lres, err := http.Get(rec.url + "/__fn/apps/-/logs")
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(lres.Body)
	lres.Body.Close()
	if !strings.Contains(string(logs), "openapi.subscribeMessage.send to oAlice recorded in the outbox") {
		t.Errorf("the message is not in the log:\n%s", logs)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
