package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// child is a worker process started so that it dies with nuvom: on Linux the
// kernel kills it when nuvom exits (Pdeathsig), on other Unix systems it holds
// a lifeline pipe whose end makes it stop gracefully, and on Windows it runs
// in a job object that is killed when nuvom's handle to it closes. A killed
// nuvom (kill -9, a supervisor's restart) so never leaves a worker behind.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's error, valid after done
}

// lifelineEnv is workercmd.LifelineEnv (not imported, to keep the worker's
// packages out of the CLI): the variable naming the worker's lifeline pipe.
const lifelineEnv = "NUVOM_LIFELINE_FD"

// childGuard ties a started process to nuvom's life (see guardChild).
type childGuard interface {
	started(p *os.Process) error // the process started; tie it
	close()                      // the process exited; let go of it
}

// startChild starts cmd as a child that dies with nuvom and waits for it in
// the background.
func startChild(cmd *exec.Cmd) (*child, error) {
	g, err := guardChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		if pinStartThread {
			// Linux sends Pdeathsig when the thread that started the child
			// exits, not the process: this locked thread lives as long as
			// the child (it ends with this goroutine, after the child).
			runtime.LockOSThread()
		}
		if err := cmd.Start(); err != nil {
			g.close()
			started <- fmt.Errorf("start worker %s: %w", cmd.Path, err)
			return
		}
		if err := g.started(cmd.Process); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			g.close()
			started <- fmt.Errorf("start worker %s: %w", cmd.Path, err)
			return
		}
		started <- nil
		c.err = cmd.Wait()
		g.close()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// wait waits for the process to exit and returns cmd.Wait's error.
func (c *child) wait() error {
	<-c.done
	return c.err
}
