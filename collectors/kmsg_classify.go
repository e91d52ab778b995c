package collectors

import (
	_ "embed"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
	"go.yaml.in/yaml/v3"
)

//go:embed kmsg_categories.yml
var kmsgCategoriesYAML []byte

//go:embed nvidia_xid.yml
var nvidiaXidYAML []byte

// KmsgCategory is one category of the kernel log classification: a name
// (the category label) and the rules that put a record in it.
type KmsgCategory struct {
	Name  string     `yaml:"name"`
	Rules []KmsgRule `yaml:"rules"`
}

// KmsgRule is one regular expression of a category.
type KmsgRule struct {
	Name  string `yaml:"name"`
	Regex string `yaml:"regex"`
}

// Bounds of the classification table: the category label's cardinality and
// the cost of one record.
const (
	maxKmsgCategories = 64
	maxKmsgRules      = 512
	maxKmsgRegexLen   = 1024
)

var kmsgNameRE = lenre.MustCompile(`^[a-z][a-z0-9_]*$`, 1, 63)

type compiledRule struct {
	name    string
	literal string
	re      *regexp.Regexp
}

type compiledCategory struct {
	name  string
	rules []compiledRule
}

// kmsgClassifier puts a message in the first category with a matching rule.
type kmsgClassifier struct {
	cats []compiledCategory
}

// defaultKmsgCategories returns the embedded table.
func defaultKmsgCategories() ([]KmsgCategory, error) {
	var doc struct {
		Categories []KmsgCategory `yaml:"categories"`
	}
	if err := yaml.Unmarshal(kmsgCategoriesYAML, &doc); err != nil {
		return nil, fmt.Errorf("embedded kmsg_categories.yml: %w", err)
	}
	return doc.Categories, nil
}

// newKmsgClassifier builds the classifier of the embedded table with the
// config's categories laid over it: a category of the same name as an
// embedded one replaces its rules in place, the others are checked first.
func newKmsgClassifier(extra []KmsgCategory) (*kmsgClassifier, error) {
	base, err := defaultKmsgCategories()
	if err != nil {
		return nil, err
	}
	byName := map[string]int{}
	for i, c := range base {
		byName[c.Name] = i
	}
	var first []KmsgCategory
	seen := map[string]bool{}
	for _, c := range extra {
		if seen[c.Name] {
			return nil, fmt.Errorf("kmsg category %q: defined twice in the config", c.Name)
		}
		seen[c.Name] = true
		if i, ok := byName[c.Name]; ok {
			base[i] = c
		} else {
			first = append(first, c)
		}
	}
	return compileKmsgCategories(append(first, base...))
}

func compileKmsgCategories(cats []KmsgCategory) (*kmsgClassifier, error) {
	if len(cats) > maxKmsgCategories {
		return nil, fmt.Errorf("kmsg categories: %d, at most %d", len(cats), maxKmsgCategories)
	}
	cl := &kmsgClassifier{}
	names := map[string]bool{}
	total := 0
	for _, c := range cats {
		if !kmsgNameRE.MatchString(c.Name) {
			return nil, fmt.Errorf("kmsg category %q: a name is lower case letters, digits and _", c.Name)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("kmsg category %q: defined twice", c.Name)
		}
		names[c.Name] = true
		if len(c.Rules) == 0 {
			return nil, fmt.Errorf("kmsg category %q: no rules", c.Name)
		}
		cc := compiledCategory{name: c.Name}
		ruleNames := map[string]bool{}
		for _, r := range c.Rules {
			total++
			if total > maxKmsgRules {
				return nil, fmt.Errorf("kmsg categories: more than %d rules", maxKmsgRules)
			}
			if r.Name == "" || ruleNames[r.Name] {
				return nil, fmt.Errorf("kmsg category %q: rule %q: every rule needs a unique name", c.Name, r.Name)
			}
			ruleNames[r.Name] = true
			if r.Regex == "" || len(r.Regex) > maxKmsgRegexLen {
				return nil, fmt.Errorf("kmsg category %q rule %q: regex empty or longer than %d bytes", c.Name, r.Name, maxKmsgRegexLen)
			}
			re, err := regexp.Compile(r.Regex)
			if err != nil {
				return nil, fmt.Errorf("kmsg category %q rule %q: %w", c.Name, r.Name, err)
			}
			cc.rules = append(cc.rules, compiledRule{name: r.Name, literal: requiredLiteral(r.Regex), re: re})
		}
		cl.cats = append(cl.cats, cc)
	}
	return cl, nil
}

