// Package email sends mail.
package email

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nuvom/nuvom"
)

// Message is one e-mail.
type Message struct {
	To      []string          `msgpack:"to"`
	Subject string            `msgpack:"subject"`
	Body    string            `msgpack:"body"`
	Headers map[string]string `msgpack:"headers,omitempty"`
}

// Send delivers msg. It returns only an error: there is no result to keep.
//
//nuvom:task name=email.send retries=5 retry_delay=1s max_retry_delay=1m queue=mail before=logAttempt
func Send(ctx context.Context, msg Message) error {
	if len(msg.To) == 0 {
		return nuvom.NoRetry(fmt.Errorf("message %q has no recipients", msg.Subject))
	}
	for _, to := range msg.To {
		if !strings.Contains(to, "@") {
			return nuvom.NoRetry(fmt.Errorf("recipient %q is not an e-mail address", to))
		}
	}
	return ctx.Err()
}

// logAttempt runs before every attempt of Send.
func logAttempt(ctx context.Context, job nuvom.JobInfo) error {
	slog.DebugContext(ctx, "sending mail", "job", job.ID, "attempt", job.Attempt)
	return nil
}
