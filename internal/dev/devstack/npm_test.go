package devstack

import (
	"embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNPMPins checks, for the servers and for the GeoIP database, that
// package.json pins exact versions, that the lock file resolves the same
// versions with sha512 integrity hashes (which npm ci verifies), and that
// both agree with the constants the code reports.
func TestNPMPins(t *testing.T) {
	sets := []struct {
		dir   string
		files embed.FS
		want  map[string]string
	}{
		{"npm", npmFiles, map[string]string{"kinesis-local": KinesisLocalVersion, "dynalite": DynaliteVersion}},
		{"geoip", geoipFiles, map[string]string{GeoIPPackage: GeoIPVersion}},
	}
	for _, set := range sets {
		t.Run(set.dir, func(t *testing.T) {
			var pkg struct {
				Dependencies map[string]string `json:"dependencies"`
			}
			b, err := set.files.ReadFile(set.dir + "/package.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &pkg); err != nil {
				t.Fatal(err)
			}
			var lock struct {
				LockfileVersion int `json:"lockfileVersion"`
				Packages        map[string]struct {
					Version   string `json:"version"`
					Integrity string `json:"integrity"`
				} `json:"packages"`
			}
			b, err = set.files.ReadFile(set.dir + "/package-lock.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &lock); err != nil {
				t.Fatal(err)
			}
			if len(pkg.Dependencies) != len(set.want) {
				t.Errorf("package.json dependencies = %v, want exactly %v", pkg.Dependencies, set.want)
			}
			for name, v := range set.want {
				if got := pkg.Dependencies[name]; got != v {
					t.Errorf("package.json pins %s at %q, want exactly %q", name, got, v)
				}
				if got := lock.Packages["node_modules/"+name].Version; got != v {
					t.Errorf("package-lock.json resolves %s to %q, want %q", name, got, v)
				}
			}
			for path, p := range lock.Packages {
				if path != "" && !strings.HasPrefix(p.Integrity, "sha512-") {
					t.Errorf("lock entry %s has no sha512 integrity", path)
				}
			}
		})
	}
}

func TestNodeMajor(t *testing.T) {
	for in, want := range map[string]int{"v20.20.2\n": 20, "v18.0.0": 18, "22.1.0": 22} {
		if got, err := nodeMajor(in); err != nil || got != want {
			t.Errorf("nodeMajor(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := nodeMajor("node"); err == nil {
		t.Error("nodeMajor accepted garbage")
	}
}

// TestLoopbackPreload runs the embedded preload under node and checks
// that servers asking for every interface, IPv6 or a random port all end
// up on 127.0.0.1.
func TestLoopbackPreload(t *testing.T) {
	if !strings.Contains(string(loopbackPreload), "net.Server.prototype.listen") || !strings.Contains(string(loopbackPreload), "'127.0.0.1'") {
		t.Fatal("preload does not patch net.Server.prototype.listen to 127.0.0.1")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := t.TempDir()
	preload := filepath.Join(dir, "preload.js")
	if err := os.WriteFile(preload, loopbackPreload, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
const net = require('net'), http = require('http'), https = require('https');
const calls = [
  s => s.listen(0, '0.0.0.0'), s => s.listen({port: 0, host: '::'}), s => s.listen(0),
  s => s.listen(), s => s.listen(0, 511), s => s.listen(0, () => {}), s => s.listen('0'),
];
let pending = 0;
for (const call of calls) for (const make of [() => net.createServer(), () => http.createServer(), () => https.createServer({})]) {
  const s = make(); pending++;
  s.on('listening', () => { console.log(s.address().address); s.close(); });
  call(s);
}
`
	out, err := exec.CommandContext(t.Context(), node, "-r", preload, "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 21 {
		t.Fatalf("got %d listeners, want 21:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if l != "127.0.0.1" {
			t.Errorf("a server listened on %s", l)
		}
	}
}
