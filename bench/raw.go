package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// rawStream is the scratch stream the baselines write to; it is deleted afterwards.
const rawStream = "BENCH_RAW"

// RawBaselines are raw JetStream figures from the same server, in messages per second.
type RawBaselines struct {
	PublishOneAtATime float64 `json:"publish_one_at_a_time_msgs_per_s"`
	AtomicBatch100    float64 `json:"atomic_batch_100_msgs_per_s"`
	AtomicBatch1000   float64 `json:"atomic_batch_1000_msgs_per_s"`
	// BatchOfClients is an atomic batch as large as the load's client count, one at a time: the
	// most a group commit can reach when every client waits for its reply before sending again
	// (clients can never have more commands outstanding), with no ledger work at all.
	BatchOfClients       int     `json:"batch_of_clients"`
	AtomicBatchOfClients float64 `json:"atomic_batch_of_clients_msgs_per_s"`
	// Replicas is the scratch stream's replica count: LEDGER's.
	Replicas int `json:"replicas"`
	// The process's CPU time per message of the closed-loop ceiling and of the batch of 1,000
	// (embedded server only; 0 when the server is another process): what raw JetStream costs
	// the machine per message, beside the ledger's CPU per request (LoadResult.CPUMicrosPerOp).
	BatchOfClientsCPUMicrosPerMsg float64 `json:"atomic_batch_of_clients_cpu_us_per_msg,omitempty"`
	Batch1000CPUMicrosPerMsg      float64 `json:"atomic_batch_1000_cpu_us_per_msg,omitempty"`
}

// rawStreamConfig is the scratch stream: file storage like LEDGER, and as many replicas, so a
// cluster's ledger is compared with raw JetStream replicated the same way.
func rawStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: rawStream, Subjects: []string{"benchraw.>"}, Storage: jetstream.FileStorage,
		AllowAtomicPublish: true, AllowDirect: true, Replicas: max(1, replicas),
	}
}

// MeasureRaw runs the write baselines for about per each; 300-byte messages over 1,000
// subjects, with an expected-last-subject-sequence check on every message. clients sizes the
// closed-loop ceiling (an atomic batch of that many messages; skipped outside 2..1000).
func MeasureRaw(ctx context.Context, nc *nats.Conn, per time.Duration, clients int) (RawBaselines, error) {
	return measureRaw(ctx, nc, per, clients, cpuMeter{})
}

// measureRaw is MeasureRaw with the CPU of the processes cpu reads.
func measureRaw(ctx context.Context, nc *nats.Conn, per time.Duration, clients int, cpu cpuMeter) (RawBaselines, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return RawBaselines{}, err
	}
	replicas := 1
	if ledger, err := js.Stream(ctx, jetstore.StreamName); err == nil {
		replicas = ledger.CachedInfo().Config.Replicas
	}
	_ = js.DeleteStream(ctx, rawStream)
	if _, err := js.CreateStream(ctx, rawStreamConfig(replicas)); err != nil {
		return RawBaselines{}, fmt.Errorf("scratch stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.Background(), rawStream) }()
	r := &rawRun{nc: nc, payload: make([]byte, 300), last: map[int]uint64{}, cpu: cpu}
	out := RawBaselines{Replicas: max(1, replicas)}
	if out.PublishOneAtATime, _, err = r.run(ctx, per, 1); err != nil {
		return out, err
	}
	if out.AtomicBatch100, _, err = r.run(ctx, per, 100); err != nil {
		return out, err
	}
	if out.AtomicBatch1000, out.Batch1000CPUMicrosPerMsg, err = r.run(ctx, per, 1000); err != nil {
		return out, err
	}
	if clients >= 2 && clients <= 1000 {
		out.BatchOfClients = clients
		if out.AtomicBatchOfClients, out.BatchOfClientsCPUMicrosPerMsg, err = r.run(ctx, per, clients); err != nil {
			return out, err
		}
	}
	return out, nil
}

type rawRun struct {
	nc      *nats.Conn
	payload []byte
	last    map[int]uint64
	next    int
	cpu     cpuMeter
}

// run publishes batches of size n for about d and returns messages per second and the
// process's CPU time per message in microseconds.
func (r *rawRun) run(ctx context.Context, d time.Duration, n int) (float64, float64, error) {
	start, cpu := time.Now(), r.cpu.used()
	msgs := 0
	for time.Since(start) < d {
		if err := r.batch(ctx, n); err != nil {
			return 0, 0, err
		}
		msgs += n
	}
	perMsg := float64((r.cpu.used() - cpu).Microseconds()) / float64(msgs)
	return float64(msgs) / time.Since(start).Seconds(), perMsg, nil
}

func (r *rawRun) batch(ctx context.Context, n int) error {
	id := nuid.Next()
	subjects := make([]int, n)
	var last *nats.Msg
	for i := 0; i < n; i++ {
		s := r.next % 1000
		r.next++
		subjects[i] = s
		m := nats.NewMsg("benchraw." + strconv.Itoa(s))
		m.Data = r.payload
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(r.last[s], 10))
		if n > 1 {
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		}
		if i == n-1 {
			if n > 1 {
				m.Header.Set("Nats-Batch-Commit", "1")
			}
			last = m
			break
		}
		if err := r.nc.PublishMsg(m); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := r.nc.RequestMsgWithContext(cctx, last)
	if err != nil {
		return fmt.Errorf("raw publish: %w", err)
	}
	var ack struct {
		Seq   uint64 `json:"seq"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return err
	}
	if ack.Error != nil {
		return errors.New("raw publish refused: " + ack.Error.Description)
	}
	for i, s := range subjects {
		r.last[s] = ack.Seq - uint64(n-1-i)
	}
	return nil
}

// MeasureOrderedRead reads a whole stream with an ordered consumer and returns messages per second.
func MeasureOrderedRead(ctx context.Context, nc *nats.Conn, stream string, fn func(jetstream.Msg)) (float64, uint64, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, 0, err
	}
	head := st.CachedInfo().State.LastSeq
	if head == 0 {
		return 0, 0, nil
	}
	start := time.Now()
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, 0, err
	}
	defer it.Stop()
	var n uint64
	for {
		m, err := it.Next()
		if err != nil {
			return 0, n, err
		}
		n++
		if fn != nil {
			fn(m)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, n, err
		}
		if md.Sequence.Stream >= head {
			break
		}
	}
	return float64(n) / time.Since(start).Seconds(), n, nil
}
