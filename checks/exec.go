package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// exec runs the check's program with its arguments, without a shell. On
// the live root it runs with no capabilities, in host.MinimalEnv plus the
// root the checks read in AZURELINUX_PROBE_ROOTFS (never the probe's own
// environment), through host.Run. Under any other root it runs only with
// sandbox: true, and then inside that root (host.RunSandboxed: chrooted, in
// its own namespaces without network, as nobody with no capabilities),
// argv[0] being a path in the image: nothing from an image runs on the
// host. Otherwise the check is skipped, with the reason. It passes on exit
// status 0. At the timeout the program is killed whole: its process group,
// and under the daemon's reaper (internal/host/reaper.go) its setsid
// descendants too.
func (env *Env) exec(ctx context.Context, e *execSpec) (Status, string) {
	if e.sandbox {
		return env.execSandboxed(ctx, e)
	}
	if !env.Paths.IsLiveRoot() {
		return StatusSkipped, fmt.Sprintf("exec checks run programs only on the live root (/), not under %s; set sandbox: true to run %s inside the image", env.Paths.RootFS, e.argv[0])
	}
	out := &limitedBuffer{max: 4096}
	start := time.Now()
	_, err := host.Run(ctx, host.Cmd{
		Path: e.argv[0], Args: e.argv[1:],
		Env:     append(append([]string(nil), host.MinimalEnv...), "AZURELINUX_PROBE_ROOTFS="+env.Paths.RootFS),
		Stdout:  out,
		Stderr:  out,
		Timeout: e.timeout,
	})
	elapsed := time.Since(start).Round(time.Millisecond)
	last := lastLine(out.String())
	switch {
	case errors.Is(err, host.ErrTimeout) || ctx.Err() != nil:
		return StatusFail, fmt.Sprintf("%s timed out after %s%s", e.argv[0], e.timeout, suffix(last))
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return StatusFail, fmt.Sprintf("%s: %v%s", e.argv[0], ee.ProcessState, suffix(last))
		}
		return StatusFail, fmt.Sprintf("%s: %v", e.argv[0], unwrapPath(err))
	}
	return StatusPass, fmt.Sprintf("%s exited 0 in %s%s", e.argv[0], elapsed, suffix(last))
}

// execSandboxed runs an exec check's program inside the checked root.
func (env *Env) execSandboxed(ctx context.Context, e *execSpec) (Status, string) {
	start := time.Now()
	res, err := host.RunSandboxed(ctx, env.Paths.Root().Root(), host.Cmd{Path: e.argv[0], Args: e.argv[1:],
		Env: append(slices.Clone(host.MinimalEnv), "AZURELINUX_PROBE_ROOTFS=/"), Timeout: e.timeout, MaxOutput: 64 << 10})
	elapsed := time.Since(start).Round(time.Millisecond)
	last := lastLine(res.Output)
	switch {
	case err == nil:
		return StatusPass, fmt.Sprintf("%s exited 0 in %s inside %s%s", e.argv[0], elapsed, env.Paths.RootFS, suffix(last))
	case res.Exited:
		return StatusFail, fmt.Sprintf("%s (inside %s): %v%s", e.argv[0], env.Paths.RootFS, err, suffix(last))
	case errors.Is(err, host.ErrTimeout), errors.Is(err, host.ErrOutputLimit):
		return StatusFail, fmt.Sprintf("%s inside %s: %v%s", e.argv[0], env.Paths.RootFS, err, suffix(last))
	}
	// The sandbox could not be set up (not root, no such program in the
	// image): nothing was judged.
	return StatusError, fmt.Sprintf("%s: sandbox under %s: %v%s", e.argv[0], env.Paths.RootFS, err, suffix(last))
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return strings.ToValidUTF8(l, "?")
}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > b.max {
		keep := b.buf.Bytes()[b.buf.Len()-b.max:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
