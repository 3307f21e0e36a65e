package dynamosink_test

import (
	"fmt"
	"time"

	"github.com/leasehold/leasehold/processors/dynamosink"
)

// One asset's history is a single Query on its partition key; a time
// range is a BETWEEN on the sort key.
func ExamplePartitionKey() {
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	fmt.Println("KeyConditionExpression: pk = :pk AND sk BETWEEN :from AND :to")
	fmt.Println(":pk   =", dynamosink.PartitionKey("acme", "asset-42"))
	fmt.Println(":from =", dynamosink.SortKeyTime(from))
	fmt.Println(":to   =", dynamosink.SortKeyTime(from.AddDate(0, 0, 7)))
	fmt.Println("an item's sk:", dynamosink.SortKey(from.Add(90*time.Minute), "E2DXE5FXAMPLE=="))
	// Output:
	// KeyConditionExpression: pk = :pk AND sk BETWEEN :from AND :to
	// :pk   = acme#asset-42
	// :from = 2024-05-01T00:00:00.000000000Z
	// :to   = 2024-05-08T00:00:00.000000000Z
	// an item's sk: 2024-05-01T01:30:00.000000000Z#E2DXE5FXAMPLE==
}
