// Package reports builds sales reports.
package reports

import (
	"context"
	"sort"
	"time"
)

// Request says which report to build.
type Request struct {
	From    time.Time          `msgpack:"from"`
	To      time.Time          `msgpack:"to"`
	Regions []string           `msgpack:"regions"`
	Weights map[string]float64 `msgpack:"weights"`
}

// Summary is a built report.
type Summary struct {
	Days    int            `msgpack:"days"`
	Regions []string       `msgpack:"regions"`
	Score   float64        `msgpack:"score"`
	Built   time.Time      `msgpack:"built"`
	Notes   *string        `msgpack:"notes"`
	Totals  map[string]int `msgpack:"totals"`
}

// Build builds the sales report for req.
//
//nuvom:task timeout=2m timeout_policy=fail queue=reports priority=5 store_result=true
func Build(ctx context.Context, req Request) (Summary, error) {
	regions := append([]string(nil), req.Regions...)
	sort.Strings(regions)
	s := Summary{
		Days:    int(req.To.Sub(req.From).Hours() / 24),
		Regions: regions,
		Built:   req.To,
		Totals:  map[string]int{},
	}
	for i, r := range regions {
		s.Score += req.Weights[r]
		s.Totals[r] = (i + 1) * 100
	}
	return s, ctx.Err()
}

// RegionSales is one region's part of a report.
type RegionSales struct {
	Region string `msgpack:"region"`
	Total  int    `msgpack:"total"`
}

// Region computes one region's sales: the fan-out step of a report workflow.
//
//nuvom:task queue=reports
func Region(ctx context.Context, region string) (RegionSales, error) {
	total := 0
	for _, c := range region {
		total += int(c)
	}
	return RegionSales{Region: region, Total: total}, ctx.Err()
}

// Combine merges the regions' sales, in the order of the workflow's group:
// the fan-in step (reports.CombineTask.From(nuvom.Group(...))).
//
//nuvom:task queue=reports
func Combine(ctx context.Context, parts []RegionSales) (Summary, error) {
	s := Summary{Totals: map[string]int{}, Days: 1}
	for _, p := range parts {
		s.Regions = append(s.Regions, p.Region)
		s.Totals[p.Region] = p.Total
	}
	return s, ctx.Err()
}