// requiredLiteral returns the longest literal that every match of expr
// contains (a top-level run of literal characters, case-sensitive), or ""
// when there is none. A substring search for it rejects almost every line
// before the regular expression runs.
func requiredLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	var subs []*syntax.Regexp
	switch re.Op {
	case syntax.OpConcat:
		subs = re.Sub
	case syntax.OpLiteral:
		subs = []*syntax.Regexp{re}
	}
	best := ""
	for _, s := range subs {
		if s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
			if l := string(s.Rune); len(l) > len(best) {
				best = l
			}
		}
	}
	return best
}

// classify returns the index of the category of msg, or -1.
func (c *kmsgClassifier) classify(msg string) int {
	for i := range c.cats {
		for _, r := range c.cats[i].rules {
			if r.literal != "" && !strings.Contains(msg, r.literal) {
				continue
			}
			if r.re.MatchString(msg) {
				return i
			}
		}
	}
	return -1
}

// names returns the category names in matching order.
func (c *kmsgClassifier) names() []string {
	out := make([]string, len(c.cats))
	for i, cat := range c.cats {
		out[i] = cat.name
	}
	return out
}

// xidInfo is one entry of the shipped Xid table.
type xidInfo struct {
	Xid      int    `yaml:"xid"`
	Severity string `yaml:"severity"`
	Name     string `yaml:"name"`
}

// loadXidTable parses the embedded Xid table.
func loadXidTable() ([]xidInfo, error) {
	var doc struct {
		Xids []xidInfo `yaml:"xids"`
	}
	if err := yaml.Unmarshal(nvidiaXidYAML, &doc); err != nil {
		return nil, fmt.Errorf("embedded nvidia_xid.yml: %w", err)
	}
	seen := map[int]bool{}
	for _, x := range doc.Xids {
		switch x.Severity {
		case "fatal", "application", "warning":
		default:
			return nil, fmt.Errorf("embedded nvidia_xid.yml: xid %d: severity %q", x.Xid, x.Severity)
		}
		if seen[x.Xid] || x.Xid <= 0 || x.Name == "" {
			return nil, fmt.Errorf("embedded nvidia_xid.yml: xid %d duplicated, invalid or unnamed", x.Xid)
		}
		seen[x.Xid] = true
	}
	return doc.Xids, nil
}

// parseXid extracts the PCI address and the code of an NVIDIA Xid line as
// NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/rc/kernel_rc.c
// prints it (portDbgPrintf of the Xid report): "NVRM: Xid
// (PCI:%04x:%02x:%02x): %d, pid=%s, name=%s, %s", and on a MIG GPU with
// " GPU-I:%02u GPU-CI:%02u" inside the parenthesis. The PCI address is
// lower-cased and must be hexadecimal digits and colons.
func parseXid(msg string) (pci string, xid int, ok bool) {
	const prefix = "NVRM: Xid (PCI:"
	i := strings.Index(msg, prefix)
	if i < 0 {
		return "", 0, false
	}
	rest := msg[i+len(prefix):]
	end := strings.Index(rest, "): ")
	if end <= 0 || end > 64 {
		return "", 0, false
	}
	pci, _, _ = strings.Cut(rest[:end], " ")
	pci = strings.ToLower(pci)
	if len(pci) < 4 || len(pci) > 16 {
		return "", 0, false
	}
	for _, ch := range pci {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch == ':' || ch == '.') {
			return "", 0, false
		}
	}
	rest = rest[end+3:]
	j := 0
	for j < len(rest) && j < 4 && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || (j < len(rest) && rest[j] != ',') {
		return "", 0, false
	}
	xid, err := strconv.Atoi(rest[:j])
	if err != nil {
		return "", 0, false
	}
	return pci, xid, true
}

// avcDenial is one SELinux denial with its bounded labels.
type avcDenial struct {
	scontext, tcontext, tclass string
	perms                      []string
	// serial is the audit record's serial ("audit(<sec>.<ms>:<serial>)"),
	// 0 when the text carries none.
	serial uint64
	// when is the audit timestamp in Unix seconds, 0 when absent.
	when float64
}

// maxAVCPerms bounds the permissions taken from one record.
const maxAVCPerms = 16

