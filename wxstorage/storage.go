// Package wxstorage is the WeChat cloud storage of one app: the storage.* actions the real
// wx-server-sdk sends to /admin (getUploadMetadata, batchGetDownloadUrl, batchDeleteFile), the
// upload endpoint the SDK then PUTs a file to, and signed, expiring download URLs served with
// range support. Files live on disk under one directory, one folder per environment and bucket;
// every client path is validated before it names a file.
package wxstorage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the platform that requests are checked against.
const (
	MaxPathLen       = 850      // bytes of a cloud path (COS object keys are bounded near 850)
	DefaultMaxFile   = 50 << 20 // bytes of one uploaded file unless Options.MaxFileSize says otherwise
	MaxListLen       = 50       // files in one batchGetDownloadUrl/batchDeleteFile (the platform's limit)
	DefaultMaxAge    = 2 * time.Hour
	MaxMaxAge        = 24 * time.Hour
	uploadValidity   = 15 * time.Minute
	defaultAppNumber = "1300000000"
)

// Options tune a Store.
type Options struct {
	// MaxFileSize bounds one upload (0: DefaultMaxFile).
	MaxFileSize int64
	// Now is the clock (tests); nil for time.Now.
	Now func() time.Time
}

// Store is the cloud storage of one app (all its environments).
type Store struct {
	dir string
	key []byte
	max int64
	now func() time.Time
}

// Open opens (creating when needed) the storage kept under dir. The key that signs upload and
// download URLs is kept in dir/.key, so that URLs handed out stay valid across restarts.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, ".key")
	key, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(key) != 32) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, key: key, max: o.MaxFileSize, now: o.Now}
	if s.max <= 0 {
		s.max = DefaultMaxFile
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Bucket is the bucket name of an environment, in the platform's shape
// (hex of the env id's first two bytes, the env id, the app number).
func Bucket(env string) string {
	p := env
	if len(p) > 2 {
		p = p[:2]
	}
	return hex.EncodeToString([]byte(p)) + "-" + env + "-" + defaultAppNumber
}

// FileID is the cloud file id of a path: cloud://<env>.<bucket>/<path>.
func FileID(env, cloudPath string) string {
	return "cloud://" + env + "." + Bucket(env) + "/" + cloudPath
}

// PathError is a cloud path or file id that fn refuses.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("invalid cloud path %q: %s", e.Path, e.Reason) }

// CheckPath validates a cloud path: relative, no "." or ".." segment, no NUL or control
// character, valid UTF-8, at most MaxPathLen bytes, not ending in "/".
func CheckPath(p string) error {
	switch {
	case p == "":
		return &PathError{p, "empty"}
	case len(p) > MaxPathLen:
		return &PathError{p[:32] + "…", fmt.Sprintf("%d bytes, over the %d-byte limit", len(p), MaxPathLen)}
	case !utf8.ValidString(p):
		return &PathError{p, "not UTF-8"}
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") || filepath.IsAbs(p) || (len(p) > 1 && p[1] == ':'):
		return &PathError{p, "absolute paths are not allowed"}
	case strings.HasSuffix(p, "/"):
		return &PathError{p, "names a directory"}
	case strings.Contains(p, "\\"):
		return &PathError{p, "backslashes are not allowed"}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return &PathError{p, fmt.Sprintf("control character %U", r)}
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return &PathError{p, "empty segment"}
		case ".", "..":
			return &PathError{p, "'" + seg + "' segments are not allowed"}
		}
		if seg == ".key" {
			return &PathError{p, "reserved name"}
		}
	}
	return nil
}

// ParseFileID splits cloud://<env>.<bucket>/<path> and checks that the bucket is env's.
func ParseFileID(id string) (env, cloudPath string, err error) {
	rest, ok := strings.CutPrefix(id, "cloud://")
	if !ok {
		return "", "", &PathError{id, "a file id starts with cloud://"}
	}
	host, p, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", &PathError{id, "no path after the bucket"}
	}
	env, bucket, ok := strings.Cut(host, ".")
	if !ok || env == "" || bucket != Bucket(env) {
		return "", "", &PathError{id, "unknown environment or bucket " + strconv.Quote(host)}
	}
	if err := checkEnv(env); err != nil {
		return "", "", err
	}
	if err := CheckPath(p); err != nil {
		return "", "", err
	}
	return env, p, nil
}

