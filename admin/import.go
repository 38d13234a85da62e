package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"

	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/lcimport"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/store"
)

// DataBackend is implemented by backends whose apps keep LeanStorage data (fn serve, and fn dev
// for a lean project): fn import writes there.
type DataBackend interface {
	// Data is the app's storage service (*appenv.NotFound, or *appenv.BadRequest when the app
	// keeps no LeanStorage data).
	Data(ctx context.Context, app string) (*leanstorage.Service, error)
}

// The import routes: batches of records (lcimport's wire format), the relation fold once they
// are all in, and file contents one at a time. They write the store directly: no hooks fire.
func (h *handler) importRoutes(route func(string, bool, http.HandlerFunc)) {
	route("POST /__fn/apps/{app}/import", true, h.importBatch)
	route("POST /__fn/apps/{app}/import/fold", true, h.importFold)
	route("GET /__fn/apps/{app}/import/files/{id}", true, h.importHasFile)
	route("PUT /__fn/apps/{app}/import/files/{id}", true, h.importPutFile)
}

// importTarget is a batch's target: the store as a local import writes it, without folding
// relations after each batch (the client asks once, at the end).
type importTarget struct{ lcimport.Target }

func (h *handler) data(w http.ResponseWriter, r *http.Request) (*leanstorage.Service, *lcimport.StoreTarget, bool) {
	db, ok := h.o.Backend.(DataBackend)
	if !ok {
		Fail(w, &appenv.NotFound{Msg: "this server keeps no LeanStorage data to import into"})
		return nil, nil, false
	}
	svc, err := db.Data(r.Context(), r.PathValue("app"))
	if err != nil {
		Fail(w, err)
		return nil, nil, false
	}
	return svc, &lcimport.StoreTarget{Store: svc.Store(), FilesDir: svc.Files().Dir}, true
}

func (h *handler) importBatch(w http.ResponseWriter, r *http.Request) {
	svc, target, ok := h.data(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	opts := lcimport.Options{DryRun: q.Get("dryRun") == "1" || q.Get("dryRun") == "true"}
	switch q.Get("onError") {
	case "", "skip":
	case "abort":
		opts.OnError = lcimport.Abort
	default:
		Fail(w, &appenv.BadRequest{Msg: "onError is skip or abort"})
		return
	}
	switch q.Get("files") {
	case "", "keep":
	default:
		Fail(w, &appenv.BadRequest{Msg: "files is keep or absent"})
		return
	}
	if svc.Files().Dir != "" && q.Get("files") != "keep" {
		// the objects get fn's URLs now; the client uploads the contents to import/files
		opts.Files = &lcimport.FileOptions{SkipContent: true, URL: func(o *store.Object) string {
			name, _ := o.Fields["name"].(string)
			return svc.FileURL(o.ID, name)
		}}
	}
	src := lcimport.NewWireSource(http.MaxBytesReader(w, r.Body, lcimport.MaxBatchBody))
	rep, err := lcimport.Import(r.Context(), src, importTarget{target}, opts)
	res := lcimport.BatchResult{Report: rep}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fmt.Errorf("%w: the batch is larger than %d bytes", lcimport.ErrBatch, lcimport.MaxBatchBody)
		}
		if errors.Is(err, lcimport.ErrBatch) && rep.Totals() == (lcimport.ClassReport{}) {
			Fail(w, &appenv.BadRequest{Msg: err.Error()})
			return
		}
		res.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) importFold(w http.ResponseWriter, r *http.Request) {
	_, target, ok := h.data(w, r)
	if !ok {
		return
	}
	var body struct {
		Classes []string `json:"classes"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	if len(body.Classes) > 10000 {
		Fail(w, &appenv.BadRequest{Msg: "too many relation tables"})
		return
	}
	out := map[string]lcimport.FoldReport{}
	for _, c := range body.Classes {
		if _, _, ok := lcimport.JoinParts(c); !ok {
			Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("%q is not a relation table (_Join:<key>:<Class>)", c)})
			return
		}
		fr, err := target.FoldRelation(r.Context(), c)
		if err != nil {
			Fail(w, err)
			return
		}
		out[c] = fr
	}
	writeJSON(w, http.StatusOK, out)
}

var md5Hex = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{32}$`) })

// fileMeta reads the id, size and checksum of an import's file request.
func fileMeta(r *http.Request) (lcimport.FileMeta, error) {
	m := lcimport.FileMeta{ObjectID: r.PathValue("id"), Size: -1}
	q := r.URL.Query()
	if s := q.Get("size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return m, &appenv.BadRequest{Msg: "size must be a byte count"}
		}
		m.Size = n
	}
	if s := q.Get("md5"); s != "" {
		if !md5Hex().MatchString(s) {
			return m, &appenv.BadRequest{Msg: "md5 must be 32 lowercase hex digits"}
		}
		m.MD5 = s
	}
	return m, nil
}

func (h *handler) importHasFile(w http.ResponseWriter, r *http.Request) {
	_, target, ok := h.data(w, r)
	if !ok {
		return
	}
	m, err := fileMeta(r)
	if err == nil && target.FilesDir == "" {
		err = &appenv.BadRequest{Msg: "this server keeps no file contents"}
	}
	if err != nil {
		Fail(w, err)
		return
	}
	has, err := target.HasFile(r.Context(), m)
	if errors.Is(err, lcimport.ErrInvalid) {
		err = &appenv.BadRequest{Msg: err.Error()}
	}
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"present": has})
}

// maxImportFile bounds one imported file's content (LeanCloud's own limit is lower).
const maxImportFile = 2 << 30

func (h *handler) importPutFile(w http.ResponseWriter, r *http.Request) {
	_, target, ok := h.data(w, r)
	if !ok {
		return
	}
	m, err := fileMeta(r)
	if err == nil && target.FilesDir == "" {
		err = &appenv.BadRequest{Msg: "this server keeps no file contents"}
	}
	if err != nil {
		Fail(w, err)
		return
	}
	// checked here too: a cut or altered upload is never renamed into place
	body := lcimport.VerifyContent(http.MaxBytesReader(w, r.Body, maxImportFile+1), m, maxImportFile)
	if err := target.PutFile(r.Context(), m, body); err != nil {
		if errors.Is(err, lcimport.ErrInvalid) || errors.Is(err, lcimport.ErrChecksum) || errors.Is(err, lcimport.ErrTooLarge) {
			err = &appenv.BadRequest{Msg: err.Error()}
		}
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"stored": true})
}
