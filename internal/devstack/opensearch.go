package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// openSearchUser runs OpenSearch when `dev up` runs as root: OpenSearch
// refuses to start as root ("can not run opensearch as root") and 2.19
// has no setting to allow it.
const openSearchUser = "leasehold"

// openSearchJavaOpts sets the JVM heap (OPENSEARCH_JAVA_OPTS comes after
// jvm.options, so it overrides the shipped -Xms1g/-Xmx1g) and keeps the
// sockets IPv4, so listeners show as 127.0.0.1 rather than
// [::ffff:127.0.0.1].
const openSearchJavaOpts = "-Xms512m -Xmx512m -Djava.net.preferIPv4Stack=true"

// openSearchBase is where OpenSearch's distribution and state live:
// dev.dir, except when running as root with a dev.dir that other users
// cannot reach (a checkout under /root, mode 0700). OpenSearch then runs
// as openSearchUser from /var/tmp/leasehold-opensearch-<hash of dev.dir>,
// since it could not read its own files otherwise.
func (s *Stack) openSearchBase() string {
	if os.Geteuid() != 0 || traversableByOthers(s.cfg.Dir) == nil {
		return s.cfg.Dir
	}
	sum := sha256.Sum256([]byte(s.cfg.Dir))
	return filepath.Join("/var/tmp", "leasehold-opensearch-"+hex.EncodeToString(sum[:6]))
}

func (s *Stack) openSearchHome() string {
	return filepath.Join(s.openSearchBase(), "opensearch-"+OpenSearchVersion)
}

func (s *Stack) openSearchState() string {
	return filepath.Join(s.openSearchBase(), "data", OpenSearch)
}

// traversableByOthers reports the first folder on the way to dir (dir
// included) that users other than its owner cannot enter.
func traversableByOthers(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is mode %s", p, st.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// installOpenSearch downloads (or finds cached) and unpacks the pinned
// OpenSearch zip. It blocks for the download.
func (s *Stack) installOpenSearch(ctx context.Context) error {
	home := s.openSearchHome()
	jar := filepath.Join(home, "lib", "opensearch-"+OpenSearchVersion+".jar")
	if _, err := os.Stat(jar); err == nil {
		s.log.Info("opensearch installed", zap.String("dir", home))
		return nil
	}
	zipPath := filepath.Join(s.cacheDir(), "opensearch-"+OpenSearchVersion+".zip")
	a := artifact{url: s.cfg.MavenURL + openSearchPath, sha512: openSearchSHA512}
	if err := fetch(ctx, s.cfg.HTTPClient, s.log, a, zipPath); err != nil {
		return fmt.Errorf("install opensearch: %w", err)
	}
	if base := s.openSearchBase(); base != s.cfg.Dir {
		s.log.Info("dev.dir is not reachable by other users; opensearch, which must run as an unprivileged user, lives elsewhere", zap.String("dir", base))
		if err := os.MkdirAll(base, 0o755); err != nil {
			return fmt.Errorf("install opensearch: %w", err)
		}
		if err := os.Chmod(base, 0o755); err != nil {
			return fmt.Errorf("install opensearch: %w", err)
		}
	}
	if err := os.RemoveAll(home); err != nil { // a half-unpacked leftover
		return fmt.Errorf("install opensearch: %w", err)
	}
	s.log.Info("unpacking opensearch", zap.String("dir", home))
	if err := unzipTop(zipPath, "opensearch-"+OpenSearchVersion, home); err != nil {
		return fmt.Errorf("install opensearch: %w", err)
	}
	return nil
}

// openSearchLaunch prepares OpenSearch's own config folder and returns
// how to start bin/opensearch. Settings go on the command line (-E), so
// that they also identify the process in /proc both before and after the
// script execs java.
func (s *Stack) openSearchLaunch(ctx context.Context, svc *service) (launchSpec, error) {
	java, err := findJava(ctx, os.Getenv, "/usr/lib/jvm", exec.LookPath)
	if err != nil {
		return launchSpec{}, err
	}
	s.log.Info("opensearch java", zap.String("java_home", java.dir), zap.Int("version", java.major), zap.String("found_by", java.from))
	home, state := s.openSearchHome(), s.openSearchState()
	conf, data, logs, tmp := filepath.Join(state, "config"), filepath.Join(state, "data"), filepath.Join(state, "logs"), filepath.Join(state, "tmp")
	for _, d := range []string{conf, data, logs, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return launchSpec{}, fmt.Errorf("prepare opensearch: %w", err)
		}
	}
	if err := writeOpenSearchConfig(filepath.Join(home, "config"), conf, data, logs); err != nil {
		return launchSpec{}, err
	}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		uid, gid, err := s.ensureUser(ctx)
		if err != nil {
			return launchSpec{}, err
		}
		if err := chownTree(state, uid, gid); err != nil {
			return launchSpec{}, fmt.Errorf("prepare opensearch: %w", err)
		}
		for _, p := range []string{filepath.Join(home, "bin", "opensearch"), state, java.dir} {
			if err := reachableByOthers(p, uid); err != nil {
				return launchSpec{}, fmt.Errorf("prepare opensearch: it runs as user %s (OpenSearch refuses to run as root), who cannot reach its files: %w; set dev.dir to a folder outside it, e.g. --dev.dir=/var/tmp/leasehold", openSearchUser, err)
			}
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}

	argv := []string{
		filepath.Join(home, "bin", "opensearch"),
		"-Ecluster.name=leasehold-dev",
		"-Enode.name=leasehold-dev",
		"-Ediscovery.type=single-node",
		"-Enetwork.host=127.0.0.1",
		"-Ehttp.port=" + strconv.Itoa(svc.port),
		"-Etransport.port=" + strconv.Itoa(svc.port+100),
		"-Epath.data=" + data,
		"-Epath.logs=" + logs,
		// Without this a disk above 85/90/95% full stops shard allocation
		// and then makes every index read-only.
		"-Ecluster.routing.allocation.disk.threshold_enabled=false",
	}
	env := append(baseEnv(state),
		"JAVA_HOME="+java.dir,
		"OPENSEARCH_JAVA_HOME="+java.dir,
		"OPENSEARCH_PATH_CONF="+conf,
		"OPENSEARCH_TMPDIR="+tmp,
		"OPENSEARCH_JAVA_OPTS="+openSearchJavaOpts,
	)
	return launchSpec{argv: argv, env: env, dir: state, cred: cred, marker: "-Epath.data=" + data}, nil
}

