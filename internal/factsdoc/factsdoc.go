// Package factsdoc is the facts document that `azurelinux-probe facts
// --format=json` prints and `baseline save` writes, and drift: the facts
// that differ between a saved document and now. Which labels name one object
// and which facts change by themselves come from the facts' declarations
// (collectors.Facts), not from lists of names here.
package factsdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Doc is the document `azurelinux-probe facts --format=json` prints and
// `baseline save` writes: every collector with its samples, in a stable,
// sorted order.
type Doc struct {
	Collectors []CollectorFacts `json:"collectors"`
}

// CollectorFacts is one collector's refresh in a Doc.
type CollectorFacts struct {
	Name    string `json:"name"`
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
	// NotApplicable is why the collector's facts do not exist under the
	// root (an image that has not booted), when they do not.
	NotApplicable   string   `json:"not_applicable,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"`
	Metrics         []Sample `json:"metrics"`
}

// Sample is one series in a Doc.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// String renders the sample as name{a="b",...} with sorted labels.
func (s Sample) String() string { return Render(s.Name, s.Labels, nil) }

// maxBaselineSize bounds a baseline file; a real one is tens of kilobytes.
const maxBaselineSize = 64 << 20

// Load reads a baseline written by `baseline save`. A file that is
// not one (empty, truncated, corrupt, or not a facts document) is an error
// that says so; the file is only ever read.
func Load(path string) (*Doc, error) {
	// Non-blocking and regular files only: a FIFO as --baseline.file must
	// not hang `check` or the daemon (internal/host/operator.go).
	b, err := host.ReadRegularFile(path, maxBaselineSize)
	if errors.Is(err, host.ErrTooLarge) {
		return nil, fmt.Errorf("baseline %s: larger than %d bytes: not a facts document", path, maxBaselineSize)
	}
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	doc, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("baseline %s is corrupt or truncated (write a new one with `azurelinux-probe baseline save`): %w", path, err)
	}
	return doc, nil
}

// Parse parses a facts document.
func Parse(b []byte) (*Doc, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty file")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var doc struct {
		Collectors *[]CollectorFacts `json:"collectors"`
	}
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("JSON ends early after %d bytes", len(b))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
		}
		return nil, fmt.Errorf("not a facts document: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the JSON document at byte %d", dec.InputOffset())
	}
	if doc.Collectors == nil {
		return nil, errors.New(`no "collectors" list: not a facts document`)
	}
	seen := map[string]bool{}
	for i, c := range *doc.Collectors {
		if c.Name == "" {
			return nil, fmt.Errorf("collector #%d has no name", i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("collector %s appears twice", c.Name)
		}
		seen[c.Name] = true
		for j, s := range c.Metrics {
			if s.Name == "" {
				return nil, fmt.Errorf("collector %s: sample #%d has no name", c.Name, j+1)
			}
		}
	}
	return &Doc{Collectors: *doc.Collectors}, nil
}

// Save writes b to path atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A reader (or a
// crash) sees the old file or the new one, never a truncated one.
func Save(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("baseline: write %s: %w", tmp.Name(), err)
	}
	// A baseline holds the host's facts (versions, addresses, tags): 0600,
	// or the mode of the file it replaces so that an operator's choice
	// (0640 for a monitoring group) survives a save.
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		mode = st.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("baseline: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("baseline: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
