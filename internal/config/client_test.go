package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// clientFlags registers the flags the client and admin commands give,
// under config.Client's key names, and parses args.
func clientFlags(t testing.TB, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("control", "", "")
	fs.String("state", "", "")
	fs.String("socks", "", "")
	fs.String("data", Default().DataDir, "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestLoadClientPrecedence(t *testing.T) {
	file := writeFile(t, "control = \"https://file.example\"\nstate = \"/file/state\"\nsocks = \"127.0.0.1:1\"\n")
	def := Client{Control: DefaultControl, SOCKS: "127.0.0.1:1080", HTTPProxy: "127.0.0.1:8118"}
	env := envMap(map[string]string{"VEIL_CONTROL": "https://env.example", "VEIL_SOCKS": "127.0.0.1:2"})
	c, err := LoadClient(def, Sources{File: file, Env: env, Flags: clientFlags(t, "--socks=127.0.0.1:3")})
	if err != nil {
		t.Fatal(err)
	}
	want := Client{Control: "https://env.example", State: "/file/state", SOCKS: "127.0.0.1:3", HTTPProxy: "127.0.0.1:8118"}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if c, _ := LoadClient(def, Sources{Flags: clientFlags(t)}); c != def {
		t.Errorf("with nothing set: %+v, want the defaults", c)
	}
}

func TestLoadClientErrors(t *testing.T) {
	for name, src := range map[string]Sources{
		"unknown key":     {File: writeFile(t, "contrl = \"https://x.example\"\n")},
		"control in file": {File: writeFile(t, "control = \"veil.example\"\n")},
		"control in env":  {Env: envMap(map[string]string{"VEIL_CONTROL": "ftp://veil.example"})},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadClient(Client{}, src)
			if err == nil || !strings.HasPrefix(err.Error(), "config") || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line starting with config", err)
			}
		})
	}
}

// veil admin finds serve from serve's own configuration: the same file
// and VEIL_* variables give both the data directory and the address.
func TestLoadAdmin(t *testing.T) {
	file := writeFile(t, "data = \"/srv/veil\"\nhttp = \"0.0.0.0:8443\"\n")
	cases := []struct {
		name string
		src  Sources
		want Admin
	}{
		{"defaults", Sources{Flags: clientFlags(t)}, Admin{Data: "./veil-data", Control: "http://127.0.0.1:8080"}},
		{"serve's file", Sources{File: file, Flags: clientFlags(t)}, Admin{Data: "/srv/veil", Control: "http://127.0.0.1:8443"}},
		{"serve's variables", Sources{Env: envMap(map[string]string{"VEIL_HTTP": "[::]:9000", "VEIL_DATA": "/d"}), Flags: clientFlags(t)},
			Admin{Data: "/d", Control: "http://[::1]:9000"}},
		{"VEIL_CONTROL", Sources{File: file, Env: envMap(map[string]string{"VEIL_CONTROL": "https://veil.example"}), Flags: clientFlags(t)},
			Admin{Data: "/srv/veil", Control: "https://veil.example"}},
		{"flags last", Sources{File: file, Env: envMap(map[string]string{"VEIL_CONTROL": "https://veil.example", "VEIL_DATA": "/d"}),
			Flags: clientFlags(t, "--control=http://10.0.0.1:8080", "--data=/flag")}, Admin{Data: "/flag", Control: "http://10.0.0.1:8080"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadAdmin(tc.src)
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := LoadAdmin(Sources{File: writeFile(t, "htp = \"x\"\n")}); err == nil {
		t.Error("a config file serve refuses was accepted")
	}
	if _, err := LoadAdmin(Sources{Env: envMap(map[string]string{"VEIL_CONTROL": "veil.example"})}); err == nil {
		t.Error("a control URL without a scheme was accepted")
	}
}
