package leanstorage

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
)

// applyOps writes a request's fields into an object's fields: plain values replace, atomic
// operations ({"__op": …}) combine with what is stored.
func applyOps(dst map[string]any, fields map[string]any) error {
	for k, v := range fields {
		op, isOp := v.(map[string]any)
		name, _ := op["__op"].(string)
		if !isOp || name == "" {
			dst[k] = v
			continue
		}
		switch name {
		case "Delete":
			delete(dst, k)
		case "Increment", "Decrement":
			amount, ok := toFloat(op["amount"])
			if !ok {
				return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: %s needs a number amount.", k, name)
			}
			if name == "Decrement" {
				amount = -amount
			}
			cur := 0.0
			if existing, has := dst[k]; has && existing != nil {
				f, ok := toFloat(existing)
				if !ok {
					return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: cannot %s a non-number.", k, name)
				}
				cur = f
			}
			dst[k] = cur + amount
		case "Add", "AddUnique", "Remove":
			objects, ok := op["objects"].([]any)
			if !ok {
				return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: %s needs an objects array.", k, name)
			}
			var cur []any
			if existing, has := dst[k]; has && existing != nil {
				arr, ok := existing.([]any)
				if !ok {
					return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: %s works on arrays.", k, name)
				}
				cur = append([]any(nil), arr...)
			}
			switch name {
			case "Add":
				cur = append(cur, objects...)
			case "AddUnique":
				for _, o := range objects {
					if !containsValue(cur, o) {
						cur = append(cur, o)
					}
				}
			case "Remove":
				kept := cur[:0]
				for _, c := range cur {
					if !containsValue(objects, c) {
						kept = append(kept, c)
					}
				}
				cur = kept
			}
			if cur == nil {
				cur = []any{}
			}
			dst[k] = cur
		case "AddRelation", "RemoveRelation":
			// the members are join rows (see relationOps); the field names the class
			objects, _ := op["objects"].([]any)
			className := ""
			if rel, ok := dst[k].(map[string]any); ok && rel["__type"] == "Relation" {
				className, _ = rel["className"].(string)
			}
			if className == "" && len(objects) > 0 {
				if p, ok := objects[0].(map[string]any); ok {
					className, _ = p["className"].(string)
				}
			}
			dst[k] = map[string]any{"__type": "Relation", "className": className}
		case "BitAnd", "BitOr", "BitXor":
			n, ok := op["value"].(float64)
			if !ok || n != math.Trunc(n) || math.Abs(n) > 1<<53 {
				return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: %s needs an integer value.", k, name)
			}
			cur := int64(0)
			if existing, has := dst[k]; has && existing != nil {
				f, ok := existing.(float64)
				if !ok || f != math.Trunc(f) {
					return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: %s works on integers.", k, name)
				}
				cur = int64(f)
			}
			switch name {
			case "BitAnd":
				cur &= int64(n)
			case "BitOr":
				cur |= int64(n)
			case "BitXor":
				cur ^= int64(n)
			}
			dst[k] = float64(cur)
		case "Batch":
			ops, _ := op["ops"].([]any)
			for _, sub := range ops {
				if err := applyOps(dst, map[string]any{k: sub}); err != nil {
					return err
				}
			}
		default:
			return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: unknown operation %s.", k, name)
		}
	}
	return nil
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if sameValue(x, v) {
			return true
		}
	}
	return false
}

// sameValue compares JSON values; pointers are equal when class and id are.
func sameValue(a, b any) bool {
	pa, aok := a.(map[string]any)
	pb, bok := b.(map[string]any)
	if aok && bok && pa["objectId"] != nil && pa["objectId"] == pb["objectId"] && pa["className"] == pb["className"] {
		return true
	}
	if fa, ok := toFloat(a); ok {
		if _, isStr := a.(string); !isStr {
			if fb, ok := toFloat(b); ok {
				if _, isStr := b.(string); !isStr {
					return fa == fb
				}
			}
		}
	}
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}
