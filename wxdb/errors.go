package wxdb

import "fmt"

// Error is a failure answered to the SDK as {code, message}. The wx-server-sdk turns Code into
// its errCode through TCB_ERR_CODE and prefixes Message with "<api>:fail <errCode> <text>. ".
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The codes the SDK knows (wx-server-sdk index.js, src/api/cloud/provider/tcb/config/error.config.ts).
const (
	CodeInvalidParam       = "INVALID_PARAM"                     // -501007 invalid parameters
	CodeRequestFailed      = "DATABASE_REQUEST_FAILED"           // -502001 database request fail
	CodeInvalidCommand     = "DATABASE_INVALID_OPERRATOR"        // -502002 database invalid command (sic)
	CodeCollectionNotExist = "DATABASE_COLLECTION_NOT_EXIST"     // -502005 database collection not exists
	CodeCollectionExists   = "DATABASE_COLLECTION_ALREADY_EXIST" // not in the table: -501001
	CodeTxConflict         = "DATABASE_TRANSACTION_CONFLICT"     // @cloudbase/database retries on it
	CodeTxNotExist         = "DATABASE_TRANSACTION_NOT_EXIST"    // -501001
	CodeWatchUnsupported   = "DATABASE_REALTIME_LISTENER_UNSUPPORTED"
)

func errf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func badParam(format string, args ...any) *Error { return errf(CodeInvalidParam, format, args...) }

func badCommand(format string, args ...any) *Error {
	return errf(CodeInvalidCommand, format, args...)
}

func notExist(coll string) *Error {
	return errf(CodeCollectionNotExist, "[ResourceNotFound] Db or Table not exist: %s. Please check your request, but if the problem cannot be solved, contact us.", coll)
}
