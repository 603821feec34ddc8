package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of `manager validate`")

// TestValidateGolden runs `manager validate` on each testdata/validate/<case>.yaml and
// compares what it prints with <case>.golden; the case name says whether it must exit
// non-zero (refuses/off-list) or not.
func TestValidateGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/validate/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, input := range inputs {
		name := strings.TrimSuffix(filepath.Base(input), ".yaml")
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := runValidate([]string{input}, nil, &out)
			wantRefused := !strings.HasSuffix(name, "-admitted")
			if got := errors.Is(err, errRefused); got != wantRefused {
				t.Fatalf("refused %v (error %v), want %v", got, err, wantRefused)
			}
			compareGolden(t, strings.TrimSuffix(input, ".yaml")+".golden", out.Bytes())
		})
	}
}

func TestValidateReadsStandardInputAndRefusesDuplicates(t *testing.T) {
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\ndata: {LOG_LEVEL: debug}\n"
	var out bytes.Buffer
	if err := runValidate([]string{"-"}, strings.NewReader(doc), &out); err != nil {
		t.Fatalf("an ordinary ConfigMap: %v", err)
	}
	if want := "ConfigMap ns/a: admitted\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	err := runValidate([]string{"-"}, strings.NewReader(doc+"---\n"+doc), &out)
	if err == nil || !strings.Contains(err.Error(), "ConfigMap ns/a is defined twice") {
		t.Errorf("error %v, want one naming the duplicate", err)
	}
}

// TestRenderGolden runs `manager render` on each testdata/render/<case>.yaml (with a proxy
// image, except for the no-image case, which must say why nothing is rendered) and
// compares its output with <case>.golden.
func TestRenderGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/render/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, input := range inputs {
		name := strings.TrimSuffix(filepath.Base(input), ".yaml")
		t.Run(name, func(t *testing.T) {
			args := []string{"--proxy-image", "docker.io/istio/proxyv2:1.26.3", input}
			if name == "no-image" {
				args = []string{input}
			}
			var out bytes.Buffer
			err := runRender(args, nil, &out)
			if got, want := errors.Is(err, errNotRendered), name == "no-image"; got != want || (err != nil && !got) {
				t.Fatalf("error %v, want not-rendered %v", err, want)
			}
			compareGolden(t, strings.TrimSuffix(input, ".yaml")+".golden", out.Bytes())
		})
	}
}

// compareGolden compares output with a golden file, or rewrites it under -update.
func compareGolden(t *testing.T, golden string, output []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, output, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/manager -update)", err)
	}
	if string(output) != string(want) {
		t.Errorf("output differs from %s:\n%s", golden, output)
	}
}
