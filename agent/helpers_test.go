package agent

import (
	"testing"
	"time"
)

// waitEvent reads scheduler events until want arrives, failing after 10 s.
func waitEvent(t *testing.T, events <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q event within 10s", want)
		}
	}
}
