package ledgerclient_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledgerclient"
	"github.com/creditledger/creditledger/server"
)

// exampleLedger starts a ledger in a temporary directory (embedded NATS on a free port) and
// returns its NATS URL and a function that stops it. A real deployment has one running already.
func exampleLedger() (string, func()) {
	dir, err := os.MkdirTemp("", "ledgerclient-example-")
	if err != nil {
		panic(err)
	}
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, NATSListen: "127.0.0.1:-1", Log: zerolog.Nop()})
	if err != nil {
		panic(err)
	}
	return srv.ClientURL(), func() {
		srv.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}

func Example() {
	url, stop := exampleLedger()
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	cl, err := ledgerclient.New(nc, ledgerclient.WithTimeout(5*time.Second))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	acme := commands.Meta{AccountID: "acme"} // CommandID left empty: the client generates one

	if _, err := cl.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: acme, LicenseID: "L-1", Source: "sales",
		Credits: commands.MustAmount("1500")}); err != nil {
		panic(err)
	}
	if _, err := cl.ActivateLicense(ctx, commands.ActivateLicense{Meta: acme, LicenseID: "L-1"}); err != nil {
		panic(err)
	}
	res, err := cl.AllocateCredits(ctx, commands.AllocateCredits{Meta: acme, Feature: "container_security",
		Credits: commands.MustAmount("250")})
	if err != nil {
		panic(err)
	}
	fmt.Println("allocated at version", res.Version)

	// Read your own write: wait until the read model has applied the command's position.
	bal, err := cl.Balance(ctx, "acme", ledgerclient.MinPosition(res.Position))
	if err != nil {
		panic(err)
	}
	fmt.Println("available:", bal.AvailableCredits)

	_, err = cl.AllocateCredits(ctx, commands.AllocateCredits{Meta: acme, Feature: "container_security",
		Credits: commands.MustAmount("5000")})
	var rejection *ledgerclient.Error
	if errors.Is(err, ledgerclient.ErrInsufficientCredits) && errors.As(err, &rejection) {
		fmt.Println("rejected:", rejection.Code, "available", rejection.Data["available"])
	}
	// Output:
	// allocated at version 3
	// available: 1250
	// rejected: insufficient_credits available 1250
}

// A command sent again with the same command_id is answered with its first reply and appends
// nothing: the Result says Replayed. WithRetry relies on this to retry unavailable answers and
// timeouts safely.
func ExampleWithRetry() {
	url, stop := exampleLedger()
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	cl, err := ledgerclient.New(nc, ledgerclient.WithRetry(ledgerclient.RetryPolicy{
		Attempts: 5,
		Backoff:  ledgerclient.ExponentialBackoff(50*time.Millisecond, time.Second),
	}))
	if err != nil {
		panic(err)
	}
	buy := commands.PurchaseLicense{Meta: commands.Meta{AccountID: "acme", CommandID: "order-4711"},
		LicenseID: "L-1", Source: "sales", Credits: commands.MustAmount("100")}
	first, err := cl.PurchaseLicense(context.Background(), buy)
	if err != nil {
		panic(err)
	}
	again, err := cl.PurchaseLicense(context.Background(), buy)
	if err != nil {
		panic(err)
	}
	fmt.Println(first.Replayed, again.Replayed, first.Position == again.Position)
	// Output: false true true
}
