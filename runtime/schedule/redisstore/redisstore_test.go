package redisstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/redisstore"
	"github.com/nuvom/nuvom/runtime/schedule/storetest"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		prefix := fmt.Sprintf("t%d", n.Add(1))
		return func() (schedule.Store, error) { return redisstore.Open(srv.URL(0), prefix, false) }
	})
}