// writeOpenSearchConfig copies the distribution's config folder to conf,
// rewriting the paths jvm.options gives relative to the working directory
// (gc log, heap dumps, fatal error logs) to absolute ones under our state
// folder: with relative paths the JVM fails to open logs/gc.log.
func writeOpenSearchConfig(dist, conf, data, logs string) error {
	err := filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dist, path)
		if err != nil {
			return err
		}
		target := filepath.Join(conf, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == "jvm.options" {
			b = []byte(rewriteJVMOptions(string(b), data, logs))
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("prepare opensearch config: %w", err)
	}
	return nil
}

// rewriteJVMOptions makes the relative paths in OpenSearch's jvm.options
// absolute.
func rewriteJVMOptions(opts, data, logs string) string {
	return strings.NewReplacer(
		"file=logs/gc.log", "file="+filepath.Join(logs, "gc.log"),
		"-XX:HeapDumpPath=data", "-XX:HeapDumpPath="+data,
		"-XX:ErrorFile=logs/", "-XX:ErrorFile="+logs+"/",
	).Replace(opts)
}

// ensureUser returns the uid and gid of openSearchUser, creating it as a
// system user without a home or login shell when it does not exist. Only
// called when running as root.
func (s *Stack) ensureUser(ctx context.Context) (int, int, error) {
	u, err := user.Lookup(openSearchUser)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		useradd, lerr := exec.LookPath("useradd")
		if lerr != nil {
			return 0, 0, fmt.Errorf("create user %s to run OpenSearch (it refuses to run as root): %w", openSearchUser, lerr)
		}
		s.log.Info("creating system user to run opensearch, which refuses to run as root", zap.String("user", openSearchUser))
		out, cerr := exec.CommandContext(ctx, useradd, "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", openSearchUser).CombinedOutput()
		if cerr != nil {
			return 0, 0, fmt.Errorf("create user %s to run OpenSearch: %w: %s", openSearchUser, cerr, strings.TrimSpace(string(out)))
		}
		u, err = user.Lookup(openSearchUser)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: %w", openSearchUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: uid %q: %w", openSearchUser, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: gid %q: %w", openSearchUser, u.Gid, err)
	}
	return uid, gid, nil
}

// chownTree gives every file under root to uid:gid.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// reachableByOthers checks that uid can traverse every folder above path
// and read path itself, judging by mode bits and owner (ACLs are ignored).
func reachableByOthers(path string, uid int) error {
	check := func(p string, need os.FileMode) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == uid {
			return nil
		}
		if st.Mode().Perm()&need != need {
			return fmt.Errorf("%s is mode %s", p, st.Mode().Perm())
		}
		return nil
	}
	if err := check(path, 0o004); err != nil {
		return err
	}
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if err := check(p, 0o001); err != nil {
			return err
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
