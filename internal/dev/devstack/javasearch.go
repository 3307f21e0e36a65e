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

// searchUser runs OpenSearch and Elasticsearch when `dev up` runs as
// root: both refuse to start as root ("can not run opensearch as root",
// "can not run elasticsearch as root") and have no setting to allow it.
const searchUser = "leasehold"

// searchJavaOpts sets the JVM heap (the *_JAVA_OPTS variable comes after
// jvm.options, so it overrides the shipped heap) and keeps the sockets
// IPv4, so listeners show as 127.0.0.1 rather than [::ffff:127.0.0.1].
const searchJavaOpts = "-Xms512m -Xmx512m -Djava.net.preferIPv4Stack=true"

// searchDist describes one of the two Java search servers the stack runs
// from a Maven Central integ-test zip: OpenSearch and Elasticsearch. Both
// are installed, configured and launched by the same code; what differs
// is here.
type searchDist struct {
	service string // OpenSearch or Elasticsearch: the service name
	product string // "OpenSearch", for messages
	version string
	path    string // the zip's path under the Maven repository root
	sha512  string // its SHA-512 as Maven Central publishes it (.sha512)
	// envPrefix names the launcher's variables: OPENSEARCH_JAVA_HOME,
	// ES_PATH_CONF, ...
	envPrefix string
	// minJava and maxJava bound the Java feature versions it runs on.
	minJava, maxJava int
	// keepConfig: write the config folder at the first start only, since
	// the server rewrites it then (Elasticsearch's security
	// auto-configuration adds its TLS settings to elasticsearch.yml).
	// jvm.options is rewritten at every start either way.
	keepConfig bool
	// prepare, when set, runs after the config folder is written and
	// before the server starts (Elasticsearch: its file-realm user).
	prepare func(ctx context.Context, s *Stack, home string, java javaHome, conf string) error
}

// zipName is e.g. "opensearch-2.19.6"; the zip's top folder and the
// distribution's folder under the stack's base.
func (d searchDist) zipName() string { return d.service + "-" + d.version }

func (d searchDist) javaReq() javaReq {
	return javaReq{product: d.product, version: d.version, envVar: d.envPrefix + "_JAVA_HOME", min: d.minJava, max: d.maxJava}
}

// searchBase is where the search servers' distributions and state live:
// dev.dir, except when running as root with a dev.dir that other users
// cannot reach (a checkout under /root, mode 0700). They then run as
// searchUser from /var/tmp/leasehold-opensearch-<hash of dev.dir>, since
// they could not read their own files otherwise. (The folder keeps its
// first name, which an existing stack already uses, for Elasticsearch
// too.)
func (s *Stack) searchBase() string {
	if os.Geteuid() != 0 || traversableByOthers(s.cfg.Dir) == nil {
		return s.cfg.Dir
	}
	sum := sha256.Sum256([]byte(s.cfg.Dir))
	return filepath.Join("/var/tmp", "leasehold-opensearch-"+hex.EncodeToString(sum[:6]))
}

func (s *Stack) searchHome(d searchDist) string {
	return filepath.Join(s.searchBase(), d.zipName())
}

