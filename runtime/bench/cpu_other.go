//go:build !unix

package bench

import "time"

// ProcessCPU is not measured on this platform: 0 means unknown (it is the
// CPU time this process has used so far where it can be read).
func ProcessCPU() time.Duration { return 0 }
