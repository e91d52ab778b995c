package agent

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"go.yaml.in/yaml/v3"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// optionFlag is a command-line flag for one collector option: a field of
// the collector's options struct tagged `flag:"<name>"` becomes
// --collector.<collector>.<name>, documented by its `help` tag. A flag given
// on the command line is laid over the configuration file, so that a one-off
// run (facts on a VM that hides its DMI tag) needs no config file.
type optionFlag struct {
	collector, key string
	kind           reflect.Kind
	set            bool
	boolValue      bool
	stringValue    string
}

// addOptionFlags registers the option flags of every collector. Only bool
// and string options can be flags.
func addOptionFlags(app *kingpin.Application) []*optionFlag {
	var out []*optionFlag
	for _, s := range collectors.Specs() {
		if s.Options == nil {
			continue
		}
		t := reflect.TypeOf(s.Options()).Elem()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("flag")
			if name == "" || (f.Type.Kind() != reflect.Bool && f.Type.Kind() != reflect.String) {
				continue
			}
			of := &optionFlag{collector: s.Name, key: strings.Split(f.Tag.Get("yaml"), ",")[0], kind: f.Type.Kind()}
			fl := app.Flag("collector."+s.Name+"."+name, f.Tag.Get("help")+
				fmt.Sprintf(" Overrides collectors.%s.%s of the configuration.", s.Name, of.key)).
				Action(func(*kingpin.ParseContext) error { of.set = true; return nil })
			if of.kind == reflect.Bool {
				fl.BoolVar(&of.boolValue)
			} else {
				fl.StringVar(&of.stringValue)
			}
			out = append(out, of)
		}
	}
	return out
}

// applyOptionFlags lays the flags given on the command line over cfg.
func applyOptionFlags(cfg *probeConfig, flags []*optionFlag) {
	for _, of := range flags {
		if !of.set {
			continue
		}
		value := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: of.stringValue}
		if of.kind == reflect.Bool {
			value = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(of.boolValue)}
		}
		cc := cfg.Collectors[of.collector]
		cc.options = append(cc.options[:len(cc.options):len(cc.options)], &yaml.Node{
			Kind: yaml.MappingNode, Tag: "!!map",
			Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: of.key}, value},
		})
		cfg.Collectors[of.collector] = cc
	}
}
