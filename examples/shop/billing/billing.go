// Package billing computes invoices.
package billing

import (
	"errors"
	"time"
)

// Cents is an amount of money in cents.
type Cents int64

// LineItem is one line of an invoice.
type LineItem struct {
	SKU      string `msgpack:"sku"`
	Quantity int    `msgpack:"qty"`
	Price    Cents  `msgpack:"price"`
}

// Total adds up an invoice's lines. It takes no context: it is pure computation.
//
//nuvom:task retries=1 backoff=fixed timeout=5s
func Total(items []LineItem, due time.Duration) (Cents, error) {
	if due < 0 {
		return 0, errors.New("due must not be negative")
	}
	var sum Cents
	for _, it := range items {
		sum += Cents(it.Quantity) * it.Price
	}
	return sum, nil
}
