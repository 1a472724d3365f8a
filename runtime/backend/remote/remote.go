// Package remote carries the storage contract (backend.Backend) over a pair
// of byte streams, so that one process can use a backend that only another
// process has compiled in. The nuvom CLI uses it to reach a backend that a
// plugin provides: it runs the module's worker binary with a hidden
// subcommand whose standard input and output carry the calls (see
// runtime/workercmd), and every inspection command works unchanged on the
// Client it gets.
//
// The protocol is newline-delimited JSON, one call at a time: the server
// first writes a hello line ({"protocol":1,"ext":true}) once its backend is
// open ("ext": it carries the optional parts of the contract, which servers
// before them did not; a client tells the user so), then
// answers each request line with one response line. The client closes its
// end of the request stream to end the session; the server then returns
// (and its process closes the backend).
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Protocol is the version of the protocol; a server of another version is refused.
const Protocol = 1

// hello is the first line a server writes.
type hello struct {
	Protocol int `json:"protocol"`
	// Extended is set by servers that carry backend.Admin, backend.Workflows
	// and backend.Limits (whether or not their backend has them).
	Extended bool `json:"ext,omitempty"`
}

// request is one call.
type request struct {
	Method string          `json:"m"`
	Params json.RawMessage `json:"p,omitempty"`
}

// response answers one call.
type response struct {
	Result json.RawMessage `json:"r,omitempty"`
	Err    *wireError      `json:"e,omitempty"`
	// Errs are Complete's per-outcome errors.
	Errs []*wireError `json:"errs,omitempty"`
}

// wireError is an error with the sentinel it matches, so that errors.Is
// works on the client's side.
type wireError struct {
	Kind string `json:"kind,omitempty"`
	Msg  string `json:"msg"`
}

var kinds = []struct {
	name string
	err  error
}{
	{"not_found", backend.ErrNotFound},
	{"lease_lost", backend.ErrLeaseLost},
	{"wrong_state", backend.ErrWrongState},
	{"workflow_not_found", backend.ErrWorkflowNotFound},
	{"unsupported", errors.ErrUnsupported},
	{"no_cutoff", backend.ErrNoCutoff},
	{"negative_keep", backend.ErrNegativeKeep},
	{"canceled", context.Canceled},
	{"deadline", context.DeadlineExceeded},
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Msg: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			w.Kind = k.name
			break
		}
	}
	return w
}

// Error is an error the server's backend returned; it matches (errors.Is)
// the same sentinel (backend.ErrNotFound, ...) as the original did.
type Error struct {
	Msg      string
	sentinel error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel the original error matched, or nil.
func (e *Error) Unwrap() error { return e.sentinel }

func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	e := &Error{Msg: w.Msg}
	for _, k := range kinds {
		if k.name == w.Kind {
			e.sentinel = k.err
		}
	}
	return e
}

// The parameters of the calls that take more than one value.
type (
	extendParams struct {
		Leases []backend.Lease `json:"leases"`
		Until  time.Time       `json:"until"`
	}
	recoverParams struct {
		Now     time.Time `json:"now"`
		MaxLost int       `json:"max_lost"`
	}
	idNowParams struct {
		ID  string    `json:"id"`
		Now time.Time `json:"now"`
	}
)

// ServeOption configures Serve.
type ServeOption func(*server)

// Named gives the served backend the name (its NUVOM_BACKEND) that errors
// show, for example when the backend lacks an optional part of the contract.
func Named(name string) ServeOption {
	return func(s *server) { s.name = name }
}

// server is one session's backend and how errors name it.
type server struct {
	b    backend.Backend
	name string
}

// Serve opens the session on w with the hello line, then answers the
// requests read from r by calling b, one at a time, until r ends: it returns
// nil at the end of r, or the error that broke the stream. It does not close b.
//
// Calls of the optional parts of the contract (backend.Admin, found with
// backend.AdminOf; backend.Workflows and backend.Limits, on b or a backend
// it wraps through Unwrap) that b lacks fail with an error that names the
// backend and the capability, and matches errors.ErrUnsupported.
func Serve(ctx context.Context, b backend.Backend, r io.Reader, w io.Writer, opts ...ServeOption) error {
	s := &server{b: b, name: fmt.Sprintf("%T", b)}
	for _, o := range opts {
		o(s)
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(hello{Protocol: Protocol, Extended: true}); err != nil {
		return fmt.Errorf("remote: write hello: %w", err)
	}
	dec := json.NewDecoder(r)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("remote: read request: %w", err)
		}
		resp := s.call(ctx, req)
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("remote: write response: %w", err)
		}
	}
}

