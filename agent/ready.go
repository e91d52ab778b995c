package agent

import (
	"errors"
	"fmt"
)

// Ready returns nil once a set of collectors is scheduled and every one of
// them has published a snapshot: its first refresh finished, failed or
// passed its timeout (refresh publishes a failed snapshot then). Before,
// it names the first collector still waited for. It never blocks.
func (s *Scheduler) Ready() error {
	if !s.started.Load() {
		return errors.New("collectors not started yet")
	}
	for _, j := range *s.jobs.Load() {
		if j.snap.Load() == nil {
			return fmt.Errorf("collector %s has not finished its first refresh (timeout %s)", j.name, j.timeout)
		}
	}
	return nil
}
