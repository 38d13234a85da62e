package appenv

import (
	"context"
	"errors"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/scheduler"
	"github.com/fnhq/fn/server"
)

// timerTarget is what the environment's timers call and report to: its own invocations, logged
// like every other call.
type timerTarget struct{ e *Env }

func (t timerTarget) Dialect() project.Dialect { return t.e.cfg.Dialect }
func (t timerTarget) InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result {
	return t.e.InvokeWX(ctx, req)
}
func (t timerTarget) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	return t.e.InvokeLean(ctx, req)
}
func (t timerTarget) Report(inv server.Invocation)     { inv.Kind = "timer"; t.e.Report(inv) }
func (t timerTarget) Note(level, function, msg string) { t.e.note(level, function, msg) }

// Timers lists the environment's timers with their state (ErrNoTimers when they are off).
func (e *Env) Timers() ([]api.TimerStatus, error) {
	if e.timers == nil {
		return nil, e.noTimers()
	}
	return e.timers.Status(), nil
}

// noTimers says why there is no timer to act on, wrapping ErrNoTimers.
func (e *Env) noTimers() error {
	if e.timers == nil && e.cfg.Name == api.DevEnv {
		return noTimersError("timers are off in this fn dev (--no-timers)")
	}
	return noTimersError(e.cfg.Name + " has no timers")
}

// noTimersError is ErrNoTimers with the environment's own words.
type noTimersError string

func (e noTimersError) Error() string        { return string(e) }
func (e noTimersError) Is(target error) bool { return target == ErrNoTimers }

// TimerControl enables, disables or triggers a timer. Errors: ErrNoTimers, *BadRequest for an
// unknown action, *scheduler.ErrUnknownTimer, scheduler.ErrTimerRunning.
func (e *Env) TimerControl(ctx context.Context, name, action string) error {
	if e.timers == nil || len(e.timers.Status()) == 0 {
		return e.noTimers()
	}
	if action != "enable" && action != "disable" && action != "trigger" {
		return &BadRequest{Msg: "unknown timer action " + action + ": use enable, disable or trigger"}
	}
	// a triggered run outlives the request that asked for it
	return e.timers.Control(context.WithoutCancel(ctx), name, action)
}

// BadRequest is an invalid request, with the reason.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

// IsUnknownTimer reports whether err names a timer the environment does not have.
func IsUnknownTimer(err error) bool {
	var u *scheduler.ErrUnknownTimer
	return errors.As(err, &u)
}

// NotFound is a request for something that does not exist, with what it was.
type NotFound struct{ Msg string }

func (e *NotFound) Error() string { return e.Msg }
