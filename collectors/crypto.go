package collectors

import (
	"fmt"
	"regexp"
	"strings"
)

// cryptoPolicyInfoFact is the system-wide crypto policy, update-crypto-
// policies(8) (userlandCollector.updateCryptoPolicy below), served by the
// userland collector.
var cryptoPolicyInfoFact = declare(Fact{
	Collector: "userland", Subsystem: "crypto", Name: "policy_info",
	Help:   "The system-wide crypto policy applied (/etc/crypto-policies/state/current, else the configured one); constant 1.",
	Labels: []string{"policy"},
})

var cryptoPolicyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)*$`)

// updateCryptoPolicy reads the policy update-crypto-policies applied last,
// e.g. DEFAULT, FIPS or FIPS:OSPP; where it never ran, the configured one
// (/etc/crypto-policies/config, which may hold comments).
func (c *userlandCollector) updateCryptoPolicy(m *Metrics) error {
	p := c.paths.Root("etc/crypto-policies/state/current")
	v, err := readValue(p)
	if isNotExist(err) {
		p = c.paths.Root("etc/crypto-policies/config")
		var text string
		text, err = readText(p, maxValueSize)
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		v = strings.Join(lines, "\n")
		if err == nil && v == "" {
			err = fmt.Errorf("%s: no policy", p)
		}
	}
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("crypto policy: %w", err)
	}
	if n := strings.Count(v, "\n") + 1; n > 1 {
		return fmt.Errorf("crypto policy: %s: want one policy name, got %d lines", p, n)
	}
	if !cryptoPolicyRE.MatchString(v) {
		return fmt.Errorf("crypto policy: %s: not a policy name: %s", p, quoteOutput(v))
	}
	m.Set(cryptoPolicyInfoFact, 1, v)
	return nil
}
