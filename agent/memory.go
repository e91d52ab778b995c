package agent

import (
	"log/slog"

	"github.com/azurelinux-probe/azurelinux-probe/internal/exepages"
)

// The daemon's resident memory is mostly pages of its own executable, not
// heap (docs/benchmarks.md, "Resident memory"). internal/exepages maps them
// a page at a time from its init on, and releasePages unmaps the ones that
// only start-up read: the package inits, the flags, the configuration, the
// checks and the first refresh of every collector at once.

// releasePages releases the executable's pages and logs how much at debug
// level; a failure only costs memory, so it is a warning.
func releasePages(logger *slog.Logger, when string) {
	n, err := exepages.Release()
	if err != nil {
		logger.Warn("release the executable's pages", "when", when, "err", err)
		return
	}
	logger.Debug("released the executable's pages", "when", when, "bytes", n)
}

// logPageByPage says once, at start, whether the executable is mapped a page
// at a time; where the kernel refused, it is mapped 64 KiB around each page
// touched and the daemon's RSS is some megabytes higher.
func logPageByPage(logger *slog.Logger) {
	if err := exepages.PageByPage.Err; err != nil {
		logger.Info("the kernel maps this executable 64 KiB around each page touched", "err", err)
		return
	}
	logger.Debug("this executable is mapped a page at a time", "bytes", exepages.PageByPage.Bytes)
}
