package devstack

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseJavaVersion(t *testing.T) {
	tests := map[string]int{"17.0.15": 17, "21": 21, "1.8.0_402": 8, "25.0.1+8": 25, "11.0.2-ea": 11}
	for in, want := range tests {
		if got, err := parseJavaVersion(in); err != nil || got != want {
			t.Errorf("parseJavaVersion(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseJavaVersion("abc"); err == nil {
		t.Error("accepted garbage")
	}
}

// fakeJava makes a Java home with bin/java and a release file.
func fakeJava(t *testing.T, dir, version string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "java"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), []byte("IMPLEMENTOR=\"test\"\nJAVA_VERSION=\""+version+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFindJava(t *testing.T) {
	root := t.TempDir()
	jvm := filepath.Join(root, "jvm")
	j25 := fakeJava(t, filepath.Join(root, "temurin-25"), "25.0.1")
	j21 := fakeJava(t, filepath.Join(root, "jdk-21"), "21.0.3")
	j11 := fakeJava(t, filepath.Join(root, "jdk-11"), "11.0.2")
	fakeJava(t, filepath.Join(jvm, "java-17-openjdk-amd64"), "17.0.15")
	fakeJava(t, filepath.Join(jvm, "java-17-openjdk-arm64"), "17.0.15")
	noPath := func(string) (string, error) { return "", errors.New("not found") }
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	tests := []struct {
		name     string
		dist     searchDist
		env      map[string]string
		jvmRoot  string
		wantDir  string
		wantMaj  int
		wantErrs []string
	}{
		{name: "JAVA_HOME 25 is skipped for the distribution's 17", dist: openSearchDist, env: map[string]string{"JAVA_HOME": j25}, jvmRoot: jvm, wantMaj: 17},
		{name: "OPENSEARCH_JAVA_HOME wins", dist: openSearchDist, env: map[string]string{"OPENSEARCH_JAVA_HOME": j21, "JAVA_HOME": j25}, jvmRoot: jvm, wantDir: j21, wantMaj: 21},
		{name: "JAVA_HOME 21 accepted", dist: openSearchDist, env: map[string]string{"JAVA_HOME": j21}, jvmRoot: jvm, wantDir: j21, wantMaj: 21},
		{name: "ES_JAVA_HOME wins for Elasticsearch", dist: elasticsearchDist, env: map[string]string{"ES_JAVA_HOME": j21, "OPENSEARCH_JAVA_HOME": j25}, jvmRoot: jvm, wantDir: j21, wantMaj: 21},
		{name: "Elasticsearch refuses Java 11", dist: elasticsearchDist, env: map[string]string{"JAVA_HOME": j11}, jvmRoot: filepath.Join(root, "none"),
			wantErrs: []string{"Java 11", "Elasticsearch " + ElasticsearchVersion, "needs Java 17 to 24", "ES_JAVA_HOME"}},
		{name: "nothing acceptable", dist: openSearchDist, env: map[string]string{"JAVA_HOME": j25}, jvmRoot: filepath.Join(root, "none"),
			wantErrs: []string{"Java 25", "needs Java 11 to 23", "OPENSEARCH_JAVA_HOME"}},
		{name: "JAVA_HOME without bin/java", dist: openSearchDist, env: map[string]string{"JAVA_HOME": filepath.Join(root, "nothing")}, jvmRoot: filepath.Join(root, "none"),
			wantErrs: []string{"no bin/java"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findJava(t.Context(), tt.dist.javaReq(), env(tt.env), tt.jvmRoot, noPath)
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("found %+v, want an error", got)
				}
				for _, w := range tt.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.major != tt.wantMaj || (tt.wantDir != "" && got.dir != tt.wantDir) {
				t.Errorf("found %+v, want Java %d at %q", got, tt.wantMaj, tt.wantDir)
			}
		})
	}
}
