package backendtest

import (
	"fmt"
	"maps"
	"strings"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nuvom/nuvom/runtime/backend"
)

// metaCases state the contract of Job.Meta (see runtime/backend/meta.go).
func metaCases() []testCase {
	return []testCase{
		{"MetaRoundTrip", testMetaRoundTrip},
		{"MetaEmpty", testMetaEmpty},
		{"MetaManyKeys", testMetaManyKeys},
		{"MetaSurvivesRetry", testMetaSurvivesRetry},
	}
}

func withMeta(m map[string]string) func(*backend.Job) {
	return func(j *backend.Job) { j.Meta = maps.Clone(m) }
}

// wantMeta fails unless got equals want, nil and empty alike.
func (s *suite) wantMeta(why string, want, got map[string]string) {
	s.t.Helper()
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		s.t.Fatalf("%s: Meta differs (-want +got):\n%s", why, d)
	}
}

// sampleMeta is a trace context and a few awkward strings.
func sampleMeta() map[string]string {
	return map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "congo=t61rcWkgMzE",
		"empty":       "",
		"ünïcode·key": "välue\x00with a NUL",
		"spaces here": strings.Repeat("x", 300),
	}
}

func testMetaRoundTrip(s *suite) {
	m := sampleMeta()
	j := s.job("t", withMeta(m))
	plain := s.job("t")
	s.enqueue(j, plain)
	j.Meta["traceparent"] = "changed by the caller"
	j.Meta["added"] = "later"
	s.wantMeta("Get after Enqueue (the caller changed its map since)", m, s.get(j.ID).Meta)
	s.wantMeta("Get of a job enqueued without metadata in the same batch", nil, s.get(plain.ID).Meta)

	g := s.get(j.ID)
	if g.Meta != nil {
		g.Meta["traceparent"] = "changed through Get"
	}
	s.wantMeta("Get after changing the map a Get returned", m, s.get(j.ID).Meta)

	listed := s.list(backend.ListFilter{})
	found := false
	for _, l := range listed {
		if l.ID == j.ID {
			found = true
			s.wantMeta("List", m, l.Meta)
		}
	}
	if !found {
		s.t.Fatalf("List did not return job %s", j.ID)
	}

	claimed := s.claimAt(at(0), 10)
	if len(claimed) != 2 {
		s.t.Fatalf("Claim returned %d jobs, want 2", len(claimed))
	}
	for _, c := range claimed {
		switch c.ID {
		case j.ID:
			s.wantMeta("Claim", m, c.Meta)
			if c.Meta != nil {
				c.Meta["x"] = "changed through Claim"
			}
		case plain.ID:
			s.wantMeta("Claim of a job without metadata", nil, c.Meta)
		}
	}
	s.wantMeta("Get after changing the map a Claim returned", m, s.get(j.ID).Meta)
}

func testMetaEmpty(s *suite) {
	none := s.job("t")
	empty := s.job("t", func(j *backend.Job) { j.Meta = map[string]string{} })
	s.enqueue(none, empty)
	for _, id := range []string{none.ID, empty.ID} {
		s.wantMeta("Get of "+id, nil, s.get(id).Meta)
	}
	for _, c := range s.claimAt(at(0), 10) {
		s.wantMeta("Claim of "+c.ID, nil, c.Meta)
		s.completeOK(outcome(c, backend.StateSucceeded, at(sec)))
	}
	for _, id := range []string{none.ID, empty.ID} {
		s.wantMeta("Get after Complete of "+id, nil, s.get(id).Meta)
	}
}

func testMetaManyKeys(s *suite) {
	// A batch large enough to be split into several inserts, each job with
	// its own metadata, so that a backend mixing up rows shows it.
	var jobs []*backend.Job
	want := map[string]map[string]string{}
	for i := range 70 {
		m := map[string]string{}
		for k := range i % 7 * 30 {
			m[fmt.Sprintf("job%d-key%03d", i, k)] = strings.Repeat(fmt.Sprint(k%10), k%17)
		}
		j := s.job("t", withMeta(m))
		want[j.ID] = m
		jobs = append(jobs, j)
	}
	s.enqueue(jobs...)
	for id, m := range want {
		s.wantMeta("Get of "+id, m, s.get(id).Meta)
	}
	claimed := s.claimAt(at(0), 100)
	if len(claimed) != len(jobs) {
		s.t.Fatalf("Claim returned %d jobs, want %d", len(claimed), len(jobs))
	}
	for _, c := range claimed {
		s.wantMeta("Claim of "+c.ID, want[c.ID], c.Meta)
	}
}

func testMetaSurvivesRetry(s *suite) {
	m := sampleMeta()
	j := s.job("t", withMeta(m), withAttempts(2))
	s.enqueue(j)

	c := s.claimOne("w1", at(0), 30*sec)
	s.wantMeta("first claim", m, c.Meta)
	o := outcome(c, backend.StateRetrying, at(sec))
	o.RunAt = at(2 * sec)
	s.completeOK(o)
	s.wantMeta("Get after a retrying outcome", m, s.get(j.ID).Meta)

	c = s.claimOne("w1", at(2*sec), 30*sec)
	s.wantMeta("claim of the retry", m, c.Meta)
	if err := s.b.Release(s.t.Context(), []backend.Lease{c.Lease()}); err != nil {
		s.t.Fatalf("Release: %v", err)
	}
	s.wantMeta("Get after Release", m, s.get(j.ID).Meta)

	c = s.claimOne("w1", at(3*sec), 10*sec)
	if n := s.recoverExpired(at(time30)); n != 1 {
		s.t.Fatalf("RecoverExpired recovered %d jobs, want 1", n)
	}
	s.wantMeta("Get after RecoverExpired", m, s.get(j.ID).Meta)

	c = s.claimOne("w2", at(time30), 30*sec)
	s.wantMeta("claim after recovery", m, c.Meta)
	s.completeOK(outcome(c, backend.StateFailed, at(time30+sec)))
	s.wantMeta("Get of the failed job", m, s.get(j.ID).Meta)

	if err := s.b.Retry(s.t.Context(), j.ID, at(time30+2*sec)); err != nil {
		s.t.Fatalf("Retry: %v", err)
	}
	s.wantMeta("Get after Retry", m, s.get(j.ID).Meta)
	c = s.claimOne("w1", at(time30+2*sec), 30*sec)
	s.wantMeta("claim after Retry", m, c.Meta)
	if err := s.b.Cancel(s.t.Context(), j.ID, at(time30+3*sec)); err != nil {
		s.t.Fatalf("Cancel: %v", err)
	}
	s.wantMeta("Get after Cancel", m, s.get(j.ID).Meta)
}

// time30 is past the 10 s lease of testMetaSurvivesRetry's third claim.
const time30 = 30 * sec
