package admin

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/fnhq/fn/appenv"
)

// fireHook runs a class hook by hand with an object (the console's "fire hook"): the hook's
// answer comes back as an api.Outcome and nothing is written.
func (h *handler) fireHook(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	class, hook := r.PathValue("class"), r.PathValue("hook")
	if !leanClassPattern().MatchString(class) {
		Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("class %q is not a LeanStorage class name", class)})
		return
	}
	if _, known := appenv.ClassHooks[hook]; !known {
		Fail(w, &appenv.BadRequest{Msg: "hook must be one of beforeSave, afterSave, beforeUpdate, afterUpdate, beforeDelete, afterDelete (got " + hook + ")"})
		return
	}
	var body struct {
		Object json.RawMessage `json:"object"`
	}
	if !h.decodeBounded(w, r, &body, maxDataObject) {
		return
	}
	var obj map[string]any
	if len(body.Object) > 0 {
		if err := json.Unmarshal(body.Object, &obj); err != nil || obj == nil {
			Fail(w, &appenv.BadRequest{Msg: "object must be a JSON object (the object the hook sees)"})
			return
		}
	}
	out, err := e.InvokeHook(r.Context(), class, hook, obj, 0)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