func checkEnv(env string) error {
	if env == "" || len(env) > 64 {
		return &PathError{env, "an environment id has 1 to 64 characters"}
	}
	for _, r := range env {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return &PathError{env, "an environment id has letters, digits, '-' and '_' only"}
		}
	}
	return nil
}

// file is where a validated (env, path) lives on disk.
func (s *Store) file(env, p string) string {
	return filepath.Join(s.dir, env, filepath.FromSlash(p))
}

func (s *Store) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	io.WriteString(m, strings.Join(parts, "\n"))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Store) verify(sig string, parts ...string) bool {
	want := s.sign(parts...)
	return hmac.Equal([]byte(sig), []byte(want))
}

// escapePath percent-escapes each segment of a cloud path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// DownloadURL is a signed URL of a file below base (where Handler is mounted), valid for maxAge.
func (s *Store) DownloadURL(base, env, p string, maxAge time.Duration) string {
	exp := strconv.FormatInt(s.now().Add(maxAge).Unix(), 10)
	return base + "/file/" + env + "/" + escapePath(p) + "?t=" + exp + "&sign=" + s.sign("GET", env, p, exp)
}

// Exists reports whether a file is stored.
func (s *Store) Exists(env, p string) bool {
	if checkEnv(env) != nil || CheckPath(p) != nil {
		return false
	}
	st, err := os.Stat(s.file(env, p))
	return err == nil && st.Mode().IsRegular()
}

// Put stores a file (atomically: readers see the old or the new content), at most MaxFileSize bytes.
func (s *Store) Put(ctx context.Context, env, p string, r io.Reader) (int64, error) {
	if err := checkEnv(env); err != nil {
		return 0, err
	}
	if err := CheckPath(p); err != nil {
		return 0, err
	}
	dst := s.file(env, p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, fmt.Errorf("storing %s: %w", p, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".upload-*")
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(r, s.max+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", p, err)
	}
	if n > s.max {
		return 0, &TooLargeError{Path: p, Limit: s.max}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("storing %s: %w", p, err)
	}
	return n, nil
}

// Delete removes a file; false when there was none.
func (s *Store) Delete(env, p string) (bool, error) {
	if err := checkEnv(env); err != nil {
		return false, err
	}
	if err := CheckPath(p); err != nil {
		return false, err
	}
	err := os.Remove(s.file(env, p))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// TooLargeError is an upload over the size limit.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("file %s is larger than the %d-byte limit", e.Path, e.Limit)
}

// ---- the HTTP side: uploads and downloads

// Handler serves PUT /upload/<env>/<path>?t=&sign= (the URL getUploadMetadata hands out) and
// GET/HEAD /file/<env>/<path>?t=&sign= (temp file URLs, with ranges). Mount it below the base
// given to Handle (the prefix stripped).
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		env, p, ok := strings.Cut(rest, "/")
		if !ok {
			cosError(w, http.StatusNotFound, "NoSuchKey", "no file named in "+r.URL.Path, r.URL.Path)
			return
		}
		if err := checkEnv(env); err != nil {
			cosError(w, http.StatusBadRequest, "InvalidURI", err.Error(), r.URL.Path)
			return
		}
		if err := CheckPath(p); err != nil {
			cosError(w, http.StatusBadRequest, "InvalidURI", err.Error(), r.URL.Path)
			return
		}
		q := r.URL.Query()
		exp, err := strconv.ParseInt(q.Get("t"), 10, 64)
		if err != nil {
			cosError(w, http.StatusForbidden, "AccessDenied", "the URL has no expiry (t)", p)
			return
		}
		switch {
		case kind == "upload" && r.Method == http.MethodPut:
			if !s.verify(q.Get("sign"), "PUT", env, p, q.Get("t"), q.Get("o")) || r.Header.Get("Authorization") != q.Get("sign") {
				cosError(w, http.StatusForbidden, "SignatureDoesNotMatch", "the upload signature does not match this path", p)
				return
			}
			if s.now().Unix() > exp {
				cosError(w, http.StatusForbidden, "AccessDenied", "the upload URL expired", p)
				return
			}
			if r.ContentLength > s.max {
				cosError(w, http.StatusRequestEntityTooLarge, "EntityTooLarge", (&TooLargeError{p, s.max}).Error(), p)
				return
			}
			if _, err := s.Put(r.Context(), env, p, r.Body); err != nil {
				var tl *TooLargeError
				if errors.As(err, &tl) {
					cosError(w, http.StatusRequestEntityTooLarge, "EntityTooLarge", err.Error(), p)
					return
				}
				cosError(w, http.StatusInternalServerError, "InternalError", err.Error(), p)
				return
			}
			if err := s.setOwner(env, p, q.Get("o")); err != nil {
				cosError(w, http.StatusInternalServerError, "InternalError", err.Error(), p)
				return
			}
			w.WriteHeader(http.StatusOK)
		case kind == "upload" && r.Method == http.MethodPost:
			s.formUpload(w, r, env, p, exp)
		case kind == "file" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			if !s.verify(q.Get("sign"), "GET", env, p, q.Get("t")) {
				cosError(w, http.StatusForbidden, "SignatureDoesNotMatch", "the download signature does not match this path", p)
				return
			}
			if s.now().Unix() > exp {
				cosError(w, http.StatusForbidden, "AccessDenied", "the temp file URL expired", p)
				return
			}
			f, err := os.Open(s.file(env, p))
			if err != nil {
				cosError(w, http.StatusNotFound, "NoSuchKey", "the specified key does not exist", p)
				return
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil || !st.Mode().IsRegular() {
				cosError(w, http.StatusNotFound, "NoSuchKey", "the specified key does not exist", p)
				return
			}
			http.ServeContent(w, r, filepath.Base(p), st.ModTime(), f)
		default:
			w.Header().Set("Allow", "PUT (upload), GET, HEAD (file)")
			cosError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+kind+" is not served", p)
		}
	})
}