// call runs one request against the served backend.
func (s *server) call(ctx context.Context, req request) response {
	b := s.b
	var (
		result any
		err    error
		errs   []error
		// partial: the result goes with an error too (how many jobs a
		// purge deleted before it failed).
		partial bool
	)
	// Parameters with a field this server does not know are refused, not
	// read without it: a field of a newer client may narrow what the call
	// does (which jobs a purge deletes, say).
	params := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(req.Params))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("remote: %s: bad parameters (a client newer than this server?): %w", req.Method, err)
		}
		return nil
	}
	switch req.Method {
	case "Enqueue":
		var jobs []*backend.Job
		if err = params(&jobs); err == nil {
			result, err = b.Enqueue(ctx, jobs)
		}
	case "Claim":
		var cr backend.ClaimRequest
		if err = params(&cr); err == nil {
			result, err = b.Claim(ctx, cr)
		}
	case "Extend":
		var p extendParams
		if err = params(&p); err == nil {
			result, err = b.Extend(ctx, p.Leases, p.Until)
		}
	case "Complete":
		var outcomes []backend.Outcome
		if err = params(&outcomes); err == nil {
			errs, err = b.Complete(ctx, outcomes)
		}
	case "Release":
		var leases []backend.Lease
		if err = params(&leases); err == nil {
			err = b.Release(ctx, leases)
		}
	case "RecoverExpired":
		var p recoverParams
		if err = params(&p); err == nil {
			result, err = b.RecoverExpired(ctx, p.Now, p.MaxLost)
		}
	case "Get":
		var id string
		if err = params(&id); err == nil {
			result, err = b.Get(ctx, id)
		}
	case "List":
		var f backend.ListFilter
		if err = params(&f); err == nil {
			result, err = b.List(ctx, f)
		}
	case "Cancel", "Retry":
		var p idNowParams
		if err = params(&p); err == nil {
			if req.Method == "Cancel" {
				err = b.Cancel(ctx, p.ID, p.Now)
			} else {
				err = b.Retry(ctx, p.ID, p.Now)
			}
		}
	case "Stats":
		var now time.Time
		if err = params(&now); err == nil {
			result, err = b.Stats(ctx, now)
		}
	case "Purge":
		var f backend.PurgeFilter
		if err = params(&f); err == nil {
			result, err = b.Purge(ctx, f)
			partial = true
		}
	case "PurgeEnded":
		var p purgeEndedParams
		if err = params(&p); err == nil {
			result, err = b.PurgeEnded(ctx, p.Before, p.Filter)
			partial = true
		}
	case "TrimEnded":
		var p trimEndedParams
		if err = params(&p); err == nil {
			result, err = b.TrimEnded(ctx, p.Keep, p.Filter)
			partial = true
		}
	default:
		var handled bool
		if result, handled, err = s.callExtension(ctx, req, params); !handled {
			err = fmt.Errorf("remote: unknown method %q", req.Method)
		}
	}
	resp := response{Err: toWire(err)}
	if errs != nil {
		resp.Errs = make([]*wireError, len(errs))
		for i, e := range errs {
			resp.Errs[i] = toWire(e)
		}
	}
	if (err == nil || partial) && result != nil {
		data, merr := json.Marshal(result)
		if merr != nil && err == nil {
			resp.Err = toWire(fmt.Errorf("remote: %s: encode result: %w", req.Method, merr))
		} else {
			resp.Result = data
		}
	}
	return resp
}

// Client is a backend.Backend served by Serve at the other end of a pair of
// streams. Calls are made one at a time; a call checks its context before
// it is sent, not while the server runs it. Subscribe returns a nil channel
// (no change notification: a worker would poll). A broken stream fails every
// later call.
type Client struct {
	mu     sync.Mutex // held for a whole call: calls go one at a time
	enc    *json.Encoder
	dec    *json.Decoder
	w      io.Closer
	closer func() error
	broken error
	// closed is set by Close, which waits at most closeWait for a call in
	// flight (the server may hang in it) before the closer ends the server,
	// and the call fails.
	closed    atomic.Bool
	closeWait time.Duration
	// extended: the server carries the optional parts of the contract.
	extended bool
}

