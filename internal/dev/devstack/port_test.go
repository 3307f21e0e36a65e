package devstack

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/internal/config"
)

func TestPortFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port

	err = portFree(busy)
	var pe *PortInUseError
	if !errors.As(err, &pe) || pe.Port != busy {
		t.Fatalf("portFree(busy %d) = %v, want *PortInUseError", busy, err)
	}

	free := freePort(t)
	if err := portFree(free); err != nil {
		t.Errorf("portFree(free %d) = %v", free, err)
	}
}

// TestPortsFreeNamesKey checks the message a user sees when a port is
// taken: it names the port, the service and the key that moves it.
func TestPortsFreeNamesKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port

	// Kinesis's HTTPS port (kinesis_port+1) is the busy one.
	s, err := New(Config{Dir: t.TempDir(), KinesisPort: busy - 1, DynamoDBPort: 1, S3Port: 2, OpenSearchPort: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.portsFree(s.services[Kinesis])
	var pe *PortInUseError
	if !errors.As(err, &pe) {
		t.Fatalf("portsFree = %v, want *PortInUseError", err)
	}
	msg := err.Error()
	for _, want := range []string{"kinesis", "dev.kinesis_port", "LEASEHOLD_DEV_KINESIS_PORT", "--dev.kinesis-port", "HTTPS", "already in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestNewRejectsPortCollisions(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "defaults", cfg: Config{Dir: "x", KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200}},
		{name: "dynamodb on kinesis https", cfg: Config{Dir: "x", KinesisPort: 4567, DynamoDBPort: 4568, S3Port: 9000, OpenSearchPort: 9200},
			wantErr: []string{"dev.dynamodb_port", "4568", "kinesis (HTTPS, dev.kinesis_port+1)"}},
		{name: "elasticsearch transport on opensearch", cfg: Config{Dir: "x", KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200, ElasticsearchPort: 9100},
			wantErr: []string{"dev.elasticsearch_port", "port 9200 (transport, dev.elasticsearch_port+100) is also used by opensearch"}},
		{name: "s3 on opensearch transport", cfg: Config{Dir: "x", KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9300, OpenSearchPort: 9200},
			wantErr: []string{"dev.opensearch_port", "9300"}},
		{name: "kinesis https out of range", cfg: Config{Dir: "x", KinesisPort: 65535, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200},
			wantErr: []string{"dev.kinesis_port", "65536"}},
		{name: "empty dir", cfg: Config{KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200},
			wantErr: []string{"dev.dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSelectServices(t *testing.T) {
	s, err := New(Config{Dir: "x", KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200}, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(in []string) string {
		svcs, err := s.selectServices(in)
		if err != nil {
			return "error: " + err.Error()
		}
		var out []string
		for _, svc := range svcs {
			out = append(out, svc.name)
		}
		return strings.Join(out, ",")
	}
	if got := names(nil); got != "kinesis,dynamodb,s3,opensearch,elasticsearch" {
		t.Errorf("all = %s", got)
	}
	// Up without names starts the defaults: Elasticsearch only when asked.
	if got := strings.Join(s.DefaultServices(), ","); got != "kinesis,dynamodb,s3,opensearch" {
		t.Errorf("defaults = %s, want no elasticsearch unless dev.elasticsearch", got)
	}
	withES, err := New(Config{Dir: "x", KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200, ElasticsearchPort: 9250, Elasticsearch: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(withES.DefaultServices(), ","); got != "kinesis,dynamodb,s3,opensearch,elasticsearch" {
		t.Errorf("defaults with dev.elasticsearch = %s", got)
	}
	if got := names([]string{"opensearch", " Kinesis "}); got != "kinesis,opensearch" {
		t.Errorf("subset = %s, want start order kinesis,opensearch", got)
	}
	if _, err := s.selectServices([]string{"sqs"}); !errors.Is(err, ErrUnknownService) {
		t.Errorf("unknown service: err = %v", err)
	}
}

func TestEnv(t *testing.T) {
	s, err := New(Config{Dir: "/x", KinesisPort: 14567, DynamoDBPort: 18000, S3Port: 19000, OpenSearchPort: 19200, ElasticsearchPort: 19250}, nil)
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	got := strings.Join(s.Env(none), "\n")
	for _, want := range []string{
		"export AWS_ENDPOINT_URL_KINESIS='http://127.0.0.1:14567'",
		"export AWS_ENDPOINT_URL_DYNAMODB='http://127.0.0.1:18000'",
		"export AWS_ENDPOINT_URL_S3='http://127.0.0.1:19000'",
		"export LEASEHOLD_TEST_OPENSEARCH_URL='http://127.0.0.1:19200'",
		"export LEASEHOLD_TEST_ELASTICSEARCH_URL='https://127.0.0.1:19250'",
		"export LEASEHOLD_TEST_ELASTICSEARCH_USERNAME='leasehold'",
		"export LEASEHOLD_TEST_ELASTICSEARCH_PASSWORD='leasehold-dev'",
		"/data/elasticsearch/config/certs/http_ca.crt'", // under dev.dir, or /var/tmp when root cannot share it
		"export AWS_REGION='us-east-1'",
		"export AWS_ACCESS_KEY_ID='test'",
		"export AWS_SECRET_ACCESS_KEY='test'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("env lacks %q:\n%s", want, got)
		}
	}
	withCreds := func(k string) string {
		if k == "AWS_ACCESS_KEY_ID" {
			return "AKIAEXAMPLE"
		}
		return ""
	}
	if got := strings.Join(s.Env(withCreds), "\n"); strings.Contains(got, "AWS_ACCESS_KEY_ID") || strings.Contains(got, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("env overrides existing credentials:\n%s", got)
	}
	if q := shellQuote("it's"); q != `'it'\''s'` {
		t.Errorf("shellQuote = %s", q)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestEnvIsAcceptedByTheCommands: what `leasehold dev env` prints is what
// the demo tells a user to eval before running leasehold commands, which
// refuse a LEASEHOLD_ variable that names no setting. Every name it prints
// must therefore be a setting or one the commands knowingly ignore.
func TestEnvIsAcceptedByTheCommands(t *testing.T) {
	s, err := New(Config{Dir: "/x", KinesisPort: 14567, DynamoDBPort: 18000, S3Port: 19000, OpenSearchPort: 19200, ElasticsearchPort: 19250}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	for _, line := range s.Env(func(string) string { return "" }) {
		name, val, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		environ = append(environ, name+"="+strings.Trim(val, "'"))
	}
	c := config.Default()
	if err := config.ApplyEnv(&c, environ); err != nil {
		t.Errorf("after eval \"$(leasehold dev env)\" every command would refuse to start:\n%v", err)
	}
}
