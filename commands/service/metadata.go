package service

import (
	"github.com/creditledger/creditledger/commands"
)

// Endpoint metadata keys ($SRV.INFO): what the endpoint does and the names of its request and
// reply schemas (the Go types of package commands and api; the README's command table).
const (
	MetaDescription = "description"
	MetaRequest     = "request_schema"
	MetaReply       = "reply_schema"
	MetaError       = "error_schema"
)

// descriptions says in one line what each command does.
var descriptions = map[string]string{
	"purchase_license":       "buy a credits license (sales, aws_marketplace, azure_marketplace); pending until activated",
	"activate_license":       "activate a purchased license: its credits join the account's pool",
	"upgrade_contract":       "add credits to an active license (an Azure upgrade is an item of its own)",
	"allocate_credits":       "allocate available credits to a feature",
	"release_credits":        "return credits a feature holds to the pool",
	"set_auto_renew":         "turn a license's automatic renewal on or off",
	"purchase_payg_contract": "buy a pay-as-you-go contract, optionally with its own rates",
	"activate_payg_contract": "activate a pay-as-you-go contract",
	"switch_billing_model":   "move a PAYG-eligible feature between credits and pay-as-you-go (at most once in 30 days)",
	"record_usage":           "record metered usage of a feature on pay-as-you-go, priced at occurred_at",
	"link_subscription":      "link a marketplace subscription to the account (moves it from another account)",
	"unlink_subscription":    "unlink the account's marketplace subscription (48-hour grace period)",
}

// Metadata is the $SRV.INFO metadata of a command's endpoint.
func Metadata(name string) map[string]string {
	return map[string]string{
		MetaDescription: descriptions[name],
		MetaRequest:     commands.RequestType(name).Name(),
		MetaReply:       "Accepted",
		MetaError:       "Rejected",
	}
}
