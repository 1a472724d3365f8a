//go:build !unix

package redis_test

import "time"

// selfCPU is not measured here: it returns 0.
func selfCPU() time.Duration { return 0 }
