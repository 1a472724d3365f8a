// Package webhook is a Nuvom plugin that POSTs a JSON message to a URL for
// every job that fails for good (or, optionally, for every stored outcome).
//
// It is the showcase of a third-party plugin: a module of its own, written
// only against Nuvom's public plugin contract (package
// github.com/nuvom/nuvom/runtime/plugin) as an outside author would. Add it
// to a worker with .nuvom_plugins.toml:
//
//	[[plugin]]
//	import = "github.com/nuvom/nuvom/examples/plugins/webhook"
//	[plugin.settings]
//	url = "${ALERT_WEBHOOK_URL}"
//
// Deliveries never hold up jobs: the worker hands stored outcomes to the
// plugin through a bounded buffer (a full buffer drops events, counted and
// logged), and each delivery is bounded by the timeout setting and retried
// with exponential backoff.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
)

// Settings are read from the plugin's [plugin.settings] table.
type Settings struct {
	// URL receives a POST with a JSON Message per reported outcome; ${NAME} is taken from the environment.
	URL string `toml:"url"`
	// OnlyFailures reports only jobs that failed for good (default true); false reports every stored outcome.
	OnlyFailures bool `toml:"only_failures"`
	// Timeout bounds one POST, connection included; default 5s.
	Timeout time.Duration `toml:"timeout"`
	// Retries is how many times a failed POST (network error, 408, 429 or 5xx) is tried again; default 3.
	Retries int `toml:"retries"`
	// RetryDelay is the wait before the first retry, doubled for each next one (at most 1m); default 1s.
	RetryDelay time.Duration `toml:"retry_delay"`
	// Buffer is how many messages may wait for delivery; more are dropped (and logged); default 1000.
	Buffer int `toml:"buffer"`
}

// Name is the plugin's name.
const Name = "webhook"

// maxRetryDelay caps the backoff between retries.
const maxRetryDelay = time.Minute

// Plugin registers the webhook plugin.
var Plugin = plugin.Registration{
	Name:       Name,
	APIVersion: plugin.APIVersion,
	Provides:   plugin.ProvidesObserver,
	NewSettings: func() any {
		return &Settings{OnlyFailures: true, Timeout: 5 * time.Second, Retries: 3, RetryDelay: time.Second, Buffer: 1000}
	},
	New: func(s any) (plugin.Plugin, error) { return newNotifier(s.(*Settings)) },
}

// Message is the JSON body of a POST: one stored outcome of one attempt.
type Message struct {
	// JobID, Task and Queue identify the job.
	JobID string `json:"job_id"`
	Task  string `json:"task"`
	Queue string `json:"queue"`
	// State is the job's state after the attempt: failed for a final failure.
	State nuvom.State `json:"state"`
	// Outcome is how the attempt ended: failed, panicked, timed_out, lost, ...
	Outcome string `json:"outcome"`
	// Attempt is the attempt's number, MaxAttempts the job's limit.
	Attempt     int `json:"attempt"`
	MaxAttempts int `json:"max_attempts"`
	// Error is the job's error, ErrorChain its wrapped errors, outermost first.
	Error      string   `json:"error,omitempty"`
	ErrorChain []string `json:"error_chain,omitempty"`
	// Worker is the id of the worker that ran the attempt.
	Worker string `json:"worker"`
	// CreatedAt is when the job was enqueued, FinishedAt when the attempt ended.
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// DeliveryHeader carries "<job id>/<attempt>", the same for every retry of one
// message, so that a receiver can drop duplicates.
const DeliveryHeader = "Nuvom-Delivery"

// notifier is the plugin. The host's subscription goroutine only filters
// outcomes and queues them (never waiting); one sender goroutine of the
// plugin's own POSTs them in order, so that a slow receiver delays nothing
// but later messages.
type notifier struct {
	s         Settings
	url       string
	transport *http.Transport
	client    *http.Client

	mu       sync.Mutex
	started  bool
	stopped  bool
	log      *slog.Logger
	queue    chan Message
	stopping chan struct{}   // closed by Stop: no more retries, deliver what is queued once
	ctx      context.Context // ends when Stop's context ends: in-flight POSTs give up
	cancel   context.CancelFunc
	done     chan struct{} // closed when the sender returns
	dropped  atomic.Uint64
	lastWarn atomic.Int64 // unix nanos of the last "queue full" line
}

func newNotifier(s *Settings) (*notifier, error) {
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		return nil, errors.New("setting url is empty: set the URL that receives the POSTs")
	case err != nil:
		return nil, fmt.Errorf("setting url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("setting url %q: want an http:// or https:// URL", s.URL)
	case s.Timeout <= 0:
		return nil, fmt.Errorf("setting timeout %s: want a positive duration such as \"5s\"", s.Timeout)
	case s.Retries < 0:
		return nil, fmt.Errorf("setting retries %d: want 0 or more", s.Retries)
	case s.RetryDelay <= 0:
		return nil, fmt.Errorf("setting retry_delay %s: want a positive duration such as \"1s\"", s.RetryDelay)
	case s.Buffer <= 0:
		return nil, fmt.Errorf("setting buffer %d: want 1 or more", s.Buffer)
	}
	// A transport of its own, so that Stop can close its idle connections.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &notifier{s: *s, url: s.URL, transport: tr, client: &http.Client{Transport: tr}}, nil
}

// Start starts the sender and subscribes to stored outcomes.
func (n *notifier) Start(ctx context.Context, host plugin.Host) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("started twice")
	}
	n.started = true
	n.log = host.Logger()
	n.queue = make(chan Message, n.s.Buffer)
	n.stopping = make(chan struct{})
	n.done = make(chan struct{})
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.mu.Unlock()
	go n.send()
	n.log.Info("webhook plugin started", "url", redact(n.url), "only_failures", n.s.OnlyFailures)
	return host.Subscribe(0, n.handle)
}

