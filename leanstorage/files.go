package leanstorage

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/store"
)

// FileStorage is where an app's file contents live and where they are served. Contents are
// kept one file per _File objectId (the same layout fn import writes), so that no name or key a
// client sends ever becomes part of a path on disk.
type FileStorage struct {
	// Dir holds the contents; empty turns the Files API off (it answers that files are not
	// configured).
	Dir string
	// BaseURL is the public URL the contents are served under: <BaseURL>/<objectId>/<name>
	// (fn serve: <public URL>/__files/<app id>; fn dev: its own URL).
	BaseURL string
	// MaxUpload bounds one upload through the token round trip (default 100 MB). Direct uploads
	// (POST /1.1/files/<name>) are bounded by the server's request body limit.
	MaxUpload int64
	// TokenTTL is how long an upload token from /1.1/fileTokens is good for (default 1 hour).
	TokenTTL time.Duration
}

const (
	fileTokenField   = "_upload_token"
	fileExpiresField = "_upload_expires"
	maxFileNameLen   = 255
)

var fileIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,160}$`) })

// ErrFilesOff is answered when the service has no FileStorage.
var errFilesOff = apiErr(http.StatusServiceUnavailable, 1, "file storage is not configured on this server")

func (s *Service) filesOn() bool { return s.opts.Files.Dir != "" }

func (s *Service) maxUpload() int64 {
	if s.opts.Files.MaxUpload > 0 {
		return s.opts.Files.MaxUpload
	}
	return 100 << 20
}

// Files is the service's file storage (its Dir is empty when files are off).
func (s *Service) Files() FileStorage { return s.opts.Files }

// Store is the store the service serves (fn import writes into it directly).
func (s *Service) Store() store.Store { return s.st }

// FileURL is the stable URL a file's content is served at.
func (s *Service) FileURL(objectID, name string) string {
	if name == "" {
		name = "file"
	}
	return strings.TrimRight(s.opts.Files.BaseURL, "/") + "/" + url.PathEscape(objectID) + "/" + url.PathEscape(name)
}

func (s *Service) blobPath(objectID string) (string, error) {
	if !fileIDRE().MatchString(objectID) {
		return "", apiErr(http.StatusBadRequest, 1, "invalid file id")
	}
	return filepath.Join(s.opts.Files.Dir, objectID), nil
}

// checkFileName refuses names that could not be a file's name anywhere (they are never used on
// disk, but they are shown and downloaded under).
func checkFileName(name string) error {
	switch {
	case name == "":
		return apiErr(http.StatusBadRequest, 1, "the file has no name")
	case len(name) > maxFileNameLen:
		return apiErr(http.StatusBadRequest, 1, "the file name is longer than %d bytes", maxFileNameLen)
	case name == "." || name == ".." || strings.ContainsAny(name, `/\`):
		return apiErr(http.StatusBadRequest, 1, "invalid file name %q: no path separators or dot names", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return apiErr(http.StatusBadRequest, 1, "invalid file name: control characters are not allowed")
		}
	}
	return nil
}

func mimeOf(name, given string) string {
	if given != "" {
		if _, _, err := mime.ParseMediaType(given); err == nil {
			return given
		}
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		// LeanCloud answers the bare type ("text/plain"), not Go's "text/plain; charset=utf-8"
		if bare, _, err := mime.ParseMediaType(t); err == nil {
			return bare
		}
		return t
	}
	return "application/octet-stream"
}

// fileRoute serves fileTokens, fileCallback and files/…
func (s *Service) fileRoute(ctx context.Context, method string, parts []string, query url.Values, body []byte, auth Auth) (*Response, error) {
	if !s.filesOn() {
		return nil, errFilesOff
	}
	switch {
	case parts[0] == "fileTokens" && len(parts) == 1 && method == http.MethodPost:
		return s.fileToken(ctx, body, auth)
	case parts[0] == "fileCallback" && len(parts) == 1 && method == http.MethodPost:
		return s.fileCallback(ctx, body)
	case parts[0] == "files" && len(parts) == 1 && method == http.MethodPost:
		return s.externalFile(ctx, body, auth)
	case parts[0] == "files" && len(parts) == 2 && method == http.MethodPost:
		return s.directUpload(ctx, parts[1], body, auth)
	case parts[0] == "files" && len(parts) == 2 && method == http.MethodGet:
		return s.classRoute(ctx, method, []string{"classes", "_File", parts[1]}, query, nil, auth)
	case parts[0] == "files" && len(parts) == 2 && method == http.MethodDelete:
		return s.deleteFile(ctx, parts[1], query, auth)
	}
	return nil, apiErr(http.StatusNotFound, 1, "no such API: %s /%s", method, strings.Join(parts, "/"))
}

// fileRequest is what /1.1/fileTokens and /1.1/files take.
type fileRequest struct {
	Name     string         `json:"name"`
	MimeType string         `json:"mime_type"`
	MetaData map[string]any `json:"metaData"`
	ACL      map[string]any `json:"ACL"`
	URL      string         `json:"url"`
	Key      string         `json:"key"`
}

func (s *Service) readFileRequest(body []byte) (*fileRequest, error) {
	var req fileRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Malformed json object. A json dictionary is expected.")
	}
	if err := checkFileName(req.Name); err != nil {
		return nil, err
	}
	if len(req.MimeType) > 255 {
		return nil, apiErr(http.StatusBadRequest, 1, "mime_type is longer than 255 bytes")
	}
	return &req, nil
}

// newFileObject makes the _File object of an upload: url, mime_type, metaData with the owner.
func (s *Service) newFileObject(ctx context.Context, req *fileRequest, auth Auth) (*store.Object, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	owner := "unknown"
	if user != nil {
		owner = user.ID
	}
	meta := map[string]any{}
	for k, v := range req.MetaData {
		if k != "size" && k != "_checksum" && k != "owner" {
			meta[k] = v
		}
	}
	meta["owner"] = owner
	now := s.opts.Now()
	o := &store.Object{Class: "_File", ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{
		"name": req.Name, "mime_type": mimeOf(req.Name, req.MimeType), "metaData": meta, "provider": "fn",
	}}
	o.Fields["key"] = o.ID + "/" + req.Name
	o.Fields["url"] = s.FileURL(o.ID, req.Name)
	if req.ACL != nil {
		o.Fields["ACL"] = req.ACL
	}
	return o, nil
}

// fileToken starts the SDK's upload round trip: the _File object is created now with its url,
// and the SDK uploads the content to upload_url (fn itself), then calls fileCallback. The
// provider is "qcloud": its uploader (in leancloud-storage 3.x and 4.x, browser and Node) POSTs
// a multipart form with the token as ?sign=, and takes a Node stream of unknown size, which
// the S3 uploader refuses. A PUT of the bare content with ?token= (the S3 way) is taken too.
func (s *Service) fileToken(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	req, err := s.readFileRequest(body)
	if err != nil {
		return nil, err
	}
	if req.Key != "" && !auth.Master {
		return nil, apiErr(http.StatusForbidden, 1, "a file key can only be chosen with the master key")
	}
	o, err := s.newFileObject(ctx, req, auth)
	if err != nil {
		return nil, err
	}
	ttl := s.opts.Files.TokenTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	token := o.ID + "." + randid.Hex(16)
	o.Fields[fileTokenField] = token
	o.Fields[fileExpiresField] = o.CreatedAt.Add(ttl).UnixMilli()
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	return ok(map[string]any{
		"objectId": o.ID, "createdAt": isoTime(o.CreatedAt), "token": token, "provider": "qcloud", "bucket": "fn",
		"url": o.Fields["url"], "upload_url": o.Fields["url"],
		"mime_type": o.Fields["mime_type"], "key": o.Fields["key"],
	}), nil
}

// fileCallback ends the round trip: a failed upload's object is removed.
func (s *Service) fileCallback(ctx context.Context, body []byte) (*Response, error) {
	var req struct {
		Token  string `json:"token"`
		Result bool   `json:"result"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Malformed json object. A json dictionary is expected.")
	}
	id, _, _ := strings.Cut(req.Token, ".")
	if req.Result || !fileIDRE().MatchString(id) {
		return ok(map[string]any{}), nil
	}
	o, err := s.st.Get(ctx, "_File", id)
	if err != nil {
		return ok(map[string]any{}), nil
	}
	if tok, _ := o.Fields[fileTokenField].(string); tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(req.Token)) != 1 {
		return ok(map[string]any{}), nil // the upload arrived (or the token is not this file's)
	}
	if err := s.st.Delete(ctx, "_File", id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return ok(map[string]any{}), nil
}

