package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// LoadConfig shapes the command load.
type LoadConfig struct {
	Accounts int
	Clients  int
	Duration time.Duration
	// Commands, when set, stops the load after that many commands instead of after Duration.
	Commands int
	Seed     uint64
	// RunID keeps the ids of repeated runs against one ledger apart.
	RunID string
	// Mix is MixFull (the default) or MixAllocateRelease.
	Mix string
}

// The load's mixes of requests.
const (
	// MixFull: allocations, releases, purchases, billing switches, upgrades, auto-renew and
	// balance queries (20 %); the rules reject about a third of the commands.
	MixFull = "full"
	// MixAllocateRelease: commands only, each client allocating a few credits to a feature and
	// then releasing them, so nearly every command is accepted: the shape of the issue-13
	// measurement ("allocate/release mix"), where accepted commands are the whole load.
	MixAllocateRelease = "allocate-release"
)

// ValidMix says whether m names a mix.
func ValidMix(m string) bool { return m == "" || m == MixFull || m == MixAllocateRelease }

// heldCredits is what an allocate-release client allocated and releases next.
type heldCredits struct {
	acct, feature, credits string
}

// LoadResult is what one load phase measured.
type LoadResult struct {
	Clients           int     `json:"clients"`
	Mix               string  `json:"mix"`
	Accounts          int     `json:"accounts"`
	Seconds           float64 `json:"seconds"`
	Commands          int64   `json:"commands"`
	Accepted          int64   `json:"accepted"`
	AcceptedPerSecond float64 `json:"accepted_per_s"`
	// Answered counts the commands answered accepted or rejected by a business rule (errors,
	// timeouts and unavailable answers excluded): the mix rejects about a third of its commands.
	Answered          int64   `json:"answered"`
	AnsweredPerSecond float64 `json:"answered_per_s"`
	CommandsPerSecond float64 `json:"commands_per_s"`
	// CPUMicrosPerOp is the process's CPU time (ledger, embedded server and load tool together)
	// over the phase per request sent, queries included: less sensitive to what else the machine
	// runs than a rate is.
	CPUMicrosPerOp float64        `json:"process_cpu_us_per_request"`
	Queries        int64          `json:"queries"`
	Rejections     map[string]int `json:"rejections_by_code"`
	Errors         map[string]int `json:"errors"`
	Latency        Percentiles    `json:"command_latency"`
	ProjectionLag  *Percentiles   `json:"projection_lag,omitempty"`
}

type reply struct {
	OK       bool   `json:"ok"`
	Position uint64 `json:"position"`
	Error    *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// driver sends commands and counts outcomes.
type driver struct {
	conns      []*nats.Conn
	mu         sync.Mutex
	rejections map[string]int
	errors     map[string]int
	commands   atomic.Int64
	accepted   atomic.Int64
	queries    atomic.Int64
	seq        atomic.Int64
	runID      string
	cpu        cpuMeter
}

func newDriver(conns []*nats.Conn, runID string, cpu cpuMeter) *driver {
	return &driver{conns: conns, rejections: map[string]int{}, errors: map[string]int{}, runID: runID, cpu: cpu}
}

func (d *driver) cmdID() string { return d.runID + "-" + strconv.FormatInt(d.seq.Add(1), 10) }

// send issues one request and classifies the outcome; ok reports acceptance.
func (d *driver) send(ctx context.Context, client int, subject string, body map[string]any, isQuery bool) (reply, time.Duration, bool) {
	data, _ := json.Marshal(body)
	nc := d.conns[client%len(d.conns)]
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	msg, err := nc.RequestWithContext(rctx, subject, data)
	lat := time.Since(start)
	var r reply
	if isQuery {
		d.queries.Add(1)
	} else {
		d.commands.Add(1)
	}
	if err == nil {
		err = json.Unmarshal(msg.Data, &r)
	}
	if err != nil {
		d.mu.Lock()
		d.errors[err.Error()]++
		d.mu.Unlock()
		return r, lat, false
	}
	if r.Error != nil {
		d.mu.Lock()
		if r.Error.Code == "unavailable" || r.Error.Code == "internal" {
			d.errors[r.Error.Code]++
		} else {
			d.rejections[r.Error.Code]++
		}
		d.mu.Unlock()
		return r, lat, false
	}
	if !isQuery {
		d.accepted.Add(1)
	}
	return r, lat, true
}

func (d *driver) account(i int) string { return fmt.Sprintf("b%s-%d", d.runID, i) }

// Setup gives every account an active 1,000-credit license, and every tenth an active PAYG contract.
func (d *driver) Setup(ctx context.Context, cfg LoadConfig) error {
	jobs := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for c := 0; c < cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := range jobs {
				acct := d.account(i)
				steps := []struct {
					name string
					body map[string]any
				}{
					{"purchase_license", map[string]any{"license_id": acct + "-L0", "source": "sales", "credits": "1000"}},
					{"activate_license", map[string]any{"license_id": acct + "-L0"}},
				}
				if i%10 == 0 {
					steps = append(steps,
						struct {
							name string
							body map[string]any
						}{"purchase_payg_contract", map[string]any{"contract_id": acct + "-P0"}},
						struct {
							name string
							body map[string]any
						}{"activate_payg_contract", map[string]any{"contract_id": acct + "-P0"}})
				}
				for _, s := range steps {
					s.body["account_id"], s.body["command_id"] = acct, d.cmdID()
					if _, _, ok := d.send(ctx, c, "ledger.cmd."+s.name, s.body, false); !ok {
						failed.Add(1)
					}
				}
			}
		}(c)
	}
	for i := 0; i < cfg.Accounts; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("setup: %d commands failed", n)
	}
	return nil
}

