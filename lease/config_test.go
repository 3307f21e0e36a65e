package lease_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

type nopHandler struct{}

func (nopHandler) Acquired(*lease.Grant)                 {}
func (nopHandler) HandoffRequested(*lease.Grant, string) {}

// TestNewCoordinatorNamesEveryNilDependency: a nil store, handler or
// logger (or a DynamoStore without a client or table) is an error from
// NewCoordinator that names it, not a panic on the first call.
func TestNewCoordinatorNamesEveryNilDependency(t *testing.T) {
	cfg := lease.Config{WorkerID: "w"}
	for _, tc := range []struct {
		name  string
		store lease.Store
		h     lease.Handler
		log   *zap.Logger
		want  []string
	}{
		{"store", nil, nopHandler{}, zap.NewNop(), []string{"lease store is nil"}},
		{"typed nil DynamoStore", (*lease.DynamoStore)(nil), nopHandler{}, zap.NewNop(), []string{"lease store is nil"}},
		{"DynamoStore without client or table", new(lease.DynamoStore), nopHandler{}, zap.NewNop(), []string{"DynamoDB client of the lease store is nil", "table name is empty"}},
		{"handler", leasetest.NewFake(), nil, zap.NewNop(), []string{"handler is nil"}},
		{"logger", leasetest.NewFake(), nopHandler{}, nil, []string{"logger is nil"}},
		{"all at once", nil, nil, nil, []string{"lease store is nil", "handler is nil", "logger is nil"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := lease.NewCoordinator(tc.store, cfg, tc.h, tc.log)
			if err == nil || c != nil {
				t.Fatalf("NewCoordinator = %v, %v; want an error", c, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := lease.NewCoordinator(leasetest.NewFake(), cfg, nopHandler{}, zap.NewNop()); err != nil {
		t.Fatalf("every dependency set: %v", err)
	}
}

// TestConfigValidate: zero fields are defaults, so the zero Config with a
// worker id is valid, and Validate reports every mistake at once.
func TestConfigValidate(t *testing.T) {
	if err := (lease.Config{WorkerID: "w"}).Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	err := lease.Config{WorkerID: "a~b", Duration: 3 * time.Second, SafetyMargin: 5 * time.Second, TakeInterval: -time.Second, HandoffTimeout: -1, CallTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"worker id", "lease.safety_margin: 5s", "lease.renew_interval: -1s", "lease.take_interval", "handoff timeout", "call timeout"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
	if err := (lease.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "worker id must not be empty") {
		t.Errorf("no worker id: %v", err)
	}
}

// TestNewDynamoStoreRefusesMissingParts: a nil client or an empty table
// name is NewDynamoStore's error, naming each, before any call (the
// leases and explore commands call Snapshot without a coordinator).
func TestNewDynamoStoreRefusesMissingParts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		db    lease.DynamoAPI
		table string
		want  []string
	}{
		{"nil client", nil, "leases", []string{"lease: the DynamoDB client of the lease store is nil"}},
		{"empty table", dynamodb.New(dynamodb.Options{}), "", []string{"lease: the lease store's table name is empty"}},
		{"both", nil, "", []string{"client of the lease store is nil", "table name is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := lease.NewDynamoStore(tc.db, tc.table)
			if err == nil || s != nil {
				t.Fatalf("NewDynamoStore = %v, %v; want an error", s, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := lease.NewDynamoStore(dynamodb.New(dynamodb.Options{}), "leases"); err != nil {
		t.Fatalf("client and table given: %v", err)
	}
}
