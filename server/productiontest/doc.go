// Package productiontest holds the integration tests of the production footing (issue 6):
// NATS roles and least privilege, TLS and mTLS, HTTP bearer tokens, metrics, and a three-node
// JetStream cluster, each against real embedded servers started in the test process.
package productiontest