// externalFile is POST /1.1/files with a url: a _File that points elsewhere (AV.File.withURL).
func (s *Service) externalFile(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	req, err := s.readFileRequest(body)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.URL) > 2048 {
		return nil, apiErr(http.StatusBadRequest, 1, "an external file needs an http(s) url")
	}
	o, err := s.newFileObject(ctx, req, auth)
	if err != nil {
		return nil, err
	}
	o.Fields["url"] = req.URL
	o.Fields["metaData"].(map[string]any)["__source"] = "external"
	delete(o.Fields, "key")
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusCreated, Body: map[string]any{"objectId": o.ID, "createdAt": isoTime(o.CreatedAt), "url": req.URL}}, nil
}

// directUpload is POST /1.1/files/<name> with the content as the body.
func (s *Service) directUpload(ctx context.Context, name string, body []byte, auth Auth) (*Response, error) {
	if err := checkFileName(name); err != nil {
		return nil, err
	}
	o, err := s.newFileObject(ctx, &fileRequest{Name: name}, auth)
	if err != nil {
		return nil, err
	}
	size, sum, err := s.writeContent(o.ID, strings.NewReader(string(body)), int64(len(body)))
	if err != nil {
		return nil, err
	}
	meta := o.Fields["metaData"].(map[string]any)
	meta["size"], meta["_checksum"] = float64(size), sum
	if err := s.st.Insert(ctx, o); err != nil {
		s.removeContent(o.ID)
		return nil, err
	}
	return &Response{Status: http.StatusCreated, Location: o.Fields["url"].(string), Body: map[string]any{
		"objectId": o.ID, "createdAt": isoTime(o.CreatedAt), "url": o.Fields["url"], "name": name,
		"mime_type": o.Fields["mime_type"], "metaData": meta, "key": o.Fields["key"]}}, nil
}

