package schedule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// TestCreateRefusesAnnotationIDs: a schedule made by hand under an id of the
// form reserved for annotation schedules ("task:images.Tick") was stored over
// the annotation's, and the next worker start put the annotation's back: the
// hand-made one vanished. Create refuses it and stores nothing.
func TestCreateRefusesAnnotationIDs(t *testing.T) {
	ctx := context.Background()
	store := schedule.NewMemoryStore()
	svc := schedule.NewService(store)
	task := nuvom.TaskSpec{Name: "kinds.NoCtx", Options: nuvom.TaskOptions{Queue: "default"}}
	id := schedule.AnnotationID("images.Tick")
	_, err := svc.Create(ctx, task, nil, nuvom.Every(time.Hour).WithID(id))
	if err == nil || !strings.Contains(err.Error(), `reserved for the schedules declared in task annotations`) {
		t.Fatalf("Create with id %q = %v, want it refused", id, err)
	}
	if _, err := store.Get(ctx, id); !errors.Is(err, schedule.ErrNotFound) {
		t.Fatalf("Get(%q) after a refused Create = %v, want ErrNotFound", id, err)
	}
	if _, err := svc.Create(ctx, task, nil, nuvom.Every(time.Hour).WithID("nightly-tick")); err != nil {
		t.Fatalf("Create with an ordinary id: %v", err)
	}
}
