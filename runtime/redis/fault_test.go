package redis

import (
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// proxy forwards loopback TCP connections to a Redis; Cut drops every
// connection and refuses new ones until Restore.
type proxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	cut     bool
	conns   []net.Conn
	lose    atomic.Int32 // replies to drop (see forward)
	loseReq atomic.Int32 // commands to drop (see forward)
	skip    atomic.Int32 // reads to pass before dropping (see forward)
	refuse  atomic.Int32 // commands to answer LOADING instead of passing on (see commands)
	hold    atomic.Int32 // commands to hold back (see commands)
	held    []func()     // under mu: what passes the held commands on
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut() })
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { p.commands(up, c); up.Close() }()
		go func() { p.forward(c, up, &p.lose); c.Close() }()
	}
}

// commands passes a client's commands from c on to Redis (up), as forward
// does with p.loseReq; besides, while p.refuse is above zero a command read
// is answered LOADING (Redis refusing it unrun) instead, and while p.hold
// is, a command read is held back: the client's connection closes at once
// and the command reaches Redis just before the next reply passes through
// the proxy (a command still on its way when the client has given up on it
// and looked at what Redis holds). A read is taken for one command.
func (p *proxy) commands(up, c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 && p.refuse.Load() > 0 && p.refuse.Add(-1) >= 0 {
			if _, err := c.Write([]byte("-LOADING Redis is loading the dataset in memory\r\n")); err != nil {
				return
			}
			continue
		}
		if n > 0 && p.hold.Load() > 0 && p.hold.Add(-1) >= 0 {
			cmd := slices.Clone(buf[:n])
			sent := make(chan struct{})
			p.mu.Lock()
			p.held = append(p.held, func() { up.Write(cmd); close(sent) })
			p.mu.Unlock()
			c.Close()
			select {
			case <-sent:
				// Redis reads the command before it sees the connection close.
				time.Sleep(50 * time.Millisecond)
			case <-time.After(time.Minute): // hang guard
			}
			return
		}
		if n > 0 && p.loseReq.Load() > 0 {
			if p.skip.Add(-1) < 0 {
				p.loseReq.Add(-1)
				c.Close()
				return
			}
		}
		if n > 0 {
			if _, err := up.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward copies Redis's replies from src to the client (dst); a reply read
// while *lose is above zero, once p.skip reads more have passed, is dropped
// with Redis's connection instead: the command ran, the client never hears
// of it.
func (p *proxy) forward(dst, src net.Conn, lose *atomic.Int32) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && lose.Load() > 0 {
			if p.skip.Add(-1) < 0 {
				lose.Add(-1)
				src.Close()
				return
			}
		}
		if n > 0 {
			p.mu.Lock()
			held := p.held
			p.held = nil
			p.mu.Unlock()
			for _, pass := range held {
				pass()
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every connection through the proxy and refuses new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore accepts connections again.
func (p *proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// TestNetworkCutFence: worker A reaches Redis through a proxy, claims a job
// and is cut off mid-job; its lease expires, worker B (direct) recovers and
// completes the job; when A's link returns, A's late completion, extension
// and release are all rejected by the fence, and B's result stands.
func TestNetworkCutFence(t *testing.T) {
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr)
	prefix := WithPrefix("fence")
	a, err := Open("redis://"+px.addr()+"/0?dial_timeout=1s&read_timeout=1s&write_timeout=1s&max_retries=0", prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(srv.URL(0), prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	j := &backend.Job{ID: "01J00000000000000000000001", Task: "t", Queue: "q", State: backend.StateQueued,
		MaxAttempts: 3, RunAt: t0, CreatedAt: t0}
	if _, err := b.Enqueue(ctx, []*backend.Job{j}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "A", Now: t0, LeaseFor: 10 * time.Second})
	if err != nil || len(got) != 1 {
		t.Fatalf("A's claim = %v, %v", got, err)
	}
	ja := got[0]

	px.Cut()
	if _, err := a.Extend(ctx, []backend.Lease{ja.Lease()}, t0.Add(20*time.Second)); err == nil {
		t.Fatal("A extended its lease through a cut link")
	}
	// A's lease (until t0+10s) expires; B recovers and runs the job.
	if n, err := b.RecoverExpired(ctx, t0.Add(11*time.Second), 5); err != nil || n != 1 {
		t.Fatalf("B's RecoverExpired = %d, %v; want 1", n, err)
	}
	got, err = b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "B", Now: t0.Add(11 * time.Second), LeaseFor: 10 * time.Second})
	if err != nil || len(got) != 1 {
		t.Fatalf("B's claim = %v, %v", got, err)
	}
	jb := got[0]
	if jb.LeaseToken <= ja.LeaseToken {
		t.Fatalf("B's token %d is not above A's %d", jb.LeaseToken, ja.LeaseToken)
	}
	done := t0.Add(12 * time.Second)
	errs, err := b.Complete(ctx, []backend.Outcome{{Lease: jb.Lease(), State: backend.StateSucceeded, FinishedAt: done,
		Result: []byte("B"), Attempt: backend.Attempt{Number: jb.Attempt, StartedAt: jb.StartedAt, FinishedAt: done, Worker: "B", Outcome: backend.OutcomeSucceeded}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("B's Complete = %v, %v", errs, err)
	}

	px.Restore()
	late := t0.Add(13 * time.Second)
	// go-redis may hand out a pooled connection the cut closed: the first
	// call after the link returns can fail; the guard retries until it does not.
	var errsA []error
	for deadline := time.Now().Add(60 * time.Second); ; {
		errsA, err = a.Complete(ctx, []backend.Outcome{{Lease: ja.Lease(), State: backend.StateSucceeded, FinishedAt: late,
			Result: []byte("A"), Attempt: backend.Attempt{Number: ja.Attempt, StartedAt: ja.StartedAt, FinishedAt: late, Worker: "A", Outcome: backend.OutcomeSucceeded}}})
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("A's late Complete failed as a call: %v", err)
	}
	if !errors.Is(errsA[0], backend.ErrLeaseLost) {
		t.Fatalf("A's late Complete = %v, want ErrLeaseLost", errsA[0])
	}
	if lost, err := a.Extend(ctx, []backend.Lease{ja.Lease()}, late.Add(time.Minute)); err != nil || len(lost) != 1 {
		t.Fatalf("A's late Extend = %v, %v; want its lease lost", lost, err)
	}
	if err := a.Release(ctx, []backend.Lease{ja.Lease()}); err != nil {
		t.Fatal(err)
	}
	final, err := b.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != backend.StateSucceeded || string(final.Result) != "B" {
		t.Fatalf("job after A's late calls: %s result %q, want succeeded with B's result", final.State, final.Result)
	}
	if n := len(final.Attempts); n != 2 || final.Attempts[0].Outcome != backend.OutcomeLost || final.Attempts[1].Worker != "B" {
		t.Fatalf("history %+v, want A's lost attempt then B's", final.Attempts)
	}
}

// TestDamagedRecordQuarantined: a job whose stored fields cannot be decoded
// is quarantined by Claim, which goes on to claim the next job; Get shows it.
func TestDamagedRecordQuarantined(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var jobs []*backend.Job
	for _, id := range []string{"01J00000000000000000000001", "01J00000000000000000000002", "01J00000000000000000000003"} {
		jobs = append(jobs, &backend.Job{ID: id, Task: "t", Queue: "q", State: backend.StateQueued, MaxAttempts: 1, RunAt: t0, CreatedAt: t0})
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	// Damage the first job's static part and the second's attempt counter.
	if err := b.c.HSet(ctx, b.qp("q")+"j:"+jobs[0].ID, "d", "\xc1garbage").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.c.HSet(ctx, b.qp("q")+"j:"+jobs[1].ID, "at", "x").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w", Now: t0, LeaseFor: time.Minute})
	if err != nil || len(got) != 1 || got[0].ID != jobs[2].ID {
		t.Fatalf("Claim = %v, %v; want the one intact job %s", got, err, jobs[2].ID)
	}
	for _, j := range jobs[:2] {
		g, err := b.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g.State != backend.StateQuarantined || g.Error == "" {
			t.Fatalf("damaged job %s: state %s error %q, want quarantined with an error", j.ID, g.State, g.Error)
		}
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[backend.State]int{}
	for _, s := range stats {
		counts[s.State] += s.Count
	}
	if counts[backend.StateQuarantined] != 2 || counts[backend.StateRunning] != 1 {
		t.Fatalf("stats %v, want 2 quarantined and 1 running", counts)
	}
}

// TestRetentionByCount: with WithRetention(2, 0) a queue keeps its two
// newest finished jobs; the older ones are deleted, records and indexes.
func TestRetentionByCount(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv, WithRetention(2, 0))
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5 {
		id := "01J0000000000000000000000" + string(rune('1'+i))
		ids = append(ids, id)
		if _, err := b.Enqueue(ctx, []*backend.Job{{ID: id, Task: "t", Queue: "q", State: backend.StateQueued, MaxAttempts: 1,
			RunAt: t0, CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		got, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w", Now: t0, LeaseFor: time.Minute})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %v", got, err)
		}
		fin := t0.Add(time.Duration(i+1) * time.Second)
		if errs, err := b.Complete(ctx, []backend.Outcome{{Lease: got[0].Lease(), State: backend.StateSucceeded, FinishedAt: fin}}); err != nil || errs[0] != nil {
			t.Fatalf("complete: %v %v", errs, err)
		}
	}
	for i, id := range ids {
		_, err := b.Get(ctx, id)
		if kept := i >= 3; kept != (err == nil) {
			t.Fatalf("job %d (%s): Get error %v, want kept=%v", i, id, err, kept)
		}
	}
	stats, _ := b.Stats(ctx, t0)
	if len(stats) != 1 || stats[0].Count != 2 {
		t.Fatalf("stats %+v, want 2 succeeded", stats)
	}
	if n, _ := b.c.HLen(ctx, b.loc).Result(); n != 2 {
		t.Fatalf("location hash holds %d ids, want 2", n)
	}
}

// TestRetentionByAge: with WithRetention(0, 1h) and a clock at t0+2h, the
// jobs finished before t0+1h are deleted by the next Complete and by Prune;
// newer ones stay.
func TestRetentionByAge(t *testing.T) {
	srv := redistest.Start(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	b := openTest(t, srv, WithRetention(0, time.Hour), WithClock(func() time.Time { return clock }))
	ctx := t.Context()
	finish := func(id string, at time.Time) {
		t.Helper()
		if _, err := b.Enqueue(ctx, []*backend.Job{{ID: id, Task: "t", Queue: "q", State: backend.StateQueued, MaxAttempts: 1,
			RunAt: t0, CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		got, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w", Now: at, LeaseFor: time.Minute})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %v", got, err)
		}
		if errs, err := b.Complete(ctx, []backend.Outcome{{Lease: got[0].Lease(), State: backend.StateSucceeded, FinishedAt: at}}); err != nil || errs[0] != nil {
			t.Fatalf("complete: %v %v", errs, err)
		}
	}
	finish("01J00000000000000000000001", t0)
	finish("01J00000000000000000000002", t0.Add(30*time.Minute))
	clock = t0.Add(2 * time.Hour)
	finish("01J00000000000000000000003", t0.Add(90*time.Minute)) // its Complete prunes the two older ones
	for id, kept := range map[string]bool{"01J00000000000000000000001": false, "01J00000000000000000000002": false, "01J00000000000000000000003": true} {
		if _, err := b.Get(ctx, id); kept != (err == nil) {
			t.Fatalf("job %s: Get error %v, want kept=%v", id, err, kept)
		}
	}
	clock = t0.Add(3 * time.Hour)
	if n, err := b.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want the last job deleted", n, err)
	}
}
