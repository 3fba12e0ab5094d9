package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/web"
)

// sseMessage is one message of an event stream; Comment is set for a comment line.
type sseMessage struct {
	Event, ID, Data, Comment string
}

// stream reads an event stream in the background.
type stream struct {
	t    *testing.T
	res  *http.Response
	msgs chan sseMessage
	done chan struct{}
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	s := &stream{t: t, res: res, msgs: make(chan sseMessage, 1024), done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
		<-s.done
	})
	return s
}

func (s *stream) read() {
	defer close(s.done)
	sc := bufio.NewScanner(s.res.Body)
	var m sseMessage
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if m != (sseMessage{}) {
				s.msgs <- m
			}
			m = sseMessage{}
		case strings.HasPrefix(line, ":"):
			m.Comment = strings.TrimSpace(line[1:])
		default:
			field, val, _ := strings.Cut(line, ":")
			val = strings.TrimPrefix(val, " ")
			switch field {
			case "event":
				m.Event = val
			case "id":
				m.ID = val
			case "data":
				m.Data = val
			}
		}
	}
}

// next returns the next message, failing the test if none comes within d.
func (s *stream) next(d time.Duration) sseMessage {
	s.t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-s.done:
		s.t.Fatal("the stream ended")
	case <-time.After(d):
		s.t.Fatalf("no message within %s", d)
	}
	return sseMessage{}
}

// nextPosition skips keep-alives and returns the position of the next position message.
func (s *stream) nextPosition(d time.Duration) uint64 {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := s.next(time.Until(deadline))
		if m.Event != "position" {
			continue
		}
		var body struct {
			AccountID string `json:"account_id"`
			Position  uint64 `json:"position"`
		}
		require.NoError(s.t, json.Unmarshal([]byte(m.Data), &body))
		assert.Equal(s.t, itoa(body.Position), m.ID, "the id is the position, for Last-Event-ID")
		return body.Position
	}
}

func TestEventsStreamSendsEachNewPosition(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	s := newSender(t, l, "acme")
	first := s.buy("L1", "sales", "100", 12, true)
	newSender(t, l, "other").buy("O1", "sales", "100", 12, true)
	require.NoError(t, l.Projector().WaitFor(context.Background(), l.Head()))

	st := openStream(t, l.HTTPURL()+"/v1/accounts/acme/events")
	assert.Equal(t, l.Head(), st.nextPosition(5*time.Second), "the first message is the projector's position")
	assert.Greater(t, l.Head(), first.Position)

	a := s.allocate("container_security", "10")
	assert.Equal(t, a.Position, st.nextPosition(5*time.Second), "then the position of each event of the account")
	// Another account's events are not sent; the next message is acme's again.
	other := newSender(t, l, "other")
	other.n = 10
	other.allocate("container_security", "5")
	b := s.allocate("container_security", "20")
	assert.Equal(t, b.Position, st.nextPosition(5*time.Second))
}

func TestEventsStreamForAnAccountWithoutEventsYet(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	st := openStream(t, l.HTTPURL()+"/v1/accounts/newcomer/events")
	// The projector's position: past the ownership records the ledger wrote at start.
	assert.Equal(t, l.Head(), st.nextPosition(5*time.Second))
	a := newSender(t, l, "newcomer").buy("N1", "sales", "5", 12, true)
	p := st.nextPosition(5 * time.Second)
	if p < a.Position { // purchase and activation may arrive as two wake-ups or one
		p = st.nextPosition(5 * time.Second)
	}
	assert.Equal(t, a.Position, p)
}

func TestEventsStreamRejectsBadAccountIDs(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	for _, id := range []string{"bad.id", "bad%20id", "a*", strings.Repeat("x", 65)} {
		status, code := errorCode(t, l.HTTPURL()+"/v1/accounts/"+id+"/events")
		assert.Equal(t, http.StatusBadRequest, status, id)
		assert.Equal(t, "invalid_argument", code, id)
	}
}

func TestEventsStreamIsBounded(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	srv := dashboard(t, l, web.WithMaxStreams(1))
	st := openStream(t, srv.URL+"/v1/accounts/acme/events")
	st.nextPosition(5 * time.Second)
	status, code := errorCode(t, srv.URL+"/v1/accounts/acme/events")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", code)
}

// TestEventsStreamOutlivesServerTimeouts: the ledger's HTTP server has read and write timeouts;
// a stream lifts them for itself and keeps going, with keep-alives while idle.
func TestEventsStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	store, err := jetstore.Open(context.Background(), l.NC, jetstore.Config{})
	require.NoError(t, err)
	d, err := web.New(l.Projector(), jetstore.DirectReads{Store: store}, web.WithHeartbeat(50*time.Millisecond))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(d)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	st := openStream(t, srv.URL+"/v1/accounts/acme/events")
	st.nextPosition(5 * time.Second)
	started := time.Now()
	for beats := 0; beats < 12 || time.Since(started) < 600*time.Millisecond; beats++ {
		assert.Equal(t, "keep-alive", st.next(5*time.Second).Comment)
	}
	a := newSender(t, l, "acme").allocateAfterBuy()
	for p := st.nextPosition(5 * time.Second); p < a.Position; { // wake-ups may be coalesced
		p = st.nextPosition(5 * time.Second)
	}
}

// TestShutdownEndsOpenStreams: a graceful shutdown does not wait for dashboards to leave.
func TestShutdownEndsOpenStreams(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	st := openStream(t, l.HTTPURL()+"/v1/accounts/acme/events")
	st.nextPosition(5 * time.Second)
	stopped := make(chan struct{})
	go func() {
		l.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("shutdown waited for the open event stream")
	}
	select {
	case <-st.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was not ended")
	}
}

// TestStopEndsStreams: closing the WithStop channel ends an open stream, and one opened after
// it ends at once: a stream that starts as the server begins shutting down cannot hold it.
func TestStopEndsStreams(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	stop := make(chan struct{})
	srv := dashboard(t, l, web.WithStop(stop))
	open := openStream(t, srv.URL+"/v1/accounts/acme/events")
	open.nextPosition(5 * time.Second)
	close(stop)
	late := openStream(t, srv.URL+"/v1/accounts/acme/events")
	for _, st := range []*stream{open, late} {
		select {
		case <-st.done:
		case <-time.After(5 * time.Second):
			t.Fatal("the stream was not ended")
		}
	}
}
