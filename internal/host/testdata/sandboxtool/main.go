// sandboxtool is what a planted image tool would do: report who it runs as,
// write a marker file, and try the network. The sandbox test builds it
// statically and puts it into a tree.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	status, _ := os.ReadFile("/proc/self/status")
	capEff := "unknown (no /proc)"
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			capEff = strings.TrimSpace(v)
		}
	}
	fmt.Printf("uid=%d gid=%d pid=%d capeff=%s\n", os.Getuid(), os.Getgid(), os.Getpid(), capEff)
	if err := os.WriteFile("/tmp/sandbox-marker", []byte("ran\n"), 0o644); err != nil {
		fmt.Println("marker:", err)
	} else {
		fmt.Println("marker: written")
	}
	if len(os.Args) > 1 {
		c, err := net.DialTimeout("tcp", os.Args[1], time.Second)
		if err != nil {
			fmt.Println("network: refused")
		} else {
			c.Close()
			fmt.Println("network: connected")
		}
	}
	if len(os.Args) > 2 {
		if _, err := os.Stat(os.Args[2]); err == nil {
			fmt.Println("sees the host")
		}
	}
	fmt.Println("version 1.2.3")
}