func (s *Service) deleteFile(ctx context.Context, id string, query url.Values, auth Auth) (*Response, error) {
	resp, err := s.remove(ctx, "_File", id, query, nil, auth)
	if err != nil {
		return nil, err
	}
	if _, gone := s.st.Get(ctx, "_File", id); errors.Is(gone, store.ErrNotFound) {
		s.removeContent(id)
	}
	return resp, nil
}

func (s *Service) removeContent(id string) {
	if p, err := s.blobPath(id); err == nil {
		os.Remove(p)
	}
}

// writeContent stores a file's content under its id: a temporary file renamed into place once
// the whole content arrived within the bound, so a cut upload leaves nothing that looks whole.
func (s *Service) writeContent(id string, r io.Reader, max int64) (int64, string, error) {
	p, err := s.blobPath(id)
	if err != nil {
		return 0, "", err
	}
	if err := os.MkdirAll(s.opts.Files.Dir, 0o755); err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(s.opts.Files.Dir, ".part-"+id+"-*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = apiErr(http.StatusRequestEntityTooLarge, 1, "the file is larger than %d bytes", max)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ServeFile answers the public file URL <BaseURL>/<objectId>/<name>: GET and HEAD serve the
// content (ranges, conditional requests, the stored mime type), PUT with the token from
// fileTokens receives an upload. The router strips the prefix: id is the objectId segment.
func (s *Service) ServeFile(w http.ResponseWriter, r *http.Request, id string) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"code": 1, "error": msg})
	}
	if !s.filesOn() {
		fail(http.StatusNotFound, errFilesOff.Message)
		return
	}
	if !fileIDRE().MatchString(id) {
		fail(http.StatusNotFound, "no such file")
		return
	}
	o, err := s.st.Get(r.Context(), "_File", id)
	if err != nil {
		fail(http.StatusNotFound, "no such file")
		return
	}
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		s.receiveUpload(w, r, o, fail)
	case http.MethodGet, http.MethodHead:
		p, _ := s.blobPath(id)
		f, err := os.Open(p)
		if err != nil {
			fail(http.StatusNotFound, "no such file")
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			fail(http.StatusInternalServerError, "the file cannot be read")
			return
		}
		name, _ := o.Fields["name"].(string)
		mt, _ := o.Fields["mime_type"].(string)
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// served from the API's own origin: active content must not run there
		h.Set("Content-Security-Policy", "sandbox")
		h.Set("Cache-Control", "public, max-age=86400")
		sum := ""
		if md, ok := o.Fields["metaData"].(map[string]any); ok {
			if s, ok := md["_checksum"].(string); ok && fileIDRE().MatchString(s) {
				sum = s
			}
		}
		if serveThumbnail(w, r, f, st.Size(), st.ModTime(), sum, fail) {
			return
		}
		h.Set("Content-Type", mimeOf(name, mt))
		if sum != "" {
			h.Set("ETag", `"`+sum+`"`)
		}
		http.ServeContent(w, r, name, st.ModTime(), f)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST")
		fail(http.StatusMethodNotAllowed, "files are read with GET and uploaded with PUT or POST and a token")
	}
}

