package devstack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The lines of OpenSearch 2.19's jvm.options that name paths relative to
// the working directory.
const shippedJVMOptions = `-Xms1g
-Xmx1g
-XX:HeapDumpPath=data
-XX:ErrorFile=logs/hs_err_pid%p.log
9-:-Xlog:gc*,gc+age=trace,safepoint:file=logs/gc.log:utctime,pid,tags:filecount=32,filesize=64m
`

func TestWriteSearchConfig(t *testing.T) {
	root := t.TempDir()
	dist := filepath.Join(root, "dist", "config")
	if err := os.MkdirAll(filepath.Join(dist, "jvm.options.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"jvm.options": shippedJVMOptions, "log4j2.properties": "status = error\n", "opensearch.yml": "# shipped\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dist, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf, data, logs := filepath.Join(root, "state", "config"), filepath.Join(root, "state", "data"), filepath.Join(root, "state", "logs")
	if err := writeSearchConfig(dist, conf, data, logs, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(conf, "jvm.options"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"-XX:HeapDumpPath=" + data + "\n",
		"-XX:ErrorFile=" + logs + "/hs_err_pid%p.log",
		"file=" + logs + "/gc.log:",
		"-Xms1g", // the heap is overridden by OPENSEARCH_JAVA_OPTS, not edited
	} {
		if !strings.Contains(got, want) {
			t.Errorf("jvm.options lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"=logs/", "=data\n"} {
		if strings.Contains(got, bad) {
			t.Errorf("jvm.options still has a relative path %q", bad)
		}
	}
	for name, body := range files {
		if name == "jvm.options" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(conf, name)); err != nil || string(b) != body {
			t.Errorf("%s not copied: %q, %v", name, b, err)
		}
	}
	if st, err := os.Stat(filepath.Join(conf, "jvm.options.d")); err != nil || !st.IsDir() {
		t.Errorf("jvm.options.d not copied: %v", err)
	}
}

func TestReachableByOthers(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open", "file")
	closed := filepath.Join(root, "closed", "file")
	for _, p := range []string{open, closed} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(closed), 0o700); err != nil {
		t.Fatal(err)
	}
	const stranger = 54321
	if err := reachableByOthers(open, stranger); err != nil && !strings.Contains(err.Error(), filepath.Dir(root)) {
		// Only the test's own temp dir ancestry may be closed on some systems.
		t.Errorf("open path: %v", err)
	}
	err := reachableByOthers(closed, stranger)
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(closed)) {
		t.Errorf("closed path: err = %v, want it to name %s", err, filepath.Dir(closed))
	}
}

// Elasticsearch 8.19's jvm.options name the gc log and error file bare
// (relative to the working directory); the heap dump path is not set.
const shippedESJVMOptions = `-XX:+HeapDumpOnOutOfMemoryError
-XX:ErrorFile=hs_err_pid%p.log
-Xlog:gc*,gc+age=trace,safepoint:file=gc.log:utctime,level,pid,tags:filecount=32,filesize=64m
`

// Elasticsearch rewrites its elasticsearch.yml at the first start
// (security auto-configuration): later starts rewrite jvm.options only.
func TestWriteSearchConfigKeepsTheServersOwnEdits(t *testing.T) {
	root := t.TempDir()
	dist := filepath.Join(root, "dist", "config")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"jvm.options": shippedESJVMOptions, "elasticsearch.yml": "# shipped\n"} {
		if err := os.WriteFile(filepath.Join(dist, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf, data, logs := filepath.Join(root, "state", "config"), filepath.Join(root, "state", "data"), filepath.Join(root, "state", "logs")
	if err := writeSearchConfig(dist, conf, data, logs, true); err != nil {
		t.Fatal(err)
	}
	const autoConfigured = "# shipped\nxpack.security.http.ssl:\n  enabled: true\n"
	if err := os.WriteFile(filepath.Join(conf, "elasticsearch.yml"), []byte(autoConfigured), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSearchConfig(dist, conf, data, logs, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(conf, "elasticsearch.yml")); string(b) != autoConfigured {
		t.Errorf("elasticsearch.yml overwritten: %q", b)
	}
	b, _ := os.ReadFile(filepath.Join(conf, "jvm.options"))
	for _, want := range []string{"-XX:ErrorFile=" + logs + "/hs_err_pid%p.log", "file=" + logs + "/gc.log:"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("jvm.options lacks %q:\n%s", want, b)
		}
	}
}

func TestHasFileUser(t *testing.T) {
	users := "elastic_admin:$2a$10$abc\nleasehold:$2a$10$def\n"
	if !hasFileUser(users, "leasehold") || hasFileUser(users, "leaseholder") || hasFileUser("", "leasehold") {
		t.Error("hasFileUser misreads a users file")
	}
}
