//go:build !unix

package bench

import "time"

// processCPU is not measured on this platform: 0 means unknown.
func processCPU() time.Duration { return 0 }
