package agent

import (
	"testing"
	"time"
)

// waitEvent reads scheduler events until every one of want has arrived, in
// any order, failing after 10 s.
func waitEvent(t *testing.T, events <-chan string, want ...string) {
	t.Helper()
	pending := map[string]bool{}
	for _, w := range want {
		pending[w] = true
	}
	deadline := time.After(10 * time.Second)
	for len(pending) > 0 {
		select {
		case e := <-events:
			delete(pending, e)
		case <-deadline:
			t.Fatalf("events %v did not arrive within 10s", pending)
		}
	}
}
