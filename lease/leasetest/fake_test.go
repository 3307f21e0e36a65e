package leasetest_test

import (
	"testing"

	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

func TestFakeConformance(t *testing.T) {
	leasetest.RunConformance(t, func(t *testing.T) lease.Store { return leasetest.NewFake() })
}
