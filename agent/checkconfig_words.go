package agent

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

func basicKind(k reflect.Kind) bool {
	return k == reflect.String || k == reflect.Bool || (k >= reflect.Int && k <= reflect.Float64)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// typeWords says what a Go type accepts, in words.
func typeWords(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 30s or 5m"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.Kind().String()
}

// kindWords names what a YAML node is.
func kindWords(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// decodeWords is a decoding error without yaml.v3's "unmarshal errors" and
// line prefixes (the problem has its own place).
func decodeWords(err error) string {
	msg := err.Error()
	if m := yamlTypeErrRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return strings.TrimPrefix(msg, "yaml: ")
}

func didYouMean(key string, valid []string) string {
	if near := collectors.Nearest(key, valid); near != "" {
		return fmt.Sprintf(" (did you mean %q?)", near)
	}
	if len(valid) > 0 {
		return " (valid keys: " + strings.Join(valid, ", ") + ")"
	}
	return ""
}
