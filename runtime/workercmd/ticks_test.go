package workercmd

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugins/prometheus"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// TestSchedulerTicksReachPlugins runs the worker command with its scheduler
// and the prometheus plugin: the ticks of a task's annotation schedule reach
// the plugin and are counted in nuvom_scheduler_ticks_total, scraped over
// loopback HTTP.
func TestSchedulerTicksReachPlugins(t *testing.T) {
	fileQueue(t)
	every := nuvom.TaskSpec{Name: "tick", Signature: "s", Options: nuvom.TaskOptions{Queue: "default", Every: 100 * time.Millisecond}}
	tasks := []nuvom.TaskDef{{TaskSpec: every, Invoke: okInvoke}}
	pl := &Plugins{
		File:          "[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = \"127.0.0.1:0\"\n",
		Registrations: []plugin.Registration{prometheus.Plugin},
	}
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, nil, nil, "worker", tasks, pl, []string{"--log-format", "json"}, &out, &errOut)
	}()
	re := regexp.MustCompile(`(?m)^nuvom_scheduler_ticks_total\{outcome="enqueued",schedule="` +
		regexp.QuoteMeta(schedule.AnnotationID("tick")) + `"\} (\d+)$`)
	deadline := time.Now().Add(2 * time.Minute) // hang guard
	var body string
	for {
		if m := re.FindStringSubmatch(body); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nuvom_scheduler_ticks_total never reached 2 enqueued ticks; last scrape:\n%s\nstderr:\n%s", body, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
		m := listenerRE.FindStringSubmatch(errOut.String())
		if m == nil {
			continue
		}
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(data)
	}
	cancel()
	select {
	case c := <-code:
		if c != ExitOK {
			t.Fatalf("exit %d; stderr:\n%s", c, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop")
	}
}
