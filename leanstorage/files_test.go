package leanstorage

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func filesService(t *testing.T) (*Service, *httptest.Server) {
	s := newService(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/f/{id}/{name}", func(w http.ResponseWriter, r *http.Request) { s.ServeFile(w, r, r.PathValue("id")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.opts.Files = FileStorage{Dir: t.TempDir(), BaseURL: srv.URL + "/f", MaxUpload: 1000}
	return s, srv
}

// The SDK's round trip: fileTokens creates the object and an upload URL on fn itself, the PUT
// stores the content (bounded, once), GET serves it with ranges and caching headers, DELETE
// removes object and content.
func TestFileTokenUploadServeDelete(t *testing.T) {
	s, _ := filesService(t)
	st, tok := s.do(t, "POST", "fileTokens", nil, `{"name":"a b.txt","mime_type":"text/plain","metaData":{"size":11,"owner":"forged"}}`, Auth{})
	if st != 200 || tok["provider"] != "qcloud" || tok["upload_url"] == nil || tok["objectId"] == nil {
		t.Fatalf("fileTokens: %d %v", st, tok)
	}
	id := tok["objectId"].(string)
	put := func(u, body string) int {
		req, _ := http.NewRequest("PUT", u, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fileURL := tok["url"].(string)
	uploadURL := tok["upload_url"].(string) + "?token=" + tok["token"].(string)
	if code := put(fileURL+"?token=wrong", "x"); code != 403 {
		t.Fatalf("a wrong token: %d", code)
	}
	if code := put(uploadURL, strings.Repeat("x", 1001)); code != 413 {
		t.Fatalf("an oversized upload: %d", code)
	}
	if code := put(uploadURL, "hello world"); code != 200 {
		t.Fatalf("upload: %d", code)
	}
	if code := put(uploadURL, "again"); code != 403 {
		t.Fatalf("a second upload with the same token: %d", code)
	}
	st, obj := s.do(t, "GET", "files/"+id, nil, "", Auth{})
	meta, _ := obj["metaData"].(map[string]any)
	if st != 200 || obj["url"] != fileURL || meta["size"] != 11.0 || meta["owner"] != "unknown" || obj["mime_type"] != "text/plain" {
		t.Fatalf("the _File object: %d %v", st, obj)
	}
	for k := range obj {
		if strings.HasPrefix(k, "_") {
			t.Errorf("hidden field served: %s", k)
		}
	}
	req, _ := http.NewRequest("GET", fileURL, nil)
	req.Header.Set("Range", "bytes=6-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(b) != "world" || resp.Header.Get("ETag") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("range GET: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	req, _ = http.NewRequest("GET", fileURL, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 304 {
		t.Fatalf("conditional GET: %d", resp.StatusCode)
	}
	if st, _ := s.do(t, "DELETE", "files/"+id, nil, "", Auth{}); st != 200 {
		t.Fatalf("delete: %d", st)
	}
	if _, err := os.Stat(filepath.Join(s.opts.Files.Dir, id)); !os.IsNotExist(err) {
		t.Fatalf("the content outlived its object: %v", err)
	}
	resp, _ = http.Get(fileURL)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET after delete: %d", resp.StatusCode)
	}
}

// Direct upload, and names that try to be paths.
func TestDirectUploadAndHostileNames(t *testing.T) {
	s, _ := filesService(t)
	st, obj := s.do(t, "POST", "files/hello.txt", nil, "Hello, World!", Auth{})
	if st != 201 || obj["url"] == nil || obj["metaData"].(map[string]any)["size"] != 13.0 {
		t.Fatalf("direct upload: %d %v", st, obj)
	}
	resp, err := http.Get(obj["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "Hello, World!" {
		t.Fatalf("served %q", b)
	}
	for _, name := range []string{"..", "a/../../b", `a\b`, "x\x00y", strings.Repeat("n", 300)} {
		if st, _ := s.do(t, "POST", "fileTokens", nil, `{"name":`+jsonString(name)+`}`, Auth{}); st != 400 {
			t.Errorf("name %q: %d", name, st)
		}
	}
	if st, _ := s.do(t, "POST", "fileTokens", nil, `{"name":"a.txt","key":"../../etc/passwd"}`, Auth{}); st != 403 {
		t.Errorf("a key without the master key: %d", st)
	}
	entries, _ := os.ReadDir(s.opts.Files.Dir)
	if len(entries) != 1 {
		t.Fatalf("files on disk: %v", entries)
	}
	resp, _ = http.Get(strings.TrimSuffix(obj["url"].(string), "/hello.txt")[:len(obj["url"].(string))-len("/hello.txt")-len(obj["objectId"].(string))] + "..%2f..%2fx/y")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("a traversal id: %d", resp.StatusCode)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ?imageView2 makes thumbnails: mode 2 fits inside the box, mode 1 crops to it exactly; bad
// queries and non-images answer 400; without the query the original is served.
func TestImageView2Thumbnails(t *testing.T) {
	s, _ := filesService(t)
	s.opts.Files.MaxUpload = 1 << 20
	img := image.NewRGBA(image.Rect(0, 0, 400, 200))
	for x := range 400 {
		for y := range 200 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 0, 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	st, tok := s.do(t, "POST", "fileTokens", nil, `{"name":"p.png","mime_type":"image/png"}`, Auth{})
	if st != 200 {
		t.Fatal(st)
	}
	req, _ := http.NewRequest("PUT", tok["upload_url"].(string)+"?token="+tok["token"].(string), bytes.NewReader(buf.Bytes()))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", resp, err)
	}
	u := tok["url"].(string)
	get := func(q string) (*http.Response, []byte) {
		resp, err := http.Get(u + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	for _, c := range []struct {
		q          string
		w, h       int
		ctype      string
		wantStatus int
	}{
		{"?imageView2/2/w/100/h/100", 100, 50, "image/png", 200},
		{"?imageView2/1/w/100/h/100/format/jpg", 100, 100, "image/jpeg", 200},
		{"?imageView2/2/w/1000", 400, 200, "image/png", 200},
		{"", 400, 200, "image/png", 200},
		{"?imageView2/3/w/10", 0, 0, "", 400},
		{"?imageView2/2/w/-1", 0, 0, "", 400},
		{"?imageView2/2/w/99999", 0, 0, "", 400},
	} {
		resp, b := get(c.q)
		if resp.StatusCode != c.wantStatus {
			t.Errorf("%s: %d %s", c.q, resp.StatusCode, b)
			continue
		}
		if c.wantStatus != 200 {
			continue
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != c.w || cfg.Height != c.h || resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: %dx%d %s %v", c.q, cfg.Width, cfg.Height, resp.Header.Get("Content-Type"), err)
		}
	}
	_, txt := s.do(t, "POST", "files/a.txt", nil, "not an image", Auth{})
	resp, _ := http.Get(txt["url"].(string) + "?imageView2/2/w/10")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a thumbnail of text: %d", resp.StatusCode)
	}
}

// The SDK's own uploads: a Node stream of unknown size and base64 go through the qcloud
// uploader (a multipart POST with ?sign=), the mime type is LeanCloud's bare one, and the
// content is served back.
func TestSDKUploadsStreamAndBase64(t *testing.T) {
	t.Parallel()
	s := newService(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/f/{id}/{name}", func(w http.ResponseWriter, r *http.Request) { s.ServeFile(w, r, r.PathValue("id")) })
	mux.Handle("/1.1/", sdkHandler(s))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.opts.Files = FileStorage{Dir: t.TempDir(), BaseURL: srv.URL + "/f", MaxUpload: 1 << 20}
	r := runSDKAt(t, srv.URL, `
  const fs = require('fs')
  const path = require('path')
  const p = path.join(require('os').tmpdir(), 'fn-stream-' + process.pid + '.txt')
  fs.writeFileSync(p, 'streamed content')
  const streamed = await new AV.File('stream-test', fs.createReadStream(p)).save()
  fs.unlinkSync(p)
  report.streamedBody = await (await fetch(streamed.url())).text()
  const b64 = await new AV.File('中文.txt', { base64: 'd29ya2luZyBhdCBhdm9zY2xvdWQgaXMgZ3JlYXQh' }).save()
  report.mime = b64.get('mime_type')
  report.b64Body = await (await fetch(b64.url())).text()
  report.size = (await AV.File.createWithoutData(b64.id).fetch()).size()
`)
	c := reportChecks{t, r}
	c.want("streamedBody", "streamed content")
	c.want("mime", "text/plain")
	c.want("b64Body", "working at avoscloud is great!")
	c.want("size", 30)
}

// A multipart POST without the content, or with the wrong sign, stores nothing.
func TestMultipartUploadRefusals(t *testing.T) {
	s, _ := filesService(t)
	_, tok := s.do(t, "POST", "fileTokens", nil, `{"name":"m.txt"}`, Auth{})
	post := func(q, field string) int {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("op", "upload")
		fw, _ := mw.CreateFormFile(field, "m.txt")
		fw.Write([]byte("content"))
		mw.Close()
		resp, err := http.Post(tok["upload_url"].(string)+q, mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("?sign=wrong", "fileContent"); code != 403 {
		t.Errorf("a wrong sign: %d", code)
	}
	if code := post("?sign="+url.QueryEscape(tok["token"].(string)), "other"); code != 400 {
		t.Errorf("no fileContent: %d", code)
	}
	if code := post("?sign="+url.QueryEscape(tok["token"].(string)), "fileContent"); code != 200 {
		t.Errorf("the upload: %d", code)
	}
	resp, _ := http.Get(tok["url"].(string))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "content" {
		t.Errorf("served %q", b)
	}
}
