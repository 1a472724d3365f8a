//go:build !unix

package redis

import "time"

// clientCPU is not measured here: it returns 0.
func clientCPU() time.Duration { return 0 }
