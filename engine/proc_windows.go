//go:build windows

package engine

import (
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// procState is the Job Object that holds a worker and every process it starts: Windows has no
// process groups to signal, and a job also ends them all if fn itself dies (its handle closes).
type procState struct {
	mu     sync.Mutex
	job    windows.Handle // 0 if the worker could not be put in a job: taskkill /T ends its tree
	reaped bool           // the worker was reaped: its pid may belong to another process now
}

// isolate starts the worker in its own process group, so that a console Ctrl-C of fn does not
// reach it directly: fn stops its workers itself.
func isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP
}

// adopt puts the just-started worker in a job that kills its processes when closed. The worker
// starts no process before it has connected and been sent a bundle, which is after this, so no
// child escapes the job.
func (w *worker) adopt() {
	job, err := newKillJob()
	if err != nil {
		return
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(w.pid))
	if err != nil {
		windows.CloseHandle(job)
		return
	}
	err = windows.AssignProcessToJobObject(job, h)
	windows.CloseHandle(h)
	if err != nil {
		// e.g. fn itself runs in a job that allows no nested ones (before Windows 8)
		windows.CloseHandle(job)
		return
	}
	w.ps.mu.Lock()
	w.ps.job = job
	w.ps.mu.Unlock()
}

func newKillJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, err
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation, uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, err
	}
	return job, nil
}

// terminate ends the worker: Windows has no polite signal for a process without a console.
func (w *worker) terminate() { w.killNow() }

// killNow ends the worker and every process it started.
func (w *worker) killNow() {
	w.ps.mu.Lock()
	defer w.ps.mu.Unlock()
	if w.ps.reaped || w.pid <= 0 {
		return
	}
	if w.ps.job != 0 && windows.TerminateJobObject(w.ps.job, 1) == nil {
		return
	}
	// The process is not reaped, so its pid is still its own.
	exec.Command("taskkill", "/T", "/F", "/PID", strconv.Itoa(w.pid)).Run()
	if w.cmd != nil && w.cmd.Process != nil {
		w.cmd.Process.Kill()
	}
}

// sweepOrphans ends what the worker left running, once it has been reaped, by closing its job.
func (w *worker) sweepOrphans() {
	w.ps.mu.Lock()
	defer w.ps.mu.Unlock()
	w.ps.reaped = true
	if w.ps.job != 0 {
		windows.TerminateJobObject(w.ps.job, 1)
		windows.CloseHandle(w.ps.job)
		w.ps.job = 0
	}
}

// Only Linux lets a process adopt the orphans of its workers; the job finds them here.

func becomeSubreaper() {}

func sweeping() bool { return false }

func killDescendants(int) {}

// growPipe is a no-op on Windows: pipe buffers are sized when the pipe is made.
func growPipe(*os.File) {}
