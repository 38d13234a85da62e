package engine

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Invocations are encoded by hand: they are the only messages sent per call, and encoding/json
// would reflect over the struct and scan every raw field (the caller's data, the env) again.
// The output is what json.Marshal gives without HTML escaping (encode_test.go checks it).

// appender is a request that encodes itself.
type appender interface {
	appendJSON(dst []byte) ([]byte, error)
}

var errInvalidRaw = errors.New("a raw JSON field of the request is not valid JSON")

func appendHeader(dst []byte, h *header) []byte {
	dst = append(dst, `{"t":`...)
	dst = appendJSONString(dst, string(h.T))
	dst = append(dst, `,"id":`...)
	return strconv.AppendUint(dst, h.ID, 10)
}

func appendStringField(dst []byte, name, v string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

func appendIntField(dst []byte, name string, v int64) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, v, 10)
}

func appendBoolField(dst []byte, name string, v bool) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendBool(dst, v)
}

// appendRawField appends a raw JSON value; json.RawMessage's null for an empty one.
func appendRawField(dst []byte, name string, v json.RawMessage) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, v...)
}

// appendJSON encodes the message; Event and Env are built (and checked) by InvokeWX.
func (m *wxInvokeMsg) appendJSON(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, &m.header)
	dst = appendStringField(dst, "dialect", m.Dialect)
	dst = appendStringField(dst, "fn", m.Fn)
	dst = appendStringField(dst, "rid", m.RID)
	dst = appendRawField(dst, "event", m.Event)
	dst = appendRawField(dst, "env", m.Env)
	dst = appendStringField(dst, "environ", m.Environ)
	dst = appendStringField(dst, "namespace", m.Namespace)
	dst = appendIntField(dst, "timeoutMs", m.TimeoutMs)
	if m.TimeLimitMs != 0 {
		dst = appendIntField(dst, "timeLimitMs", m.TimeLimitMs)
	}
	dst = appendIntField(dst, "memoryMB", int64(m.MemoryMB))
	if m.Concurrent {
		dst = appendBoolField(dst, "concurrent", true)
	}
	return append(dst, '}'), nil
}

// appendJSON encodes the message; Params comes from the caller and is checked here, since a line
// the runner cannot parse would end the worker.
func (m *leanInvokeMsg) appendJSON(dst []byte) ([]byte, error) {
	if len(m.Params) > 0 && !json.Valid(m.Params) {
		return nil, errInvalidRaw
	}
	dst = appendHeader(dst, &m.header)
	dst = appendStringField(dst, "dialect", m.Dialect)
	dst = appendStringField(dst, "kind", m.Kind)
	dst = appendStringField(dst, "fn", m.Fn)
	dst = appendStringField(dst, "rid", m.RID)
	for _, f := range [...]struct{ k, v string }{{"name", m.Name}, {"hook", m.Hook}, {"className", m.ClassName}} {
		if f.v != "" {
			dst = appendStringField(dst, f.k, f.v)
		}
	}
	dst = appendRawField(dst, "params", m.Params)
	if m.RPC {
		dst = appendBoolField(dst, "rpc", true)
	}
	if m.SessionToken != "" {
		dst = appendStringField(dst, "sessionToken", m.SessionToken)
	}
	if m.RemoteAddress != "" {
		dst = appendStringField(dst, "remoteAddress", m.RemoteAddress)
	}
	for _, f := range [...]struct {
		k string
		v bool
	}{{"hookKeyOK", m.HookKeyOK}, {"master", m.Master}, {"realtimeHook", m.RealtimeHook}} {
		if f.v {
			dst = appendBoolField(dst, f.k, true)
		}
	}
	dst = appendStringField(dst, "url", m.URL)
	dst = appendIntField(dst, "timeoutMs", m.TimeoutMs)
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, as encoding/json writes it without HTML escaping:
// control characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