// formUpload takes the POST form older SDKs send (wx-server-sdk 1.x–2.2: Signature, key, …,
// then the file), as COS's POST Object does.
func (s *Store) formUpload(w http.ResponseWriter, r *http.Request, env, p string, exp int64) {
	q := r.URL.Query()
	mr, err := r.MultipartReader()
	if err != nil {
		cosError(w, http.StatusBadRequest, "InvalidArgument", "a POST upload is a multipart form: "+err.Error(), p)
		return
	}
	signature := ""
	for i := 0; i < 16; i++ {
		part, err := mr.NextPart()
		if err != nil {
			cosError(w, http.StatusBadRequest, "InvalidArgument", "the form has no file part", p)
			return
		}
		if part.FormName() != "file" {
			b, _ := io.ReadAll(io.LimitReader(part, 4096))
			if part.FormName() == "Signature" {
				signature = string(b)
			}
			continue
		}
		if signature == "" || signature != q.Get("sign") || !s.verify(signature, "PUT", env, p, q.Get("t"), q.Get("o")) {
			cosError(w, http.StatusForbidden, "SignatureDoesNotMatch", "the upload signature does not match this path", p)
			return
		}
		if s.now().Unix() > exp {
			cosError(w, http.StatusForbidden, "AccessDenied", "the upload URL expired", p)
			return
		}
		if _, err := s.Put(r.Context(), env, p, part); err != nil {
			var tl *TooLargeError
			if errors.As(err, &tl) {
				cosError(w, http.StatusRequestEntityTooLarge, "EntityTooLarge", err.Error(), p)
				return
			}
			cosError(w, http.StatusInternalServerError, "InternalError", err.Error(), p)
			return
		}
		if err := s.setOwner(env, p, q.Get("o")); err != nil {
			cosError(w, http.StatusInternalServerError, "InternalError", err.Error(), p)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	cosError(w, http.StatusBadRequest, "InvalidArgument", "the form has no file part within its first 16 parts", p)
}

// cosError answers as COS does: an XML error document (the SDK parses its Code and Message).
func cosError(w http.ResponseWriter, status int, code, msg, resource string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	id := requestID()
	fmt.Fprintf(w, "<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n<Code>%s</Code>\n<Message>%s</Message>\n<Resource>%s</Resource>\n<RequestId>%s</RequestId>\n<TraceId>%s</TraceId>\n</Error>\n",
		xmlEscape(code), xmlEscape(msg), xmlEscape(resource), id, id)
}

func xmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;")
	return r.Replace(s)
}

func requestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- the /admin actions

// Handle answers a storage.* action of the SDK (body: its JSON). base is where Handler is
// reachable from the function (and the mini-program). ok is false for an action that is not
// storage's.
func (s *Store) Handle(ctx context.Context, env, base, action string, body json.RawMessage) (reply json.RawMessage, ok bool) {
	return s.handle(env, base, action, body, nil)
}

// HandleClient answers a mini-program client's storage action under the platform's default
// storage permission: everyone reads, only a file's creator (openid) overwrites or deletes it
// (files written by functions belong to no client).
func (s *Store) HandleClient(ctx context.Context, env, base, openid, action string, body json.RawMessage) (reply json.RawMessage, ok bool) {
	return s.handle(env, base, action, body, &openid)
}

func (s *Store) handle(env, base, action string, body json.RawMessage, client *string) (reply json.RawMessage, ok bool) {
	var res any
	switch action {
	case "storage.getUploadMetadata":
		res = s.uploadMetadata(env, base, body, client)
	case "storage.batchGetDownloadUrl":
		res = s.downloadURLs(env, base, body)
	case "storage.batchDeleteFile":
		res = s.deleteFiles(env, body, client)
	default:
		if !strings.HasPrefix(action, "storage.") {
			return nil, false
		}
		res = fail("STORAGE_REQUEST_FAIL", action+" is not emulated by fn yet (uploadFile, downloadFile, getTempFileURL and deleteFile are)")
	}
	b, _ := json.Marshal(res)
	return b, true
}

type errReply struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

func fail(code, msg string) errReply { return errReply{code, msg, requestID()} }

// ownerFile is where the openid of a file's client creator is kept (outside every
// environment's tree: an environment id cannot start with '.').
func (s *Store) ownerFile(env, p string) string {
	return filepath.Join(s.dir, ".owners", env, filepath.FromSlash(p))
}

// owner is a file's client creator ("" for a function's file or none).
func (s *Store) owner(env, p string) string {
	b, _ := os.ReadFile(s.ownerFile(env, p))
	return string(b)
}

// mayWrite: a client writes a path that is free or its own.
func (s *Store) mayWrite(env, p string, client *string) bool {
	if client == nil {
		return true
	}
	if !s.Exists(env, p) {
		return *client != ""
	}
	return *client != "" && s.owner(env, p) == *client
}

func (s *Store) setOwner(env, p, openid string) error {
	f := s.ownerFile(env, p)
	if openid == "" {
		err := os.Remove(f)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return err
	}
	return os.WriteFile(f, []byte(openid), 0o600)
}

func (s *Store) uploadMetadata(env, base string, body json.RawMessage, client *string) any {
	var req struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fail("INVALID_PARAM", "storage.getUploadMetadata: "+err.Error())
	}
	if err := checkEnv(env); err != nil {
		return fail("INVALID_PARAM", "storage.getUploadMetadata: "+err.Error())
	}
	if err := CheckPath(req.Path); err != nil {
		return fail("INVALID_PARAM", "storage.getUploadMetadata: "+err.Error())
	}
	if !s.mayWrite(env, req.Path, client) {
		return fail("STORAGE_EXCEED_AUTHORITY", "storage.getUploadMetadata: "+req.Path+" exists and was not uploaded by this user")
	}
	exp := strconv.FormatInt(s.now().Add(uploadValidity).Unix(), 10)
	owner := ""
	if client != nil {
		owner = *client
	}
	sig := s.sign("PUT", env, req.Path, exp, owner)
	id := FileID(env, req.Path)
	ownerParam := ""
	if owner != "" {
		ownerParam = "&o=" + url.QueryEscape(owner)
	}
	return map[string]any{"requestId": requestID(), "data": map[string]any{
		"url":           base + "/upload/" + env + "/" + escapePath(req.Path) + "?t=" + exp + ownerParam + "&sign=" + sig,
		"token":         exp,
		"authorization": sig,
		"fileId":        id,
		"cosFileId":     requestID(),
		"download_url":  s.DownloadURL(base, env, req.Path, DefaultMaxAge),
	}}
}

