package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/wxdb"
)

// The data routes: the console's viewer and editor of an environment's LeanStorage classes
// (kind lean: through LeanStorage with the master key, so class hooks fire) and wx cloud
// database collections (kind wx). Imports write directly, as fn import does: no hooks.
func (h *handler) dataRoutes(route func(string, bool, http.HandlerFunc)) {
	route("GET /__fn/apps/{app}/data/{env}", true, h.dataClasses)
	route("GET /__fn/apps/{app}/data/{env}/{kind}/{class}", true, h.dataQuery)
	route("POST /__fn/apps/{app}/data/{env}/{kind}/{class}", true, h.dataCreate)
	route("PUT /__fn/apps/{app}/data/{env}/{kind}/{class}/{id}", true, h.dataUpdate)
	route("DELETE /__fn/apps/{app}/data/{env}/{kind}/{class}/{id}", true, h.dataDelete)
	route("GET /__fn/apps/{app}/data/{env}/{kind}/{class}/export", true, h.dataExport)
	route("POST /__fn/apps/{app}/data/{env}/{kind}/{class}/import", true, h.dataImport)
	route("POST /__fn/apps/{app}/data/{env}/users/{id}/session", true, h.userSession)
}

// Limits of the data routes.
const (
	defaultDataLimit = 50
	maxDataLimit     = 1000
	maxDataSkip      = 1 << 20
	maxDataObject    = 1 << 20  // one object written through the console
	maxDataImport    = 20 << 20 // one import body
	maxImportLines   = 100000
)

// ClassInfo is one class or collection of GET /__fn/apps/{app}/data/{env}.
type ClassInfo struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // lean or wx
	Count int    `json:"count"`
}

// WriteResult is what a data write answers: the object as stored and the hooks it fired.
type WriteResult struct {
	Object map[string]any `json:"object,omitempty"`
	Hooks  []string       `json:"hooks"`
}

