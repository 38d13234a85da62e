package admin

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/cron"
	"github.com/fnhq/fn/project"
)

// Online is what fn serve adds for online editing (LeanCloud's 在线编辑): an app's cloud
// functions, hooks and timers written in the console, each save a revision in the control
// plane, deployed as a normal version built on the server.
type Online interface {
	OnlineFunctions(ctx context.Context, app string) ([]api.OnlineFunction, error)
	OnlineFunction(ctx context.Context, app, name string) (*api.OnlineFunction, error)
	SaveOnline(ctx context.Context, app string, f api.OnlineFunction) (*api.OnlineFunction, error)
	DeleteOnline(ctx context.Context, app, name string) error
	OnlineHistory(ctx context.Context, app, name string) ([]api.OnlineRevision, error)
	// OnlineDeploy builds the merged cloud.js of the app's online functions and deploys it to
	// env through the normal deploy path.
	OnlineDeploy(ctx context.Context, app, env, message, who string) (*api.DeployResult, error)
}

// Limits of online editing.
const (
	MaxOnlineCode      = 256 << 10 // one function's code
	MaxOnlineFunctions = 200       // per app
)

func (h *handler) onlineRoutes(route func(string, bool, http.HandlerFunc)) {
	route("GET /__fn/apps/{app}/online", true, h.online(h.onlineList))
	route("GET /__fn/apps/{app}/online.js", true, h.online(h.onlineJS))
	route("POST /__fn/apps/{app}/online/deploy", true, h.online(h.onlineDeploy))
	route("GET /__fn/apps/{app}/online/{name}", true, h.online(h.onlineGet))
	route("PUT /__fn/apps/{app}/online/{name}", true, h.online(h.onlinePut))
	route("DELETE /__fn/apps/{app}/online/{name}", true, h.online(h.onlineDelete))
	route("GET /__fn/apps/{app}/online/{name}/history", true, h.online(h.onlineHistory))
}

func (h *handler) online(next func(Online, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return h.hosting(func(w http.ResponseWriter, r *http.Request) {
		o, ok := h.o.Hosting.(Online)
		if !ok {
			writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: "this server has no online editing", Code: "not-found"})
			return
		}
		if name := r.PathValue("name"); name != "" {
			if err := project.ValidateFunctionName(name); err != nil {
				Fail(w, &appenv.BadRequest{Msg: "name: " + err.Error()})
				return
			}
		}
		next(o, w, r)
	})
}

// ValidateOnline checks an online function as fn.yaml and LeanEngine would, and its code with
// esbuild (the messages' lines are the code's own).
func ValidateOnline(f api.OnlineFunction) ([]BuildMessage, error) {
	n := NewFunction{Name: f.Name, Type: f.Type, Class: f.Class, Hook: f.Hook, Cron: f.Cron}
	if err := n.Validate(project.Lean); err != nil {
		return nil, err
	}
	if f.Type != "hook" && (f.Class != "" || f.Hook != "") {
		return nil, &appenv.BadRequest{Msg: "class, hook: only a hook has them"}
	}
	if len(f.Code) > MaxOnlineCode {
		return nil, &appenv.BadRequest{Msg: fmt.Sprintf("code is larger than %d KB", MaxOnlineCode>>10)}
	}
	if f.Type == "timer" {
		if _, err := cron.Parse(f.Cron); err != nil {
			return nil, &appenv.BadRequest{Msg: "cron: " + err.Error()}
		}
	}
	// the code is a function body: checked as one, its lines counted from its own first line
	msgs := CheckSource(f.Name+".js", "async function online(request) {\n"+f.Code+"\n}\n")
	last := strings.Count(strings.TrimRight(f.Code, "\n"), "\n") + 1
	for i := range msgs {
		// an unclosed construct is reported at the wrapper's closing brace: the code's end
		msgs[i].Line = min(max(msgs[i].Line-1, 1), last)
	}
	return msgs, nil
}