var (
	allocFeatures  = []string{"container_security", "file_security", "endpoint_security_core", "email_security"}
	switchFeatures = []string{"container_security", "file_security", "cloud_account_assessment", "advanced_server_workload_protection"}
)

// op builds one request of the mix.
func (d *driver) op(r *rand.Rand, acct string, licenses *int) (string, map[string]any, bool) {
	x := r.IntN(100)
	b := map[string]any{"account_id": acct, "command_id": d.cmdID()}
	switch {
	case x < 35:
		b["feature"], b["credits"] = allocFeatures[r.IntN(len(allocFeatures))], strconv.Itoa(1+r.IntN(120))
		return "allocate_credits", b, false
	case x < 60:
		b["feature"], b["credits"] = allocFeatures[r.IntN(len(allocFeatures))], strconv.Itoa(1+r.IntN(60))
		return "release_credits", b, false
	case x < 65:
		*licenses++
		b["license_id"], b["source"], b["credits"] = acct+"-x"+strconv.Itoa(*licenses)+d.cmdID(), "aws_marketplace", "100"
		return "purchase_license", b, false
	case x < 70:
		b["feature"] = switchFeatures[r.IntN(len(switchFeatures))]
		b["to"] = []string{"payg", "credits"}[r.IntN(2)]
		return "switch_billing_model", b, false
	case x < 75:
		b["license_id"], b["additional_credits"] = acct+"-L0", strconv.Itoa(1+r.IntN(20))
		return "upgrade_contract", b, false
	case x < 80:
		b["license_id"] = acct + "-L0"
		b["enabled"] = r.IntN(2) == 0
		return "set_auto_renew", b, false
	default:
		return "balance", map[string]any{"account_id": acct}, true
	}
}

// allocateRelease builds the next command of MixAllocateRelease: the release of what held names,
// or else an allocation of 1-20 credits on acct, which it returns as held.
func (d *driver) allocateRelease(r *rand.Rand, acct string, held *heldCredits) (string, map[string]any, *heldCredits) {
	if held != nil {
		return "release_credits", map[string]any{"account_id": held.acct, "command_id": d.cmdID(),
			"feature": held.feature, "credits": held.credits}, nil
	}
	b := map[string]any{"account_id": acct, "command_id": d.cmdID()}
	h := &heldCredits{acct: acct, feature: allocFeatures[r.IntN(len(allocFeatures))], credits: strconv.Itoa(1 + r.IntN(20))}
	b["feature"], b["credits"] = h.feature, h.credits
	return "allocate_credits", b, h
}

// Run drives the mix with cfg.Clients concurrent requesters; with lag set, every accepted
// command is followed by a balance query with min_position and its wait is recorded.
func (d *driver) Run(ctx context.Context, cfg LoadConfig, lag bool) LoadResult {
	var lat, lagLat Latencies
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var budget atomic.Int64
	budget.Store(int64(cfg.Commands))
	startCmds, startAcc, startQ := d.commands.Load(), d.accepted.Load(), d.queries.Load()
	d.mu.Lock()
	d.rejections, d.errors = map[string]int{}, map[string]int{}
	d.mu.Unlock()
	cpuBefore := d.cpu.used()
	var wg sync.WaitGroup
	for c := 0; c < cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(c)))
			var mine, lags []time.Duration
			licenses := 0
			var held *heldCredits
			for ctx.Err() == nil {
				if cfg.Commands > 0 {
					if budget.Add(-1) < 0 {
						break
					}
				} else if time.Now().After(deadline) {
					break
				}
				acct := d.account(r.IntN(cfg.Accounts))
				var name string
				var body map[string]any
				var isQuery bool
				if cfg.Mix == MixAllocateRelease {
					name, body, held = d.allocateRelease(r, acct, held)
					acct = body["account_id"].(string)
				} else {
					name, body, isQuery = d.op(r, acct, &licenses)
				}
				subject := "ledger.cmd." + name
				if isQuery {
					subject = "ledger.query." + name
				}
				rep, l, ok := d.send(ctx, c, subject, body, isQuery)
				if held != nil && name == "allocate_credits" && !ok {
					held = nil // nothing was allocated: allocate again next
				}
				if !isQuery {
					mine = append(mine, l)
				}
				if lag && ok && !isQuery {
					_, ql, _ := d.send(ctx, c, "ledger.query.balance", map[string]any{"account_id": acct, "min_position": rep.Position}, true)
					lags = append(lags, ql)
				}
			}
			lat.Merge(mine)
			lagLat.Merge(lags)
		}(c)
	}
	wg.Wait()
	secs, cpu := time.Since(start).Seconds(), d.cpu.used()-cpuBefore
	res := LoadResult{
		Clients: cfg.Clients, Mix: cmp.Or(cfg.Mix, MixFull), Accounts: cfg.Accounts, Seconds: secs,
		Commands: d.commands.Load() - startCmds, Accepted: d.accepted.Load() - startAcc, Queries: d.queries.Load() - startQ,
		Latency: lat.Summary(),
	}
	res.AcceptedPerSecond = float64(res.Accepted) / secs
	res.CommandsPerSecond = float64(res.Commands) / secs
	d.mu.Lock()
	res.Rejections, res.Errors = d.rejections, d.errors
	d.mu.Unlock()
	res.Answered = res.Accepted
	for _, n := range res.Rejections {
		res.Answered += int64(n)
	}
	res.AnsweredPerSecond = float64(res.Answered) / secs
	if ops := res.Commands + res.Queries; ops > 0 && cpu > 0 {
		res.CPUMicrosPerOp = float64(cpu.Microseconds()) / float64(ops)
	}
	if lag {
		p := lagLat.Summary()
		res.ProjectionLag = &p
	}
	return res
}
