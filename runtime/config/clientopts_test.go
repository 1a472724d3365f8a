package config

import (
	"context"
	"testing"

	"github.com/nuvom/nuvom"
)

// TestOpenClientOptions: options given to OpenClient apply to the client it
// makes (here an enqueue hook, as a plugin's ClientOption installs), and the
// client still owns its backend.
func TestOpenClientOptions(t *testing.T) {
	ctx := context.Background()
	_, sub := moduleDir(t)
	c, err := Load(sub, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	client, err := c.OpenClient(ctx, nuvom.WithEnqueueHook(func(_ context.Context, _ nuvom.JobInfo, meta map[string]string) error {
		meta["via"] = "hook"
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	res, err := client.Enqueue(ctx, nuvom.TaskSpec{Name: "t", Options: nuvom.TaskOptions{Queue: "q"}}, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	j, err := client.Get(ctx, res.ID)
	if err != nil || j.Meta["via"] != "hook" {
		t.Fatalf("job %+v, %v: want the hook's metadata", j, err)
	}
}