// MergeCloudJS is the cloud.js of an app's online functions: each function, hook and timer's
// function wrapped as LeanEngine defines it, by name. It is what online deploys build and what
// a project deploy can start from.
func MergeCloudJS(app string, fns []api.OnlineFunction) string {
	fns = append([]api.OnlineFunction(nil), fns...)
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	var b strings.Builder
	fmt.Fprintf(&b, "// cloud.js of %s: the functions edited online, merged (save it over a project's cloud.js to deploy it as a project)\n", app)
	b.WriteString("const AV = require('leanengine')\n")
	// functions defined online have the master key ("在線定義默認就有超級權限"): ACLs and class
	// permissions do not limit them
	b.WriteString("AV.Cloud.useMasterKey()\n")
	for _, f := range fns {
		code := strings.TrimRight(f.Code, "\n")
		if code != "" {
			code = "  " + strings.ReplaceAll(code, "\n", "\n  ") + "\n"
		}
		fmt.Fprintf(&b, "\n// %s: %s, revision %d\n", f.Name, describe(f), f.Revision)
		switch f.Type {
		case "hook":
			fmt.Fprintf(&b, "AV.Cloud.%s(%s, async function (request) {\n%s})\n", f.Hook, strconv.Quote(f.Class), code)
		default:
			fmt.Fprintf(&b, "AV.Cloud.define(%s, async function (request) {\n%s})\n", strconv.Quote(f.Name), code)
		}
	}
	return b.String()
}

func describe(f api.OnlineFunction) string {
	switch f.Type {
	case "hook":
		return f.Hook + " hook of " + f.Class
	case "timer":
		return "timer, cron " + f.Cron
	}
	return "function"
}

func (h *handler) onlineList(o Online, w http.ResponseWriter, r *http.Request) {
	fns, err := o.OnlineFunctions(r.Context(), r.PathValue("app"))
	if err != nil {
		Fail(w, err)
		return
	}
	for i := range fns {
		fns[i].Code = "" // the list is the index; a function's code is one GET away
	}
	if fns == nil {
		fns = []api.OnlineFunction{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"functions": fns})
}

func (h *handler) onlineGet(o Online, w http.ResponseWriter, r *http.Request) {
	f, err := o.OnlineFunction(r.Context(), r.PathValue("app"), r.PathValue("name"))
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (h *handler) onlinePut(o Online, w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type  string  `json:"type"`
		Class string  `json:"class"`
		Hook  string  `json:"hook"`
		Cron  string  `json:"cron"`
		Code  *string `json:"code"`
	}
	if !h.decodeBounded(w, r, &body, MaxOnlineCode+64<<10) {
		return
	}
	if body.Code == nil {
		Fail(w, &appenv.BadRequest{Msg: "code is required (the function's body)"})
		return
	}
	f := api.OnlineFunction{Name: r.PathValue("name"), Type: body.Type, Class: body.Class, Hook: body.Hook, Cron: body.Cron, Code: *body.Code}
	msgs, err := ValidateOnline(f)
	if err != nil {
		Fail(w, err)
		return
	}
	if len(msgs) > 0 {
		buildFailed(w, msgs)
		return
	}
	saved, err := o.SaveOnline(r.Context(), r.PathValue("app"), f)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, saved)
}

func (h *handler) onlineDelete(o Online, w http.ResponseWriter, r *http.Request) {
	if err := o.DeleteOnline(r.Context(), r.PathValue("app"), r.PathValue("name")); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (h *handler) onlineHistory(o Online, w http.ResponseWriter, r *http.Request) {
	revs, err := o.OnlineHistory(r.Context(), r.PathValue("app"), r.PathValue("name"))
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revisions": revs})
}

func (h *handler) onlineJS(o Online, w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	fns, err := o.OnlineFunctions(r.Context(), app)
	if err != nil {
		Fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="cloud.js"`)
	w.Write([]byte(MergeCloudJS(app, fns)))
}

func (h *handler) onlineDeploy(o Online, w http.ResponseWriter, r *http.Request) {
	var body struct {
		Env     string `json:"env"`
		Message string `json:"message"`
		Who     string `json:"who"`
	}
	if !h.decodeBounded(w, r, &body, 64<<10) {
		return
	}
	if body.Env == "" {
		Fail(w, &appenv.BadRequest{Msg: "env is required: staging or production"})
		return
	}
	if len(body.Message) > 1000 || len(body.Who) > 200 {
		Fail(w, &appenv.BadRequest{Msg: "message is at most 1000 bytes and who 200"})
		return
	}
	res, err := o.OnlineDeploy(r.Context(), r.PathValue("app"), body.Env, body.Message, body.Who)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
