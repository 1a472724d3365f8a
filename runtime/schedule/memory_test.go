package schedule_test

import (
	"testing"

	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		s := schedule.NewMemoryStore()
		return func() (schedule.Store, error) { return s, nil }
	})
}