var (
	leanClassPattern = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$|^_(User|Role|Installation|File|Conversation|Status|Followee|Follower)$`)
	})
	// wx collection names: letters, digits, _ - . (the CloudBase console's rule), ≤ 64
	wxCollectionPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`) })
	objectIDPattern     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`) })
)

// dataTarget is the environment and the validated kind and class of a data route.
type dataTarget struct {
	e     *appenv.Env
	kind  string
	class string
}

func (h *handler) dataTarget(w http.ResponseWriter, r *http.Request) (dataTarget, bool) {
	e, ok := h.env(w, r)
	if !ok {
		return dataTarget{}, false
	}
	t := dataTarget{e: e, kind: r.PathValue("kind"), class: r.PathValue("class")}
	var err error
	switch t.kind {
	case "lean":
		if e.Data() == nil {
			err = &appenv.BadRequest{Msg: "kind lean: this environment keeps no LeanStorage data (a wx app: use kind wx)"}
		} else if !leanClassPattern().MatchString(t.class) {
			err = &appenv.BadRequest{Msg: fmt.Sprintf("class %q is not a LeanStorage class name (a letter, then letters, digits or _, at most 128)", t.class)}
		}
	case "wx":
		if e.WXData() == nil {
			err = &appenv.BadRequest{Msg: "kind wx: this environment has no cloud database (a lean app: use kind lean)"}
		} else if !wxCollectionPattern().MatchString(t.class) {
			err = &appenv.BadRequest{Msg: fmt.Sprintf("class %q is not a collection name (1 to 64 letters, digits, _ - .)", t.class)}
		}
	default:
		err = &appenv.BadRequest{Msg: fmt.Sprintf("kind must be lean or wx, got %q", t.kind)}
	}
	if err == nil && r.PathValue("id") != "" && !objectIDPattern().MatchString(r.PathValue("id")) {
		err = &appenv.BadRequest{Msg: "id must be 1 to 64 letters, digits, - or _"}
	}
	if err != nil {
		Fail(w, err)
		return dataTarget{}, false
	}
	return t, true
}

var masterAuth = leanstorage.Auth{Master: true, RemoteAddr: "127.0.0.1"}

// storageFailure answers a LeanStorage error with its status and LeanCloud's code.
func storageFailure(w http.ResponseWriter, resp *leanstorage.Response) {
	b, _ := json.Marshal(resp.Body)
	var e struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}
	json.Unmarshal(b, &e)
	writeJSON(w, resp.Status, api.ErrorBody{Error: fmt.Sprintf("LeanStorage: %s (code %d)", e.Error, e.Code), Code: "storage-" + strconv.Itoa(e.Code)})
}

// wxCall runs one cloud database action as the server SDK would (no user: admin rights) and
// decodes its data, or answers the database's error.
func wxCall(w http.ResponseWriter, r *http.Request, e *appenv.Env, action string, req map[string]any, out any) bool {
	body, _ := json.Marshal(req)
	reply, _ := e.WXData().Handle(r.Context(), e.WXEnv(), wxdb.Caller{}, action, body)
	var res struct {
		Code    any             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	json.Unmarshal(reply, &res)
	if res.Code != nil && res.Code != "" {
		status := http.StatusBadRequest
		if strings.Contains(fmt.Sprint(res.Code), "NOT_EXIST") || strings.Contains(res.Message, "not exist") {
			status = http.StatusNotFound
		}
		writeJSON(w, status, api.ErrorBody{Error: fmt.Sprintf("cloud database: %s (%v)", res.Message, res.Code), Code: "database"})
		return false
	}
	if out != nil {
		json.Unmarshal(res.Data, out)
	}
	return true
}

func (h *handler) dataClasses(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	out := []ClassInfo{}
	if svc := e.Data(); svc != nil {
		classes, err := svc.Store().Classes(r.Context())
		if err != nil {
			Fail(w, err)
			return
		}
		for _, c := range classes {
			if !leanClassPattern().MatchString(c) {
				continue // the service's own (inboxes, leaderboards)
			}
			objs, err := svc.Store().Scan(r.Context(), c)
			if err != nil {
				Fail(w, err)
				return
			}
			out = append(out, ClassInfo{Name: c, Kind: "lean", Count: len(objs)})
		}
	}
	if db := e.WXData(); db != nil {
		names, err := db.Collections(r.Context(), e.WXEnv())
		if err != nil {
			Fail(w, err)
			return
		}
		for _, n := range names {
			var c struct {
				Total int `json:"total"`
			}
			if !wxCall(w, r, e, "database.calculateDocument", map[string]any{"collectionName": n, "query": map[string]any{}}, &c) {
				return
			}
			out = append(out, ClassInfo{Name: n, Kind: "wx", Count: c.Total})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind+out[i].Name < out[j].Kind+out[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"classes": out})
}

// withACL asks LeanStorage for objects with their ACL (it shows it only when asked, as LeanCloud
// does): the console edits it as a field.
func withACL() url.Values { return url.Values{"returnACL": {"true"}} }

// pageQuery reads where, order, limit and skip.
func pageQuery(q url.Values) (where json.RawMessage, order []string, limit, skip int, err error) {
	limit = defaultDataLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 || limit > maxDataLimit {
			return nil, nil, 0, 0, &appenv.BadRequest{Msg: fmt.Sprintf("limit must be a number from 0 to %d, got %q", maxDataLimit, s)}
		}
	}
	if s := q.Get("skip"); s != "" {
		if skip, err = strconv.Atoi(s); err != nil || skip < 0 || skip > maxDataSkip {
			return nil, nil, 0, 0, &appenv.BadRequest{Msg: fmt.Sprintf("skip must be a number from 0 to %d, got %q", maxDataSkip, s)}
		}
	}
	if s := q.Get("where"); s != "" {
		var m map[string]any
		if len(s) > 64<<10 || json.Unmarshal([]byte(s), &m) != nil {
			return nil, nil, 0, 0, &appenv.BadRequest{Msg: "where must be a JSON object of at most 64 KB"}
		}
		where = json.RawMessage(s)
	}
	if s := q.Get("order"); s != "" {
		for _, k := range strings.Split(s, ",") {
			name := strings.TrimPrefix(strings.TrimSpace(k), "-")
			if name == "" || len(name) > 128 || strings.ContainsAny(name, " \"'{}$") {
				return nil, nil, 0, 0, &appenv.BadRequest{Msg: fmt.Sprintf("order is a comma-separated list of fields, - for descending; %q is no field", k)}
			}
			order = append(order, strings.TrimSpace(k))
		}
		if len(order) > 8 {
			return nil, nil, 0, 0, &appenv.BadRequest{Msg: "order names at most 8 fields"}
		}
	}
	return where, order, limit, skip, nil
}

func (h *handler) dataQuery(w http.ResponseWriter, r *http.Request) {
	t, ok := h.dataTarget(w, r)
	if !ok {
		return
	}
	where, order, limit, skip, err := pageQuery(r.URL.Query())
	if err != nil {
		Fail(w, err)
		return
	}
	if t.kind == "lean" {
		q := withACL()
		q.Set("limit", strconv.Itoa(limit))
		q.Set("skip", strconv.Itoa(skip))
		q.Set("count", "1")
		if where != nil {
			q.Set("where", string(where))
		}
		if order != nil {
			q.Set("order", strings.Join(order, ","))
		}
		resp := t.e.Data().Serve(r.Context(), http.MethodGet, "classes/"+t.class, q, nil, masterAuth)
		if resp.Status >= 300 {
			storageFailure(w, resp)
			return
		}
		writeJSON(w, http.StatusOK, resp.Body)
		return
	}
	if where == nil {
		where = json.RawMessage("{}")
	}
	req := map[string]any{"collectionName": t.class, "queryType": "WHERE", "query": where, "limit": limit, "offset": skip}
	if order != nil {
		var spec []map[string]string
		for _, k := range order {
			dir := "asc"
			if strings.HasPrefix(k, "-") {
				k, dir = k[1:], "desc"
			}
			spec = append(spec, map[string]string{"field": k, "direction": dir})
		}
		b, _ := json.Marshal(spec)
		req["order"] = string(b)
	}
	var got struct {
		List []string `json:"list"`
	}
	if !wxCall(w, r, t.e, "database.getDocument", req, &got) {
		return
	}
	var count struct {
		Total int `json:"total"`
	}
	if !wxCall(w, r, t.e, "database.calculateDocument", map[string]any{"collectionName": t.class, "query": where}, &count) {
		return
	}
	results := make([]json.RawMessage, 0, len(got.List))
	for _, d := range got.List {
		results = append(results, json.RawMessage(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results, "count": count.Total})
}

// readObject reads a bounded JSON object body.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, []byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDataObject))
	if err != nil {
		Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("the body must be a JSON object of at most %d KB", maxDataObject>>10)})
		return nil, nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		Fail(w, &appenv.BadRequest{Msg: "the body must be a JSON object (the object's fields)"})
		return nil, nil, false
	}
	return m, b, true
}

// hooksFor lists the class hooks a write of op fires, as the cloud code LeanStorage fires hooks
// in defines them (fn serve: the production environment's).
func hooksFor(e *appenv.Env, class string, op string) []string {
	out := []string{}
	for _, h := range []string{"before" + op, "after" + op} {
		if class != "_Installation" && e.Data().HasHook(class, h) {
			out = append(out, h)
		}
	}
	return out
}

func (h *handler) dataCreate(w http.ResponseWriter, r *http.Request) {
	t, ok := h.dataTarget(w, r)
	if !ok {
		return
	}
	fields, body, ok := readObject(w, r)
	if !ok {
		return
	}
	if t.kind == "lean" {
		if t.class == "_User" {
			if s, _ := fields["username"].(string); s == "" {
				Fail(w, &appenv.BadRequest{Msg: "username: a new _User needs a username (and a password)"})
				return
			}
			if s, _ := fields["password"].(string); s == "" {
				Fail(w, &appenv.BadRequest{Msg: "password: a new _User needs a password"})
				return
			}
		}
		hooks := hooksFor(t.e, t.class, "Save")
		resp := t.e.Data().Serve(r.Context(), http.MethodPost, "classes/"+t.class, url.Values{"fetchWhenSave": {"true"}}, body, masterAuth)
		if resp.Status >= 300 {
			storageFailure(w, resp)
			return
		}
		id, _ := asMap(resp.Body)["objectId"].(string)
		writeJSON(w, http.StatusCreated, WriteResult{Object: h.leanObject(r.Context(), t, id, resp.Body), Hooks: hooks})
		return
	}
	var ins struct {
		IDs []json.RawMessage `json:"insertedIds"`
	}
	if !wxCall(w, r, t.e, "database.insertDocument", map[string]any{"collectionName": t.class, "data": []string{string(body)}}, &ins) {
		return
	}
	if len(ins.IDs) != 1 {
		Fail(w, errors.New("the cloud database inserted no document"))
		return
	}
	writeJSON(w, http.StatusCreated, WriteResult{Object: wxGet(r, t, ins.IDs[0]), Hooks: []string{}})
}

// leanObject reads an object back as stored (a beforeSave may have changed it).
func (h *handler) leanObject(ctx context.Context, t dataTarget, id string, fallback any) map[string]any {
	if id != "" {
		if resp := t.e.Data().Serve(ctx, http.MethodGet, "classes/"+t.class+"/"+id, withACL(), nil, masterAuth); resp.Status == http.StatusOK {
			return asMap(resp.Body)
		}
	}
	return asMap(fallback)
}

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// wxGet reads a document back by its _id (as the database returned it: a JSON value).
func wxGet(r *http.Request, t dataTarget, id json.RawMessage) map[string]any {
	body, _ := json.Marshal(map[string]any{"collectionName": t.class, "queryType": "DOC", "query": map[string]json.RawMessage{"_id": id}})
	reply, _ := t.e.WXData().Handle(r.Context(), t.e.WXEnv(), wxdb.Caller{}, "database.getDocument", body)
	var res struct {
		Data struct {
			List []string `json:"list"`
		} `json:"data"`
	}
	json.Unmarshal(reply, &res)
	if len(res.Data.List) == 0 {
		return nil
	}
	var m map[string]any
	json.Unmarshal([]byte(res.Data.List[0]), &m)
	return m
}

func (h *handler) dataUpdate(w http.ResponseWriter, r *http.Request) {
	t, ok := h.dataTarget(w, r)
	if !ok {
		return
	}
	fields, body, ok := readObject(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if t.kind == "lean" {
		hooks := hooksFor(t.e, t.class, "Update")
		resp := t.e.Data().Serve(r.Context(), http.MethodPut, "classes/"+t.class+"/"+id, nil, body, masterAuth)
		if resp.Status >= 300 {
			storageFailure(w, resp)
			return
		}
		writeJSON(w, http.StatusOK, WriteResult{Object: h.leanObject(r.Context(), t, id, resp.Body), Hooks: hooks})
		return
	}
	if _, has := fields["_id"]; has {
		Fail(w, &appenv.BadRequest{Msg: "_id: a document's _id cannot be changed"})
		return
	}
	data := fields
	operators := false
	for k := range fields {
		operators = operators || strings.HasPrefix(k, "$")
	}
	if !operators {
		data = map[string]any{"$set": fields}
	}
	idJSON, _ := json.Marshal(id)
	var upd struct {
		Updated int `json:"updated"`
	}
	if !wxCall(w, r, t.e, "database.modifyDocument", map[string]any{"collectionName": t.class, "queryType": "DOC", "merge": true,
		"query": map[string]string{"_id": id}, "data": data}, &upd) {
		return
	}
	obj := wxGet(r, t, idJSON)
	if obj == nil {
		Fail(w, &appenv.NotFound{Msg: "no document " + id + " in " + t.class})
		return
	}
	writeJSON(w, http.StatusOK, WriteResult{Object: obj, Hooks: []string{}})
}

func (h *handler) dataDelete(w http.ResponseWriter, r *http.Request) {
	t, ok := h.dataTarget(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if t.kind == "lean" {
		if resp := t.e.Data().Serve(r.Context(), http.MethodGet, "classes/"+t.class+"/"+id, withACL(), nil, masterAuth); resp.Status != http.StatusOK || len(asMap(resp.Body)) == 0 {
			Fail(w, &appenv.NotFound{Msg: "no object " + id + " in " + t.class})
			return
		}
		hooks := hooksFor(t.e, t.class, "Delete")
		resp := t.e.Data().Serve(r.Context(), http.MethodDelete, "classes/"+t.class+"/"+id, nil, nil, masterAuth)
		if resp.Status >= 300 {
			storageFailure(w, resp)
			return
		}
		writeJSON(w, http.StatusOK, WriteResult{Hooks: hooks})
		return
	}
	var del struct {
		Deleted int `json:"deleted"`
	}
	if !wxCall(w, r, t.e, "database.removeDocument", map[string]any{"collectionName": t.class, "queryType": "DOC",
		"query": map[string]string{"_id": id}}, &del) {
		return
	}
	if del.Deleted == 0 {
		Fail(w, &appenv.NotFound{Msg: "no document " + id + " in " + t.class})
		return
	}
	writeJSON(w, http.StatusOK, WriteResult{Hooks: []string{}})
}

func (h *handler) dataExport(w http.ResponseWriter, r *http.Request) {
	t, ok := h.dataTarget(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="`+t.class+`.jsonl"`)
	if t.kind == "wx" {
		var buf bytes.Buffer
		if _, err := t.e.WXData().Export(r.Context(), t.e.WXEnv(), t.class, &buf); err != nil {
			w.Header().Del("Content-Disposition")
			Fail(w, &appenv.NotFound{Msg: "collection " + t.class + ": " + err.Error()})
			return
		}
		w.Write(buf.Bytes())
		return
	}
	objs, err := t.e.Data().Store().Scan(r.Context(), t.class)
	if err != nil {
		Fail(w, err)
		return
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, o := range objs {
		j := leanstorage.JSON(o)
		if h, ok := o.Fields["_hashed_password"]; ok {
			j["_hashed_password"] = h // an import restores the users' logins
		}
		enc.Encode(j)
	}
	bw.Flush()
}

