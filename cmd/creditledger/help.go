package main

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/ledger"
)

// fieldHelp is the help of each request field's flag: what it is, the values allowed, the
// default the ledger applies when it is left out.
var fieldHelp = map[string]string{
	"license_id":         "license id (1-64 characters of A-Za-z0-9_-)",
	"source":             "where the license was sold: sales, aws_marketplace or azure_marketplace",
	"credits":            "credits: a decimal > 0, at most 4 fractional digits (1500, 12.5)",
	"term_months":        fmt.Sprintf("term in months, 1-%d (default %d)", ledger.MaxTermMonths, ledger.DefaultTermMonths),
	"auto_renew":         "renew at the end of the term (default true; --auto-renew=false to turn off)",
	"contract_start":     "start of the first term, RFC 3339, years 2000-2099 (default: now)",
	"additional_credits": "credits to add: a decimal > 0",
	"item_id":            "id of the Azure upgrade item (Azure licenses only; optional)",
	"feature":            "feature id from the catalogue: container_security, file_security, cloud_account_assessment, advanced_server_workload_protection, endpoint_security_core, email_security",
	"enabled":            "true or false (required)",
	"contract_id":        "pay-as-you-go contract id",
	"rates":              "the contract's own rates as feature=rate pairs (feature:tier for instance sizes; default: the rate card)",
	"to":                 "billing model to switch to: payg or credits",
	"usage_id":           "usage record id, unique per account (a repeat with the same content is a replay)",
	"quantity":           "quantity used: a decimal > 0",
	"unit":               "the feature's unit in the catalogue: hours, gb, accounts, endpoints, mailboxes",
	"occurred_at":        "when the usage happened, RFC 3339",
	"instance_size":      "workload protection only: medium, large or xlarge",
	"cloud_connector":    "workload protection only: aws, azure, gcp or none",
	"subscription_id":    "marketplace subscription id",
	"marketplace":        "aws or azure",
}

// commandExamples is one example invocation per command.
var commandExamples = map[string]string{
	"purchase_license":       "--account acme --license-id L-1 --source sales --credits 1500",
	"activate_license":       "--account acme --license-id L-1",
	"upgrade_contract":       "--account acme --license-id L-1 --additional-credits 500",
	"allocate_credits":       "--account acme --feature container_security --credits 250",
	"release_credits":        "--account acme --feature container_security --credits 50",
	"set_auto_renew":         "--account acme --license-id L-1 --enabled=false",
	"purchase_payg_contract": "--account acme --contract-id P-1 --rates container_security=0.05",
	"activate_payg_contract": "--account acme --contract-id P-1",
	"switch_billing_model":   "--account acme --feature container_security --to payg",
	"record_usage":           "--account acme --usage-id u-1 --feature container_security --quantity 10 --unit hours --occurred-at 2026-01-15T10:00:00Z",
	"link_subscription":      "--account acme --subscription-id S-1 --marketplace aws",
	"unlink_subscription":    "--account acme --subscription-id S-1",
}

// queryExamples is one example invocation per query.
var queryExamples = map[string]string{
	"balance":   "--account acme --min-position 3",
	"licenses":  "--account acme",
	"switches":  "--account acme",
	"usage":     "--account acme --month 2026-01",
	"account":   "--account acme --as-of 2026-01-15T09:00:00Z",
	"contracts": "--account acme",
}

// groupExamples are the examples of the commands that only group others, and of those defined
// without one (the audit subcommands), by command path; addExamples fills them in.
var groupExamples = map[string]string{
	"creditledger command":                "creditledger command allocate_credits --account acme --feature container_security --credits 250",
	"creditledger query":                  "creditledger query balance --account acme --min-position 3",
	"creditledger audit":                  "creditledger audit verify --nats-url nats://127.0.0.1:4222",
	"creditledger reservations":           "creditledger reservations rebuild --nats-url nats://127.0.0.1:4222",
	"creditledger reservations rebuild":   "creditledger reservations rebuild --nats-url nats://127.0.0.1:4222 --nats-creds ledger.creds",
	"creditledger rejections":             "creditledger rejections accept-loss --nats-url nats://127.0.0.1:4222",
	"creditledger rejections accept-loss": "creditledger rejections accept-loss --nats-url nats://127.0.0.1:4222 --nats-creds ledger.creds",
	"creditledger command-ids":            "creditledger command-ids record --nats-url nats://127.0.0.1:4222",
	"creditledger command-ids record":     "creditledger command-ids record --nats-url nats://127.0.0.1:4222 --nats-creds ledger.creds",
	"creditledger audit replay":           "creditledger audit replay --account acme --since 2026-01-01T00:00:00Z --with-position",
	"creditledger audit export":           "creditledger audit export --format csv --out events.csv\n  creditledger audit export --format jsonl --out - | gzip > events.jsonl.gz",
	"creditledger audit verify":           "creditledger audit verify --trusted-checkpoint cp-41.json",
	"creditledger audit balance":          "creditledger audit balance --account acme --at 2026-03-31T23:59:59Z",
	"creditledger audit rebuild":          "creditledger audit rebuild --json",
	"creditledger audit checkpoint":       "creditledger audit checkpoint --request --out cp.json",
	"creditledger audit proof":            "creditledger audit proof --account acme --checkpoint 41 > proof.json\n  creditledger audit proof --verify proof.json",
	"creditledger completion":             "creditledger completion bash > /etc/bash_completion.d/creditledger",
}

// addExamples gives every command without an example the one in groupExamples.
func addExamples(c *cobra.Command) {
	for _, sub := range c.Commands() {
		addExamples(sub)
	}
	if ex, ok := groupExamples[c.CommandPath()]; ok && c.Example == "" {
		c.Example = "  " + ex
	}
}

// defaultNATSURL is the NATS_URL environment variable, else nats://127.0.0.1:4222.
func defaultNATSURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}
