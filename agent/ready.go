package agent

import "fmt"

// Ready returns nil once every scheduled collector has published a
// snapshot: its first refresh finished, failed or passed its timeout
// (refresh publishes a failed snapshot then). Before, it names the first
// collector still waited for. It never blocks. The daemon's /-/ready also
// waits for the scheduler to be started (agent/cli.go serve).
func (s *scheduler) Ready() error {
	for _, j := range *s.jobs.Load() {
		if j.snap.Load() == nil {
			return fmt.Errorf("collector %s has not finished its first refresh (timeout %s)", j.name, j.timeout)
		}
	}
	return nil
}