// parseAVC parses an SELinux AVC denial as security/selinux/avc.c
// avc_audit_pre_callback() and avc_audit_post_callback() format it
// ("avc:  denied  { read write } for  pid=... scontext=u:r:t:s0
// tcontext=u:r:t:s0 tclass=file permissive=0"), whether from the kernel
// (AUDIT_AVC) or from a userspace object manager (AUDIT_USER_AVC, inside
// msg='...'). Only the type of each context is kept.
func parseAVC(text string) (avcDenial, bool) {
	var d avcDenial
	i := strings.Index(text, "avc:  denied")
	if i < 0 {
		return d, false
	}
	if a := strings.Index(text, "audit("); a >= 0 && a < i {
		d.serial, d.when = parseAuditStamp(text[a+len("audit("):])
	}
	rest := text[i+len("avc:  denied"):]
	open, closeIdx := strings.IndexByte(rest, '{'), strings.IndexByte(rest, '}')
	if open < 0 || closeIdx < open {
		return d, false
	}
	for _, p := range strings.Fields(rest[open+1 : closeIdx]) {
		if len(d.perms) == maxAVCPerms {
			break
		}
		d.perms = append(d.perms, selinuxToken(p))
	}
	if len(d.perms) == 0 {
		return d, false
	}
	d.scontext, d.tcontext, d.tclass = "unknown", "unknown", "unknown"
	for _, f := range strings.Fields(rest[closeIdx+1:]) {
		switch {
		case strings.HasPrefix(f, "scontext="):
			d.scontext = selinuxType(f[len("scontext="):])
		case strings.HasPrefix(f, "tcontext="):
			d.tcontext = selinuxType(f[len("tcontext="):])
		case strings.HasPrefix(f, "tclass="):
			d.tclass = selinuxToken(strings.TrimRight(f[len("tclass="):], "'\""))
		}
	}
	return d, true
}

// parseAuditStamp parses "<sec>.<ms>:<serial>)" of kernel/audit.c
// audit_log_start() ("audit(%llu.%03lu:%u): ").
func parseAuditStamp(s string) (serial uint64, when float64) {
	end := strings.IndexByte(s, ')')
	if end < 0 || end > 40 {
		return 0, 0
	}
	ts, ser, ok := strings.Cut(s[:end], ":")
	if !ok {
		return 0, 0
	}
	serial, _ = strconv.ParseUint(ser, 10, 64)
	when, _ = strconv.ParseFloat(ts, 64)
	return serial, when
}

// selinuxType returns the type of a context user:role:type[:level], or
// "invalid" for a context of another shape.
func selinuxType(ctx string) string {
	parts := strings.SplitN(strings.Trim(ctx, "'\""), ":", 4)
	if len(parts) < 3 {
		return "invalid"
	}
	return selinuxToken(parts[2])
}

// selinuxToken bounds a type, class or permission name to what the SELinux
// policy language allows (identifiers of letters, digits, _ and .), at
// most 64 bytes; anything else is "invalid".
func selinuxToken(s string) string {
	if s == "" || len(s) > 64 {
		return "invalid"
	}
	for _, ch := range s {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '.' || ch == '-') {
			return "invalid"
		}
	}
	return s
}

// hardwareSeverity returns the severity of a hardware_error record: the
// CPER "event severity: %s" (drivers/firmware/efi/cper.c
// cper_severity_str(): recoverable, fatal, corrected, info), "uncorrected"
// for an EDAC UE, "corrected" for an EDAC CE, and "unknown" for MCE lines,
// whose severity needs the MCi_STATUS decoding of mcelog/rasdaemon.
func hardwareSeverity(msg string) string {
	if i := strings.Index(msg, "event severity: "); i >= 0 {
		s := msg[i+len("event severity: "):]
		for _, v := range []string{"recoverable", "fatal", "corrected", "info"} {
			if strings.HasPrefix(s, v) {
				return v
			}
		}
		return "unknown"
	}
	if strings.Contains(msg, " UE ") {
		return "uncorrected"
	}
	if strings.Contains(msg, " CE ") {
		return "corrected"
	}
	return "unknown"
}

// hardwareSeverities are the values of the severity label, each served
// from the first scrape.
var hardwareSeverities = []string{"corrected", "recoverable", "uncorrected", "fatal", "info", "unknown"}