func (s *Service) receiveUpload(w http.ResponseWriter, r *http.Request, o *store.Object, fail func(int, string)) {
	tok, _ := o.Fields[fileTokenField].(string)
	given := r.URL.Query().Get("token")
	if given == "" {
		given = r.URL.Query().Get("sign") // the qcloud uploader's name for it
	}
	if tok == "" || given == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(given)) != 1 {
		fail(http.StatusForbidden, "the upload token is not valid for this file (or the file was uploaded already)")
		return
	}
	if exp, _ := toFloat(o.Fields[fileExpiresField]); int64(exp) < s.opts.Now().UnixMilli() {
		fail(http.StatusForbidden, "the upload token has expired: ask /1.1/fileTokens for a new one")
		return
	}
	max := s.maxUpload()
	if r.ContentLength > max {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("the file is larger than %d bytes", max))
		return
	}
	var body io.Reader = r.Body
	if r.Method == http.MethodPost {
		part, err := uploadPart(r)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		body = part
	}
	size, sum, err := s.writeContent(o.ID, body, max)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			fail(ae.Status, ae.Message)
			return
		}
		fail(http.StatusBadRequest, "the upload did not arrive whole")
		return
	}
	_, err = s.st.Update(r.Context(), "_File", o.ID, func(cur *store.Object) error {
		if t, _ := cur.Fields[fileTokenField].(string); t != tok {
			return errors.New("the file changed during the upload")
		}
		delete(cur.Fields, fileTokenField)
		delete(cur.Fields, fileExpiresField)
		meta, _ := cur.Fields["metaData"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["size"], meta["_checksum"] = float64(size), sum
		cur.Fields["metaData"] = meta
		cur.UpdatedAt = s.opts.Now()
		return nil
	})
	if err != nil {
		s.removeContent(o.ID)
		fail(http.StatusConflict, err.Error())
		return
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	w.WriteHeader(http.StatusOK)
}

// uploadPart is the content of a multipart upload (the qcloud uploader's POST): the part named
// fileContent. Other fields (op=upload) come before it and are skipped, bounded in number.
func uploadPart(r *http.Request) (io.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("a POST upload is a multipart/form-data body with the content in the field fileContent")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for range 16 {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if part.FormName() == "fileContent" {
			return part, nil
		}
	}
	return nil, errors.New("the multipart upload has no fileContent field")
}
