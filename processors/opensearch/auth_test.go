package opensearch

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/processors"
)

func TestAuthentication(t *testing.T) {
	awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	tests := []struct {
		name string
		mod  func(c *Config)
		want []string // substrings of every request's Authorization header
	}{
		{"none", func(*Config) {}, nil},
		{"basic", func(c *Config) { c.Username, c.Password = "admin", "s3cret" }, []string{"Basic YWRtaW46czNjcmV0"}},
		{"sigv4 es", func(c *Config) { c.AWSSigV4, c.AWSConfig = &SigV4Config{}, &awsCfg },
			[]string{"AWS4-HMAC-SHA256", "Credential=AKIDTEST/", "/eu-west-1/es/aws4_request"}},
		{"sigv4 aoss with region", func(c *Config) { c.AWSSigV4, c.AWSConfig = &SigV4Config{Service: "aoss", Region: "us-west-2"}, &awsCfg },
			[]string{"AWS4-HMAC-SHA256", "/us-west-2/aoss/aws4_request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster(t)
			cfg := testConfig(f)
			tt.mod(&cfg)
			_, ss, _ := newTestSink(t, cfg)
			if err := ss.Write(t.Context(), testMsgs(0, 2)); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			auth := append([]string(nil), f.auth...)
			f.mu.Unlock()
			if len(auth) != 2 { // the template and one bulk request
				t.Fatalf("%d requests", len(auth))
			}
			for _, a := range auth {
				if len(tt.want) == 0 && a != "" {
					t.Fatalf("Authorization %q, want none", a)
				}
				for _, w := range tt.want {
					if !strings.Contains(a, w) {
						t.Fatalf("Authorization %q lacks %q", a, w)
					}
				}
			}
		})
	}
}

func TestStartUpFailsOnWrongCredentials(t *testing.T) {
	for _, status := range []int{401, 403} {
		f := newFakeCluster(t)
		f.onTmpl = func(int) int { return status }
		_, err := New(t.Context(), testConfig(f), nil)
		var re *RequestError
		if !errors.As(err, &re) || re.Status != status {
			t.Fatalf("New with the cluster answering %d = %v", status, err)
		}
	}
}

func TestTLS(t *testing.T) {
	f := newFakeTLSCluster(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tls  TLSConfig
		want string // "" when it works
	}{
		{"ca_file", TLSConfig{CAFile: caFile}, ""},
		{"insecure_skip_verify", TLSConfig{InsecureSkipVerify: true}, ""},
		{"unknown authority fails at start-up", TLSConfig{}, "certificate"},
		{"ca_file without a certificate", TLSConfig{CAFile: notPEM}, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(f)
			cfg.TLS = tt.tls
			s, err := New(t.Context(), cfg, nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("New = %v, want an error with %q", err, tt.want)
				}
				if tt.tls.CAFile == "" && !processors.IsPermanent(err) {
					t.Fatalf("a certificate that does not verify is retried: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(t.Context())
			ss, err := s.Open(t.Context(), testShard(), &memDL{})
			if err != nil {
				t.Fatal(err)
			}
			defer ss.Close()
			if err := ss.Write(t.Context(), testMsgs(0, 1)); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRegisterTakesTheAWSConfigFromEnv(t *testing.T) {
	f := newFakeCluster(t)
	reg := processors.NewRegistry()
	Register(reg)
	ctor, _ := reg.Sink(TypeName)
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("url: "+f.srv.URL+"\naws_sigv4: {region: ap-south-1}\n"), &n); err != nil {
		t.Fatal(err)
	}
	deps := processors.Deps{AWS: &aws.Config{Credentials: credentials.NewStaticCredentialsProvider("AKIDENV", "secret", "")}}
	s, err := ctor(t.Context(), processors.NewOptions("pipeline.sinks[0]", "", n.Content[0]), deps)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auth) != 1 || !strings.Contains(f.auth[0], "Credential=AKIDENV/") || !strings.Contains(f.auth[0], "/ap-south-1/es/aws4_request") {
		t.Fatalf("template request signed as %q", f.auth)
	}
}