func (s *Store) downloadURLs(env, base string, body json.RawMessage) any {
	var req struct {
		FileList []struct {
			FileID string          `json:"fileid"`
			MaxAge json.RawMessage `json:"max_age"`
		} `json:"file_list"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fail("INVALID_PARAM", "storage.batchGetDownloadUrl: "+err.Error())
	}
	if len(req.FileList) == 0 || len(req.FileList) > MaxListLen {
		return fail("INVALID_PARAM", fmt.Sprintf("storage.batchGetDownloadUrl: fileList has %d items, 1 to %d are allowed", len(req.FileList), MaxListLen))
	}
	out := make([]map[string]any, 0, len(req.FileList))
	for _, f := range req.FileList {
		age := DefaultMaxAge
		if len(f.MaxAge) > 0 && string(f.MaxAge) != "null" {
			n, err := strconv.ParseFloat(string(f.MaxAge), 64)
			if err != nil || n <= 0 {
				return fail("INVALID_PARAM", fmt.Sprintf("storage.batchGetDownloadUrl: maxAge of %s is %s, not a positive number of seconds", f.FileID, f.MaxAge))
			}
			age = min(time.Duration(n*float64(time.Second)), MaxMaxAge)
		}
		item := map[string]any{"fileID": f.FileID, "maxAge": int(age / time.Second)}
		fenv, p, err := ParseFileID(f.FileID)
		switch {
		case err != nil:
			item["code"], item["message"], item["tempFileURL"] = "INVALID_PARAM", err.Error(), ""
		case fenv != env && env != "":
			item["code"], item["message"], item["tempFileURL"] = "STORAGE_EXCEED_AUTHORITY", "the file belongs to environment "+fenv+", not "+env, ""
		case !s.Exists(fenv, p):
			item["code"], item["message"], item["tempFileURL"] = "STORAGE_FILE_NONEXIST", "no such file: "+f.FileID, ""
		default:
			item["code"], item["tempFileURL"] = "SUCCESS", s.DownloadURL(base, fenv, p, age)
		}
		out = append(out, item)
	}
	return map[string]any{"requestId": requestID(), "data": map[string]any{"download_list": out}}
}

func (s *Store) deleteFiles(env string, body json.RawMessage, client *string) any {
	var req struct {
		FileIDs []string `json:"fileid_list"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fail("INVALID_PARAM", "storage.batchDeleteFile: "+err.Error())
	}
	if len(req.FileIDs) == 0 || len(req.FileIDs) > MaxListLen {
		return fail("INVALID_PARAM", fmt.Sprintf("storage.batchDeleteFile: fileList has %d items, 1 to %d are allowed", len(req.FileIDs), MaxListLen))
	}
	out := make([]map[string]any, 0, len(req.FileIDs))
	for _, id := range req.FileIDs {
		item := map[string]any{"fileID": id}
		fenv, p, err := ParseFileID(id)
		switch {
		case err != nil:
			item["code"], item["message"] = "INVALID_PARAM", err.Error()
		case fenv != env && env != "":
			item["code"], item["message"] = "STORAGE_EXCEED_AUTHORITY", "the file belongs to environment "+fenv+", not "+env
		case client != nil && s.Exists(fenv, p) && !s.mayWrite(fenv, p, client):
			item["code"], item["message"] = "STORAGE_EXCEED_AUTHORITY", "only the user who uploaded "+id+" may delete it"
		default:
			found, err := s.Delete(fenv, p)
			if found {
				s.setOwner(fenv, p, "")
			}
			switch {
			case err != nil:
				item["code"], item["message"] = "STORAGE_REQUEST_FAIL", err.Error()
			case !found:
				item["code"], item["message"] = "STORAGE_FILE_NONEXIST", "no such file: "+id
			default:
				item["code"] = "SUCCESS"
			}
		}
		out = append(out, item)
	}
	return map[string]any{"requestId": requestID(), "data": map[string]any{"delete_list": out}}
}
