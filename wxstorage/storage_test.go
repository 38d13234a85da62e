package wxstorage

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, now *time.Time) (*Store, *httptest.Server) {
	t.Helper()
	s, err := Open(t.TempDir(), Options{MaxFileSize: 1 << 10, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/storage", s.Handler()))
	t.Cleanup(srv.Close)
	return s, srv
}

func call(t *testing.T, s *Store, base, action string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	reply, ok := s.Handle(context.Background(), "env-1", base, action, b)
	if !ok {
		t.Fatalf("%s not handled", action)
	}
	var m map[string]any
	if err := json.Unmarshal(reply, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckPath(t *testing.T) {
	good := []string{"a.png", "dir/sub/文件.txt", "a..b", ".hidden"}
	bad := []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\x00b", "dir/", "a\\b", "C:x", strings.Repeat("a", MaxPathLen+1), "x/.key", "\xff"}
	for _, p := range good {
		if err := CheckPath(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	for _, p := range bad {
		if err := CheckPath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestFileIDRoundTrip(t *testing.T) {
	id := FileID("env-1", "a/b.png")
	if id != "cloud://env-1.656e-env-1-1300000000/a/b.png" {
		t.Fatalf("file id %s", id)
	}
	env, p, err := ParseFileID(id)
	if err != nil || env != "env-1" || p != "a/b.png" {
		t.Fatalf("parsed %s %s %v", env, p, err)
	}
	for _, bad := range []string{"http://x/y", "cloud://env-1.other-bucket/a", "cloud://env-1.656e-env-1-1300000000/../a", "cloud://env-1.656e-env-1-1300000000"} {
		if _, _, err := ParseFileID(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// The SDK's round trip: metadata, PUT to the URL with its authorization, temp URL, ranged GET,
// expiry, delete.
func TestUploadDownloadDelete(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, srv := open(t, &now)
	base := srv.URL + "/storage"
	md := call(t, s, base, "storage.getUploadMetadata", map[string]any{"path": "img/cat.txt", "method": "put"})
	data := md["data"].(map[string]any)
	if data["fileId"] != FileID("env-1", "img/cat.txt") {
		t.Fatalf("metadata %v", md)
	}
	put := func(url, auth, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := put(data["url"].(string), "wrong", "x"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("bad signature: %d", res.StatusCode)
	}
	if res := put(data["url"].(string), data["authorization"].(string), strings.Repeat("x", 2<<10)); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized upload: %d", res.StatusCode)
	}
	if s.Exists("env-1", "img/cat.txt") {
		t.Fatal("an oversized upload left a file")
	}
	if res := put(data["url"].(string), data["authorization"].(string), "0123456789"); res.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d", res.StatusCode)
	}

	urls := call(t, s, base, "storage.batchGetDownloadUrl", map[string]any{"file_list": []any{
		map[string]any{"fileid": data["fileId"], "max_age": 60}, map[string]any{"fileid": FileID("env-1", "nope.txt")}, map[string]any{"fileid": "cloud://x/../y"}}})
	list := urls["data"].(map[string]any)["download_list"].([]any)
	first, missing, bad := list[0].(map[string]any), list[1].(map[string]any), list[2].(map[string]any)
	if first["code"] != "SUCCESS" || missing["code"] != "STORAGE_FILE_NONEXIST" || bad["code"] != "INVALID_PARAM" {
		t.Fatalf("download list %v", list)
	}
	u := first["tempFileURL"].(string)
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Range", "bytes=2-4")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(b) != "234" {
		t.Fatalf("range: %d %q", res.StatusCode, b)
	}
	tampered := strings.Replace(u, "cat.txt", "dog.txt", 1)
	if res, _ := http.Get(tampered); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a URL signed for another file: %d", res.StatusCode)
	}
	now = now.Add(61 * time.Second)
	if res, _ := http.Get(u); res.StatusCode != http.StatusForbidden {
		t.Fatalf("expired URL: %d", res.StatusCode)
	}

	del := call(t, s, base, "storage.batchDeleteFile", map[string]any{"fileid_list": []string{FileID("env-1", "img/cat.txt"), FileID("env-1", "img/cat.txt")}})
	dl := del["data"].(map[string]any)["delete_list"].([]any)
	if dl[0].(map[string]any)["code"] != "SUCCESS" || dl[1].(map[string]any)["code"] != "STORAGE_FILE_NONEXIST" {
		t.Fatalf("delete list %v", dl)
	}
	if s.Exists("env-1", "img/cat.txt") {
		t.Fatal("file still there after delete")
	}
}

func TestBadRequests(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, srv := open(t, &now)
	for _, p := range []string{"../escape", "/abs", "a\x00b"} {
		if m := call(t, s, srv.URL, "storage.getUploadMetadata", map[string]any{"path": p}); m["code"] != "INVALID_PARAM" {
			t.Errorf("path %q: %v", p, m)
		}
	}
	if m := call(t, s, srv.URL, "storage.batchDeleteFile", map[string]any{"fileid_list": make([]string, MaxListLen+1)}); m["code"] != "INVALID_PARAM" {
		t.Errorf("too many files: %v", m)
	}
	if m := call(t, s, srv.URL, "storage.copyFile", map[string]any{}); !strings.Contains(m["message"].(string), "storage.copyFile") {
		t.Errorf("unknown action: %v", m)
	}
	if _, ok := s.Handle(context.Background(), "env-1", "", "database.x", nil); ok {
		t.Error("a database action was taken")
	}
	// a path that escapes through the URL is refused before touching the disk
	res, err := http.Get(srv.URL + "/storage/file/env-1/..%2f..%2fetc/passwd?t=9999999999&sign=x")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusForbidden {
		t.Fatalf("escaping path: %d", res.StatusCode)
	}
}

// Clients: everyone reads, only the uploader overwrites or deletes; functions write anything.
func TestClientStoragePermission(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, srv := open(t, &now)
	base := srv.URL + "/storage"
	client := func(openid, action string, body any) map[string]any {
		b, _ := json.Marshal(body)
		reply, _ := s.HandleClient(context.Background(), "env-1", base, openid, action, b)
		var m map[string]any
		json.Unmarshal(reply, &m)
		return m
	}
	upload := func(md map[string]any) int {
		data := md["data"].(map[string]any)
		req, _ := http.NewRequest(http.MethodPut, data["url"].(string), strings.NewReader("x"))
		req.Header.Set("Authorization", data["authorization"].(string))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := upload(client("oA", "storage.getUploadMetadata", map[string]any{"path": "a.txt"})); c != 200 {
		t.Fatalf("upload: %d", c)
	}
	if m := client("oB", "storage.getUploadMetadata", map[string]any{"path": "a.txt"}); m["code"] != "STORAGE_EXCEED_AUTHORITY" {
		t.Errorf("another user overwriting: %v", m)
	}
	del := func(openid string) string {
		m := client(openid, "storage.batchDeleteFile", map[string]any{"fileid_list": []string{FileID("env-1", "a.txt")}})
		return m["data"].(map[string]any)["delete_list"].([]any)[0].(map[string]any)["code"].(string)
	}
	if c := del("oB"); c != "STORAGE_EXCEED_AUTHORITY" {
		t.Errorf("another user deleting: %s", c)
	}
	if c := del("oA"); c != "SUCCESS" {
		t.Errorf("the uploader deleting: %s", c)
	}
	// a function's file belongs to no client
	call(t, s, base, "storage.getUploadMetadata", map[string]any{"path": "f.txt"})
	if c := upload(call(t, s, base, "storage.getUploadMetadata", map[string]any{"path": "f.txt"})); c != 200 {
		t.Fatalf("function upload: %d", c)
	}
	if m := client("oA", "storage.getUploadMetadata", map[string]any{"path": "f.txt"}); m["code"] != "STORAGE_EXCEED_AUTHORITY" {
		t.Errorf("a client overwriting a function's file: %v", m)
	}
	// a client's upload URL does not become another user's: the owner is signed
	md := client("oA", "storage.getUploadMetadata", map[string]any{"path": "b.txt"})
	md["data"].(map[string]any)["url"] = strings.Replace(md["data"].(map[string]any)["url"].(string), "o=oA", "o=oB", 1)
	if c := upload(md); c != http.StatusForbidden {
		t.Errorf("a tampered owner: %d", c)
	}
}

// Older SDKs POST a form (Signature, key, file) instead of a PUT.
func TestFormUpload(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, srv := open(t, &now)
	md := call(t, s, srv.URL+"/storage", "storage.getUploadMetadata", map[string]any{"path": "old/sdk.txt"})
	data := md["data"].(map[string]any)
	post := func(sig string) int {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("Signature", sig)
		mw.WriteField("key", "old/sdk.txt")
		fw, _ := mw.CreateFormFile("file", "sdk.txt")
		fw.Write([]byte("from an old sdk"))
		mw.Close()
		res, err := http.Post(data["url"].(string), mw.FormDataContentType(), &b)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := post("forged"); c != http.StatusForbidden {
		t.Fatalf("forged signature: %d", c)
	}
	if c := post(data["authorization"].(string)); c != http.StatusNoContent {
		t.Fatalf("form upload: %d", c)
	}
	if !s.Exists("env-1", "old/sdk.txt") {
		t.Fatal("not stored")
	}
}
