package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// abandonedGauge returns the served
// azurelinux_probe_collector_abandoned_refreshes of collector name.
func abandonedGauge(t *testing.T, s *scheduler, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&factsCollector{sched: s, timing: true})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "azurelinux_probe_collector_abandoned_refreshes" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no azurelinux_probe_collector_abandoned_refreshes{collector=%q}", name)
	return 0
}

// TestInFlightGuardSurvivesReload: a refresh stuck past its timeout is
// counted as abandoned, and the collector rebuilt by a reload (a new job,
// a new collector value, the same name) does not start a second refresh
// on the hung source until the first returns (issue 14, case 4: one stuck
// OS thread per SIGHUP).
func TestInFlightGuardSurvivesReload(t *testing.T) {
	hung := &fakeCollector{facts: []string{"x"}, block: make(chan struct{})}
	j := testJob("hung", hung)
	j.timeout = 50 * time.Millisecond
	s := newTestScheduler()
	s.events = make(chan string, 100)
	s.Start(&collectorSet{jobs: []*job{j}})
	defer s.Stop()
	waitEvent(t, s.events, "published hung")
	if snap := s.Snapshots()["hung"]; snap.Success || errString(snap.Err) != "timed out after 50ms" {
		t.Fatalf("hung refresh: %+v", snap)
	}
	if got := abandonedGauge(t, s, "hung"); got != 1 {
		t.Errorf("abandoned refreshes %v, want 1", got)
	}

	// The reload: a fresh collector under the same name.
	fresh := &fakeCollector{facts: []string{"y"}, started: make(chan struct{})}
	for range 3 {
		j2 := testJob("hung", fresh)
		s.Start(&collectorSet{jobs: []*job{j2}})
		waitEvent(t, s.events, "published hung")
		if snap := s.Snapshots()["hung"]; snap.Success || !strings.Contains(errString(snap.Err), "previous refresh still running") {
			t.Fatalf("refresh after reload: %+v", snap)
		}
	}
	select {
	case <-fresh.started:
		t.Fatal("the rebuilt collector ran while the abandoned refresh still runs")
	default:
	}
	if got := abandonedGauge(t, s, "hung"); got != 1 {
		t.Errorf("abandoned refreshes after 3 reloads %v, want still 1", got)
	}

	close(hung.block)
	waitEvent(t, s.events, "idle hung")
	if got := abandonedGauge(t, s, "hung"); got != 0 {
		t.Errorf("abandoned refreshes after the hung one returned %v, want 0", got)
	}
	s.Stop()
	s.RunOnce(context.Background())
	if snap := s.Snapshots()["hung"]; !snap.Success || len(snap.Metrics) != 1 {
		t.Errorf("after recovery: %+v", snap)
	}
}