func (h *handler) dataImport(w http.ResponseWriter, r *http.Request) {
	t, ok := h.dataTarget(w, r)
	if !ok {
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDataImport))
	if err != nil {
		Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("the import body is larger than %d MB", maxDataImport>>20)})
		return
	}
	if n := bytes.Count(raw, []byte("\n")); n > maxImportLines {
		Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("an import has at most %d lines, this one %d", maxImportLines, n)})
		return
	}
	if t.kind == "wx" {
		n, err := t.e.WXData().Import(r.Context(), t.e.WXEnv(), t.class, bytes.NewReader(raw), wxdb.ImportUpsert)
		if err != nil {
			Fail(w, &appenv.BadRequest{Msg: "import into " + t.class + ": " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"imported": n})
		return
	}
	var objs []map[string]any
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal(line, &o); err != nil || o == nil {
			Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("line %d: not a JSON object", i+1)})
			return
		}
		if id, has := o["objectId"]; has {
			if s, ok := id.(string); !ok || !objectIDPattern().MatchString(s) {
				Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("line %d: objectId must be 1 to 64 letters, digits, - or _", i+1)})
				return
			}
		}
		objs = append(objs, o)
	}
	n, err := t.e.Data().Import(r.Context(), map[string][]map[string]any{t.class: objs})
	if err != nil {
		Fail(w, &appenv.BadRequest{Msg: "import into " + t.class + ": " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"imported": n})
}

// userSession opens (or reuses) a session of a lean user, for the console to invoke as them.
func (h *handler) userSession(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !objectIDPattern().MatchString(id) {
		Fail(w, &appenv.BadRequest{Msg: "id must be 1 to 64 letters, digits, - or _"})
		return
	}
	tok, user, err := e.UserSession(r.Context(), id)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessionToken": tok, "user": user})
}
