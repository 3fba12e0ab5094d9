package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/natsconn"
)

// clientFlags are shared by the client subcommands.
type clientFlags struct {
	url     string
	timeout time.Duration
	conn    natsconn.Options // credentials and TLS
}

func (c *clientFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.url, "nats-url", defaultNATSURL(), "NATS URL of the ledger ($NATS_URL, when set, is the default)")
	f.DurationVar(&c.timeout, "timeout", 10*time.Second, "request timeout")
	c.conn.AddCredentialFlags(f)
	c.conn.AddTLSFlags(f)
}

func (c *clientFlags) connect() (*nats.Conn, *commands.Client, error) {
	c.conn.URL = c.url
	nc, err := natsconn.Connect(c.conn, nats.Name("creditledger-cli"))
	if err != nil {
		return nil, nil, &exitCodeError{exitError, err}
	}
	cl, err := commands.NewClient(nc, c.timeout)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, cl, nil
}

// printOutcome prints the reply (or the rejection body) and maps it to an exit code.
func printOutcome(w io.Writer, raw json.RawMessage, err error) error {
	var le *ledger.Error
	if errors.As(err, &le) {
		b, _ := json.Marshal(api.Rejected{Error: api.ErrorBody{Code: le.Code, Message: le.Message, Data: le.Data}})
		fmt.Fprintln(w, string(b))
		return &exitCodeError{exitRejected, fmt.Errorf("rejected: %s", le.Code)}
	}
	if err != nil {
		return &exitCodeError{exitError, err}
	}
	fmt.Fprintln(w, string(raw))
	return nil
}

func commandCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "command NAME --account ID [--FIELD VALUE ... | --data JSON]",
		Short: "Send a command; prints the reply and exits 1 on a rejection",
	}
	for _, name := range commands.Names() {
		cmd.AddCommand(oneCommand(name, reflect.Zero(commands.RequestType(name)).Interface()))
	}
	return cmd
}

// oneCommand builds `command NAME` with one flag per request field (named as in JSON).
func oneCommand(name string, proto any) *cobra.Command {
	var cf clientFlags
	var account, commandID, data string
	var expected int64
	fields := map[string]string{} // flag name -> kind
	c := &cobra.Command{
		Use:     name,
		Short:   "Send " + name,
		Example: "  creditledger command " + name + " " + commandExamples[name],
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{}
			if data != "" {
				if err := json.Unmarshal([]byte(data), &body); err != nil {
					return fmt.Errorf("--data: %w", err)
				}
			}
			if account != "" {
				body["account_id"] = account
			}
			if _, ok := body["command_id"]; !ok || commandID != "" {
				if commandID == "" {
					commandID = uuid.NewString()
				}
				body["command_id"] = commandID
			}
			if cmd.Flags().Changed("expected-version") {
				body["expected_version"] = expected
			}
			for flagName, kind := range fields {
				if !cmd.Flags().Changed(flagName) {
					continue
				}
				v, err := flagValue(cmd.Flags(), flagName, kind)
				if err != nil {
					return err
				}
				body[flagName] = v
			}
			nc, cl, err := cf.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			acc, err := cl.Send(cmd.Context(), name, body)
			var raw json.RawMessage
			if err == nil {
				raw, _ = json.Marshal(acc)
			}
			return printOutcome(cmd.OutOrStdout(), raw, err)
		},
	}
	f := c.Flags()
	cf.add(f)
	f.StringVar(&account, "account", "", "account id (1-64 characters of A-Za-z0-9_-)")
	f.StringVar(&commandID, "command-id", "", "idempotency key, 1-128 characters: a retry with the same one is answered once (default: a new UUID)")
	f.StringVar(&data, "data", "", "the request as a JSON object (flags override its fields)")
	f.Int64Var(&expected, "expected-version", 0, "fail with version_conflict unless the account is at this version")
	t := reflect.TypeOf(proto)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("json"), ",")[0]
		if sf.Anonymous || tag == "" || tag == "-" {
			continue
		}
		kind := "string"
		help := fieldHelp[tag]
		if help == "" {
			help = tag
		}
		// Flags are registered under the field's JSON name; the kebab-case normalisation
		// (main.go) shows them as --license-id and accepts --license_id too.
		switch {
		case sf.Type.Kind() == reflect.Map:
			kind = "map"
			f.StringToString(tag, nil, help)
		case sf.Type == reflect.TypeOf(new(bool)) || sf.Type.Kind() == reflect.Bool:
			kind = "bool"
			f.Bool(tag, false, help)
		case sf.Type == reflect.TypeOf(new(int)):
			kind = "int"
			f.Int(tag, 0, help)
		default:
			f.String(tag, "", help)
		}
		fields[tag] = kind
	}
	return c
}

func flagValue(f *pflag.FlagSet, name, kind string) (any, error) {
	switch kind {
	case "bool":
		return f.GetBool(name)
	case "int":
		return f.GetInt(name)
	case "map":
		return f.GetStringToString(name)
	default:
		return f.GetString(name)
	}
}

func queryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "query balance|licenses|switches|usage|account|contracts --account ID", Short: "Read a projection"}
	for _, name := range []string{"balance", "licenses", "switches", "usage", "account", "contracts"} {
		name := name
		var cf clientFlags
		var account string
		var minPos uint64
		var month, asOf string
		q := &cobra.Command{
			Use:     name,
			Short:   "Query " + name,
			Example: "  creditledger query " + name + " " + queryExamples[name],
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				nc, cl, err := cf.connect()
				if err != nil {
					return err
				}
				defer nc.Close()
				body := map[string]any{"account_id": account}
				if minPos > 0 {
					body["min_position"] = minPos
				}
				if month != "" {
					body["month"] = month
				}
				if asOf != "" {
					body["as_of"] = asOf
				}
				raw, err := cl.Query(context.Background(), name, body)
				return printOutcome(cmd.OutOrStdout(), raw, err)
			},
		}
		cf.add(q.Flags())
		q.Flags().StringVar(&account, "account", "", "account id")
		q.Flags().Uint64Var(&minPos, "min-position", 0, "wait until the projection has applied this position")
		q.Flags().StringVar(&asOf, "as-of", "", "the read model as it was at this RFC 3339 time, e.g. 2026-01-15T09:00:00Z")
		if name == "usage" {
			q.Flags().StringVar(&month, "month", "", "one calendar month (UTC), YYYY-MM")
		}
		_ = q.MarkFlagRequired("account")
		cmd.AddCommand(q)
	}
	return cmd
}