// Stop stops taking outcomes and delivers those already queued, each tried
// once more at most, within ctx; when ctx ends first, in-flight POSTs give up
// and the rest are dropped (and logged). It is safe to call without Start and twice.
func (n *notifier) Stop(ctx context.Context) error {
	n.mu.Lock()
	if !n.started || n.stopped {
		n.stopped = true
		n.mu.Unlock()
		n.transport.CloseIdleConnections()
		return nil
	}
	n.stopped = true
	close(n.stopping)
	close(n.queue) // handle no longer sends: it checks stopped under mu
	n.mu.Unlock()
	var err error
	select {
	case <-n.done:
	case <-ctx.Done():
		err = fmt.Errorf("webhook: undelivered messages dropped: %w", ctx.Err())
	}
	n.cancel()
	<-n.done // quick: every POST fails at once with a cancelled context
	n.transport.CloseIdleConnections()
	if d := n.dropped.Load(); d > 0 {
		n.log.Warn("webhook: messages dropped because the queue was full", "dropped", d)
	}
	return err
}

// Reported says whether a stored outcome is reported with onlyFailures: a
// job that failed for good (no attempt left, or not retryable).
func Reported(o nuvom.Outcome, onlyFailures bool) bool {
	return !onlyFailures || o.State == nuvom.StateFailed
}

// handle runs on the host's subscription goroutine: it filters and queues,
// never waiting.
func (n *notifier) handle(ev plugin.Event) {
	if !Reported(ev.Outcome, n.s.OnlyFailures) {
		return
	}
	m := Message{JobID: ev.Job.ID, Task: ev.Job.Task, Queue: ev.Job.Queue, State: ev.Outcome.State,
		Outcome: ev.Outcome.Attempt.Outcome, Attempt: ev.Outcome.Attempt.Number, MaxAttempts: ev.Job.MaxAttempts,
		Error: ev.Outcome.Error, ErrorChain: ev.Outcome.ErrorChain, Worker: ev.Outcome.Attempt.Worker,
		CreatedAt: ev.Job.CreatedAt, FinishedAt: ev.Outcome.FinishedAt}
	if m.Attempt == 0 {
		m.Attempt = ev.Job.Attempt
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	select {
	case n.queue <- m:
	default:
		d := n.dropped.Add(1)
		now := time.Now().UnixNano()
		if last := n.lastWarn.Load(); now-last >= int64(time.Second) && n.lastWarn.CompareAndSwap(last, now) {
			n.log.Warn("webhook: receiver too slow, queue full: dropping messages", "dropped_total", d)
		}
	}
}

// send is the sender goroutine: it POSTs the queued messages in order.
func (n *notifier) send() {
	defer close(n.done)
	undelivered := 0
	for m := range n.queue {
		if n.ctx.Err() != nil {
			undelivered++
			continue
		}
		body, err := json.Marshal(m)
		if err != nil {
			n.log.Error("webhook: encode message", "job", m.JobID, "err", err)
			continue
		}
		if err := n.deliver(body, fmt.Sprintf("%s/%d", m.JobID, m.Attempt)); err != nil {
			n.log.Warn("webhook: delivery failed", "job", m.JobID, "task", m.Task, "err", err)
		}
	}
	if undelivered > 0 {
		n.log.Warn("webhook: stopped before delivering every message", "undelivered", undelivered)
	}
}

// deliver POSTs body, retrying with exponential backoff; once Stop began it
// does not retry.
func (n *notifier) deliver(body []byte, delivery string) error {
	delay := n.s.RetryDelay
	for try := 0; ; try++ {
		retryable, err := n.post(n.ctx, body, delivery)
		if err == nil {
			return nil
		}
		if !retryable || try >= n.s.Retries {
			return fmt.Errorf("after %d attempt(s): %w", try+1, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-n.stopping:
			t.Stop()
			return fmt.Errorf("stopping, not retried after %d attempt(s): %w", try+1, err)
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// post makes one POST within the timeout; retryable says whether trying again may help.
func (n *notifier) post(ctx context.Context, body []byte, delivery string) (retryable bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("make request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nuvom-webhook/1")
	req.Header.Set(DeliveryHeader, delivery)
	resp, err := n.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("POST %s: %w", redact(n.url), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("POST %s: %s", redact(n.url), resp.Status)
	}
	return false, fmt.Errorf("POST %s: %s", redact(n.url), resp.Status)
}

// redact keeps only a URL's scheme and host for logs: webhook URLs often
// carry a secret token in their path or query.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}
