// Command packext packs the browser extension for `make dist`: one zip
// for Chromium-based browsers and one for Firefox, whose manifest runs
// the background as a script (Firefox has no extension service worker),
// both with the operator's service address in config.js.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

func main() {
	src := flag.String("src", "extension", "the extension's folder")
	out := flag.String("out", "dist", "where the zips go")
	control := flag.String("control", "", "the default service address written into config.js; empty: as in the folder")
	flag.Parse()
	if err := pack(*src, *out, *control); err != nil {
		fmt.Fprintln(os.Stderr, "packext:", err)
		os.Exit(1)
	}
}

func pack(src, out, control string) error {
	raw, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		return err
	}
	var manifest map[string]any
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(src, "*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, browser := range []string{"chromium", "firefox"} {
		m := manifest
		if browser == "firefox" {
			m = firefoxManifest(manifest)
		}
		var mj bytes.Buffer
		enc := json.NewEncoder(&mj)
		enc.SetEscapeHTML(false) // "<all_urls>" as written
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			return err
		}
		if err := writeZip(filepath.Join(out, "veil-extension-"+browser+".zip"), files, mj.Bytes(), control); err != nil {
			return err
		}
	}
	return nil
}

// firefoxManifest is m with its background as a module script.
func firefoxManifest(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	bg, _ := m["background"].(map[string]any)
	sw, _ := bg["service_worker"].(string)
	c["background"] = map[string]any{"scripts": []string{sw}, "type": "module"}
	return c
}

func writeZip(path string, files []string, manifest []byte, control string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, name := range files {
		base := filepath.Base(name)
		if base == "README.md" {
			continue
		}
		var body []byte
		switch base {
		case "manifest.json":
			body = manifest
		case "config.js":
			if body, err = os.ReadFile(name); err != nil {
				return err
			}
			if control != "" {
				body = []byte("// Written by make dist.\nexport const defaultControl = " + strconv.Quote(control) + ";\n")
			}
		default:
			if body, err = os.ReadFile(name); err != nil {
				return err
			}
		}
		w, err := zw.Create(base)
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
