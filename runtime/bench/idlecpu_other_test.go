//go:build !linux

package bench

import (
	"errors"
	"time"
)

// idleCPU is only measured on Linux, from /proc.
func idleCPU(int, time.Duration) (float64, error) {
	return 0, errors.New("idle CPU is measured on Linux only")
}

// peakRSS is only measured on Linux, from /proc.
func peakRSS() (int64, error) {
	return 0, errors.New("peak RSS is measured on Linux only")
}
