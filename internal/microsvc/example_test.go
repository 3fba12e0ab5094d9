package microsvc_test

import (
	"encoding/json"
	"fmt"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/creditledger/creditledger/internal/microsvc"
)

// An endpoint whose handler hands the request on and returns; the answer, a rejection, is sent
// later from another goroutine and still counts in $SRV.STATS.
func ExampleAdd() {
	ns, _ := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	svc, err := microsvc.Add(nc, microsvc.Config{Name: "example", Version: "1.0.0"})
	if err != nil {
		panic(err)
	}
	defer func() { _ = svc.Stop() }()
	_ = svc.AddGroup("ledger.cmd").AddEndpoint("allocate", micro.HandlerFunc(func(req micro.Request) {
		go func() { // the handler has returned by the time this answers
			_ = req.Error("insufficient_credits", "requested 5, 1 available", []byte(`{"ok":false}`))
		}()
	}))

	reply, _ := nc.Request("ledger.cmd.allocate", []byte(`{}`), 5*time.Second)
	fmt.Println(reply.Header.Get(micro.ErrorCodeHeader))

	msg, _ := nc.Request("$SRV.STATS.example", nil, 5*time.Second)
	var stats micro.Stats
	_ = json.Unmarshal(msg.Data, &stats)
	e := stats.Endpoints[0]
	fmt.Println(e.Subject, e.NumRequests, e.NumErrors, e.LastError)
	// Output:
	// insufficient_credits
	// ledger.cmd.allocate 1 1 insufficient_credits:requested 5, 1 available
}
