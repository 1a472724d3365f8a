package manifest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseRate reads a rate= value: "10/s", "600/m", "5/h", or N per a Go
// duration such as "3/2s". It returns the count and the period.
func ParseRate(s string) (n int, per time.Duration, err error) {
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("want N/s, N/m, N/h or N/<duration>, such as 10/s")
	}
	n, err = strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("%q is not a positive whole number", num)
	}
	switch unit {
	case "s":
		return n, time.Second, nil
	case "m":
		return n, time.Minute, nil
	case "h":
		return n, time.Hour, nil
	}
	per, err = time.ParseDuration(unit)
	if err != nil || per <= 0 {
		return 0, 0, fmt.Errorf("period %q is not s, m, h or a positive Go duration", unit)
	}
	return n, per, nil
}

// checkLimits validates the flow-control options.
func (o Options) checkLimits() error {
	if o.MaxConcurrency < 0 {
		return fmt.Errorf("options.max_concurrency is negative")
	}
	if o.Rate != "" {
		if _, _, err := ParseRate(o.Rate); err != nil {
			return fmt.Errorf("options.rate %q: %w", o.Rate, err)
		}
	}
	return nil
}
