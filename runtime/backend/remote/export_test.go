package remote

import "time"

// SetCloseWait sets how long c's Close waits for a call in flight.
func SetCloseWait(c *Client, d time.Duration) { c.closeWait = d }
