//go:build windows

package main

import (
	"fmt"
	"os"
	"os/exec"
	"unsafe"

	"golang.org/x/sys/windows"
)

// pinStartThread: job objects do not depend on the starting thread.
const pinStartThread = false

// guardChild prepares a job object that kills its processes when its last
// handle closes (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE); nuvom holds that handle
// until the worker exits, so if nuvom dies the system kills the worker.
func guardChild(cmd *exec.Cmd) (childGuard, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		_ = windows.CloseHandle(job)
		return nil, fmt.Errorf("set up job object: %w", err)
	}
	return &jobGuard{job: job}, nil
}

// jobGuard is the job object holding one worker.
type jobGuard struct{ job windows.Handle }

// started puts the process in the job.
func (g *jobGuard) started(p *os.Process) error {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(p.Pid))
	if err != nil {
		return fmt.Errorf("open worker process: %w", err)
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(g.job, h); err != nil {
		return fmt.Errorf("put the worker in a job object: %w", err)
	}
	return nil
}

func (g *jobGuard) close() { _ = windows.CloseHandle(g.job) }