var _ backend.Backend = (*Client)(nil)

// NewClient reads the server's hello from r and returns the client that
// writes its requests to w. Close closes w (ending the server's session)
// and then calls closer (which may be nil), for example to wait for the
// server's process. When the hello does not come, NewClient returns an
// error and closes w (but does not call closer).
func NewClient(r io.Reader, w io.WriteCloser, closer func() error) (*Client, error) {
	dec := json.NewDecoder(r)
	var h hello
	if err := dec.Decode(&h); err != nil {
		w.Close()
		return nil, fmt.Errorf("remote: no hello from the backend's server: %w", err)
	}
	if h.Protocol != Protocol {
		w.Close()
		return nil, fmt.Errorf("remote: the backend's server speaks protocol %d, this client %d: rebuild them from the same nuvom version", h.Protocol, Protocol)
	}
	return &Client{enc: json.NewEncoder(w), dec: dec, w: w, closer: closer, extended: h.Extended, closeWait: closeWait}, nil
}

// do sends one call and decodes its result into out (when not nil).
func (c *Client) do(ctx context.Context, method string, params, out any) ([]*wireError, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("remote: %s: %w", method, err)
	}
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("remote: %s: encode parameters: %w", method, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed.Load():
		return nil, fmt.Errorf("remote: %s: client closed", method)
	case c.broken != nil:
		return nil, fmt.Errorf("remote: %s: %w", method, c.broken)
	}
	var resp response
	if err := c.enc.Encode(request{Method: method, Params: p}); err != nil {
		if c.closed.Load() {
			c.broken = errors.New("client closed")
			return nil, fmt.Errorf("remote: %s: client closed while the call ran", method)
		}
		c.broken = fmt.Errorf("connection to the backend's server lost: %w", err)
		return nil, fmt.Errorf("remote: %s: %w", method, c.broken)
	}
	if err := c.dec.Decode(&resp); err != nil {
		if c.closed.Load() {
			c.broken = errors.New("client closed")
			return nil, fmt.Errorf("remote: %s: client closed while the call ran", method)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		c.broken = fmt.Errorf("connection to the backend's server lost: %w", err)
		return nil, fmt.Errorf("remote: %s: %w", method, c.broken)
	}
	if resp.Err != nil {
		if out != nil && resp.Result != nil {
			// A partial result (Purge: the jobs deleted before the error);
			// one that cannot be read leaves out as it was.
			_ = json.Unmarshal(resp.Result, out)
		}
		return resp.Errs, resp.Err.err()
	}
	if out != nil && resp.Result != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return nil, fmt.Errorf("remote: %s: decode result: %w", method, err)
		}
	}
	return resp.Errs, nil
}

// Enqueue implements backend.Backend.
func (c *Client) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	var out []backend.EnqueueResult
	_, err := c.do(ctx, "Enqueue", jobs, &out)
	return out, err
}

// Claim implements backend.Backend.
func (c *Client) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	var out []*backend.Job
	_, err := c.do(ctx, "Claim", req, &out)
	return out, err
}

// Extend implements backend.Backend.
func (c *Client) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	var out []string
	_, err := c.do(ctx, "Extend", extendParams{Leases: leases, Until: until}, &out)
	return out, err
}

// Complete implements backend.Backend.
func (c *Client) Complete(ctx context.Context, outcomes []backend.Outcome) ([]error, error) {
	werrs, err := c.do(ctx, "Complete", outcomes, nil)
	if err != nil {
		return nil, err
	}
	var errs []error
	if werrs != nil {
		errs = make([]error, len(werrs))
		for i, w := range werrs {
			errs[i] = w.err()
		}
	}
	return errs, nil
}

// Release implements backend.Backend.
func (c *Client) Release(ctx context.Context, leases []backend.Lease) error {
	_, err := c.do(ctx, "Release", leases, nil)
	return err
}

// RecoverExpired implements backend.Backend.
func (c *Client) RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error) {
	var n int
	_, err := c.do(ctx, "RecoverExpired", recoverParams{Now: now, MaxLost: maxLost}, &n)
	return n, err
}

