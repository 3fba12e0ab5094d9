// Package buildinfo tells which build of creditledger is running: the version the NATS micro
// service reports, `creditledger --version` prints and the build_info metric carries.
package buildinfo
