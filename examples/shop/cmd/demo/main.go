// Command demo shows Nuvom end to end on the embedded SQLite queue: it
// enqueues jobs through the typed stubs that go generate wrote, runs a burst
// worker in this process, and prints the typed results.
//
//	go generate ./... && go run ./cmd/demo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"example.com/shop/billing"
	"example.com/shop/email"
	"example.com/shop/images"
	"example.com/shop/nuvomtasks"
	"example.com/shop/reports"
	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/config"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// Settings come from NUVOM_* variables; by default a SQLite database in
	// .nuvom/nuvom.db at the module root.
	cfg, err := config.Load(".", os.Getenv)
	if err != nil {
		return err
	}
	client, err := cfg.OpenClient(ctx)
	if err != nil {
		return err
	}
	defer client.Close()

	// Enqueue through the typed stubs: wrong argument types do not compile.
	thumb, err := images.ResizeTask.Delay(ctx, client, "cat.png", 128)
	if err != nil {
		return err
	}
	mail, err := email.SendTask.Delay(ctx, client, email.Message{To: []string{"ada@example.com"}, Subject: "Your order"})
	if err != nil {
		return err
	}
	badMail, err := email.SendTask.Delay(ctx, client, email.Message{To: []string{"not-an-address"}, Subject: "Oops"})
	if err != nil {
		return err
	}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	report, err := reports.BuildTask.Delay(ctx, client, reports.Request{
		From: day, To: day.AddDate(0, 0, 7), Regions: []string{"us", "eu"}, Weights: map[string]float64{"eu": 1.5, "us": 2},
	})
	if err != nil {
		return err
	}
	total, err := billing.TotalTask.Delay(ctx, client, []billing.LineItem{{SKU: "mug", Quantity: 2, Price: 1250}}, 30*24*time.Hour)
	if err != nil {
		return err
	}

	// A workflow: resize, then publish the thumbnail (Publish's first
	// parameter is a Thumb, Resize's result: a mismatch would not compile),
	// then e-mail once it is published.
	resized := images.ResizeTask.Step("dog.png", 64)
	published := images.PublishTask.From(resized, "cdn")
	notified := email.SendTask.Step(email.Message{To: []string{"ada@example.com"}, Subject: "Thumbnail ready"}).After(published)
	if _, err := nuvom.Workflow("thumbnail", notified).Enqueue(ctx, client); err != nil {
		return err
	}
	// Fan-out and fan-in: one step per region, combined in the group's order.
	parts := nuvom.Group(reports.RegionTask.Step("eu"), reports.RegionTask.Step("us"), reports.RegionTask.Step("apac"))
	combined := reports.CombineTask.From(parts)
	if _, err := nuvom.Workflow("regions", combined).Enqueue(ctx, client); err != nil {
		return err
	}

	// Run every ready job in this process, then stop (the CLI's runworker
	// --burst does the same in its own process).
	reg, err := nuvomtasks.Registry()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := nuvom.NewWorker(client.Backend(), reg, nuvom.WorkerOptions{Burst: true, Logger: logger})
	if err != nil {
		return err
	}
	if err := w.Run(ctx); err != nil {
		return err
	}

	// Typed results.
	t, err := thumb.Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "images.Resize  -> %s (%dx%d)\n", t.Path, t.Width, t.Height)
	if _, err := mail.Wait(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "email.send     -> delivered")
	_, err = badMail.Wait(ctx)
	var jobErr *nuvom.JobError
	if !errors.As(err, &jobErr) {
		return fmt.Errorf("want the bad e-mail to fail, got %v", err)
	}
	fmt.Fprintf(out, "email.send     -> %s: %s\n", jobErr.State, jobErr.Message)
	r, err := report.Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "reports.Build  -> %d days, regions %v, score %.1f\n", r.Days, r.Regions, r.Score)
	sum, err := total.Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "billing.Total  -> %d cents\n", sum)
	url, err := published.Pending(client).Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "workflow       -> resized, published at %s, e-mailed\n", url)
	c, err := combined.Pending(client).Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "workflow       -> %d regions combined: %v\n", len(c.Regions), c.Regions)
	return nil
}
