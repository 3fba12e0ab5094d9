// Package bench is the ledger's load tool: it drives a running ledger through its public NATS
// API with a realistic command mix, measures raw JetStream on a scratch stream of the same server
// in the same run, and reports the ledger's figures as ratios against those baselines.
package bench
