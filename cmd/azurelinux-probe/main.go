// Command azurelinux-probe serves facts about an Azure Linux host as
// Prometheus metrics, or prints them once (facts). See README.md.
package main

import (
	"os"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
)

func main() {
	os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr))
}
