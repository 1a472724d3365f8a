package workercmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQueuesWithoutTasksWarn: a --queues name that none of the worker's
// tasks has (a typo, most often) is logged as a warning naming it and the
// tasks' queues, instead of a worker that waits on it silently.
func TestQueuesWithoutTasksWarn(t *testing.T) {
	fileQueue(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), nil, nil, "worker", pingTask(okInvoke),
		[]string{"--burst", "--queues", "default,imgaes", "--log-format", "json"}, &out, &errOut)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var warn string
	for _, line := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "queue") {
			warn += line + "\n"
		}
	}
	if !strings.Contains(warn, `"queue":"imgaes"`) || !strings.Contains(warn, `"task_queues":"default"`) {
		t.Errorf("no warning naming queue imgaes and the tasks' queues; stderr:\n%s", errOut.String())
	}
	if strings.Contains(warn, `"queue":"default"`) {
		t.Errorf("a warning for queue default, which task ping has:\n%s", warn)
	}
}