// Get implements backend.Backend.
func (c *Client) Get(ctx context.Context, id string) (*backend.Job, error) {
	var j *backend.Job
	if _, err := c.do(ctx, "Get", id, &j); err != nil {
		return nil, err
	}
	if j == nil {
		return nil, fmt.Errorf("remote: Get %s: no job in the answer", id)
	}
	return j, nil
}

// List implements backend.Backend.
func (c *Client) List(ctx context.Context, f backend.ListFilter) ([]*backend.Job, error) {
	var out []*backend.Job
	_, err := c.do(ctx, "List", f, &out)
	return out, err
}

// Cancel implements backend.Backend.
func (c *Client) Cancel(ctx context.Context, id string, now time.Time) error {
	_, err := c.do(ctx, "Cancel", idNowParams{ID: id, Now: now}, nil)
	return err
}

// Retry implements backend.Backend.
func (c *Client) Retry(ctx context.Context, id string, now time.Time) error {
	_, err := c.do(ctx, "Retry", idNowParams{ID: id, Now: now}, nil)
	return err
}

// Stats implements backend.Backend.
func (c *Client) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	var out []backend.QueueStat
	_, err := c.do(ctx, "Stats", now, &out)
	return out, err
}

// Purge implements backend.Backend.
func (c *Client) Purge(ctx context.Context, f backend.PurgeFilter) (int, error) {
	var n int
	_, err := c.do(ctx, "Purge", f, &n)
	return n, err
}

// PurgeEnded implements backend.Backend. A server that predates it answers
// that the method is unknown, and deletes nothing.
func (c *Client) PurgeEnded(ctx context.Context, before time.Time, f backend.PurgeFilter) (int, error) {
	if before.IsZero() {
		return 0, fmt.Errorf("remote: %w", backend.ErrNoCutoff)
	}
	var n int
	_, err := c.do(ctx, "PurgeEnded", purgeEndedParams{Before: backend.ClampTime(before), Filter: f}, &n)
	if err != nil && strings.Contains(err.Error(), `unknown method "PurgeEnded"`) {
		err = fmt.Errorf("%w: the backend's server was built with a nuvom that cannot purge by age; rebuild it with this one", err)
	}
	return n, err
}

// purgeEndedParams are PurgeEnded's parameters on the wire.
type purgeEndedParams struct {
	Before time.Time
	Filter backend.PurgeFilter
}

// TrimEnded implements backend.Backend. A server that predates it answers
// that the method is unknown, and deletes nothing.
func (c *Client) TrimEnded(ctx context.Context, keep int, f backend.PurgeFilter) (int, error) {
	if keep < 0 {
		return 0, fmt.Errorf("remote: %w", backend.ErrNegativeKeep)
	}
	var n int
	_, err := c.do(ctx, "TrimEnded", trimEndedParams{Keep: keep, Filter: f}, &n)
	if err != nil && strings.Contains(err.Error(), `unknown method "TrimEnded"`) {
		err = fmt.Errorf("%w: the backend's server was built with a nuvom that cannot trim by count; rebuild it with this one", err)
	}
	return n, err
}

// trimEndedParams are TrimEnded's parameters on the wire.
type trimEndedParams struct {
	Keep   int
	Filter backend.PurgeFilter
}

// Subscribe returns a nil channel: the client cannot tell when work is ready.
func (c *Client) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }

// closeWait is how long Close waits for a call in flight to return before
// it calls the closer (which ends the server, failing the call).
const closeWait = 10 * time.Second

// Close ends the session and calls the closer given to NewClient; it is
// safe to call twice. Later calls fail at once. A call in flight gets up to
// 10 s to return (its answer is read, not lost to the closer); one still
// running then fails, saying the client closed.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := c.w.Close() // the server ends its session after the call it is in
	// Wait for the call in flight, if any (calls hold mu; later ones see
	// closed and fail at once).
	for deadline := time.Now().Add(c.closeWait); ; time.Sleep(time.Millisecond) {
		if c.mu.TryLock() {
			c.mu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			break // a hung call: the closer ends the server
		}
	}
	if c.closer != nil {
		if cerr := c.closer(); cerr != nil {
			err = cerr
		}
	}
	return err
}
