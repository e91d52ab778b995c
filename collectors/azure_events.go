package collectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
)

// Azure Scheduled Events (learn.microsoft.com/azure/virtual-machines/linux/
// scheduled-events): the platform announces maintenance (a freeze for a
// host update, a reboot, a redeploy) minutes before it happens. Reported so
// that platform maintenance on a lab VM is not mistaken for a regression of
// the image.

var (
	azureScheduledEventsUp = declare(Fact{Collector: "azure", Name: "scheduled_events_up",
		Help: "1 when the Scheduled Events endpoint answered with a valid document, 0 when not (the first request of a VM enables the service and may take minutes). " +
			"A failure here does not fail the collector."})
	azureScheduledEvent = declare(Fact{Collector: "azure", Name: "scheduled_event_info",
		Help: "Number of pending platform maintenance events of a type (Freeze, Reboot, Redeploy, Preempt, Terminate; other for any other) in a status (Scheduled, Started), " +
			"from IMDS /metadata/scheduledevents. Absent when none is pending.",
		Labels: []string{"type", "status"}, Identity: []string{"type", "status"},
		Bound: "6 types × 3 statuses"})
)

// scheduledEventsAPIVersion is the api-version of the Scheduled Events
// document the collector reads (EventStatus, EventSource since 2020-07-01).
const scheduledEventsAPIVersion = "2020-07-01"

var (
	eventTypes    = map[string]bool{"Freeze": true, "Reboot": true, "Redeploy": true, "Preempt": true, "Terminate": true}
	eventStatuses = map[string]bool{"Scheduled": true, "Started": true}
)

// scheduledEventsURL is the instance endpoint with its last path element
// replaced: /metadata/instance becomes /metadata/scheduledevents on the same
// host (the configured one: a test's loopback server, never a host the
// document names).
func scheduledEventsURL(instance string) (string, error) {
	u, err := url.Parse(instance)
	if err != nil {
		return "", err
	}
	u.Path = path.Join(path.Dir(u.Path), "scheduledevents")
	u.RawQuery = url.Values{"api-version": {scheduledEventsAPIVersion}}.Encode()
	return u.String(), nil
}

// updateScheduledEvents reports the pending events. Only a document that is
// not one is an error; an unreachable or slow endpoint reads as up 0.
func (c *azureCollector) updateScheduledEvents(ctx context.Context, m *Metrics) error {
	endpoint, err := scheduledEventsURL(c.opts.Endpoint)
	if err != nil {
		return fmt.Errorf("scheduled events: %w", err)
	}
	body, err := c.get(ctx, endpoint)
	if err != nil {
		m.Set(azureScheduledEventsUp, 0)
		c.logger.Debug("scheduled events not answered", "err", err)
		return nil
	}
	counts, err := parseScheduledEvents(body)
	if err != nil {
		m.Set(azureScheduledEventsUp, 0)
		return fmt.Errorf("scheduled events: %w", err)
	}
	m.Set(azureScheduledEventsUp, 1)
	keys := make([][2]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		m.Set(azureScheduledEvent, float64(counts[k]), k[0], k[1])
	}
	return nil
}

// maxScheduledEvents bounds the events read from one document.
const maxScheduledEvents = 256

// parseScheduledEvents counts the events by type and status, mapping
// values outside the documented grammar to "other".
func parseScheduledEvents(b []byte) (map[[2]string]int, error) {
	var doc struct {
		Incarnation *int `json:"DocumentIncarnation"`
		Events      []struct {
			EventType   string `json:"EventType"`
			EventStatus string `json:"EventStatus"`
		} `json:"Events"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a scheduled events document: %w", err)
	}
	if doc.Incarnation == nil || doc.Events == nil {
		return nil, errors.New("not a scheduled events document: no DocumentIncarnation or Events")
	}
	if len(doc.Events) > maxScheduledEvents {
		return nil, fmt.Errorf("%d events, more than %d", len(doc.Events), maxScheduledEvents)
	}
	out := map[[2]string]int{}
	for _, e := range doc.Events {
		t, s := e.EventType, e.EventStatus
		if !eventTypes[t] {
			t = "other"
		}
		if !eventStatuses[s] {
			s = "other"
		}
		out[[2]string{t, s}]++
	}
	return out, nil
}
