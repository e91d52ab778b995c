// Command pkgmeta writes the package metadata of the probe's binary (see
// internal/pkgmeta):
//
//	pkgmeta provides [-lines] < modules     the spec's bundled(golang(...))
//	                                        Provides, from "PATH VERSION"
//	                                        lines (go list -deps, or
//	                                        `go version -m` dep lines)
//	pkgmeta sbom -name N -version V [-license L] [-epoch S] BINARY
//	                                        a CycloneDX 1.5 SBOM of BINARY
//	                                        from its build information
//
// scripts/tarball.sh runs the first, the spec's %build the second (offline:
// it needs nothing but the standard library), and scripts/package-test.sh
// both to check the RPM.
package main

import (
	"debug/buildinfo"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/pkgmeta"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pkgmeta:", err)
		os.Exit(1)
	}
}

// maxInput bounds the module list read from standard input.
const maxInput = 1 << 20

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: pkgmeta provides|sbom ...")
	}
	switch args[0] {
	case "provides":
		fs := flag.NewFlagSet("provides", flag.ContinueOnError)
		lines := fs.Bool("lines", false, "print the Provides as rpm -q --provides does, not as a macro file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		in, err := io.ReadAll(io.LimitReader(stdin, maxInput+1))
		if err != nil {
			return err
		}
		if len(in) > maxInput {
			return fmt.Errorf("module list on standard input is larger than %d bytes", maxInput)
		}
		mods, err := pkgmeta.ParseModuleList(string(in))
		if err != nil {
			return fmt.Errorf("module list on standard input: %w", err)
		}
		if *lines {
			l, err := pkgmeta.ProvidesLines(mods)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(stdout, strings.Join(l, "\n")+"\n")
			return err
		}
		text, err := pkgmeta.ProvidesMacro(mods)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, text)
		return err
	case "sbom":
		fs := flag.NewFlagSet("sbom", flag.ContinueOnError)
		name := fs.String("name", "", "application name")
		version := fs.String("version", "", "application version")
		license := fs.String("license", "", "SPDX license expression of the application's own code")
		epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "creation time, seconds since the epoch (default $SOURCE_DATE_EPOCH; empty: no timestamp)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: pkgmeta sbom -name N -version V BINARY")
		}
		bin := fs.Arg(0)
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		opt := pkgmeta.SBOMOptions{Name: *name, Version: *version, License: *license}
		if *epoch != "" {
			s, err := strconv.ParseInt(*epoch, 10, 64)
			if err != nil || s < 0 {
				return fmt.Errorf("epoch %q is not a number of seconds", *epoch)
			}
			opt.Timestamp = time.Unix(s, 0)
		}
		out, err := pkgmeta.CycloneDX(bi, opt)
		if err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		_, err = stdout.Write(out)
		return err
	}
	return fmt.Errorf("unknown command %q (provides, sbom)", args[0])
}
