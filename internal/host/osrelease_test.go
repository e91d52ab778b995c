package host

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{
			name: "azure linux 4.0 unquoted VERSION_ID",
			in:   "NAME=\"Azure Linux\"\nID=azurelinux\nID_LIKE=fedora\nVERSION_ID=4.0\nVERSION_CODENAME=\"\"\n",
			want: map[string]string{"NAME": "Azure Linux", "ID": "azurelinux", "ID_LIKE": "fedora", "VERSION_ID": "4.0", "VERSION_CODENAME": ""},
		},
		{
			name: "azure linux 3.0 quoted VERSION_ID",
			in:   "NAME=\"Microsoft Azure Linux\"\nVERSION_ID=\"3.0\"\n",
			want: map[string]string{"NAME": "Microsoft Azure Linux", "VERSION_ID": "3.0"},
		},
		{
			name: "comments, blank lines, single quotes, escapes",
			in:   "# comment\n\n  ID='a b'\nPRETTY_NAME=\"say \\\"hi\\\" \\$HOME \\\\ \\`x\\`\"\nEMPTY=\n",
			want: map[string]string{"ID": "a b", "PRETTY_NAME": "say \"hi\" $HOME \\ `x`", "EMPTY": ""},
		},
		{
			name:    "truncated inside a quote keeps the lines before",
			in:      "ID=azurelinux\nPRETTY_NAME=\"Azure Linux 4.0 (Cloud Var",
			want:    map[string]string{"ID": "azurelinux"},
			wantErr: "line 2 (PRETTY_NAME): unterminated double quote",
		},
		{
			name:    "not KEY=value",
			in:      "ID=azurelinux\nthis is not a line\n1BAD=x\n",
			want:    map[string]string{"ID": "azurelinux"},
			wantErr: `line 2: not KEY=value: "this is not a line"`,
		},
		{
			name:    "text after the closing quote",
			in:      "NAME=\"Azure\" Linux\n",
			want:    map[string]string{},
			wantErr: "text after closing quote",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOSRelease(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("vars = %q, want %q", got, tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("NAME=\"Azure Linux\"\nID=azurelinux\nVERSION_ID=4.0\n")
	f.Add("PRETTY_NAME=\"a \\\"b\\\" \\\\\"\nX='y'\n# c\n\n")
	f.Add("PRETTY_NAME=\"unterminated")
	f.Fuzz(func(t *testing.T, s string) {
		vars, err := ParseOSRelease(s)
		if err == nil && strings.TrimSpace(s) != "" && len(vars) == 0 && !onlyComments(s) {
			t.Errorf("no variables and no error for %q", s)
		}
		for k := range vars {
			if !validEnvKey(k) {
				t.Errorf("invalid key %q returned", k)
			}
		}
	})
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
			return false
		}
	}
	return true
}
