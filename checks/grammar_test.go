package checks

import (
	"regexp"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// TestGrammarsMatchTheirCountedForms checks each grammar that is written
// with a length bound (internal/lenre) or as a word list against the
// counted repetition it replaces, on values at and past each bound.
func TestGrammarsMatchTheirCountedForms(t *testing.T) {
	word := func(n int) string { return strings.Repeat("a", n) }
	num := func(n int) string { return strings.Repeat("7", n) }
	words := func(w string, n int) string { return strings.TrimSuffix(strings.Repeat(w+" ", n), " ") }
	cases := []struct {
		name    string
		grammar host.Grammar
		counted string
		values  []string
	}{
		{"sysctlNumberRE", sysctlNumberRE, `^-?[0-9]{1,20}( -?[0-9]{1,20}){0,15}$`, []string{
			"", "0", "-1", "--1", "1 2", "1  2", " 1", "1 ", "4096 87380 6291456", "1\t2",
			num(20), num(21), "-" + num(20), "-" + num(21), words("1", 16), words("1", 17), words(num(20), 16), "1 x",
		}},
		{"sysctlWordsRE", sysctlWordsRE, `^[A-Za-z0-9._:/%|@+=,-]{1,64}( [A-Za-z0-9._:/%|@+=,-]{1,64}){0,15}$`, []string{
			"", "cubic", "|/usr/lib/systemd/systemd-coredump %P %u", "reno cubic", "a  b", "a\nb",
			word(64), word(65), words(word(64), 16), words("a", 17), "a b;c",
		}},
		{"statusRE", statusRE, `^[0-9]{3} [A-Za-z -]{0,40}$`, []string{
			"200 OK", "200 ", "200", "20 OK", "2000 OK", "404 Not Found", "200 " + word(40), "200 " + word(41), "200 OK\r",
		}},
		{"repoFileRE", repoFileRE, `^[A-Za-z0-9._+@-]{1,200}$`, []string{"", "azurelinux.repo", word(200), word(201), "a/b", "a b"}},
		{"repoIDRE", repoIDRE, `^[A-Za-z0-9._:+-]{1,100}$`, []string{"", "azurelinux-official-base", word(100), word(101), "a]b"}},
		{"repoVarName", repoVarName, `^[A-Za-z0-9_]{1,64}$`, []string{"", "basearch", word(64), word(65), "a-b"}},
		{"repoVarValue", repoVarValue, `^[A-Za-z0-9._-]{1,64}$`, []string{"", "4.0", "x86_64", word(64), word(65), "a/b", "../x"}},
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
