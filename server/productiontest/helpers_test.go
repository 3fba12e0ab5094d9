package productiontest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/server"
)

const (
	waitFor  = 10 * time.Second
	pollTick = 10 * time.Millisecond
	// refusedWait is how long a test waits for a request the server refuses to deliver.
	refusedWait = 250 * time.Millisecond
)

// Plaintext secrets of the test access config.
const (
	ledgerPassword    = "ledger-secret-for-tests"
	dashboardPassword = "dashboard-secret-for-tests"
	auditorPassword   = "auditor-secret-for-tests"
	dashboardToken    = "dashboard-token-0123456789abcdef"
	auditorToken      = "auditor-token-0123456789abcdef"
	metricsToken      = "metrics-token-0123456789abcdef"
)

// access is a test access config on disk: the ledger with a password, the service as an nkey
// user, the dashboard with a bcrypt-hashed password, the auditor with a plain one, and one HTTP
// token per HTTP role (the auditor's given as its SHA-256).
type access struct {
	Path          string
	Config        *authz.Config
	ServiceSeed   string // file holding the service's nkey seed
	ServicePublic string // the service's public nkey
}

func writeAccess(t *testing.T) access {
	t.Helper()
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seedFile := filepath.Join(dir, "service.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))
	hash, err := bcrypt.GenerateFromPassword([]byte(dashboardPassword), bcrypt.MinCost)
	require.NoError(t, err)
	doc := fmt.Sprintf(`
nats:
  users:
    - {role: ledger, user: ledger, password: %q}
    - {role: service, nkey: %s}
    - {role: dashboard, user: dashboard, password: %q}
    - {role: auditor, user: auditor, password: %q}
  cluster: {user: route, password: "route-secret-for-tests"}
http:
  tokens:
    - {role: dashboard, name: web, token: %q}
    - {role: auditor, name: audit, token_sha256: %s}
    - {role: metrics, name: prometheus, token: %q}
`, ledgerPassword, pub, string(hash), auditorPassword, dashboardToken, sha256hex(auditorToken), metricsToken)
	path := filepath.Join(dir, "access.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	c, err := authz.Load(path)
	require.NoError(t, err)
	return access{Path: path, Config: c, ServiceSeed: seedFile, ServicePublic: pub}
}

// baseConfig is a single-node ledger on random ports in a temp dir with a manual clock.
func baseConfig(t *testing.T) server.Config {
	t.Helper()
	return server.Config{
		DataDir:       t.TempDir(),
		NATSListen:    "127.0.0.1:-1",
		HTTPListen:    "127.0.0.1:0",
		Clock:         server.NewManualClock(testledger.Epoch),
		SweepInterval: time.Hour,
		Log:           logger(),
	}
}

func logger() zerolog.Logger {
	if os.Getenv("LEDGER_TEST_LOG") != "" {
		return zerolog.New(os.Stderr).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

// start runs a ledger and shuts it down when the test ends.
func start(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}

// asyncErrors collects a connection's asynchronous errors (permission violations among them).
type asyncErrors struct {
	mu   sync.Mutex
	errs []error
}

func (a *asyncErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
}

func (a *asyncErrors) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.errs))
	for i, e := range a.errs {
		out[i] = e.Error()
	}
	return out
}

// requireViolation waits until the server has reported a permission violation on subject.
func (a *asyncErrors) requireViolation(t *testing.T, kind, subject string) {
	t.Helper()
	want := fmt.Sprintf("Permissions Violation for %s to %q", kind, subject)
	require.Eventually(t, func() bool {
		for _, e := range a.all() {
			if strings.Contains(e, want) {
				return true
			}
		}
		return false
	}, waitFor, pollTick, "no %q; got %v", want, a.all())
}

// connect dials the ledger with extra options and records asynchronous errors.
func connect(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, *asyncErrors) {
	t.Helper()
	ae := &asyncErrors{}
	nc, err := nats.Connect(url, append([]nats.Option{nats.ErrorHandler(ae.handler)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc, ae
}

// as connects as one user of the test access config the way the project's CLI and Go callers do
// (natsconn.Options: credentials and the user's own inbox prefix), recording asynchronous errors.
func as(t *testing.T, url string, o natsconn.Options) (*nats.Conn, *asyncErrors) {
	t.Helper()
	opts, err := o.NATSOptions()
	require.NoError(t, err)
	return connect(t, url, opts...)
}

// The users of the test access config, as natsconn options.
func asLedger() natsconn.Options { return natsconn.Options{User: "ledger", Password: ledgerPassword} }
func asDashboard() natsconn.Options {
	return natsconn.Options{User: "dashboard", Password: dashboardPassword}
}
func asAuditor() natsconn.Options {
	return natsconn.Options{User: "auditor", Password: auditorPassword}
}
func asService(acc access) natsconn.Options {
	return natsconn.Options{NkeySeedFile: acc.ServiceSeed}
}

// client wraps a connection in the typed client.
func client(t *testing.T, nc *nats.Conn) *commands.Client {
	t.Helper()
	c, err := commands.NewClient(nc, 10*time.Second)
	require.NoError(t, err)
	return c
}

// waitServing waits until the ledger's query endpoints answer on nc (server.Start can return
// before the service connection has flushed its subscriptions).
func waitServing(t *testing.T, nc *nats.Conn) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := nc.Request("ledger.query.balance", []byte(`{"account_id":"--probe--"}`), time.Second)
		return err == nil
	}, waitFor, pollTick, "ledger endpoints never became reachable")
}

// streamHead reads the LEDGER stream's last position over nc.
func streamHead(t *testing.T, nc *nats.Conn) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	st, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	return info.State.LastSeq
}

func purchase(id, account, license, credits string) commands.PurchaseLicense {
	return commands.PurchaseLicense{Meta: commands.Meta{CommandID: id, AccountID: account}, LicenseID: license,
		Source: "sales", Credits: commands.MustAmount(credits)}
}

func activate(id, account, license string) commands.ActivateLicense {
	return commands.ActivateLicense{Meta: commands.Meta{CommandID: id, AccountID: account}, LicenseID: license}
}

func allocate(id, account, credits string) commands.AllocateCredits {
	return commands.AllocateCredits{Meta: commands.Meta{CommandID: id, AccountID: account}, Feature: "container_security",
		Credits: commands.MustAmount(credits)}
}

// httpDo sends a GET with an optional bearer token and returns the status and body.
func httpDo(t *testing.T, url, token string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

// httpPost sends a POST with a body and a bearer token.
func httpPost(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