func (s *Stack) searchState(d searchDist) string {
	return filepath.Join(s.searchBase(), "data", d.service)
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

// installSearch downloads (or finds cached) and unpacks the pinned zip of
// d. It blocks for the download.
func (s *Stack) installSearch(ctx context.Context, d searchDist) error {
	home := s.searchHome(d)
	jar := filepath.Join(home, "lib", d.zipName()+".jar")
	if _, err := os.Stat(jar); err == nil {
		s.log.Info(d.service+" installed", zap.String("dir", home))
		return nil
	}
	zipPath := filepath.Join(s.cacheDir(), d.zipName()+".zip")
	a := artifact{url: s.cfg.MavenURL + d.path, sha512: d.sha512}
	if err := fetch(ctx, s.cfg.HTTPClient, s.log, a, zipPath); err != nil {
		return fmt.Errorf("install %s: %w", d.service, err)
	}
	if base := s.searchBase(); base != s.cfg.Dir {
		s.log.Info("dev.dir is not reachable by other users; "+d.service+", which must run as an unprivileged user, lives elsewhere", zap.String("dir", base))
		if err := os.MkdirAll(base, 0o755); err != nil {
			return fmt.Errorf("install %s: %w", d.service, err)
		}
		if err := os.Chmod(base, 0o755); err != nil {
			return fmt.Errorf("install %s: %w", d.service, err)
		}
	}
	if err := os.RemoveAll(home); err != nil { // a half-unpacked leftover
		return fmt.Errorf("install %s: %w", d.service, err)
	}
	s.log.Info("unpacking "+d.service, zap.String("dir", home))
	if err := unzipTop(zipPath, d.zipName(), home); err != nil {
		return fmt.Errorf("install %s: %w", d.service, err)
	}
	return nil
}

// searchLaunch prepares the server's own config folder and returns how to
// start bin/<service>. Settings go on the command line (-E), so that they
// also identify the process in /proc both before and after the script
// execs java.
func (s *Stack) searchLaunch(ctx context.Context, svc *service, d searchDist) (launchSpec, error) {
	java, err := findJava(ctx, d.javaReq(), os.Getenv, "/usr/lib/jvm", exec.LookPath)
	if err != nil {
		return launchSpec{}, err
	}
	s.log.Info(d.service+" java", zap.String("java_home", java.dir), zap.Int("version", java.major), zap.String("found_by", java.from))
	home, state := s.searchHome(d), s.searchState(d)
	conf, data, logs, tmp := filepath.Join(state, "config"), filepath.Join(state, "data"), filepath.Join(state, "logs"), filepath.Join(state, "tmp")
	_, confErr := os.Stat(conf)
	writeAll := !d.keepConfig || confErr != nil
	for _, dir := range []string{conf, data, logs, tmp} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return launchSpec{}, fmt.Errorf("prepare %s: %w", d.service, err)
		}
	}
	if err := writeSearchConfig(filepath.Join(home, "config"), conf, data, logs, writeAll); err != nil {
		return launchSpec{}, fmt.Errorf("prepare %s config: %w", d.service, err)
	}
	if d.prepare != nil {
		if err := d.prepare(ctx, s, home, java, conf); err != nil {
			return launchSpec{}, fmt.Errorf("prepare %s: %w", d.service, err)
		}
	}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		uid, gid, err := s.ensureUser(ctx)
		if err != nil {
			return launchSpec{}, err
		}
		if err := chownTree(state, uid, gid); err != nil {
			return launchSpec{}, fmt.Errorf("prepare %s: %w", d.service, err)
		}
		for _, p := range []string{filepath.Join(home, "bin", d.service), state, java.dir} {
			if err := reachableByOthers(p, uid); err != nil {
				return launchSpec{}, fmt.Errorf("prepare %s: it runs as user %s (%s refuses to run as root), who cannot reach its files: %w; set dev.dir to a folder outside it, e.g. --dev.dir=/var/tmp/leasehold", d.service, searchUser, d.product, err)
			}
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}

	argv := []string{
		filepath.Join(home, "bin", d.service),
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
	p := d.envPrefix
	env := append(baseEnv(state),
		"JAVA_HOME="+java.dir,
		p+"_JAVA_HOME="+java.dir,
		p+"_PATH_CONF="+conf,
		p+"_TMPDIR="+tmp,
		p+"_JAVA_OPTS="+searchJavaOpts,
	)
	return launchSpec{argv: argv, env: env, dir: state, cred: cred, marker: "-Epath.data=" + data}, nil
}

// writeSearchConfig copies the distribution's config folder to conf (all
// of it when all is set, else only jvm.options), rewriting the paths
// jvm.options gives relative to the working directory (gc log, heap
// dumps, fatal error logs) to absolute ones under our state folder: with
// relative paths the JVM fails to open logs/gc.log.
func writeSearchConfig(dist, conf, data, logs string, all bool) error {
	return filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dist, path)
		if err != nil {
			return err
		}
		if !all && rel != "." && rel != "jvm.options" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
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
}

// rewriteJVMOptions makes the relative paths in jvm.options absolute:
// OpenSearch's name them under logs/ and data, Elasticsearch's bare.
func rewriteJVMOptions(opts, data, logs string) string {
	return strings.NewReplacer(
		"file=logs/gc.log", "file="+filepath.Join(logs, "gc.log"),
		"file=gc.log", "file="+filepath.Join(logs, "gc.log"),
		"-XX:HeapDumpPath=data", "-XX:HeapDumpPath="+data,
		"-XX:ErrorFile=logs/", "-XX:ErrorFile="+logs+"/",
		"-XX:ErrorFile=hs_err", "-XX:ErrorFile="+logs+"/hs_err",
	).Replace(opts)
}

// ensureUser returns the uid and gid of searchUser, creating it as a
// system user without a home or login shell when it does not exist. Only
// called when running as root.
func (s *Stack) ensureUser(ctx context.Context) (int, int, error) {
	u, err := user.Lookup(searchUser)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		useradd, lerr := exec.LookPath("useradd")
		if lerr != nil {
			return 0, 0, fmt.Errorf("create user %s to run OpenSearch and Elasticsearch (they refuse to run as root): %w", searchUser, lerr)
		}
		s.log.Info("creating system user to run opensearch and elasticsearch, which refuse to run as root", zap.String("user", searchUser))
		out, cerr := exec.CommandContext(ctx, useradd, "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", searchUser).CombinedOutput()
		if cerr != nil {
			return 0, 0, fmt.Errorf("create user %s to run the search servers: %w: %s", searchUser, cerr, strings.TrimSpace(string(out)))
		}
		u, err = user.Lookup(searchUser)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: %w", searchUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: uid %q: %w", searchUser, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: gid %q: %w", searchUser, u.Gid, err)
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
