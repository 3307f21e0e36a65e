package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// javaReq is what a server needs of Java, for findJava.
type javaReq struct {
	product, version string // e.g. "OpenSearch", "2.19.6", for messages
	envVar           string // e.g. OPENSEARCH_JAVA_HOME, looked at first
	min, max         int    // accepted feature versions
}

// javaHome is a Java installation and its feature version (17 for 17.0.15).
type javaHome struct {
	dir   string
	major int
	from  string // where it was found, for messages
}

// findJava picks the Java that runs a server: the first acceptable of
// $<req.envVar> (e.g. OPENSEARCH_JAVA_HOME), $JAVA_HOME, the distribution's Java 17 and 21
// under jvmRoot (/usr/lib/jvm), and `java` on PATH. getenv and lookPath
// are os.Getenv and exec.LookPath outside tests. The error lists every
// candidate it rejected.
func findJava(ctx context.Context, req javaReq, getenv func(string) string, jvmRoot string, lookPath func(string) (string, error)) (javaHome, error) {
	var cands []javaHome
	add := func(dir, from string) {
		if dir != "" {
			cands = append(cands, javaHome{dir: dir, from: from})
		}
	}
	add(getenv(req.envVar), "$"+req.envVar)
	add(getenv("JAVA_HOME"), "$JAVA_HOME")
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	if arch != "" {
		add(filepath.Join(jvmRoot, "java-17-openjdk-"+arch), jvmRoot)
	}
	for _, v := range []string{"17", "21", "11"} {
		matches, _ := filepath.Glob(filepath.Join(jvmRoot, "*-"+v+"-*"))
		sort.Strings(matches)
		for _, m := range matches {
			add(m, jvmRoot)
		}
	}
	if java, err := lookPath("java"); err == nil {
		if real, err := filepath.EvalSymlinks(java); err == nil {
			add(filepath.Dir(filepath.Dir(real)), "java on PATH")
		}
	}

	var rejected []string
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c.dir] {
			continue
		}
		seen[c.dir] = true
		if _, err := os.Stat(filepath.Join(c.dir, "bin", "java")); err != nil {
			rejected = append(rejected, fmt.Sprintf("%s (%s): no bin/java", c.dir, c.from))
			continue
		}
		major, err := javaMajor(ctx, c.dir)
		if err != nil {
			rejected = append(rejected, fmt.Sprintf("%s (%s): %v", c.dir, c.from, err))
			continue
		}
		if major < req.min || major > req.max {
			rejected = append(rejected, fmt.Sprintf("%s (%s): Java %d", c.dir, c.from, major))
			continue
		}
		c.major = major
		return c, nil
	}
	if len(rejected) == 0 {
		rejected = append(rejected, "no Java found")
	}
	return javaHome{}, fmt.Errorf("find Java for %s %s (needs Java %d to %d, e.g. apt-get install openjdk-17-jre-headless, or set %s): %s",
		req.product, req.version, req.min, req.max, req.envVar, strings.Join(rejected, "; "))
}

// javaMajor reads the feature version of the Java at home from its
// release file, or from `java -version` when there is none.
func javaMajor(ctx context.Context, home string) (int, error) {
	if f, err := os.Open(filepath.Join(home, "release")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "JAVA_VERSION="); ok {
				return parseJavaVersion(strings.Trim(v, `"`))
			}
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(home, "bin", "java"), "-version").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("java -version: %w", err)
	}
	m := regexp.MustCompile(`version "([^"]+)"`).FindSubmatch(out)
	if m == nil {
		return 0, errors.New("java -version printed no version")
	}
	return parseJavaVersion(string(m[1]))
}

// parseJavaVersion turns "17.0.15", "21", "1.8.0_402" into 17, 21, 8.
func parseJavaVersion(v string) (int, error) {
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	if len(parts) == 0 {
		return 0, fmt.Errorf("unrecognised Java version %q", v)
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, fmt.Errorf("unrecognised Java version %q", v)
	}
	if n == 1 && len(parts) > 1 {
		if n, err = strconv.Atoi(parts[1]); err != nil {
			return 0, fmt.Errorf("unrecognised Java version %q", v)
		}
	}
	return n, nil
}
