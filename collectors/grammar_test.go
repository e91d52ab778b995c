package collectors

import (
	"regexp"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// TestGrammarsMatchTheirCountedForms checks each length-bounded grammar
// (internal/lenre) against the counted repetition it replaces, on values
// at and past each bound.
func TestGrammarsMatchTheirCountedForms(t *testing.T) {
	rep := strings.Repeat
	cases := []struct {
		name    string
		grammar host.Grammar
		counted string
		values  []string
	}{
		{"releaseRE", releaseRE, `^[0-9A-Za-z][0-9A-Za-z._+~-]{0,63}$`, []string{
			"", "6.18.31-1.3.azl4.x86_64", "5.15.0-1064-azure", "-6.18", ".", "6", rep("6", 64), rep("6", 65), "6.18 x", "../../etc",
		}},
		{"hostNameRE", hostNameRE, `^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`, []string{
			"", "node-1.example.com", "-a", "a", rep("a", 253), rep("a", 254), "a_b", "a b",
		}},
		{"rpmNameRE", rpmNameRE, `^[a-zA-Z0-9._+-]{1,255}$`, []string{"", "openssl-libs", "libstdc++", rep("a", 255), rep("a", 256), "a b", "a/b"}},
		{"kmsgNameRE", kmsgNameRE, `^[a-z][a-z0-9_]{0,62}$`, []string{"", "oom_kill", "1oom", "a", rep("a", 63), rep("a", 64), "Oom", "a-b"}},
	}
	for _, c := range cases {
		re := regexp.MustCompile(c.counted)
		for _, v := range c.values {
			if got, want := c.grammar.MatchString(v), re.MatchString(v); got != want {
				t.Errorf("%s.MatchString(%q) = %v, %s says %v", c.name, v, got, c.counted, want)
			}
		}
	}
}
