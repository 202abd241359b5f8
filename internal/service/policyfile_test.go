package service

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadPolicyFiles: policy_file with {lang} reads the English file
// and the translations that exist; without the English one it fails.
func TestReadPolicyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.en.txt", "English")
	write("policy.de.txt", "Deutsch")
	en, in, err := readPolicyFiles(filepath.Join(dir, "policy.{lang}.txt"))
	if err != nil || en != "English" || len(in) != 1 || in["de"] != "Deutsch" {
		t.Errorf("readPolicyFiles = %q, %v, %v", en, in, err)
	}
	en, in, err = readPolicyFiles(filepath.Join(dir, "policy.de.txt"))
	if err != nil || en != "Deutsch" || in != nil {
		t.Errorf("one file: %q, %v, %v", en, in, err)
	}
	if _, _, err := readPolicyFiles(filepath.Join(dir, "other.{lang}.txt")); err == nil {
		t.Error("a missing English file was accepted")
	}
}
