package lease_test

import (
	"testing"

	"github.com/fnhq/fn/lease"
	"github.com/fnhq/fn/lease/leasetest"
)

func TestMemory(t *testing.T) {
	leasetest.Run(t, func(t *testing.T) lease.Lease { return lease.NewMemory() }, leasetest.Options{})
}
